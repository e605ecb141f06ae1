// Package clock provides the current time to DNSSEC validation: the system
// clock in production, and for test suites a fixed time or a time read from a
// file in the "@YYYY-MM-DD HH:MM:SS" format of libfaketime's
// FAKETIME_TIMESTAMP_FILE.
package clock

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Clock returns the current time. Implementations are safe for concurrent
// use.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// System returns the system clock.
func System() Clock { return systemClock{} }

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

// Fixed returns a clock that always returns t.
func Fixed(t time.Time) Clock { return fixedClock{t: t} }

// CheckInterval is the minimum time between two checks of a clock file.
const CheckInterval = 100 * time.Millisecond

// FileClock is a clock that starts at the time written in a file when the
// file was last modified and runs on at the rate of the system's monotonic
// clock. When the file changes, the clock jumps to the new time. Now checks the file at most once per
// CheckInterval, on the calling goroutine; every other call reads an atomic
// snapshot and does not block.
type FileClock struct {
	path  string
	start time.Time // monotonic reference for nextCheck

	snap      atomic.Pointer[fileSnapshot]
	nextCheck atomic.Int64 // nanoseconds after start
	reloading sync.Mutex   // held by the goroutine that checks the file
	err       atomic.Pointer[error]
}

// fileSnapshot is the last good content of the clock file.
type fileSnapshot struct {
	base    time.Time // the time written in the file
	origin  time.Time // when the clock was at base, with a monotonic reading
	modTime time.Time
	content []byte
}

// FromFile returns a *FileClock that follows the file at path. The file must
// exist and hold a valid time. Later read or format errors keep the last good
// time and are reported by the Err method.
func FromFile(path string) (Clock, error) {
	now := time.Now()
	c := &FileClock{path: path, start: now}
	info, content, base, err := readClockFile(path)
	if err != nil {
		return nil, err
	}
	// The wall clock gives the age of the file once; from then on, the
	// monotonic clock measures the elapsed time.
	age := max(now.Sub(info.ModTime()), 0)
	c.snap.Store(&fileSnapshot{base: base, origin: now.Add(-age), modTime: info.ModTime(), content: content})
	c.nextCheck.Store(int64(CheckInterval))
	return c, nil
}

// Now returns the time of the file plus the time elapsed since the file was
// last modified.
func (c *FileClock) Now() time.Time {
	now := time.Now()
	if now.Sub(c.start) >= time.Duration(c.nextCheck.Load()) && c.reloading.TryLock() {
		c.check(now)
		c.reloading.Unlock()
	}
	s := c.snap.Load()
	return s.base.Add(now.Sub(s.origin))
}

// Err returns the error of the last check of the file, or nil when the last
// check read a valid time. The clock keeps the last good time while the file
// is unreadable or malformed.
func (c *FileClock) Err() error {
	if p := c.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Path returns the path of the clock file.
func (c *FileClock) Path() string { return c.path }

// check reads the file and stores a new snapshot when its modification time
// or content changed. The caller holds c.reloading.
func (c *FileClock) check(now time.Time) {
	previous := now.Sub(c.start) - time.Duration(c.nextCheck.Load()) + CheckInterval
	c.nextCheck.Store(int64(now.Sub(c.start) + CheckInterval))
	info, content, base, err := readClockFile(c.path)
	if err != nil {
		c.err.Store(&err)
		return
	}
	c.err.Store(nil)
	old := c.snap.Load()
	if info.ModTime().Equal(old.modTime) && bytes.Equal(content, old.content) {
		return
	}
	// The file changed after the previous check. Its modification time
	// shows when, which makes the jump exact even though the file is
	// checked only once per interval. The elapsed time is capped by the
	// time since the previous check, so a wrong modification time cannot
	// move the clock further than that.
	elapsed := time.Since(info.ModTime())
	elapsed = min(max(elapsed, 0), max(previous, 0))
	c.snap.Store(&fileSnapshot{base: base, origin: now.Add(-elapsed), modTime: info.ModTime(), content: content})
}

// readClockFile reads and parses the clock file at path.
func readClockFile(path string) (os.FileInfo, []byte, time.Time, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, nil, time.Time{}, fmt.Errorf("clock file: %w", err)
	}
	content, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, time.Time{}, fmt.Errorf("clock file: %w", err)
	}
	t, err := ParseFileTime(content)
	if err != nil {
		return nil, nil, time.Time{}, fmt.Errorf("clock file %s: %w", path, err)
	}
	return info, content, t, nil
}

// fileTimeLayout is the layout of the time after '@', always UTC.
const fileTimeLayout = "2006-01-02 15:04:05"

// ParseFileTime parses "@YYYY-MM-DD HH:MM:SS" as a UTC time. Trailing white
// space, such as a newline, is ignored.
func ParseFileTime(data []byte) (time.Time, error) {
	text := string(bytes.TrimRight(data, " \t\r\n"))
	if len(text) == 0 || text[0] != '@' {
		return time.Time{}, errors.New(`invalid content: want "@YYYY-MM-DD HH:MM:SS" in UTC, such as "@2018-01-29 12:00:00"`)
	}
	t, err := time.ParseInLocation(fileTimeLayout, text[1:], time.UTC)
	if err != nil {
		return time.Time{}, fmt.Errorf(`invalid time %q: want "@YYYY-MM-DD HH:MM:SS" in UTC, such as "@2018-01-29 12:00:00"`, text)
	}
	return t, nil
}
