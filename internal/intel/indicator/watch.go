package indicator

import (
	"context"
	"log/slog"
	"os"
	"time"
)

// WatchCSV loads the CSV file at path into set, then checks every interval
// and loads it again when its size or modification time changed, until
// ctx ends. A file that cannot be read keeps the last content and is
// logged; invalid rows are skipped and counted in the log.
func WatchCSV(ctx context.Context, path string, set *Set, interval time.Duration, log *slog.Logger) {
	var lastMod time.Time
	lastSize := int64(-1)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if info, err := os.Stat(path); err != nil {
			if lastSize != -2 {
				log.Warn("indicator file unreadable; keeping the last content", "file", path, "err", err)
			}
			lastSize = -2
		} else if !info.ModTime().Equal(lastMod) || info.Size() != lastSize {
			lastMod, lastSize = info.ModTime(), info.Size()
			loadCSV(path, set, log)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
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
