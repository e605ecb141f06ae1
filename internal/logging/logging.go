// Package logging builds the structured log of Bulwark and keeps client
// addresses out of it.
//
// New returns a log/slog logger in text or JSON that writes the same
// message at the same level at most a set number of times per interval, and
// then one line with the count of the repeats left out. RedactAddresses and
// HTTPErrorLog remove addresses from error texts that other packages write,
// such as those of net/http and crypto/tls, which name the client. Which
// attributes a log line carries is left to its caller: no attribute is
// filtered here.
package logging

import (
	"io"
	"log/slog"
	"time"
)

// Config sets up a logger.
type Config struct {
	// Level is debug, info, warn or error; anything else means info.
	Level string
	// Format is json for one JSON object per line, else text.
	Format string
	// RepeatLimit is how many times the same message at the same level
	// is written per RepeatInterval; 0 writes every one.
	RepeatLimit    int
	RepeatInterval time.Duration
}

// New returns a logger that writes to w as cfg sets.
func New(cfg Config, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Level)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if cfg.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	if cfg.RepeatLimit > 0 && cfg.RepeatInterval > 0 {
		h = NewRepeatLimiter(h, cfg.RepeatLimit, cfg.RepeatInterval)
	}
	return slog.New(h)
}
