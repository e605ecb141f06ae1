package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestIntelDefaults(t *testing.T) {
	for _, yaml := range []string{"", "intel:\n", "intel:\n  enabled: true\n  nod:\n  spike:\n"} {
		c, err := Parse([]byte(yaml), "")
		if err != nil {
			t.Fatalf("Parse(%q): %v", yaml, err)
		}
		in := c.Intel
		if in.Window.D() != time.Minute || in.QueueSize != 8192 || in.MaxDomains != 10_000 {
			t.Errorf("Parse(%q): window %s queue %d max_domains %d, want 1m 8192 10000", yaml, in.Window.D(), in.QueueSize, in.MaxDomains)
		}
		if in.NOD.ExpectedDomains != 1_000_000 || in.NOD.WarmUp.D() != 24*time.Hour {
			t.Errorf("Parse(%q): nod %+v, want 1000000 domains and 24h warm-up", yaml, in.NOD)
		}
		if got := in.NOD.NODWindows(); len(got) != 3 || got[0] != 10*time.Minute || got[2] != 24*time.Hour {
			t.Errorf("Parse(%q): NOD windows %v, want 10m 1h 24h", yaml, got)
		}
		if in.Spike.Factor != 10 || in.Popularity.SteadyDays != 14 {
			t.Errorf("Parse(%q): spike factor %g steady days %d, want 10 and 14", yaml, in.Spike.Factor, in.Popularity.SteadyDays)
		}
	}
}

func TestIntelStateFileResolved(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bulwark.yaml")
	yaml := "intel:\n  nod:\n    state_file: nod.state\n  popularity:\n    state_file: pop.json\n"
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "nod.state"); c.Intel.NOD.StateFile != want {
		t.Errorf("nod.state_file = %q, want %q", c.Intel.NOD.StateFile, want)
	}
	if want := filepath.Join(dir, "pop.json"); c.Intel.Popularity.StateFile != want {
		t.Errorf("popularity.state_file = %q, want %q", c.Intel.Popularity.StateFile, want)
	}
}

func TestIntelInvalid(t *testing.T) {
	tests := []struct {
		name, yaml, key, text string
	}{
		{"short window", "intel:\n  window: 100ms\n", "intel.window", "invalid window 100ms"},
		{"zero queue", "intel:\n  queue_size: 0\n", "intel.queue_size", "invalid value 0"},
		{"zero domains", "intel:\n  max_domains: 0\n", "intel.max_domains", "invalid value 0"},
		{"save too often", "intel:\n  save_interval: 10ms\n", "intel.save_interval", "invalid interval 10ms"},
		{"rate of 1", "intel:\n  nod:\n    false_positive_rate: 1\n", "intel.nod.false_positive_rate", "invalid rate 1"},
		{"no windows", "intel:\n  nod:\n    windows: []\n", "intel.nod.windows", "no window"},
		{"long window", "intel:\n  nod:\n    windows: [200h]\n", "intel.nod.windows", "invalid window 200h0m0s"},
		{"missing directory", "intel:\n  nod:\n    state_file: /nonexistent/dir/nod.state\n", "intel.nod.state_file", "invalid directory /nonexistent/dir"},
		{"steady past days", "intel:\n  popularity:\n    days: 7\n    steady_days: 7\n", "intel.popularity.steady_days", "invalid value 7"},
		{"share above 1", "intel:\n  nxdomain:\n    min_share: 1.5\n", "intel.nxdomain.min_share", "invalid share 1.5"},
		{"one network", "intel:\n  flux:\n    min_networks: 1\n", "intel.flux.min_networks", "invalid value 1"},
		{"factor of 1", "intel:\n  spike:\n    factor: 1\n", "intel.spike.factor", "invalid factor 1"},
		{"negative tunnel queries", "intel:\n  tunnel:\n    min_queries: -1\n", "intel.tunnel.min_queries", "invalid value -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "bulwark.yaml")
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Parse(%q) = %v, want a *config.Error", tt.yaml, err)
			}
			if ce.Key != tt.key || !strings.Contains(err.Error(), tt.text) {
				t.Errorf("Parse(%q) = %v, want key %s and %q", tt.yaml, err, tt.key, tt.text)
			}
		})
	}
}
