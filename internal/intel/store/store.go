// Package store keeps the candidate indicators that the traffic detectors
// and the indicator feeds report, one entry per domain, and decides which
// of them block: it moves entries between the states of
// internal/intel/indicator, guards steadily popular and allowlisted
// domains from automatic blocks, keeps the provenance of every entry,
// scores each source by the false positives traced back to it, and
// persists its entries. Applying the blocks is left to the policy, which
// reads Blocking; serving them as an RPZ zone is left to internal/xfr,
// through RPZ.
package store

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"bulwark/internal/intel/indicator"
	"bulwark/internal/intel/traffic"
)

// Errors of the operator's decisions.
var (
	ErrNotFound  = errors.New("no entry for this name")
	ErrMissingBy = errors.New(`missing operator name: set "by" to who decides, such as {"name": "bad.example", "by": "alice"}`)
)

// Config sets up a Store.
type Config struct {
	// Path is the state file; "" keeps the entries in memory only.
	Path string
	// MaxEntries bounds the entries. When it is reached, the observed
	// entries seen longest ago are dropped first, then suspicious ones.
	MaxEntries int
	// MaxHistory bounds the events kept per entry; older ones are
	// dropped and counted.
	MaxHistory int
	// SuspiciousScore and AutoBlockScore are the entry scores from which
	// an entry is suspicious and blocked automatically.
	SuspiciousScore, AutoBlockScore float64
	// MinFindings is the malicious findings of blocking detectors or
	// enforce-mode reports an entry needs before it is blocked
	// automatically.
	MinFindings int
	// BlockingDetectors names the detectors whose findings count towards
	// MinFindings, such as "dga" and "tunnel". Findings of the others
	// raise an entry's score and can make it suspicious, never blocked.
	BlockingDetectors []string
	// FeedBlockTrust is the effective trust, 0 to 100, from which one
	// report of an enforce-mode source blocks automatically.
	FeedBlockTrust int
	// Expiry is how long an entry lives after its last evidence, and
	// DecisionExpiry how long a confirmed or rejected one lives after
	// the decision or its last evidence, whichever is later.
	Expiry, DecisionExpiry time.Duration
	// Allowlist holds domains, lowercase and fully qualified, that are
	// never blocked automatically, nor any name below them.
	Allowlist []string
}

// Guard tells the store which domains must not be blocked automatically.
type Guard interface {
	// SteadilyPopular reports whether domain, a registered domain in
	// lowercase without the final dot, was popular on each recent day.
	SteadilyPopular(domain string) bool
}

// Allowlister reports whether a policy allowlist lets name, fully
// qualified, through.
type Allowlister interface {
	Allowlisted(name string) bool
}

// Store holds the candidate entries. It is safe for concurrent use.
type Store struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	allow map[string]bool

	// guard and policy are set once before use; each may be nil.
	guard  Guard
	policy Allowlister

	mu      sync.Mutex
	entries map[string]*Entry
	sources map[string]*SourceScore
	daily   map[string]map[string]int // UTC day → category → new blocks
	dirty   bool

	// saveMu serialises saves, so that an earlier snapshot never
	// overwrites a later one. handedOff, under saveMu, stops them once
	// another process owns the file (see HandOff).
	saveMu    sync.Mutex
	handedOff bool

	// version changes whenever the blocking entries change.
	version atomic.Uint64
	evicted atomic.Uint64
	dropped atomic.Uint64
}

