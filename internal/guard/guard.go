package guard

import (
	"bytes"
	"context"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"bulwark/internal/dnssec"
	"bulwark/internal/resolver"

	"github.com/miekg/dns"
)

// Config sets the thresholds of a Guard. Every field must be set; the
// config package holds the defaults.
type Config struct {
	// Window is the length of the sliding window over which misses and
	// failures are counted.
	Window time.Duration
	// MinRate is the cache misses per second, averaged over Window, that
	// a zone must reach to be protected.
	MinRate float64
	// FailureRatio is the share of the misses answered by the zone's
	// servers that must end NXDOMAIN or SERVFAIL, 0 to 1.
	FailureRatio float64
	// Hold is how long a zone stays protected after it last crossed both
	// thresholds. MaxHold caps the doubled hold of a zone protected again
	// within MaxHold of its last protection.
	Hold, MaxHold time.Duration
	// ProbeRate is the queries per second still sent to the servers of a
	// protected zone.
	ProbeRate float64
	// MaxInFlight caps the queries in flight to the servers of one zone,
	// a quarter of them kept for names known to exist.
	MaxInFlight int
	// TableSize is the number of zones tracked at once.
	TableSize int
	// Exempt lists zones that are never protected, such as DNS blocklist
	// zones whose answers are mostly NXDOMAIN by design. The in-flight
	// cap still applies to them.
	Exempt []string
}

// minOutcomes is the fewest answered misses in the window on which a
// failure ratio is judged, so that a handful of failures cannot protect a
// zone.
const minOutcomes = 10

// logLimit is the most lines per second logged about zones entering and
// leaving protection.
const logLimit = 10

// Guard tracks zones, protects those under attack and caps the queries in
// flight per zone. It implements resolver.Gate. It is safe for concurrent
// use.
type Guard struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	exempt map[string]bool

	mu       sync.Mutex
	table    *table
	known    *knownNames
	inflight map[string]int
	// protected counts the zones protected now.
	protected int
	// hotZones is the set of hot zones (see Suspect), replaced whenever a zone
	// becomes hot or cools, so that Suspect reads it without the lock.
	hotZones atomic.Pointer[map[string]bool]
	// logSecond, logged and suppressed limit the log lines per second.
	logSecond          int64
	logged, suppressed int

	localAnswers, shedProtected, shedInFlight atomic.Uint64
}

// New returns a Guard. now may be nil for time.Now.
func New(cfg Config, log *slog.Logger, now func() time.Time) *Guard {
	if now == nil {
		now = time.Now
	}
	g := &Guard{
		cfg: cfg, now: now,
		log:      log.With("component", "guard"),
		exempt:   map[string]bool{},
		table:    newTable(cfg.TableSize),
		known:    newKnownNames(cfg.TableSize * knownPerZone),
		inflight: map[string]int{},
	}
	for _, z := range cfg.Exempt {
		g.exempt[dns.CanonicalName(z)] = true
	}
	return g
}

// Acquire admits a query for qname to the servers of zone, or sheds it
// with the reason for the client's EDE. A name known to exist (see
// knownNames), or zone itself, is shed only when MaxInFlight queries to
// zone are in flight already. Any other name is shed when zone is
// protected and its probe budget is spent, or when the queries in flight
// to zone fill all but the reserve of MaxInFlight (see unknownInFlight).
func (g *Guard) Acquire(zone, qname string) (ok bool, reason string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	known := qname == zone || g.known.contains(qname)
	limit := g.cfg.MaxInFlight
	if !known {
		limit = unknownInFlight(limit)
		if e := g.table.find(zone); e != nil {
			g.expire(e, now)
			if e.protected() && !e.takeProbe(now, g.cfg.ProbeRate) {
				g.shedProtected.Add(1)
				return false, "random-subdomain protection of " + zone
			}
		}
	}
	if g.inflight[zone] >= limit {
		g.shedInFlight.Add(1)
		return false, strconv.Itoa(g.inflight[zone]) + " queries to the servers of " + zone + " in flight already"
	}
	g.inflight[zone]++
	return true, ""
}

// unknownInFlight returns how many of limit queries in flight to one zone
// may be for names not known to exist. The rest, a quarter rounded down,
// is kept for known names, so a flood of random names cannot take every
// place from the zone's normal traffic.
func unknownInFlight(limit int) int {
	return limit - limit/4
}

