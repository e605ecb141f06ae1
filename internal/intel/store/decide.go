package store

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"bulwark/internal/intel/indicator"
)

// Confirm makes the entry of name block until DecisionExpiry passes
// without new evidence, whatever its score and the popularity guard: the
// operator by decided so. It returns the entry after the change, which
// is saved at once so that a restart cannot lose it.
func (s *Store) Confirm(name, by, note string) (Entry, error) {
	e, err := s.decide(name, by, note, indicator.Confirmed)
	if err == nil {
		s.saveLogged()
	}
	return e, err
}

// Reject stops the entry of name from blocking until DecisionExpiry
// passes without new evidence, and counts a false positive against every
// source that raised its score. The decision is saved at once.
func (s *Store) Reject(name, by, note string) (Entry, error) {
	e, err := s.decide(name, by, note, indicator.Rejected)
	if err == nil {
		s.saveLogged()
	}
	return e, err
}

func (s *Store) decide(raw, by, note string, state indicator.State) (Entry, error) {
	by = strings.TrimSpace(by)
	if by == "" {
		return Entry{}, ErrMissingBy
	}
	name, err := indicator.Canonical(raw)
	if err != nil {
		return Entry{}, err
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[name]
	if e == nil {
		return Entry{}, fmt.Errorf("%w: %s; list the entries with GET /v1/intel/entries", ErrNotFound, name)
	}
	if state == indicator.Rejected && e.State != indicator.Rejected {
		for src := range e.sourcesOfScore() {
			s.source(src).Rejected++
		}
	}
	reason := string(state) + " by " + by
	if note != "" {
		reason += ": " + note
	}
	e.DecidedBy = by
	s.transition(e, state, now, "operator:"+by, reason)
	e.Expires = later(e.Expires, now.Add(s.cfg.DecisionExpiry))
	return e.clone(), nil
}

// ReportMistake records a "report a mistake" submission for name, which
// may be below an entry's domain. A report on a blocking entry moves it
// back to review, counts a report against its sources and is saved at
// once. It returns the name of the entry and whether it was moved.
func (s *Store) ReportMistake(name, comment string) (entry string, moved bool) {
	entry, moved = s.reportMistake(name, comment)
	if moved {
		s.saveLogged()
	}
	return entry, moved
}

func (s *Store) reportMistake(name, comment string) (entry string, moved bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.lookup(strings.ToLower(name))
	if e == nil {
		return "", false
	}
	e.record(Event{Time: now, Kind: KindReport, Source: "block_page", Reason: comment}, s.cfg.MaxHistory)
	s.dirty = true
	if !e.blocking() {
		return e.Name, false
	}
	for src := range e.sourcesOfScore() {
		s.source(src).Reported++
	}
	s.transition(e, indicator.Review, now, "block_page", "a user reported the block as a mistake")
	return e.Name, true
}

// lookup returns the entry of name or of its nearest ancestor, as a
// block of a domain covers the names below it. The caller holds mu.
func (s *Store) lookup(name string) *Entry {
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	for n := name; n != "."; n = parent(n) {
		if e := s.entries[n]; e != nil {
			return e
		}
	}
	return nil
}

// Expire removes the entries whose expiry has passed at now and returns
// how many it removed.
func (s *Store) Expire() int {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	removed := 0
	for name, e := range s.entries {
		if e.Expires.IsZero() || now.Before(e.Expires) {
			continue
		}
		if e.blocking() {
			s.version.Add(1)
		}
		s.log.Info("intel entry expired", "name", name, "state", string(e.State), "last_seen", e.LastSeen)
		delete(s.entries, name)
		removed++
	}
	if removed > 0 {
		s.dirty = true
	}
	s.trimDaily(now)
	return removed
}

// statsDays is how many UTC days of block counts are kept.
const statsDays = 30

func (s *Store) trimDaily(now time.Time) {
	oldest := now.UTC().AddDate(0, 0, -statsDays).Format(time.DateOnly)
	for day := range s.daily {
		if day < oldest {
			delete(s.daily, day)
		}
	}
}

// makeRoom makes room for one more entry when MaxEntries is reached, by
// dropping about 1% of MaxEntries of the observed entries seen longest
// ago, then of the suspicious ones. It reports false when neither state
// has any entry left. The caller holds mu.
func (s *Store) makeRoom() bool {
	if len(s.entries) < s.cfg.MaxEntries {
		return true
	}
	batch := max(1, s.cfg.MaxEntries/100)
	for _, state := range []indicator.State{indicator.Observed, indicator.Suspicious} {
		var victims []*Entry
		for _, e := range s.entries {
			if e.State == state {
				victims = append(victims, e)
			}
		}
		if len(victims) == 0 {
			continue
		}
		sort.Slice(victims, func(i, j int) bool { return victims[i].LastSeen.Before(victims[j].LastSeen) })
		for _, e := range victims[:min(batch, len(victims))] {
			delete(s.entries, e.Name)
			s.evicted.Add(1)
		}
		s.dirty = true
		return true
	}
	return false
}