// New returns a Store with the entries of its state file. A file that
// cannot be read is an error; clock may be nil for time.Now.
func New(cfg Config, log *slog.Logger, clock func() time.Time) (*Store, error) {
	if clock == nil {
		clock = time.Now
	}
	s := &Store{
		cfg: cfg, log: log.With("component", "intel-store"), now: clock, allow: map[string]bool{},
		entries: map[string]*Entry{}, sources: map[string]*SourceScore{}, daily: map[string]map[string]int{},
	}
	for _, name := range cfg.Allowlist {
		s.allow[strings.ToLower(name)] = true
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	s.version.Store(1)
	return s, nil
}

// SetGuard sets the popularity check and the policy allowlists; either
// may be nil. Call it before the store receives evidence.
func (s *Store) SetGuard(g Guard, p Allowlister) { s.guard, s.policy = g, p }

// evidence is one report about a name, from a detector or a feed.
type evidence struct {
	name, category, reason string
	source, kind, ref, url string
	score                  float64
	malicious              bool
	trust                  int
	mode                   indicator.Mode
	at                     time.Time
	validUntil             time.Time
}

// Report records a finding of the traffic analysis: it implements
// traffic.Sink. Findings about a query name (unique responses) apply to
// that name, the others to the registered domain.
func (s *Store) Report(f traffic.Finding) {
	target := f.Domain
	if f.Name != "" {
		target = f.Name
	}
	name, err := indicator.Canonical(target)
	if err != nil {
		return
	}
	s.add(evidence{
		name: name, category: f.Detector, reason: f.Reason, source: "detector:" + f.Detector,
		kind: KindFinding, score: f.Score, malicious: f.Malicious, trust: 100, mode: indicator.Enforce, at: f.Time,
	})
}

// Import records the indicators of a feed source with its trust (0 to
// 100) and mode. Audit-mode indicators are recorded and counted but add
// nothing to an entry's score. Invalid names are skipped and logged.
func (s *Store) Import(source string, trust int, mode indicator.Mode, items []indicator.Indicator) {
	now := s.now()
	skipped := 0
	for _, in := range items {
		name, err := indicator.Canonical(in.Name)
		if err != nil {
			skipped++
			continue
		}
		ev := evidence{
			name: name, category: in.Category, reason: in.Reason, source: source, kind: KindFeed,
			score: feedScore(in), malicious: true, trust: trust, mode: mode, at: now, validUntil: in.ValidUntil,
		}
		if len(in.Provenance) > 0 {
			ev.ref, ev.url = in.Provenance[0].Ref, in.Provenance[0].URL
		}
		if in.Expired(now) {
			skipped++
			continue
		}
		s.add(ev)
	}
	if skipped > 0 {
		s.log.Warn("feed indicators skipped: invalid names or expired", "source", source, "skipped", skipped, "items", len(items))
	}
}

// feedScore is the score of a feed indicator: its own, else its
// confidence, else 1 for a source that gives neither.
func feedScore(in indicator.Indicator) float64 {
	switch {
	case in.Score > 0:
		return math.Min(in.Score, 1)
	case in.Confidence > 0:
		return math.Min(float64(in.Confidence)/100, 1)
	}
	return 1
}

// add records ev in the entry of its name and moves the entry on.
func (s *Store) add(ev evidence) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[ev.name]
	if e == nil {
		if !s.makeRoom() {
			s.dropped.Add(1)
			return
		}
		e = &Entry{Name: ev.name, State: indicator.Observed, FirstSeen: ev.at, Category: ev.category}
		s.entries[ev.name] = e
	}
	src := s.source(ev.source)
	src.Reports++
	if ev.mode == indicator.Audit {
		src.Audited++
	}
	if e.addEvidence(ev, s.effectiveTrust(ev), s.cfg.MaxHistory) && s.blockingEvidence(ev) {
		e.BlockingFindings++
	}
	if ev.kind == KindFinding && ev.malicious && ev.source == floodDetector && !s.blockingEvidence(ev) {
		e.FloodTarget = true
	}
	e.Expires = later(e.Expires, ev.at.Add(s.expiryOf(e)))
	if !ev.validUntil.IsZero() && ev.validUntil.Before(e.Expires) && e.State != indicator.Confirmed {
		e.Expires = later(ev.validUntil, e.LastSeen)
	}
	s.dirty = true
	s.advance(e, ev)
}

// floodDetector is the source of NXDOMAIN flood findings. Their domain is
// usually the target of the flood, so unless nxdomain is one of the
// blocking detectors, such a finding keeps the domain from being blocked
// without review.
const floodDetector = "detector:nxdomain"

// blockingEvidence reports whether ev may count towards blocking its
// entry: an enforce-mode feed report, or a finding of a blocking detector.
func (s *Store) blockingEvidence(ev evidence) bool {
	if ev.kind != KindFinding {
		return ev.mode == indicator.Enforce
	}
	return slices.Contains(s.cfg.BlockingDetectors, strings.TrimPrefix(ev.source, "detector:"))
}

