package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"bulwark/internal/atomicfile"
)

// stateVersion is the format of the state file; a file of another
// format is an error, so that no entry is silently lost.
const stateVersion = 1

// stateFile is the content of the state file.
type stateFile struct {
	Version int                       `json:"version"`
	Entries []*Entry                  `json:"entries"`
	Sources []*SourceScore            `json:"sources"`
	Daily   map[string]map[string]int `json:"blocks_per_day"`
}

// load reads the state file when there is one.
func (s *Store) load() error {
	if s.cfg.Path == "" {
		return nil
	}
	data, err := os.ReadFile(s.cfg.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("intel store: %w", err)
	}
	var st stateFile
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("intel store: read %s: %w; move the file away to start empty", s.cfg.Path, err)
	}
	if st.Version != stateVersion {
		return fmt.Errorf("intel store: %s has format %d, want %d; move the file away to start empty", s.cfg.Path, st.Version, stateVersion)
	}
	for _, e := range st.Entries {
		if e != nil && e.Name != "" {
			s.entries[e.Name] = e
		}
	}
	for _, src := range st.Sources {
		if src != nil {
			s.sources[src.Name] = src
		}
	}
	if st.Daily != nil {
		s.daily = st.Daily
	}
	s.log.Info("intel store loaded", "file", s.cfg.Path, "entries", len(s.entries))
	return nil
}

// Save writes the state file when anything changed since the last save.
// Without a path, or after HandOff, it does nothing. On error the previous
// file stays.
func (s *Store) Save() error {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	if s.handedOff {
		return nil
	}
	return s.save()
}

// HandOff saves the state file and stops every later save, the one at
// stop included. A handover calls it before the new process starts and
// loads the file, which that process then owns: a later save here would
// replace the new process's entries with older ones. Resume undoes it
// when the handover failed.
func (s *Store) HandOff() error {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.handedOff = true
	return s.save()
}

// Resume lets Save write the state file again after HandOff.
func (s *Store) Resume() {
	s.saveMu.Lock()
	s.handedOff = false
	s.saveMu.Unlock()
}

// save is Save; the caller holds saveMu.
func (s *Store) save() error {
	if s.cfg.Path == "" {
		return nil
	}
	s.mu.Lock()
	if !s.dirty {
		s.mu.Unlock()
		return nil
	}
	st := stateFile{Version: stateVersion, Daily: s.daily}
	for _, e := range s.entries {
		st.Entries = append(st.Entries, e)
	}
	for _, src := range s.sources {
		st.Sources = append(st.Sources, src)
	}
	data, err := json.Marshal(st)
	if err == nil {
		s.dirty = false
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("intel store: %w", err)
	}
	if err := atomicfile.WriteFile(s.cfg.Path, data, 0o640); err != nil {
		s.mu.Lock()
		s.dirty = true
		s.mu.Unlock()
		return fmt.Errorf("intel store: write %s: %w", s.cfg.Path, err)
	}
	return nil
}
