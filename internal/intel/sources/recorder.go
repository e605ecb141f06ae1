package sources

import (
	"log/slog"
	"sync"
	"time"

	"bulwark/internal/intel/indicator"
)

// Batch is the last import of one source.
type Batch struct {
	Source string         `json:"source"`
	Trust  int            `json:"trust"`
	Mode   indicator.Mode `json:"mode"`
	// Time is when the batch was imported.
	Time       time.Time             `json:"time"`
	Indicators []indicator.Indicator `json:"indicators"`
}

// Recorder is a Sink that logs and counts each import and keeps the last
// batch of each source, for the admin API. It applies nothing, and is the
// sink only until a store that decides what the indicators block
// replaces it.
type Recorder struct {
	log *slog.Logger

	mu      sync.Mutex
	batches map[string]Batch
	imports uint64
}

// NewRecorder returns an empty Recorder.
func NewRecorder(log *slog.Logger) *Recorder {
	return &Recorder{log: log.With("component", "intel_sources"), batches: map[string]Batch{}}
}

// Import implements Sink. It keeps items, which the puller no longer
// touches.
func (r *Recorder) Import(source string, trust int, mode indicator.Mode, items []indicator.Indicator) {
	r.mu.Lock()
	r.batches[source] = Batch{Source: source, Trust: trust, Mode: mode, Time: time.Now(), Indicators: items}
	r.imports++
	r.mu.Unlock()
	r.log.Info("indicators received", "source", source, "trust", trust, "mode", string(mode), "items", len(items))
}

// Last returns the last batch of source, and false before its first.
func (r *Recorder) Last(source string) (Batch, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.batches[source]
	return b, ok
}

// Imports counts the batches received since the start.
func (r *Recorder) Imports() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.imports
}
