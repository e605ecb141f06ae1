package resolver

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"
)

// infra keeps what the resolver learns about servers: a smoothed RTT per
// address (RFC 6298 style), consecutive timeouts, addresses held down after
// repeated timeouts, servers found lame for a zone and zones whose servers
// all failed. Entries are bounded in number.
type infra struct {
	mu       sync.Mutex
	servers  map[netip.Addr]*serverState
	lame     map[lameKey]time.Time
	failed   map[string]time.Time
	holdDown time.Duration
	now      func() time.Time
}

type serverState struct {
	srtt, rttvar time.Duration
	measured     bool
	timeouts     int
	lastTimeout  time.Time
	heldUntil    time.Time
}

type lameKey struct {
	zone string
	addr netip.Addr
}

// maxInfraEntries bounds each map of infra; past it, arbitrary old entries
// are dropped.
const maxInfraEntries = 100000

// timeoutsBeforeHoldDown is how many consecutive timeouts put a server on
// hold.
const timeoutsBeforeHoldDown = 3

// Bounds of the adaptive query timeout.
const (
	minQueryTimeout = 200 * time.Millisecond
	maxQueryTimeout = 3 * time.Second
)

func newInfra(holdDown time.Duration, now func() time.Time) *infra {
	return &infra{
		servers:  map[netip.Addr]*serverState{},
		lame:     map[lameKey]time.Time{},
		failed:   map[string]time.Time{},
		holdDown: holdDown,
		now:      now,
	}
}

func (in *infra) state(a netip.Addr) *serverState {
	s := in.servers[a]
	if s == nil {
		if len(in.servers) >= maxInfraEntries {
			for k := range in.servers {
				delete(in.servers, k)
				break
			}
		}
		s = &serverState{}
		in.servers[a] = s
	}
	return s
}

// rtt records a response from a in rtt.
func (in *infra) rtt(a netip.Addr, rtt time.Duration) {
	in.mu.Lock()
	defer in.mu.Unlock()
	s := in.state(a)
	if !s.measured {
		s.srtt, s.rttvar, s.measured = rtt, rtt/2, true
	} else {
		diff := s.srtt - rtt
		if diff < 0 {
			diff = -diff
		}
		s.rttvar = (3*s.rttvar + diff) / 4
		s.srtt = (7*s.srtt + rtt) / 8
	}
	s.timeouts = 0
}

// timeout records that a did not respond within timeout to a query sent at
// sent. Queries that were in flight together when a timeout was recorded
// count once, so that a burst meeting one short outage (such as response
// rate limiting) does not put the server on hold.
func (in *infra) timeout(a netip.Addr, timeout time.Duration, sent time.Time) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	s := in.state(a)
	if !sent.After(s.lastTimeout) {
		return false
	}
	s.lastTimeout = in.now()
	s.timeouts++
	// Back off: the next query waits longer, and the server sorts last.
	s.srtt = min(max(s.srtt*2, timeout*2), maxQueryTimeout)
	s.measured = true
	if s.timeouts < timeoutsBeforeHoldDown {
		return false
	}
	s.heldUntil = in.now().Add(in.holdDown)
	s.timeouts = 0
	return true
}

// queryTimeout returns the timeout for the next query to a. A server on
// hold gets the initial timeout: it is only asked as a probe.
func (in *infra) queryTimeout(a netip.Addr, initial time.Duration) time.Duration {
	in.mu.Lock()
	defer in.mu.Unlock()
	s := in.servers[a]
	if s == nil || !s.measured || in.now().Before(s.heldUntil) {
		return initial
	}
	return min(max(s.srtt+4*s.rttvar, minQueryTimeout), maxQueryTimeout)
}

// setLame records that a does not serve zone.
func (in *infra) setLame(zone string, a netip.Addr) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.lame) >= maxInfraEntries {
		for k := range in.lame {
			delete(in.lame, k)
			break
		}
	}
	in.lame[lameKey{zone, a}] = in.now().Add(in.holdDown)
}

// setFailed records that no server of zone answered.
func (in *infra) setFailed(zone string, d time.Duration) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.failed) >= maxInfraEntries {
		for k := range in.failed {
			delete(in.failed, k)
			break
		}
	}
	in.failed[zone] = in.now().Add(d)
}

// isFailed reports whether zone failed recently.
func (in *infra) isFailed(zone string) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	until, ok := in.failed[zone]
	return ok && in.now().Before(until)
}

// pick chooses the server to ask next among candidates for zone, skipping
// those in tried or lame for the zone. It prefers the lowest smoothed RTT,
// picks at random among servers close to the best, and now and then picks
// any usable server so that estimates stay fresh. Servers on hold are asked
// only when no other server is left, so that the last servers of a zone are
// never shut out. ok is false when none is usable.
func (in *infra) pick(zone string, candidates []netip.Addr, tried map[netip.Addr]bool) (netip.Addr, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	now := in.now()

	usable := make([]netip.Addr, 0, len(candidates))
	var held []netip.Addr
	best := time.Duration(-1)
	for _, a := range candidates {
		if tried[a] {
			continue
		}
		if until, ok := in.lame[lameKey{zone, a}]; ok && now.Before(until) {
			continue
		}
		s := in.servers[a]
		if s != nil && now.Before(s.heldUntil) {
			held = append(held, a)
			continue
		}
		usable = append(usable, a)
		if r := in.score(s); best < 0 || r < best {
			best = r
		}
	}

	if len(usable) == 0 {
		if len(held) == 0 {
			return netip.Addr{}, false
		}
		return held[rand.IntN(len(held))], true
	}

	if rand.IntN(20) == 0 {
		return usable[rand.IntN(len(usable))], true
	}

	// Servers within a band of the best are equally good: spread load.
	band := best + best/4 + 2*time.Millisecond
	close := usable[:0:0]
	for _, a := range usable {
		if in.score(in.servers[a]) <= band {
			close = append(close, a)
		}
	}
	return close[rand.IntN(len(close))], true
}

// score is the expected RTT of a server; a server never measured scores 0
// so that it is tried.
func (in *infra) score(s *serverState) time.Duration {
	if s == nil || !s.measured {
		return 0
	}
	return s.srtt
}
