package traffic

import (
	"fmt"
	"time"
)

// baselineWeight is the weight of the newest window in a baseline: an
// exponentially weighted moving average with a time constant of about 30
// windows, half an hour with the default window.
const baselineWeight = 1.0 / 30

// baseline is the moving average of one domain's queries per window.
type baseline struct {
	mean    float64
	windows int // windows since the baseline started
	seen    bool
}

// spikeTracker keeps a baseline per registered domain and reports a
// window whose queries are many times the baseline: a sudden rise of a
// domain that few clients asked for before, as when malware activates or a
// phishing campaign starts.
type spikeTracker struct {
	cfg       SpikeConfig
	baselines map[string]*baseline
	dropped   uint64
}

func newSpikeTracker(cfg SpikeConfig) *spikeTracker {
	return &spikeTracker{cfg: cfg, baselines: make(map[string]*baseline)}
}

// observe marks d's queries of the window to be folded into its baseline
// by close, and returns a finding when they are a spike.
func (s *spikeTracker) observe(d *DomainWindow, end time.Time) (Finding, bool) {
	b := s.baselines[d.Domain]
	if b == nil {
		if len(s.baselines) >= s.cfg.MaxDomains {
			s.dropped++
			return Finding{}, false
		}
		b = &baseline{}
		s.baselines[d.Domain] = b
	}
	prior, windows := b.mean, b.windows
	b.fold(float64(d.Queries))
	b.seen = true
	if windows < s.cfg.MinWindows || d.Queries < s.cfg.MinQueries {
		return Finding{}, false
	}
	// A baseline below one query per window counts as one, so that a
	// domain without traffic does not make every first query a spike.
	ratio := float64(d.Queries) / max(prior, 1)
	if ratio < s.cfg.Factor {
		return Finding{}, false
	}
	score := verdictScore + 0.5*ramp(ratio, s.cfg.Factor, 4*s.cfg.Factor)
	return Finding{
		Time: end, Detector: DetectorSpike, Domain: d.Domain, Score: score, Malicious: true,
		Reason: fmt.Sprintf("popularity spike score %.2f: %d queries in the window, %.1f times the baseline of %.1f "+
			"over %d windows (threshold %.1f times)", score, d.Queries, ratio, prior, windows, s.cfg.Factor),
	}, true
}

func (b *baseline) fold(queries float64) {
	if b.windows == 0 {
		b.mean = queries
	} else {
		b.mean += baselineWeight * (queries - b.mean)
	}
	b.windows++
}

// close folds a window without queries into the baseline of every domain
// that observe did not see, and drops the baselines that have decayed
// below one query in a hundred windows, to make room.
func (s *spikeTracker) close() {
	for domain, b := range s.baselines {
		if !b.seen {
			b.fold(0)
		}
		b.seen = false
		if b.mean < 0.01 {
			delete(s.baselines, domain)
		}
	}
}
