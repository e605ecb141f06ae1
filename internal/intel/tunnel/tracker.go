package tunnel

import (
	"hash/maphash"
	"strconv"
	"strings"
	"sync"
	"time"

	"bulwark/internal/intel/detect"
)

// Observation is one query that the tracker counts against the registered
// domain of its name.
type Observation struct {
	Time  time.Time
	QName string
	QType uint16
	// Bytes is the size of the query and its response on the wire.
	Bytes int
}

// DNS qtypes that carry arbitrary data downstream.
const (
	qtypeNULL = 10
	qtypeTXT  = 16
)

// TrackerConfig sets the window and the memory bounds of a Tracker.
type TrackerConfig struct {
	// Window is the span over which counts are kept; rates are per
	// minute whatever its length. Default 1 minute.
	Window time.Duration
	// MaxDomains bounds the registered domains tracked at once. When it
	// is reached, domains idle for two windows are dropped, at most once
	// a second. If none is, observations of new domains are dropped and
	// counted. Default 10,000.
	MaxDomains int
	// MaxNames bounds the distinct names counted per domain and window;
	// past it the count stays at MaxNames. Default 4,096.
	MaxNames int
	// MinQueries is the number of queries in a window below which a
	// domain scores 0. Default 10.
	MinQueries int
}

func (c *TrackerConfig) setDefaults() {
	if c.Window <= 0 {
		c.Window = time.Minute
	}
	if c.MaxDomains <= 0 {
		c.MaxDomains = 10_000
	}
	if c.MaxNames <= 0 {
		c.MaxNames = 4096
	}
	if c.MinQueries <= 0 {
		c.MinQueries = 10
	}
}

// Limits of the traffic indicators, per window scaled to one minute.
const (
	uniqueStart = 30  // distinct names per minute that start to count
	uniqueFull  = 300 // distinct names per minute that alone score 1
	bytesStart  = 300 // mean bytes per query that start to count
	bytesFull   = 900 // mean bytes per query that score the most
)

// window holds the counts of one domain over one window.
type window struct {
	start           time.Time
	queries, txtNul int
	bytes           int64
	names           map[uint64]struct{}
	// encodedNames counts the distinct names that Names flags.
	encodedNames int
}

type domainState struct {
	current, previous window
	last              time.Time
}

// Tracker scores the traffic of each registered domain: distinct names
// per minute below it, the share of TXT and NULL queries, the mean bytes
// per query and the share of distinct names that Names flags. It is safe
// for concurrent use.
type Tracker struct {
	cfg  TrackerConfig
	seed maphash.Seed

	mu      sync.Mutex
	domains map[string]*domainState
	dropped uint64
	// lastExpire is when a full tracker last scanned for idle domains.
	lastExpire time.Time
}

// NewTracker returns a Tracker with cfg, zero fields set to their defaults.
func NewTracker(cfg TrackerConfig) *Tracker {
	cfg.setDefaults()
	return &Tracker{cfg: cfg, seed: maphash.MakeSeed(), domains: map[string]*domainState{}}
}

// Observe counts o against the registered domain of its name. Names
// without a registered domain are ignored. A name not seen before in the
// window is scored with Names, so Observe costs a few microseconds then.
func (t *Tracker) Observe(o Observation) {
	p := detect.Split(o.QName)
	if p.Registered == "" {
		return
	}
	h := maphash.String(t.seed, p.Sub)

	t.mu.Lock()
	defer t.mu.Unlock()
	d := t.domain(p.Registered, o.Time)
	if d == nil {
		t.dropped++
		return
	}
	d.last = o.Time
	w := &d.current
	w.queries++
	w.bytes += int64(o.Bytes)
	if o.QType == qtypeTXT || o.QType == qtypeNULL {
		w.txtNul++
	}
	if _, seen := w.names[h]; !seen && len(w.names) < t.cfg.MaxNames {
		w.names[h] = struct{}{}
		if p.Sub != "" {
			if st := measure(p.Sub); st.score() >= Threshold {
				w.encodedNames++
			}
		}
	}
}

// domain returns the state of registered at now, rolling its window over
// when it has ended, or nil when the domain is new and there is no room.
func (t *Tracker) domain(registered string, now time.Time) *domainState {
	d := t.domains[registered]
	if d == nil {
		if len(t.domains) >= t.cfg.MaxDomains && !t.makeRoom(now) {
			return nil
		}
		d = &domainState{current: window{start: now, names: map[uint64]struct{}{}}}
		// Clone, so that the map does not keep the whole query name.
		t.domains[strings.Clone(registered)] = d
	}
	if now.Sub(d.current.start) >= t.cfg.Window {
		d.previous = d.current
		if now.Sub(d.current.start) >= 2*t.cfg.Window {
			d.previous = window{}
		}
		d.current = window{start: now, names: make(map[uint64]struct{}, len(d.previous.names))}
	}
	return d
}

