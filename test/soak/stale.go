package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Clock of the stale rows. The jump passes cache.max_ttl (24h by default,
// which the lab config keeps), so every cached entry has expired, and the
// stale age keeps them all servable. Lab signatures are valid from one day
// before lab-up to 40 days after (lab/internal/gen/dnssec.go), so the
// moved clock still validates them. The stale answer TTL is below every
// TTL of the lab zones (60 s and more, apart from two special records), so
// that the runner can tell stale data sent without its EDE code.
const (
	staleJump      = 25 * time.Hour
	staleMaxAge    = 72 * time.Hour
	staleAnswerTTL = 17 // seconds
)

// staleConfig derives the config of the stale rows from the lab's: the
// clock follows clockFile and expired entries stay servable for
// staleMaxAge.
func staleConfig(labConfig, clockFile string) (string, error) {
	data, err := os.ReadFile(labConfig)
	if err != nil {
		return "", fmt.Errorf("read lab config: %w", err)
	}
	text := string(data)
	if !strings.Contains(text, "\ncache:\n") {
		return "", fmt.Errorf("lab config %s has no cache section to extend", labConfig)
	}
	for _, key := range []string{"\ntesting:", "  stale_max_age:", "  stale_answer_ttl:", "  max_ttl:"} {
		if strings.Contains(text, key) {
			return "", fmt.Errorf("lab config %s already sets %q, which the stale rows set", labConfig, strings.TrimSpace(key))
		}
	}
	text = strings.Replace(text, "\ncache:\n",
		fmt.Sprintf("\ncache:\n  stale_max_age: %s\n  stale_answer_ttl: %ds\n", staleMaxAge, staleAnswerTTL), 1)
	text = strings.TrimRight(text, "\n") +
		fmt.Sprintf("\ntesting:\n  enabled: true\n  clock_file: %s\n", clockFile)
	return text, nil
}

// writeClock sets the clock file to t, in the libfaketime format that
// testing.clock_file reads. The rename makes the change atomic.
func writeClock(path string, t time.Time) error {
	tmp := path + ".tmp"
	content := "@" + t.UTC().Format("2006-01-02 15:04:05") + "\n"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return fmt.Errorf("write clock file: %w", err)
	}
	return os.Rename(tmp, path)
}

// expireWarmCache starts the resolver with the stale config and the clock
// at the present, warms its cache with one pass over queries.txt, then
// moves the clock staleJump ahead. The caller restores the lab config.
func (s *suite) expireWarmCache(ctx context.Context) error {
	dir := filepath.Join(s.workDir, "stale")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	clockFile := filepath.Join(dir, "clock")
	if err := writeClock(clockFile, time.Now()); err != nil {
		return err
	}
	text, err := staleConfig(s.lab.BulwarkConfig, clockFile)
	if err != nil {
		return err
	}
	config := filepath.Join(dir, "bulwark.yaml")
	if err := os.WriteFile(config, []byte(text), 0o644); err != nil {
		return err
	}
	s.resolver.config = config
	if err := s.resolver.start(); err != nil {
		return err
	}
	warm := s.warmUp(ctx)
	fmt.Printf("soak: warm-up before the clock jump sent %d, %.2f%% correct\n", warm.Sent, 100*warm.CorrectShare())
	return writeClock(clockFile, time.Now().Add(staleJump))
}

// affected classifies the questions of queries.txt for the row's fault,
// reading the lab's zones on first use.
func (s *suite) affected(spec rowSpec) (map[question]bool, error) {
	if spec.down == nil {
		return nil, nil
	}
	if s.labZones == nil {
		z, err := readLabZones(s.lab)
		if err != nil {
			return nil, err
		}
		s.labZones = z
	}
	set, unresolvable, err := affectedSet(s.labZones, spec.down, s.queries)
	if err != nil {
		return nil, err
	}
	fmt.Printf("soak: %s: %d of %d questions affected", spec.name, countAffected(s.queries, set), len(s.queries))
	if unresolvable > 0 {
		fmt.Printf(", %d not resolvable from the zone data even without the fault", unresolvable)
	}
	fmt.Println()
	return set, nil
}

// countAffected counts the lines of qs whose question is in set.
func countAffected(qs []question, set map[question]bool) int {
	n := 0
	for _, q := range qs {
		if set[q] {
			n++
		}
	}
	return n
}
