package store

import (
	"iter"
	"maps"
	"strings"
	"time"

	"bulwark/internal/intel/detect"
	"bulwark/internal/intel/indicator"
)

// Kinds of events in an entry's history.
const (
	// KindFinding is a finding of a traffic detector.
	KindFinding = "finding"
	// KindFeed is an indicator of a feed source.
	KindFeed = "feed"
	// KindTransition is a change of state.
	KindTransition = "transition"
	// KindReport is a "report a mistake" submission from the block page.
	KindReport = "report"
)

// Event is one item of an entry's history: evidence, a change of state or
// a report. It holds no client data.
type Event struct {
	Time time.Time `json:"time"`
	Kind string    `json:"kind"`
	// Source is the detector ("detector:dga"), feed, operator or
	// component behind the event.
	Source string `json:"source"`
	// Ref and URL are the feed's own id of the indicator and its link.
	Ref string `json:"ref,omitempty"`
	URL string `json:"url,omitempty"`
	// Score is the evidence's own score, Malicious its verdict, and
	// Weight what it added to the entry's score after trust.
	Score     float64         `json:"score,omitempty"`
	Malicious bool            `json:"malicious,omitempty"`
	Weight    float64         `json:"weight,omitempty"`
	Mode      indicator.Mode  `json:"mode,omitempty"`
	From      indicator.State `json:"from,omitempty"`
	To        indicator.State `json:"to,omitempty"`
	Reason    string          `json:"reason,omitempty"`
}

// Entry is the candidate record of one domain.
type Entry struct {
	// Name is fully qualified and in lower case.
	Name  string          `json:"name"`
	State indicator.State `json:"state"`
	// Score combines the best weight of each source as independent
	// evidence: 1 − Π(1 − wᵢ).
	Score float64 `json:"score"`
	// Category is that of the evidence with the highest weight, such as
	// "dga" or "phishing".
	Category string `json:"category"`
	// Reason is the reason of that evidence.
	Reason string `json:"reason"`
	// Findings counts the malicious evidence that added weight.
	Findings int `json:"findings"`
	// BlockingFindings counts the findings of blocking detectors and the
	// enforce-mode feed reports that carried weight.
	BlockingFindings int `json:"blocking_findings,omitempty"`
	// FloodTarget is set once an NXDOMAIN flood finding named the
	// domain while nxdomain is not a blocking detector: it is then never
	// blocked without review.
	FloodTarget bool `json:"flood_target,omitempty"`
	// Weights holds the best weight of each source.
	Weights map[string]float64 `json:"weights"`
	// FirstSeen and LastSeen bound the evidence; Changed is when the
	// state last changed; Expires is when the entry is removed unless
	// new evidence renews it.
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Changed   time.Time `json:"changed,omitzero"`
	Expires   time.Time `json:"expires"`
	// DecidedBy names the operator who confirmed or rejected the entry.
	DecidedBy string `json:"decided_by,omitempty"`
	// History lists the events, oldest first, at most MaxHistory;
	// HistoryDropped counts those dropped to make room.
	History        []Event `json:"history"`
	HistoryDropped int     `json:"history_dropped,omitempty"`
}

// blocking reports whether the entry blocks: auto-blocked or confirmed.
func (e *Entry) blocking() bool {
	return e.State == indicator.AutoBlocked || e.State == indicator.Confirmed
}

// addEvidence records ev with the weight its trust gives it, and reports
// whether that weight is above zero.
func (e *Entry) addEvidence(ev evidence, trust float64, maxHistory int) bool {
	weight := 0.0
	if ev.malicious {
		weight = ev.score * trust / 100
	}
	if weight > 0 {
		e.Findings++
	}
	if e.Weights == nil {
		e.Weights = map[string]float64{}
	}
	best := 0.0
	for _, w := range e.Weights {
		best = max(best, w)
	}
	if weight > e.Weights[ev.source] {
		e.Weights[ev.source] = weight
	}
	if weight >= best && weight > 0 || e.Reason == "" {
		e.Category, e.Reason = ev.category, ev.reason
	}
	e.Score = combine(e.Weights)
	e.LastSeen = later(e.LastSeen, ev.at)
	e.record(Event{
		Time: ev.at, Kind: ev.kind, Source: ev.source, Ref: ev.ref, URL: ev.url,
		Score: ev.score, Malicious: ev.malicious, Weight: weight, Mode: ev.mode, Reason: ev.reason,
	}, maxHistory)
	return weight > 0
}

// combine returns 1 − Π(1 − w) over the weights.
func combine(weights map[string]float64) float64 {
	miss := 1.0
	for _, w := range weights {
		miss *= 1 - min(max(w, 0), 1)
	}
	return 1 - miss
}

// record appends ev to the history, dropping the oldest event past max.
// The first event stays, since it says where the entry came from.
func (e *Entry) record(ev Event, maxHistory int) {
	e.History = append(e.History, ev)
	if maxHistory >= 2 && len(e.History) > maxHistory {
		e.History = append(e.History[:1], e.History[2:]...)
		e.HistoryDropped++
	}
}

// sourcesOfScore yields the sources whose evidence added weight.
func (e *Entry) sourcesOfScore() iter.Seq[string] {
	return func(yield func(string) bool) {
		for src, w := range e.Weights {
			if w > 0 && !yield(src) {
				return
			}
		}
	}
}

// clone returns a deep copy of e for callers outside the lock.
func (e *Entry) clone() Entry {
	c := *e
	c.Weights = maps.Clone(e.Weights)
	c.History = append([]Event(nil), e.History...)
	return c
}

// parent returns the name one label up, "." for a top-level domain.
func parent(name string) string {
	_, rest, ok := strings.Cut(name, ".")
	if !ok || rest == "" {
		return "."
	}
	return rest
}

// registered returns the registered domain of name, lowercase without
// the final dot, or "" for a public suffix.
func registered(name string) string { return detect.Split(name).Registered }
