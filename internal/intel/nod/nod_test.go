package nod

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testConfig(path string) Config {
	return Config{
		Path: path, Expected: 10_000, FalsePositiveRate: 0.001, WarmUp: time.Hour,
		Windows: []time.Duration{24 * time.Hour, 10 * time.Minute, time.Hour}, MaxRecent: 1000,
	}
}

func TestBloomFalsePositiveRate(t *testing.T) {
	const n, p = 20_000, 0.01
	b, err := NewBloom(n, p)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		b.Add(fmt.Sprintf("member%d.example", i))
	}
	for i := range n {
		if !b.Contains(fmt.Sprintf("member%d.example", i)) {
			t.Fatalf("Contains(member%d.example) = false after Add", i)
		}
	}
	fp := 0
	const probes = 100_000
	for i := range probes {
		if b.Contains(fmt.Sprintf("other%d.example", i)) {
			fp++
		}
	}
	if rate := float64(fp) / probes; rate > 1.5*p {
		t.Errorf("false-positive rate %.4f with %d keys, want at most %.4f", rate, n, 1.5*p)
	}
}

func TestNewBloomRejectsBadSizes(t *testing.T) {
	for _, tt := range []struct {
		n int
		p float64
	}{{0, 0.01}, {MaxExpected + 1, 0.01}, {100, 0}, {100, 1}} {
		if _, err := NewBloom(tt.n, tt.p); err == nil {
			t.Errorf("NewBloom(%d, %g) = nil error, want one", tt.n, tt.p)
		}
	}
}

func TestWarmUpReportsNothing(t *testing.T) {
	s, err := New(testConfig(""), t0)
	if err != nil {
		t.Fatal(err)
	}
	first, report := s.Observe("early.example", t0.Add(time.Minute))
	if !first || report {
		t.Errorf("Observe during warm-up = %v, %v, want first seen but not reported", first, report)
	}
	if first, report = s.Observe("early.example", t0.Add(2*time.Hour)); first || report {
		t.Errorf("Observe of a domain seen in warm-up = %v, %v, want false, false", first, report)
	}
	if first, report = s.Observe("late.example", t0.Add(2*time.Hour)); !first || !report {
		t.Errorf("Observe after warm-up = %v, %v, want true, true", first, report)
	}
}

func TestRecentWindows(t *testing.T) {
	s, _ := New(testConfig(""), t0.Add(-26*time.Hour))
	s.Observe("day.example", t0.Add(-5*time.Hour))
	s.Observe("hour.example", t0.Add(-30*time.Minute))
	s.Observe("minutes.example", t0.Add(-5*time.Minute))
	s.Observe("old.example", t0.Add(-25*time.Hour-30*time.Minute)) // in warm-up
	tests := []struct {
		window time.Duration
		want   []string
	}{
		{10 * time.Minute, []string{"minutes.example"}},
		{time.Hour, []string{"hour.example", "minutes.example"}},
		{24 * time.Hour, []string{"day.example", "hour.example", "minutes.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.window.String(), func(t *testing.T) {
			got := domains(s.Recent(tt.window, t0))
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("Recent(%s) = %v, want %v", tt.window, got, tt.want)
			}
		})
	}
	if got := s.Windows(); len(got) != 3 || got[0] != 10*time.Minute || got[2] != 24*time.Hour {
		t.Errorf("Windows() = %v, want 10m, 1h, 24h", got)
	}
}

func domains(entries []Entry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Domain)
	}
	return out
}

func TestRecentAgesOut(t *testing.T) {
	s, _ := New(testConfig(""), t0.Add(-2*time.Hour))
	s.Observe("a.example", t0)
	if got := s.Recent(24*time.Hour, t0.Add(25*time.Hour)); len(got) != 0 {
		t.Errorf("Recent after the longest window = %v, want none", got)
	}
	if st := s.Stats(); st.Recent != 0 {
		t.Errorf("Stats().Recent = %d after ageing out, want 0", st.Recent)
	}
}

