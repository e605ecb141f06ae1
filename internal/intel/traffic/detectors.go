package traffic

import (
	"fmt"
	"time"
)

// verdictScore is the score at and above which the traffic detectors of
// this package call a domain malicious. Each maps "every threshold
// reached" to at least 0.5, and how far past them to the rest of [0.5, 1].
const verdictScore = 0.5

// ramp maps v to 0 at start, 1 at full and linearly between.
func ramp(v, start, full float64) float64 {
	switch {
	case v <= start:
		return 0
	case v >= full:
		return 1
	}
	return (v - start) / (full - start)
}

// progress returns the smallest of the values' shares of their
// thresholds, capped at 1: how close a domain is to every threshold.
func progress(pairs ...float64) float64 {
	p := 1.0
	for i := 0; i+1 < len(pairs); i += 2 {
		p = min(p, pairs[i]/pairs[i+1])
	}
	return max(0, p)
}

// scoreNXDomain scores a domain for an NXDOMAIN flood or a random-subdomain
// attack: many distinct names below it that do not exist, as a botnet
// sends to exhaust the domain's servers or a resolver's cache. It returns
// false when the domain had too few queries to score.
func scoreNXDomain(cfg NXDomainConfig, d *DomainWindow, end time.Time) (Finding, bool) {
	if d.Queries < cfg.MinQueries {
		return Finding{}, false
	}
	nxShare, distinct := d.NXShare(), d.Subdomains()
	f := Finding{Time: end, Detector: DetectorNXDomain, Domain: d.Domain}
	if nxShare < cfg.MinShare || distinct < cfg.MinDistinct {
		f.Score = verdictScore * 0.99 * progress(nxShare, cfg.MinShare, float64(distinct), float64(cfg.MinDistinct))
	} else {
		f.Score = verdictScore + 0.25*ramp(nxShare, cfg.MinShare, 1) +
			0.25*ramp(float64(distinct), float64(cfg.MinDistinct), 10*float64(cfg.MinDistinct))
		f.Malicious = true
	}
	kind := "NXDOMAIN flood"
	if share(d.RandomNX, d.NXDomain) >= 0.5 {
		kind = "random-subdomain attack"
	}
	f.Reason = fmt.Sprintf("%s score %.2f: %d queries in the window, %.0f%% NXDOMAIN (threshold %.0f%%), "+
		"about %d distinct names (threshold %d), %d of %d NXDOMAIN names with a random first label",
		kind, f.Score, d.Queries, 100*nxShare, 100*cfg.MinShare, distinct, cfg.MinDistinct, d.RandomNX, d.NXDomain)
	return f, true
}

// scoreFlux scores a domain for fast flux: answers with low TTLs whose
// addresses spread over many networks, as botnets rotate compromised
// hosts behind one name. It returns false for a domain without
// answer addresses.
func scoreFlux(cfg FluxConfig, d *DomainWindow, end time.Time) (Finding, bool) {
	if len(d.addrs) == 0 {
		return Finding{}, false
	}
	networks, ttl := d.Networks(), time.Duration(d.minTTL)*time.Second
	f := Finding{Time: end, Detector: DetectorFlux, Domain: d.Domain}
	if ttl > cfg.MaxTTL || networks < cfg.MinNetworks {
		lowTTL := 0.0
		if ttl <= cfg.MaxTTL {
			lowTTL = 1
		}
		f.Score = verdictScore * 0.99 * min(lowTTL, progress(float64(networks), float64(cfg.MinNetworks)))
	} else {
		f.Score = verdictScore + 0.5*ramp(float64(networks), float64(cfg.MinNetworks), 4*float64(cfg.MinNetworks))
		f.Malicious = true
	}
	f.Reason = fmt.Sprintf("fast-flux score %.2f: %d distinct addresses in %d networks (threshold %d), "+
		"lowest TTL %s (threshold %s)", f.Score, d.Addrs(), networks, cfg.MinNetworks, ttl, cfg.MaxTTL)
	return f, true
}
