package store

import (
	"slices"
	"sort"
	"strings"

	"bulwark/internal/intel/indicator"
)

// SourceScore counts the evidence of one source and the false positives
// traced back to it.
type SourceScore struct {
	Name string `json:"name"`
	// Reports counts its evidence and Audited the part of it in audit
	// mode.
	Reports int `json:"reports"`
	Audited int `json:"audited"`
	// Rejected counts entries it raised that an operator rejected,
	// Vetoed those the popularity guard or an allowlist kept from a
	// block, and Reported blocks it raised that users reported.
	Rejected int `json:"rejected"`
	Vetoed   int `json:"vetoed"`
	Reported int `json:"reported"`
}

// minJudged is the number of reports below which a source's false
// positives are divided by minJudged instead: one rejection among a
// source's first reports lowers its trust by a tenth, not to zero.
const minJudged = 10

// FalsePositiveRate is the share of the source's reports traced to a
// false positive (rejections and vetoes), in [0, 1], counting at least
// minJudged reports.
func (c SourceScore) FalsePositiveRate() float64 {
	fp := c.Rejected + c.Vetoed
	return min(1, float64(fp)/float64(max(c.Reports, minJudged)))
}

// Block is one blocking entry as the policy and the RPZ zone apply it.
type Block struct {
	// Name is fully qualified and in lower case; the block covers the
	// names below it too.
	Name string
	// Category is the entry's category, such as "dga".
	Category string
	// Reason says why the name is blocked, for the EDE text and the
	// block page.
	Reason string
}

// Version returns a counter that changes whenever Blocking would return
// other entries. It is cheap enough to poll every second.
func (s *Store) Version() uint64 { return s.version.Load() }

// Blocking returns the auto-blocked and confirmed entries, sorted by name.
func (s *Store) Blocking() []Block {
	s.mu.Lock()
	var out []Block
	for _, e := range s.entries {
		if e.blocking() {
			out = append(out, Block{Name: e.Name, Category: e.Category, Reason: blockText(e)})
		}
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// blockText is the reason a block shows: the state, the category and the
// reason of the strongest evidence.
func blockText(e *Entry) string {
	how := "blocked automatically"
	if e.State == indicator.Confirmed {
		how = "blocked, confirmed by " + e.DecidedBy
	}
	return how + " as " + e.Category + ": " + e.Reason
}

// Entries returns the entries in state, or every entry when state is
// empty, most recently seen first.
func (s *Store) Entries(state indicator.State) []Entry {
	s.mu.Lock()
	out := []Entry{}
	for _, e := range s.entries {
		if state == "" || e.State == state {
			c := e.clone()
			c.History = nil
			out = append(out, c)
		}
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].LastSeen.Equal(out[j].LastSeen) {
			return out[i].LastSeen.After(out[j].LastSeen)
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Entry returns the entry of name, or of its nearest ancestor, with its
// history.
func (s *Store) Entry(name string) (Entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.lookup(strings.ToLower(name))
	if e == nil {
		return Entry{}, false
	}
	return e.clone(), true
}

// Sources returns the score of every source, by name.
func (s *Store) Sources() []SourceScore {
	s.mu.Lock()
	out := make([]SourceScore, 0, len(s.sources))
	for _, src := range s.sources {
		out = append(out, *src)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// CategoryCount is the number of entries or blocks of one category.
type CategoryCount struct {
	Category string `json:"category"`
	Count    int    `json:"count"`
}

// DayCount is the number of new blocks of one UTC day by category.
type DayCount struct {
	Day        string          `json:"day"`
	Categories []CategoryCount `json:"categories"`
}

// Stats are the public statistics of the store: counts of names and
// categories only, nothing about clients.
type Stats struct {
	// Blocking counts the blocking entries by policy category, most
	// first.
	Blocking []CategoryCount `json:"blocking"`
	// States counts the entries in each state.
	States map[indicator.State]int `json:"states"`
	// BlocksPerDay counts the entries that started to block on each of
	// the last 30 UTC days, newest first.
	BlocksPerDay []DayCount `json:"blocks_per_day"`
}

// Stats returns the public statistics.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{States: map[indicator.State]int{}, Blocking: []CategoryCount{}, BlocksPerDay: []DayCount{}}
	blocking := map[string]int{}
	for _, e := range s.entries {
		st.States[e.State]++
		if e.blocking() {
			blocking[PolicyCategory(e.Category)]++
		}
	}
	st.Blocking = sortedCounts(blocking)
	for day, cats := range s.daily {
		st.BlocksPerDay = append(st.BlocksPerDay, DayCount{Day: day, Categories: sortedCounts(cats)})
	}
	slices.SortFunc(st.BlocksPerDay, func(a, b DayCount) int { return strings.Compare(b.Day, a.Day) })
	return st
}

func sortedCounts(m map[string]int) []CategoryCount {
	out := []CategoryCount{}
	for c, n := range m {
		out = append(out, CategoryCount{Category: c, Count: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Category < out[j].Category
	})
	return out
}

// Counters are the store's totals for metrics.
type Counters struct {
	// States counts the entries in each state. Evicted counts the entries
	// dropped to make room, and Dropped the evidence about new names lost
	// because no entry could be dropped.
	States           map[indicator.State]int
	Evicted, Dropped uint64
}

// Counters returns the totals. It walks every entry, so call it at the
// pace of metric scrapes, not per query.
func (s *Store) Counters() Counters {
	states := map[indicator.State]int{}
	s.mu.Lock()
	for _, e := range s.entries {
		states[e.State]++
	}
	s.mu.Unlock()
	return Counters{States: states, Evicted: s.evicted.Load(), Dropped: s.dropped.Load()}
}
