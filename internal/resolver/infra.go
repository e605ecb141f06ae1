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
//
// Timeouts do not feed the RTT estimate (Karn's algorithm, RFC 6298
// section 5): they double the next timeout of the server and push it back
// in the order of selection, and a response undoes both. After
// timeoutsBeforeHoldDown timeouts in a row a server is held down for the
// probe interval. When the hold ends, one query probes the server, and each
// probe that times out doubles the hold, up to the longest hold down.
type infra struct {
	mu      sync.Mutex
	servers map[netip.Addr]*serverState
	lame    map[lameKey]time.Time
	failed  map[string]time.Time
	// answered holds when each zone last got a usable response.
	answered map[string]time.Time
	initial  time.Duration
	probe    time.Duration
	holdDown time.Duration
	now      func() time.Time
}

type serverState struct {
	srtt, rttvar time.Duration
	measured     bool
	// timeouts counts the timeouts since the last response.
	timeouts int
	// sends numbers the queries sent; timeoutMark is the number of the
	// last query sent when the last timeout was counted.
	sends, timeoutMark uint64
	heldUntil          time.Time
	// holds counts the holds since the last response.
	holds int
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

// maxBackoff caps the doublings of a server's timeout after timeouts.
const maxBackoff = 3

// Bounds of the adaptive query timeout.
const (
	minQueryTimeout = 200 * time.Millisecond
	maxQueryTimeout = 3 * time.Second
)

// newInfra returns an infra whose servers without an RTT estimate get the
// timeout initial, and whose held servers are probed after probe at first
// and after holdDown at most.
func newInfra(initial, probe, holdDown time.Duration, now func() time.Time) *infra {
	return &infra{
		servers:  map[netip.Addr]*serverState{},
		lame:     map[lameKey]time.Time{},
		failed:   map[string]time.Time{},
		answered: map[string]time.Time{},
		initial:  initial,
		probe:    min(probe, holdDown),
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

// rtt records a response from a in rtt. A response ends the backoff and
// any hold of a.
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
	s.timeouts, s.holds = 0, 0
	s.heldUntil = time.Time{}
}

// setAnswered records that a server of zone gave a usable response now.
func (in *infra) setAnswered(zone string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if _, ok := in.answered[zone]; !ok && len(in.answered) >= maxInfraEntries {
		for k := range in.answered {
			delete(in.answered, k)
			break
		}
	}
	in.answered[zone] = in.now()
}

// answeredWithin reports whether a server of zone gave a usable response in
// the last d.
func (in *infra) answeredWithin(zone string, d time.Duration) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	at, ok := in.answered[zone]
	return ok && at.After(in.now().Add(-d))
}

// sending records that a query to a leaves now and returns its number for
// timeout.
func (in *infra) sending(a netip.Addr) uint64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	s := in.state(a)
	s.sends++
	return s.sends
}

// timeout records that a did not respond to the query numbered seq.
// Queries that were in flight together when a timeout was counted count
// once, so that a burst meeting one short outage (such as response rate
// limiting) does not put the server on hold. It reports whether a went on
// hold from a state without holds, the moment worth a log line.
func (in *infra) timeout(a netip.Addr, seq uint64) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	s := in.state(a)
	if seq <= s.timeoutMark {
		return false
	}
	now := in.now()
	s.timeoutMark = s.sends
	s.timeouts++
	if s.timeouts < timeoutsBeforeHoldDown || in.holdDown <= 0 {
		return false
	}
	// Every timeout from here on is a failed probe: hold again, twice as
	// long each time.
	hold := in.holdDown
	if s.holds < 30 {
		hold = min(in.probe<<s.holds, in.holdDown)
	}
	s.heldUntil = now.Add(hold)
	s.holds++
	return s.holds == 1
}

// rto is the timeout of a query to s before backoff.
func (in *infra) rto(s *serverState) time.Duration {
	if s == nil || !s.measured {
		return in.initial
	}
	return min(max(s.srtt+4*s.rttvar, minQueryTimeout), maxQueryTimeout)
}

// queryTimeout returns the timeout of the next query to a: the RTO of its
// RTT estimate, doubled for each timeout since its last response, up to
// maxBackoff times and maxQueryTimeout. The backoff gives a slow server
// the time to answer, while the other servers of the zone are asked
// meanwhile (see askZone).
func (in *infra) queryTimeout(a netip.Addr) time.Duration {
	in.mu.Lock()
	defer in.mu.Unlock()
	s := in.servers[a]
	t := in.rto(s)
	if s != nil {
		t <<= min(s.timeouts, maxBackoff)
	}
	return min(t, max(maxQueryTimeout, in.initial))
}

// held reports whether a is on hold now.
func (in *infra) held(a netip.Addr) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	s := in.servers[a]
	return s != nil && in.now().Before(s.heldUntil)
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
// those in tried or lame for the zone. It prefers the lowest expected cost
// (see score), picks at random among servers close to the best, and now
// and then picks any usable server without timeouts so that estimates
// stay fresh. Servers on
// hold are asked only when no other server is left, the one whose hold ends
// first, so that the last servers of a zone are never shut out. ok is false
// when none is usable.
func (in *infra) pick(zone string, candidates []netip.Addr, tried map[netip.Addr]bool) (netip.Addr, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	now := in.now()

	usable := make([]netip.Addr, 0, len(candidates))
	var held netip.Addr
	var heldUntil time.Time
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
			if !held.IsValid() || s.heldUntil.Before(heldUntil) {
				held, heldUntil = a, s.heldUntil
			}
			continue
		}
		usable = append(usable, a)
		if r := in.score(s); best < 0 || r < best {
			best = r
		}
	}

	if len(usable) == 0 {
		return held, held.IsValid()
	}

	if rand.IntN(20) == 0 {
		// Explore among servers that did not time out since their last
		// response: one that did waits out a backed-off timeout, up to
		// 3s, which a client cannot spare. It is asked again when it
		// scores best or no other server is left.
		var fresh []netip.Addr
		for _, a := range usable {
			if s := in.servers[a]; s == nil || s.timeouts == 0 {
				fresh = append(fresh, a)
			}
		}
		if len(fresh) > 0 {
			return fresh[rand.IntN(len(fresh))], true
		}
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

// score is the expected cost of asking a server: its smoothed RTT, plus a
// timeout for each timeout since its last response. A server never heard
// from scores the initial timeout, as if it answered that slowly: servers
// known to answer fast are preferred, and it is tried when none is, or by
// the occasional random pick. A burst of queries to a cold cache thus
// does not spread over servers that might not answer at all.
func (in *infra) score(s *serverState) time.Duration {
	if s == nil {
		return in.initial
	}
	d := in.initial
	if s.measured {
		d = s.srtt
	}
	return d + time.Duration(s.timeouts)*in.rto(s)
}
