package logging

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// RepeatLimiter is a slog.Handler that passes the same message at the same
// level at most limit times per interval to the handler it wraps. It
// counts the repeats past the limit and, at the end of the interval, writes
// one line "log message repeated" with the message and the count. Two
// records count as the same message when their text and level match,
// whatever their attributes.
type RepeatLimiter struct {
	inner slog.Handler
	state *repeatState
}

// repeatState is shared by a RepeatLimiter and the handlers that its
// WithAttrs and WithGroup return.
type repeatState struct {
	limit    int
	interval time.Duration
	now      func() time.Time
	// schedule runs f after d; tests replace time.AfterFunc.
	schedule func(d time.Duration, f func())

	mu     sync.Mutex
	counts map[repeatKey]*repeatCount
	// suppressed is the number of records left out since the start.
	suppressed atomic.Uint64
}

type repeatKey struct {
	level slog.Level
	msg   string
}

// repeatCount is the state of one message in its current interval.
type repeatCount struct {
	start   time.Time
	written int
	// dropped counts the records left out and not yet reported. pending
	// is true while a report is scheduled, and via is the handler that
	// writes it.
	dropped int
	pending bool
	via     slog.Handler
}

// maxRepeatKeys bounds the messages tracked at once; past it, messages
// whose interval is over are forgotten.
const maxRepeatKeys = 4096

// NewRepeatLimiter returns a handler that passes at most limit records of
// the same message and level per interval to inner.
func NewRepeatLimiter(inner slog.Handler, limit int, interval time.Duration) *RepeatLimiter {
	return &RepeatLimiter{inner: inner, state: &repeatState{
		limit: limit, interval: interval, now: time.Now,
		schedule: func(d time.Duration, f func()) { time.AfterFunc(d, f) },
		counts:   map[repeatKey]*repeatCount{},
	}}
}

// Suppressed returns the number of records left out since the start.
func (h *RepeatLimiter) Suppressed() uint64 { return h.state.suppressed.Load() }

// Enabled reports whether the wrapped handler takes records of level.
func (h *RepeatLimiter) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

// Handle writes r unless its message is past the limit of its interval.
func (h *RepeatLimiter) Handle(ctx context.Context, r slog.Record) error {
	if !h.state.admit(repeatKey{r.Level, r.Message}, h.inner) {
		return nil
	}
	return h.inner.Handle(ctx, r)
}

// WithAttrs returns a handler with attrs that shares the counts of h.
func (h *RepeatLimiter) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &RepeatLimiter{inner: h.inner.WithAttrs(attrs), state: h.state}
}

// WithGroup returns a handler with the group name that shares the counts
// of h.
func (h *RepeatLimiter) WithGroup(name string) slog.Handler {
	return &RepeatLimiter{inner: h.inner.WithGroup(name), state: h.state}
}

// admit counts one record of key and reports whether it is written. The
// first record left out in an interval schedules the report of the count
// at the end of the interval, written through via.
func (s *repeatState) admit(key repeatKey, via slog.Handler) bool {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counts[key]
	if c == nil {
		if len(s.counts) >= maxRepeatKeys {
			s.forget(now)
		}
		c = &repeatCount{start: now}
		s.counts[key] = c
	}
	if now.Sub(c.start) >= s.interval {
		c.start, c.written = now, 0
	}
	if c.written < s.limit {
		c.written++
		return true
	}
	c.dropped++
	s.suppressed.Add(1)
	if !c.pending {
		c.pending, c.via = true, via
		s.schedule(c.start.Add(s.interval).Sub(now), func() { s.report(key) })
	}
	return false
}

// report writes the count of the records of key left out.
func (s *repeatState) report(key repeatKey) {
	s.mu.Lock()
	c := s.counts[key]
	if c == nil || c.dropped == 0 {
		s.mu.Unlock()
		return
	}
	dropped, via := c.dropped, c.via
	c.dropped, c.pending, c.via = 0, false, nil
	s.mu.Unlock()

	r := slog.NewRecord(s.now(), key.level, "log message repeated", 0)
	r.AddAttrs(
		slog.String("message", key.msg),
		slog.Int("repeats_not_logged", dropped),
		slog.Float64("interval_seconds", s.interval.Seconds()),
	)
	via.Handle(context.Background(), r)
}

// forget drops the messages whose interval is over and that have no
// report pending. s.mu is held.
func (s *repeatState) forget(now time.Time) {
	for k, c := range s.counts {
		if !c.pending && now.Sub(c.start) >= s.interval {
			delete(s.counts, k)
		}
	}
}
