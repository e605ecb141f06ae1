package indicator

import (
	"context"
	"log/slog"
	"os"
	"time"
)

// CSVWatcher keeps a Set equal to the indicators of a CSV file.
type CSVWatcher struct {
	path     string
	set      *Set
	log      *slog.Logger
	lastMod  time.Time
	lastSize int64
	failing  bool
}

// NewCSVWatcher returns a watcher of the file at path for set.
func NewCSVWatcher(path string, set *Set, log *slog.Logger) *CSVWatcher {
	return &CSVWatcher{path: path, set: set, log: log, lastSize: -1}
}

// Check loads the file into the set when its size or modification time
// changed since the last check. A file that cannot be read keeps the
// last content and is logged once until it can be read again.
func (w *CSVWatcher) Check() {
	info, err := os.Stat(w.path)
	if err != nil {
		if !w.failing {
			w.log.Warn("indicator file unreadable; keeping the last content", "file", w.path, "err", err)
		}
		w.failing = true
		return
	}
	w.failing = false
	if info.ModTime().Equal(w.lastMod) && info.Size() == w.lastSize {
		return
	}
	w.lastMod, w.lastSize = info.ModTime(), info.Size()
	loadCSV(w.path, w.set, w.log)
}

// Run calls Check every interval until ctx ends.
func (w *CSVWatcher) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.Check()
		}
	}
}

func loadCSV(path string, set *Set, log *slog.Logger) {
	f, err := os.Open(path)
	if err != nil {
		log.Warn("indicator file unreadable; keeping the last content", "file", path, "err", err)
		return
	}
	defer f.Close()
	ins, errs := ReadCSV(f, "file:"+path)
	for i, err := range errs {
		if i == 10 {
			break
		}
		log.Warn("invalid indicator skipped", "err", err)
	}
	set.Replace(ins)
	log.Info("indicators loaded", "file", path, "indicators", len(ins), "invalid", len(errs))
}
