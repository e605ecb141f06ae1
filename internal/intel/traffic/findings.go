package traffic

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Detector names, as findings and metrics carry them.
const (
	DetectorNOD      = "nod"
	DetectorDGA      = "dga"
	DetectorTunnel   = "tunnel"
	DetectorNXDomain = "nxdomain"
	DetectorUnique   = "unique"
	DetectorFlux     = "flux"
	DetectorSpike    = "spike"
)

// Detectors lists the detector names, in the order of Stats.Findings.
var Detectors = []string{
	DetectorNOD, DetectorDGA, DetectorTunnel, DetectorNXDomain, DetectorUnique, DetectorFlux, DetectorSpike,
}

func detectorIndex(name string) int {
	for i, d := range Detectors {
		if d == name {
			return i
		}
	}
	return -1
}

// Finding is the result of one detector about one registered domain.
type Finding struct {
	// Time is when the finding was made: the event's time for detectors
	// of single events, the end of the window for those of a window.
	Time     time.Time `json:"time"`
	Detector string    `json:"detector"`
	// Domain is the registered domain, lowercase without the final dot.
	Domain string `json:"domain"`
	// Name is the query name the finding is about, when it is about one:
	// for unique responses. Empty otherwise.
	Name string `json:"name,omitempty"`
	// Score is in [0, 1], higher meaning more likely malicious, and
	// Malicious is set when it reaches the detector's threshold. A
	// newly observed domain has score 0.5 and is not malicious by
	// itself.
	Score     float64 `json:"score"`
	Malicious bool    `json:"malicious"`
	// Reason is one sentence with the measured values behind the score.
	Reason string `json:"reason"`
}

// Sink receives every finding, on the engine's goroutine. Report must
// return quickly: the engine's queue fills while it runs. The candidate
// store implements it.
type Sink interface {
	Report(f Finding)
}

// SinkFunc is a function that is a Sink.
type SinkFunc func(f Finding)

// Report calls f.
func (f SinkFunc) Report(fi Finding) { f(fi) }

// findingLog keeps the recent findings, counts them per detector and logs
// them at debug level, at most logPerSecond a second.
type findingLog struct {
	mu     sync.Mutex
	recent []Finding // ring of cap max
	next   int
	counts [7]atomic.Uint64

	log        *slog.Logger
	logSecond  int64
	logged     int
	suppressed atomic.Uint64
}

// logPerSecond caps the findings logged per second.
const logPerSecond = 20

func newFindingLog(max int, log *slog.Logger) *findingLog {
	return &findingLog{recent: make([]Finding, 0, max), log: log}
}

func (l *findingLog) add(f Finding) {
	if i := detectorIndex(f.Detector); i >= 0 {
		l.counts[i].Add(1)
	}
	l.mu.Lock()
	if len(l.recent) < cap(l.recent) {
		l.recent = append(l.recent, f)
	} else if cap(l.recent) > 0 {
		l.recent[l.next] = f
		l.next = (l.next + 1) % cap(l.recent)
	}
	l.mu.Unlock()
	l.debug(f)
}

func (l *findingLog) debug(f Finding) {
	if !l.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	if sec := f.Time.Unix(); sec != l.logSecond {
		l.logSecond, l.logged = sec, 0
	}
	if l.logged >= logPerSecond {
		l.suppressed.Add(1)
		return
	}
	l.logged++
	l.log.Debug("intel finding", "detector", f.Detector, "domain", f.Domain,
		"score", f.Score, "malicious", f.Malicious, "reason", f.Reason)
}

// list returns the recent findings, newest first, in a new slice.
func (l *findingLog) list() []Finding {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Finding, 0, len(l.recent))
	for i := range len(l.recent) {
		// The newest is just before next once the ring has wrapped.
		j := (l.next - 1 - i + 2*len(l.recent)) % len(l.recent)
		if len(l.recent) < cap(l.recent) {
			j = len(l.recent) - 1 - i
		}
		out = append(out, l.recent[j])
	}
	return out
}
