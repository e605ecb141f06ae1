package resolver

import (
	"sync"
	"time"
)

// logLimiter lets at most limit log lines through per second and counts
// the rest, so that a flood of bad names cannot flood the log. It is safe
// for concurrent use.
type logLimiter struct {
	limit int

	mu         sync.Mutex
	second     int64
	count      int
	suppressed int
}

// allow reports whether a line may be logged at now, and how many lines
// were suppressed since the last one allowed.
func (l *logLimiter) allow(now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := now.Unix(); s != l.second {
		l.second, l.count = s, 0
	}
	if l.count >= l.limit {
		l.suppressed++
		return false, 0
	}
	l.count++
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}
