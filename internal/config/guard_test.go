package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestGuardDefaults(t *testing.T) {
	for _, yaml := range []string{"", "guard:\n"} {
		c, err := Parse([]byte(yaml), "")
		if err != nil {
			t.Fatalf("Parse(%q): %v", yaml, err)
		}
		g := c.Guard
		if !g.Enabled {
			t.Errorf("Parse(%q): guard off, want on by default", yaml)
		}
		if g.Window.D() != 10*time.Second || g.Hold.D() != 30*time.Second || g.MaxHold.D() != 5*time.Minute {
			t.Errorf("Parse(%q): window %s hold %s max_hold %s, want 10s 30s 5m", yaml, g.Window.D(), g.Hold.D(), g.MaxHold.D())
		}
		if g.MinMissRate != 100 || g.FailureRatio != 0.8 || g.ProbeRate != 5 {
			t.Errorf("Parse(%q): min_miss_rate %g failure_ratio %g probe_rate %g, want 100 0.8 5", yaml, g.MinMissRate, g.FailureRatio, g.ProbeRate)
		}
		if g.MaxInFlightPerZone != 200 || g.TableSize != 4096 {
			t.Errorf("Parse(%q): max_in_flight_per_zone %d table_size %d, want 200 4096", yaml, g.MaxInFlightPerZone, g.TableSize)
		}
	}
}

func TestGuardExemptZonesCanonical(t *testing.T) {
	c, err := Parse([]byte("guard:\n  exempt_zones: [DNSBL.Example.org]\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Guard.ExemptZones; len(got) != 1 || got[0] != "dnsbl.example.org." {
		t.Errorf("exempt_zones = %q, want [dnsbl.example.org.]", got)
	}
}

func TestGuardInvalid(t *testing.T) {
	tests := []struct {
		name, yaml, key, text string
	}{
		{"short window", "guard:\n  window: 100ms\n", "guard.window", "invalid window 100ms"},
		{"zero rate", "guard:\n  min_miss_rate: 0\n", "guard.min_miss_rate", "invalid rate 0"},
		{"ratio above 1", "guard:\n  failure_ratio: 1.5\n", "guard.failure_ratio", "invalid ratio 1.5"},
		{"max_hold below hold", "guard:\n  hold: 1m\n  max_hold: 30s\n", "guard.max_hold", "use at least guard.hold"},
		{"zero probe rate", "guard:\n  probe_rate: 0\n", "guard.probe_rate", "invalid probe rate 0"},
		{"zero in flight", "guard:\n  max_in_flight_per_zone: 0\n", "guard.max_in_flight_per_zone", "invalid cap 0"},
		{"tiny table", "guard:\n  table_size: 8\n", "guard.table_size", "invalid table size 8"},
		{"bad zone", "guard:\n  exempt_zones: [\"a..b\"]\n", "guard.exempt_zones", `invalid zone "a..b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "bulwark.yaml")
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Parse(%q) = %v, want a *config.Error", tt.yaml, err)
			}
			if ce.Key != tt.key {
				t.Errorf("Parse(%q) error key %q, want %q", tt.yaml, ce.Key, tt.key)
			}
			if !strings.Contains(err.Error(), tt.text) {
				t.Errorf("Parse(%q) = %q, want it to contain %q", tt.yaml, err, tt.text)
			}
		})
	}
}
