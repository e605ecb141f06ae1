package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written in YAML as a Go duration string such as
// "800ms", "5s" or "24h".
type Duration time.Duration

// UnmarshalText parses a Go duration string. Negative values are rejected.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return &valueError{value: string(text), msg: "write a number with a unit such as 500ms, 5s or 1h", kind: "duration"}
	}
	if v < 0 {
		return &valueError{value: string(text), msg: "must not be negative", kind: "duration"}
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration in Go's notation.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(time.Duration(d).String()), nil
}

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// ByteSize is a size in bytes, written in YAML as a plain integer or with a
// binary suffix: KiB, MiB, GiB.
type ByteSize int64

var byteUnits = []struct {
	suffix string
	factor int64
}{
	{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1},
}

// UnmarshalText parses "1048576", "1024KiB", "64MiB" or "1GiB".
func (b *ByteSize) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	factor := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(s, u.suffix) {
			s = strings.TrimSpace(strings.TrimSuffix(s, u.suffix))
			factor = u.factor
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/factor {
		return &valueError{value: string(text), msg: "write a whole number of bytes, optionally with KiB, MiB or GiB", kind: "size"}
	}
	*b = ByteSize(n * factor)
	return nil
}

// valueError is a value that its type cannot parse. The loader finds the
// value in the YAML tree to report its key and line.
type valueError struct {
	value string
	kind  string
	msg   string
}

func (e *valueError) Error() string {
	return fmt.Sprintf("invalid %s %q: %s", e.kind, e.value, e.msg)
}

// MarshalText writes the size in bytes.
func (b ByteSize) MarshalText() ([]byte, error) {
	return []byte(strconv.FormatInt(int64(b), 10)), nil
}

// Time is a time.Time written in YAML as an RFC 3339 time such as
// "2026-03-01T12:00:00Z". The zero value means the key was absent.
type Time struct {
	time.Time
}

// UnmarshalText parses an RFC 3339 time.
func (t *Time) UnmarshalText(text []byte) error {
	v, err := time.Parse(time.RFC3339, string(text))
	if err != nil {
		return &valueError{value: string(text), msg: "write an RFC 3339 time such as 2026-03-01T12:00:00Z", kind: "time"}
	}
	t.Time = v
	return nil
}

// MarshalText writes the time in RFC 3339 notation, or "" for the zero value.
func (t Time) MarshalText() ([]byte, error) {
	if t.IsZero() {
		return nil, nil
	}
	return []byte(t.Format(time.RFC3339)), nil
}