// Release ends a query admitted by Acquire.
func (g *Guard) Release(zone string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if n := g.inflight[zone]; n > 1 {
		g.inflight[zone] = n - 1
	} else {
		delete(g.inflight, zone)
	}
}

// Observe counts how the resolution of qname, which missed the answer
// cache, ended, and protects its zone when it crosses both thresholds.
// Results without a zone, answered from cached records, are not counted.
// Answers synthesised from the zone's NSEC records count towards making
// the zone hot (see Suspect), but not towards protecting it, since its
// servers were not asked. A NOERROR result records qname as known to
// exist.
func (g *Guard) Observe(qname string, res resolver.Result) {
	if res.Zone == "" {
		return
	}
	if res.Limited {
		g.localAnswers.Add(1)
	}
	if !res.Limited && res.Rcode == dns.RcodeSuccess && res.Security != dnssec.Bogus {
		g.known.add(qname)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	e := g.table.insert(res.Zone, now, g.cfg.Window)
	if e == nil {
		return
	}
	g.expire(e, now)
	e.roll(now, g.cfg.Window)
	e.cur.misses++
	if res.Synthesised {
		e.cur.synthesised++
	} else if !res.Limited {
		e.cur.outcomes++
		if failed(res) {
			e.cur.failures++
		}
	}
	g.evaluate(e, now)
	if !g.isHot(e.zone) && g.hot(e, now) {
		g.addHot(e.zone)
	}
}

// Suspect reports whether qname looks like a name of a flood: it lies
// under a hot zone, one that reaches MinRate misses a second over the
// window or is protected, and neither it nor the name one label below the
// hot zone on the way to it is known to exist. So a flood of random
// top-level names, which makes the root hot, leaves the names under known
// top-level domains alone, as a flood of random names under example.com
// leaves those under www.example.com. The pipeline resolves suspect names
// in a small pool of their own, so a flood that outruns the CPU delays them
// rather than normal names.
//
// qname is in lower case, with the final dot, and without escapes.
// Suspect takes no lock and does not allocate, so the pipeline may call it
// on its fast path. Observe adds the zones that become hot to the set it
// reads, and Sweep, once a second, removes those that cooled.
func (g *Guard) Suspect(qname []byte) bool {
	hot := g.hotZones.Load()
	if hot == nil || len(*hot) == 0 || g.known.containsBytes(qname) {
		return false
	}
	var child []byte
	for n := qname; len(n) > 0; {
		if (*hot)[string(n)] && child != nil && !g.known.containsBytes(child) {
			return true
		}
		i := bytes.IndexByte(n, '.')
		if i < 0 || len(n) == 1 {
			return false
		}
		child = n
		if i == len(n)-1 {
			n = n[i:] // the root, "."
		} else {
			n = n[i+1:]
		}
	}
	return false
}

func (g *Guard) isHot(zone string) bool {
	hot := g.hotZones.Load()
	return hot != nil && (*hot)[zone]
}

// addHot adds zone to the set of hot zones read by Suspect. The caller
// holds g.mu.
func (g *Guard) addHot(zone string) {
	hot := map[string]bool{zone: true}
	if old := g.hotZones.Load(); old != nil {
		for z := range *old {
			hot[z] = true
		}
	}
	g.hotZones.Store(&hot)
}

// publishHot replaces the set of hot zones read by Suspect. The caller
// holds g.mu.
func (g *Guard) publishHot(now time.Time) {
	hot := map[string]bool{}
	for i := range g.table.entries {
		if e := &g.table.entries[i]; e.zone != "" && g.hot(e, now) {
			hot[e.zone] = true
		}
	}
	g.hotZones.Store(&hot)
}

// hot reports whether e is protected or misses at MinRate or more.
func (g *Guard) hot(e *entry, now time.Time) bool {
	if e.protected() {
		return true
	}
	return e.estimate(now, g.cfg.Window).misses >= g.cfg.MinRate*g.cfg.Window.Seconds()
}

// failed reports whether res counts against its zone: NXDOMAIN, SERVFAIL,
// timeouts and bogus answers.
func failed(res resolver.Result) bool {
	return res.Rcode == dns.RcodeNameError || res.Rcode == dns.RcodeServerFailure ||
		res.Security == dnssec.Bogus
}

// evaluate protects e, or extends its protection, when its window
// crosses both thresholds. Misses answered from cached NSEC records do
// not count towards the miss rate here.
func (g *Guard) evaluate(e *entry, now time.Time) {
	c := e.estimate(now, g.cfg.Window)
	rate := (c.misses - c.synthesised) / g.cfg.Window.Seconds()
	if rate < g.cfg.MinRate || c.outcomes < minOutcomes || c.failures < g.cfg.FailureRatio*c.outcomes {
		return
	}
	if g.exempt[e.zone] {
		return
	}
	if e.protected() {
		e.until = now.Add(e.hold)
		return
	}
	// A zone attacked again soon after its protection ended is held twice
	// as long as the last time.
	if !e.ended.IsZero() && now.Sub(e.ended) < g.cfg.MaxHold {
		e.hold = min(2*e.hold, g.cfg.MaxHold)
	} else {
		e.hold = g.cfg.Hold
	}
	e.until = now.Add(e.hold)
	e.tokens, e.refilled = max(1, g.cfg.ProbeRate), now
	g.protected++
	if ok, suppressed := g.allowLog(now); ok {
		g.log.Warn("zone protected", "zone", e.zone, "miss_rate", rate,
			"failure_ratio", c.failures/c.outcomes, "hold_seconds", e.hold.Seconds(),
			"suppressed_before", suppressed)
	}
}

// expire ends the protection of e when its hold has passed.
func (g *Guard) expire(e *entry, now time.Time) {
	if !e.protected() || now.Before(e.until) {
		return
	}
	e.until, e.ended = time.Time{}, now
	g.protected--
	if ok, suppressed := g.allowLog(now); ok {
		g.log.Info("zone protection ended", "zone", e.zone, "suppressed_before", suppressed)
	}
}

// allowLog reports whether a line may be logged at now, and how many were
// suppressed since the last one allowed.
func (g *Guard) allowLog(now time.Time) (ok bool, suppressed int) {
	if s := now.Unix(); s != g.logSecond {
		g.logSecond, g.logged = s, 0
	}
	if g.logged >= logLimit {
		g.suppressed++
		return false, 0
	}
	g.logged++
	suppressed, g.suppressed = g.suppressed, 0
	return true, suppressed
}

// Sweep ends the protections whose hold has passed. Acquire and Observe
// end them too, but only for the zones they meet; Sweep keeps the count of
// protected zones and the log current for zones nobody asks for.
func (g *Guard) Sweep() {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	for i := range g.table.entries {
		g.expire(&g.table.entries[i], now)
	}
	g.publishHot(now)
}

// Run calls Sweep every second until ctx is done.
func (g *Guard) Run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.Sweep()
		}
	}
}

