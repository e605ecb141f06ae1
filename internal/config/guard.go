package config

import (
	"time"

	"github.com/miekg/dns"
)

// Guard sets the protection per target domain against random-subdomain
// and NXDOMAIN floods, and the cap on queries in flight per zone. See
// docs/reliability.md.
type Guard struct {
	// Enabled turns the protection and the in-flight cap on. Default:
	// true.
	Enabled bool `yaml:"enabled"`
	// Window is the sliding window over which misses and failures are
	// counted per zone. Unit: duration, 1s to 5m. Default: 10s.
	Window Duration `yaml:"window"`
	// MinMissRate is the cache misses per second ending in one zone,
	// averaged over the window, from which the zone may be protected.
	// Default: 100.
	MinMissRate float64 `yaml:"min_miss_rate"`
	// FailureRatio is the share of those misses, answered by the zone's
	// servers, that must end NXDOMAIN or SERVFAIL (timeouts included),
	// above 0 and at most 1. Default: 0.8.
	FailureRatio float64 `yaml:"failure_ratio"`
	// Hold is how long a zone stays protected after it last crossed both
	// thresholds. Unit: duration. Default: 30s.
	Hold Duration `yaml:"hold"`
	// MaxHold caps the hold of a zone protected again soon after its last
	// protection, which doubles each time. Unit: duration. Default: 5m.
	MaxHold Duration `yaml:"max_hold"`
	// ProbeRate is the queries per second still sent to the servers of a
	// protected zone. Default: 5.
	ProbeRate float64 `yaml:"probe_rate"`
	// SuspectRate caps the resolutions started per second for names not
	// known to exist under zones that miss the cache at min_miss_rate or
	// more; past it they get SERVFAIL at once. Default: 1000.
	SuspectRate int `yaml:"suspect_rate"`
	// MaxInFlightPerZone caps the queries in flight to the servers of one
	// zone; past it, resolutions that need the zone get SERVFAIL at once.
	// A quarter of it is kept for names known to exist. Default: 200.
	MaxInFlightPerZone int `yaml:"max_in_flight_per_zone"`
	// TableSize is the number of zones tracked at once. The guard also
	// remembers 16 names known to exist per zone slot. Default: 4096.
	TableSize int `yaml:"table_size"`
	// ExemptZones lists zones that are never protected, such as DNS
	// blocklists, whose answers are mostly NXDOMAIN by design. Default:
	// none.
	ExemptZones []string `yaml:"exempt_zones"`
}

// Bounds of the guard section.
const (
	minGuardWindow    = time.Second
	maxGuardWindow    = 5 * time.Minute
	maxGuardInFlight  = 1 << 20
	minGuardTableSize = 64
	maxGuardTableSize = 1 << 22
)

func defaultGuard() Guard {
	return Guard{
		Enabled:            true,
		Window:             Duration(10 * time.Second),
		MinMissRate:        100,
		FailureRatio:       0.8,
		Hold:               Duration(30 * time.Second),
		MaxHold:            Duration(5 * time.Minute),
		ProbeRate:          5,
		SuspectRate:        1000,
		MaxInFlightPerZone: 200,
		TableSize:          4096,
	}
}

func (v *validator) guard() error {
	g := &v.cfg.Guard
	if w := g.Window.D(); w < minGuardWindow || w > maxGuardWindow {
		return v.errorf("guard.window", "invalid window %s: use %s to %s", w, minGuardWindow, maxGuardWindow)
	}
	if g.MinMissRate <= 0 {
		return v.errorf("guard.min_miss_rate", "invalid rate %g: use a number of misses per second above 0, such as 100", g.MinMissRate)
	}
	if g.FailureRatio <= 0 || g.FailureRatio > 1 {
		return v.errorf("guard.failure_ratio", "invalid ratio %g: use a share above 0 and at most 1, such as 0.8", g.FailureRatio)
	}
	if g.Hold.D() < time.Second {
		return v.errorf("guard.hold", "invalid hold %s: use at least 1s", g.Hold.D())
	}
	if g.MaxHold.D() < g.Hold.D() {
		return v.errorf("guard.max_hold", "invalid max_hold %s: use at least guard.hold (%s)", g.MaxHold.D(), g.Hold.D())
	}
	if g.SuspectRate < 1 || g.SuspectRate > maxGuardInFlight {
		return v.errorf("guard.suspect_rate", "invalid rate %d: use a number of resolutions per second from 1 to %d, such as 1000", g.SuspectRate, maxGuardInFlight)
	}
	if g.ProbeRate <= 0 {
		return v.errorf("guard.probe_rate", "invalid probe rate %g: use a number of queries per second above 0, such as 5", g.ProbeRate)
	}
	if g.MaxInFlightPerZone < 1 || g.MaxInFlightPerZone > maxGuardInFlight {
		return v.errorf("guard.max_in_flight_per_zone", "invalid cap %d: use 1 to %d queries", g.MaxInFlightPerZone, maxGuardInFlight)
	}
	if g.TableSize < minGuardTableSize || g.TableSize > maxGuardTableSize {
		return v.errorf("guard.table_size", "invalid table size %d: use %d to %d zones", g.TableSize, minGuardTableSize, maxGuardTableSize)
	}
	for i, z := range g.ExemptZones {
		if _, ok := dns.IsDomainName(z); !ok || z == "" {
			return v.errorf("guard.exempt_zones", "invalid zone %q: write a domain name such as dnsbl.example.org", z)
		}
		g.ExemptZones[i] = dns.CanonicalName(z)
	}
	return nil
}
