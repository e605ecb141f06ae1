package clock

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestFixedClock(t *testing.T) {
	want := time.Date(2018, 1, 29, 12, 0, 0, 0, time.UTC)
	c := Fixed(want)
	if got := c.Now(); !got.Equal(want) {
		t.Errorf("Fixed(%v).Now() = %v", want, got)
	}
	time.Sleep(2 * time.Millisecond)
	if got := c.Now(); !got.Equal(want) {
		t.Errorf("Fixed clock moved to %v", got)
	}
}

func TestSystemClock(t *testing.T) {
	before := time.Now()
	got := System().Now()
	if got.Before(before) || got.Sub(before) > time.Second {
		t.Errorf("System().Now() = %v, want about %v", got, before)
	}
}

func TestParseFileTime(t *testing.T) {
	want := time.Date(2018, 1, 29, 12, 30, 5, 0, time.UTC)
	valid := []string{
		"@2018-01-29 12:30:05",
		"@2018-01-29 12:30:05\n",
		"@2018-01-29 12:30:05\r\n",
		"@2018-01-29 12:30:05  \n\n",
	}
	for _, in := range valid {
		got, err := ParseFileTime([]byte(in))
		if err != nil {
			t.Errorf("ParseFileTime(%q) error: %v", in, err)
			continue
		}
		if !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("ParseFileTime(%q) = %v, want %v", in, got, want)
		}
	}
	invalid := []string{
		"",
		"\n",
		"2018-01-29 12:30:05",
		"@2018-01-29",
		"@2018-01-29T12:30:05Z",
		"@2018-13-29 12:30:05",
		"@2018-01-29 12:30:05 extra",
		" @2018-01-29 12:30:05",
		"+1d",
	}
	for _, in := range invalid {
		if got, err := ParseFileTime([]byte(in)); err == nil {
			t.Errorf("ParseFileTime(%q) = %v, want an error", in, got)
		}
	}
}

// writeClock writes content to path and sets its modification time to now,
// so that a rewrite is seen even on file systems with coarse timestamps.
func writeClock(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := os.Chtimes(path, now, now); err != nil {
		t.Fatal(err)
	}
}

// checkNear fails unless got is within [want, want+slack].
func checkNear(t *testing.T, what string, got, want time.Time, slack time.Duration) {
	t.Helper()
	if got.Before(want) || got.After(want.Add(slack)) {
		t.Errorf("%s = %v, want between %v and %v", what, got, want, want.Add(slack))
	}
}

func TestFromFileErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := FromFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("FromFile(missing file) = nil error")
	}
	bad := filepath.Join(dir, "bad")
	writeClock(t, bad, "2018-01-29 12:00:00\n")
	if _, err := FromFile(bad); err == nil {
		t.Error("FromFile(file without @) = nil error")
	}
}

func TestFileClockCountsFromModification(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clock")
	writeClock(t, path, "@2018-01-29 12:00:00\n")
	written := time.Now().Add(-time.Hour)
	if err := os.Chtimes(path, written, written); err != nil {
		t.Fatal(err)
	}
	c, err := FromFile(path)
	if err != nil {
		t.Fatalf("FromFile error: %v", err)
	}
	want := time.Date(2018, 1, 29, 13, 0, 0, 0, time.UTC)
	checkNear(t, "Now of a file modified an hour ago", c.Now(), want, time.Second)

	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, future, future); err != nil {
		t.Fatal(err)
	}
	c, err = FromFile(path)
	if err != nil {
		t.Fatalf("FromFile error: %v", err)
	}
	want = time.Date(2018, 1, 29, 12, 0, 0, 0, time.UTC)
	checkNear(t, "Now of a file modified in the future", c.Now(), want, time.Second)
}

func TestFileClockRunsAndJumps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clock")
	first := time.Date(2018, 1, 29, 12, 0, 0, 0, time.UTC)
	writeClock(t, path, "@2018-01-29 12:00:00\n")
	c, err := FromFile(path)
	if err != nil {
		t.Fatalf("FromFile error: %v", err)
	}
	fc := c.(*FileClock)
	checkNear(t, "Now right after FromFile", c.Now(), first, 50*time.Millisecond)

	time.Sleep(150 * time.Millisecond)
	checkNear(t, "Now after 150ms", c.Now(), first.Add(150*time.Millisecond), 100*time.Millisecond)

	second := time.Date(2024, 7, 18, 0, 0, 0, 0, time.UTC)
	writeClock(t, path, "@2024-07-18 00:00:00")
	time.Sleep(CheckInterval + 20*time.Millisecond)
	got := c.Now()
	checkNear(t, "Now after the file changed", got, second.Add(CheckInterval), 150*time.Millisecond)
	if err := fc.Err(); err != nil {
		t.Errorf("Err() = %v after a valid change", err)
	}

	// Rewriting the same time sets the clock back to it.
	time.Sleep(300 * time.Millisecond)
	writeClock(t, path, "@2024-07-18 00:00:00\n")
	time.Sleep(CheckInterval + 20*time.Millisecond)
	checkNear(t, "Now after the same time was written again", c.Now(), second.Add(CheckInterval), 150*time.Millisecond)
}

func TestFileClockKeepsLastGoodTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clock")
	base := time.Date(2018, 1, 29, 12, 0, 0, 0, time.UTC)
	writeClock(t, path, "@2018-01-29 12:00:00\n")
	c, err := FromFile(path)
	if err != nil {
		t.Fatalf("FromFile error: %v", err)
	}
	fc := c.(*FileClock)
	start := time.Now()

	writeClock(t, path, "garbage\n")
	time.Sleep(CheckInterval + 20*time.Millisecond)
	lower := base.Add(time.Since(start))
	checkNear(t, "Now with a malformed file", c.Now(), lower, 100*time.Millisecond)
	if fc.Err() == nil {
		t.Error("Err() = nil with a malformed file")
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	time.Sleep(CheckInterval + 20*time.Millisecond)
	lower = base.Add(time.Since(start))
	checkNear(t, "Now with the file removed", c.Now(), lower, 100*time.Millisecond)
	if fc.Err() == nil {
		t.Error("Err() = nil with the file removed")
	}

	later := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	writeClock(t, path, "@2030-01-01 00:00:00\n")
	time.Sleep(CheckInterval + 20*time.Millisecond)
	checkNear(t, "Now after the file was fixed", c.Now(), later.Add(CheckInterval), 150*time.Millisecond)
	if err := fc.Err(); err != nil {
		t.Errorf("Err() = %v after the file was fixed", err)
	}
}

func TestFileClockConcurrentNow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clock")
	writeClock(t, path, "@2018-01-29 12:00:00\n")
	c, err := FromFile(path)
	if err != nil {
		t.Fatalf("FromFile error: %v", err)
	}
	floor := time.Date(2018, 1, 29, 12, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(300 * time.Millisecond)
			for time.Now().Before(deadline) {
				if got := c.Now(); got.Before(floor) {
					t.Errorf("Now() = %v, before the file time %v", got, floor)
					return
				}
			}
		}()
	}
	time.Sleep(120 * time.Millisecond)
	writeClock(t, path, "@2019-01-29 12:00:00\n")
	wg.Wait()
	checkNear(t, "Now after concurrent reads", c.Now(), time.Date(2019, 1, 29, 12, 0, 0, 0, time.UTC), 400*time.Millisecond)
}