// Protection is the state of one protected zone.
type Protection struct {
	Zone string `json:"zone"`
	// Until is when the protection ends unless the zone crosses both
	// thresholds again.
	Until time.Time `json:"until"`
	// MissRate is the cache misses per second in the window that cached
	// NSEC records did not answer, and FailureRatio the share of the
	// answered ones that failed.
	MissRate     float64 `json:"miss_rate"`
	FailureRatio float64 `json:"failure_ratio"`
}

// Protected returns the zones protected now, sorted by name.
func (g *Guard) Protected() []Protection {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	out := []Protection{}
	for i := range g.table.entries {
		e := &g.table.entries[i]
		g.expire(e, now)
		if !e.protected() {
			continue
		}
		c := e.estimate(now, g.cfg.Window)
		p := Protection{Zone: e.zone, Until: e.until, MissRate: (c.misses - c.synthesised) / g.cfg.Window.Seconds()}
		if c.outcomes > 0 {
			p.FailureRatio = c.failures / c.outcomes
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Zone < out[j].Zone })
	return out
}

// Stats are the guard's counters since it started.
type Stats struct {
	// Protected is the number of zones protected now.
	Protected int
	// LocalAnswers counts resolutions answered SERVFAIL because a query
	// to a zone's servers was shed.
	LocalAnswers uint64
	// ShedProtected counts queries shed because their zone was
	// protected, and ShedInFlight those shed by the in-flight cap.
	ShedProtected, ShedInFlight uint64
}

// Stats returns the current counters.
func (g *Guard) Stats() Stats {
	g.mu.Lock()
	protected := g.protected
	g.mu.Unlock()
	return Stats{
		Protected:     protected,
		LocalAnswers:  g.localAnswers.Load(),
		ShedProtected: g.shedProtected.Load(),
		ShedInFlight:  g.shedInFlight.Load(),
	}
}
