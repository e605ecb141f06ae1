package resolver

import (
	"testing"
	"time"
)

func TestLogLimiter(t *testing.T) {
	l := logLimiter{limit: 3}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 3 {
		if ok, _ := l.allow(start); !ok {
			t.Fatalf("line %d refused, want the first 3 allowed", i)
		}
	}
	for range 5 {
		if ok, _ := l.allow(start.Add(500 * time.Millisecond)); ok {
			t.Fatal("line over the limit allowed in the same second")
		}
	}
	ok, suppressed := l.allow(start.Add(time.Second))
	if !ok || suppressed != 5 {
		t.Errorf("next second: allowed %v with %d suppressed, want true with 5", ok, suppressed)
	}
}
