package guard

import (
	"hash/maphash"
	"time"
)

// ways is the number of entries that one zone may occupy in the table:
// the table is set-associative, and a new zone evicts the quietest
// unprotected entry of its set.
const ways = 8

// table holds the entries of the zones seen recently, in a fixed number
// of slots. It is not safe for concurrent use: the Guard locks it.
type table struct {
	seed    maphash.Seed
	entries []entry
}

// newTable returns a table of at least size entries, rounded up to a
// multiple of ways.
func newTable(size int) *table {
	sets := max(1, (size+ways-1)/ways)
	return &table{seed: maphash.MakeSeed(), entries: make([]entry, sets*ways)}
}

// set returns the slots that zone may occupy.
func (t *table) set(zone string) []entry {
	sets := uint64(len(t.entries) / ways)
	i := int(maphash.String(t.seed, zone)%sets) * ways
	return t.entries[i : i+ways]
}

// find returns the entry of zone, or nil when the table has none.
func (t *table) find(zone string) *entry {
	set := t.set(zone)
	for i := range set {
		if set[i].zone == zone {
			return &set[i]
		}
	}
	return nil
}

// insert returns the entry of zone, taking a free slot of its set or the
// one of the unprotected entry with the fewest misses in the window. It
// returns nil when every slot of the set holds a protected zone, so that
// a flood of new zones cannot push a protected one out.
func (t *table) insert(zone string, now time.Time, window time.Duration) *entry {
	if e := t.find(zone); e != nil {
		return e
	}
	set := t.set(zone)
	var victim *entry
	for i := range set {
		e := &set[i]
		if e.zone == "" {
			victim = e
			break
		}
		if e.protected() {
			continue
		}
		if victim == nil || e.estimate(now, window).misses < victim.estimate(now, window).misses {
			victim = e
		}
	}
	if victim == nil {
		return nil
	}
	*victim = entry{zone: zone, start: now}
	return victim
}

// counts are the events of one bucket of the sliding window.
type counts struct {
	// misses are the cache misses that ended in the zone, and
	// synthesised those of them that its cached NSEC records answered.
	// outcomes are those that reached its servers, and failures those of
	// them that ended NXDOMAIN or SERVFAIL.
	misses, synthesised, outcomes, failures float64
}

// entry is the state of one zone: two buckets of the sliding window and
// its protection.
type entry struct {
	zone string
	// start is when the current bucket began; prev is the bucket before.
	start     time.Time
	cur, prev counts

	// until is when the protection ends, zero when the zone is not
	// protected. hold is the length of the current or last protection,
	// and ended when the last one ended.
	until time.Time
	hold  time.Duration
	ended time.Time
	// tokens is the probe budget left, refilled at the probe rate since
	// refilled.
	tokens   float64
	refilled time.Time
}

func (e *entry) protected() bool { return !e.until.IsZero() }

// roll moves the window forward to now.
func (e *entry) roll(now time.Time, window time.Duration) {
	switch elapsed := now.Sub(e.start); {
	case elapsed < window:
	case elapsed < 2*window:
		e.prev, e.cur = e.cur, counts{}
		e.start = e.start.Add(window)
	default:
		e.prev, e.cur = counts{}, counts{}
		e.start = now
	}
}

// estimate returns the counts of the window that ends at now: the current
// bucket plus the share of the previous one that the window still covers.
// Without a call to roll first, the estimate covers the buckets as they
// stand.
func (e *entry) estimate(now time.Time, window time.Duration) counts {
	elapsed := now.Sub(e.start)
	if elapsed >= 2*window {
		return counts{}
	}
	if elapsed >= window {
		return e.cur.scaled(1 - float64(elapsed-window)/float64(window))
	}
	c := e.prev.scaled(1 - float64(elapsed)/float64(window))
	return counts{
		misses:      e.cur.misses + c.misses,
		synthesised: e.cur.synthesised + c.synthesised,
		outcomes:    e.cur.outcomes + c.outcomes,
		failures:    e.cur.failures + c.failures,
	}
}

func (c counts) scaled(f float64) counts {
	return counts{
		misses: c.misses * f, synthesised: c.synthesised * f,
		outcomes: c.outcomes * f, failures: c.failures * f,
	}
}

// takeProbe spends one query of the probe budget, refilled at rate per
// second up to one second's worth, and reports whether there was one.
func (e *entry) takeProbe(now time.Time, rate float64) bool {
	burst := max(1, rate)
	e.tokens = min(burst, e.tokens+now.Sub(e.refilled).Seconds()*rate)
	e.refilled = now
	if e.tokens < 1 {
		return false
	}
	e.tokens--
	return true
}