// effectiveTrust is the trust of ev's source lowered by its false-positive
// rate, 0 for audit-mode evidence.
func (s *Store) effectiveTrust(ev evidence) float64 {
	if ev.mode == indicator.Audit || !ev.malicious {
		return 0
	}
	return float64(ev.trust) * (1 - s.source(ev.source).FalsePositiveRate())
}

func (s *Store) expiryOf(e *Entry) time.Duration {
	if e.State == indicator.Confirmed || e.State == indicator.Rejected {
		return s.cfg.DecisionExpiry
	}
	return s.cfg.Expiry
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// advance moves e to the state its evidence calls for. Operator decisions
// and entries awaiting review stay where they are: only an operator moves
// them on.
func (s *Store) advance(e *Entry, ev evidence) {
	switch e.State {
	case indicator.Confirmed, indicator.Rejected, indicator.Review, indicator.AutoBlocked:
		return
	}
	blockByTrust := ev.kind == KindFeed && ev.mode == indicator.Enforce &&
		s.effectiveTrust(ev) >= float64(s.cfg.FeedBlockTrust)
	blockByScore := e.Score >= s.cfg.AutoBlockScore && e.BlockingFindings >= s.cfg.MinFindings
	switch {
	case blockByTrust || blockByScore:
		if veto := s.veto(e.Name); veto != "" {
			s.vetoed(e, veto, ev.at)
			return
		}
		s.transition(e, indicator.AutoBlocked, ev.at, ev.source, blockReason(blockByTrust, e, ev))
	case e.Score >= s.cfg.SuspiciousScore && e.State == indicator.Observed:
		s.transition(e, indicator.Suspicious, ev.at, ev.source,
			fmt.Sprintf("score %.2f reached the suspicious score %.2f", e.Score, s.cfg.SuspiciousScore))
	}
}

func blockReason(byTrust bool, e *Entry, ev evidence) string {
	if byTrust {
		return fmt.Sprintf("reported by enforce-mode source %s with trust %d", ev.source, ev.trust)
	}
	return fmt.Sprintf("score %.2f from %d findings reached the auto-block score", e.Score, e.Findings)
}

// veto returns why name must not be blocked automatically, or "".
func (s *Store) veto(name string) string {
	if e := s.entries[name]; e != nil && e.FloodTarget {
		return "the domain is the target of an NXDOMAIN or random-subdomain flood, and blocking it would finish the attack's work"
	}
	for n := name; n != "" && n != "."; n = parent(n) {
		if s.allow[n] {
			return "on the intel allowlist (" + strings.TrimSuffix(n, ".") + ")"
		}
	}
	domain := registered(name)
	if s.guard != nil && domain != "" && s.guard.SteadilyPopular(domain) {
		return "steadily popular domain " + domain
	}
	if s.policy != nil && s.policy.Allowlisted(name) {
		return "on a policy allowlist"
	}
	return ""
}

// vetoed sends e to review instead of blocking it, and counts the veto
// against every source that raised its score.
func (s *Store) vetoed(e *Entry, veto string, at time.Time) {
	for src := range e.sourcesOfScore() {
		s.source(src).Vetoed++
	}
	s.transition(e, indicator.Review, at, "guard", "not blocked automatically: "+veto)
}

// transition moves e to state and records why.
func (s *Store) transition(e *Entry, state indicator.State, at time.Time, by, reason string) {
	wasBlocking := e.blocking()
	from := e.State
	e.State = state
	e.Changed = at
	e.record(Event{Time: at, Kind: KindTransition, Source: by, From: from, To: state, Reason: reason}, s.cfg.MaxHistory)
	if e.blocking() && !wasBlocking {
		s.countBlock(e, at)
	}
	if e.blocking() != wasBlocking {
		s.version.Add(1)
	}
	s.dirty = true
	s.log.Info("intel entry changed state", "name", e.Name, "from", string(from), "to", string(state), "by", by, "reason", reason)
}

// countBlock counts a new block of e's category on its UTC day.
func (s *Store) countBlock(e *Entry, at time.Time) {
	day := at.UTC().Format(time.DateOnly)
	if s.daily[day] == nil {
		s.daily[day] = map[string]int{}
	}
	s.daily[day][PolicyCategory(e.Category)]++
}

func (s *Store) source(name string) *SourceScore {
	src := s.sources[name]
	if src == nil {
		src = &SourceScore{Name: name}
		s.sources[name] = src
	}
	return src
}