func TestMaxRecentDropsOldest(t *testing.T) {
	cfg := testConfig("")
	cfg.MaxRecent = 2
	s, _ := New(cfg, t0.Add(-2*time.Hour))
	for i, d := range []string{"a.example", "b.example", "c.example"} {
		s.Observe(d, t0.Add(time.Duration(i)*time.Second))
	}
	if got := domains(s.Recent(time.Hour, t0.Add(time.Minute))); fmt.Sprint(got) != "[b.example c.example]" {
		t.Errorf("Recent = %v, want [b.example c.example]", got)
	}
	if st := s.Stats(); st.RecentDropped != 1 {
		t.Errorf("RecentDropped = %d, want 1", st.RecentDropped)
	}
}

func TestRecordsAreRPZ(t *testing.T) {
	s, _ := New(testConfig(""), t0.Add(-2*time.Hour))
	s.Observe("new.example", t0)
	rrs := s.Records(10*time.Minute, "nod-10m.rpz.test.", 60, t0.Add(time.Minute))
	want := []string{
		"new.example.nod-10m.rpz.test.\t60\tIN\tCNAME\t.",
		"*.new.example.nod-10m.rpz.test.\t60\tIN\tCNAME\t.",
	}
	if len(rrs) != len(want) {
		t.Fatalf("Records = %v, want %v", rrs, want)
	}
	for i, rr := range rrs {
		if rr.String() != want[i] {
			t.Errorf("record %d = %q, want %q", i, rr.String(), want[i])
		}
		if _, ok := dns.IsDomainName(rr.Header().Name); !ok {
			t.Errorf("record %d owner %q is not a domain name", i, rr.Header().Name)
		}
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nod.state")
	s, err := Open(testConfig(path), t0)
	if err != nil {
		t.Fatal(err)
	}
	s.Observe("warm.example", t0.Add(time.Minute))
	s.Observe("recent.example", t0.Add(2*time.Hour))
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}

	// The restart is within the warm-up of the first start, but loads
	// its filter: the warm-up is not started again.
	restarted, err := Open(testConfig(path), t0.Add(3*time.Hour))
	if err != nil {
		t.Fatalf("Open after Save: %v", err)
	}
	for _, d := range []string{"warm.example", "recent.example"} {
		if first, _ := restarted.Observe(d, t0.Add(3*time.Hour)); first {
			t.Errorf("Observe(%s) after restart = first seen, want seen", d)
		}
	}
	if first, report := restarted.Observe("fresh.example", t0.Add(3*time.Hour)); !first || !report {
		t.Errorf("Observe(fresh.example) after restart = %v, %v, want true, true", first, report)
	}
	got := domains(restarted.Recent(24*time.Hour, t0.Add(3*time.Hour)))
	if fmt.Sprint(got) != "[recent.example fresh.example]" {
		t.Errorf("Recent after restart = %v, want [recent.example fresh.example]", got)
	}
}

func TestOpenDiscardsBadState(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.state")
	s, _ := Open(testConfig(good), t0)
	s.Observe("a.example", t0)
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(good)
	corrupt := append([]byte(nil), data...)
	corrupt[len(corrupt)/2] ^= 0xFF
	resized := testConfig(good)
	resized.Expected = 50_000
	tests := []struct {
		name string
		cfg  Config
		data []byte
	}{
		{"corrupt", testConfig(filepath.Join(dir, "corrupt.state")), corrupt},
		{"truncated", testConfig(filepath.Join(dir, "short.state")), data[:20]},
		{"resized", resized, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.data != nil {
				if err := os.WriteFile(tt.cfg.Path, tt.data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			s, err := Open(tt.cfg, t0.Add(time.Minute))
			if !errors.Is(err, ErrDiscarded) {
				t.Fatalf("Open = %v, want ErrDiscarded", err)
			}
			if s == nil || s.Seen("a.example") || !s.WarmingUp(t0.Add(2*time.Minute)) {
				t.Errorf("Open after a bad file = %v, want an empty set in warm-up", s)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	s, _ := New(Config{Expected: 10, FalsePositiveRate: 0.1, Windows: []time.Duration{time.Hour}}, t0)
	s.Observe("a.example", t0)
	f.Add(s.encode())
	f.Fuzz(func(t *testing.T, data []byte) {
		fresh, _ := New(Config{Expected: 10, FalsePositiveRate: 0.1}, t0)
		fresh.decode(data)
	})
}