// makeRoom drops idle domains and reports whether that made room. It
// scans at most once per second, so that a flood of new domains while
// the tracker is full costs a map lookup each, not a scan of every domain.
func (t *Tracker) makeRoom(now time.Time) bool {
	if now.Sub(t.lastExpire) < time.Second {
		return false
	}
	t.lastExpire = now
	return t.expire(now) > 0
}

// Expire drops the domains with no query for two windows before now and
// returns how many it dropped.
func (t *Tracker) Expire(now time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.expire(now)
}

func (t *Tracker) expire(now time.Time) int {
	n := 0
	for k, d := range t.domains {
		if now.Sub(d.last) >= 2*t.cfg.Window {
			delete(t.domains, k)
			n++
		}
	}
	return n
}

// Dropped returns the number of observations dropped because MaxDomains
// domains were tracked.
func (t *Tracker) Dropped() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dropped
}

// Score scores the traffic of registered, a registered domain as
// detect.Split returns it, at now: the current window, or the previous one
// when it had more queries. A domain without traffic in either scores 0.
// Rates are per minute of the whole window, even while it fills: a domain
// seen for ten seconds of a one-minute window is scored on what it sent
// in those ten seconds, not on six times that.
func (t *Tracker) Score(registered string, now time.Time) detect.Result {
	t.mu.Lock()
	var w window
	if d := t.domains[registered]; d != nil && now.Sub(d.last) < 2*t.cfg.Window {
		w = d.current
		if d.previous.queries > w.queries {
			w = d.previous
		}
	}
	unique := len(w.names)
	t.mu.Unlock()

	if w.queries < t.cfg.MinQueries {
		return detect.Result{Reason: strconv.Quote(registered) + " had " + strconv.Itoa(w.queries) +
			" queries in the window, fewer than " + strconv.Itoa(t.cfg.MinQueries) + " to score"}
	}
	// Every window, one still filling included, is measured over its
	// whole length. Extrapolating a partial window would score a burst
	// of a few seconds, such as a page that loads many names of one
	// site, as a full window at that pace. A window never spans more
	// than its length, since Observe starts a new one then.
	minutes := t.cfg.Window.Minutes()
	tr := traffic{
		registered: registered,
		queries:    w.queries,
		perMinute:  float64(unique) / minutes,
		txtShare:   float64(w.txtNul) / float64(w.queries),
		meanBytes:  float64(w.bytes) / float64(w.queries),
		encoded:    float64(w.encodedNames) / float64(max(unique, 1)),
	}
	s := tr.score()
	return detect.Result{Score: s, Malicious: s >= Threshold, Reason: tr.reason(s)}
}

// traffic are the measurements of one domain's window.
type traffic struct {
	registered string
	queries    int
	perMinute  float64 // distinct names per minute
	txtShare   float64 // share of TXT and NULL queries
	meanBytes  float64 // mean query and response bytes per query
	encoded    float64 // share of distinct names that Names flags
}

// score combines the indicators as independent evidence, as names do.
// TXT and NULL alone are weak, since mail checks query TXT, and so are
// large responses, since DNSSEC answers are large.
func (tr *traffic) score() float64 {
	s := [...]float64{
		ramp(tr.perMinute, uniqueStart, uniqueFull),
		0.4 * ramp(tr.txtShare, 0.5, 1),
		0.4 * ramp(tr.meanBytes, bytesStart, bytesFull),
		ramp(tr.encoded, 0.1, 0.5),
	}
	rest := 1.0
	for _, v := range s {
		rest *= 1 - v
	}
	return 1 - rest
}

func (tr *traffic) reason(score float64) string {
	var buf [224]byte
	b := strconv.AppendQuote(buf[:0], tr.registered)
	b = append(b, ": "...)
	b = strconv.AppendInt(b, int64(tr.queries), 10)
	b = append(b, " queries, "...)
	b = strconv.AppendFloat(b, tr.perMinute, 'f', 0, 64)
	b = append(b, " distinct names per minute, "...)
	b = strconv.AppendFloat(b, 100*tr.encoded, 'f', 0, 64)
	b = append(b, "% of them encoded, "...)
	b = strconv.AppendFloat(b, 100*tr.txtShare, 'f', 0, 64)
	b = append(b, "% TXT or NULL, "...)
	b = strconv.AppendFloat(b, tr.meanBytes, 'f', 0, 64)
	b = append(b, " bytes per query; score "...)
	b = strconv.AppendFloat(b, score, 'f', 2, 64)
	b = append(b, " (threshold "...)
	b = strconv.AppendFloat(b, Threshold, 'f', 2, 64)
	b = append(b, ')')
	return string(b)
}
