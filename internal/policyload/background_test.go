package policyload

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"bulwark/internal/config"
	"bulwark/internal/pipeline"
	"bulwark/internal/policy"
)

// TestDownloadRetryBackoff fails a download three times, then serves the
// list: the retries come after doubling delays, capped at the refresh
// interval, and the new copy is loaded once.
func TestDownloadRetryBackoff(t *testing.T) {
	var mu sync.Mutex
	var requests []time.Time
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests = append(requests, time.Now())
		n := len(requests)
		mu.Unlock()
		if n <= 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "bad.example\n")
	}))
	defer ts.Close()

	const first = 100 * time.Millisecond
	list := config.PolicyList{Name: "remote", File: filepath.Join(t.TempDir(), "remote.txt"), URL: ts.URL,
		Format: "domains", Refresh: config.Duration(300 * time.Millisecond)}
	f := &fetcher{list: list, client: ts.Client(), log: slog.New(slog.NewTextHandler(io.Discard, nil)), firstRetry: first}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	loaded := make(chan struct{}, 10)
	go f.run(ctx, func() { loaded <- struct{}{} })
	select {
	case <-loaded:
	case <-time.After(10 * time.Second):
		t.Fatal("the list was not loaded after its download recovered")
	}
	cancel()

	mu.Lock()
	defer mu.Unlock()
	if len(requests) != 4 {
		t.Fatalf("%d requests before the list loaded, want 4", len(requests))
	}
	// Delays 100ms, 200ms, then 300ms: doubled, capped at the refresh.
	for i, want := range []time.Duration{first, 2 * first, 3 * first} {
		if got := requests[i+1].Sub(requests[i]); got < want {
			t.Errorf("retry %d came after %v, want at least %v", i+1, got, want)
		}
	}
}

// TestWatchReloadsChangedFile changes a list file while Watch runs and
// waits for the new rules to apply.
func TestWatchReloadsChangedFile(t *testing.T) {
	dir := t.TempDir()
	listPath := write(t, dir, "malware.txt", "bad.example\n")
	cfgPath := write(t, dir, "bulwark.yaml", "policy:\n  lists:\n    - name: malware\n      file: malware.txt\n      format: domains\n      category: malware\n")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewManager(cfg, &syncTarget{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Watch(ctx, 20*time.Millisecond)

	time.Sleep(10 * time.Millisecond) // a later modification time
	if err := os.WriteFile(listPath, []byte("new.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, hit, ok := m.Check("protective", "new.example.")
		if ok && hit && d.Blocked() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Watch did not load the changed file within 10 seconds")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if d, hit, ok := m.Check("protective", "bad.example."); ok && hit && d.Blocked() {
		t.Error("a name removed from the file is still blocked")
	}
}

// syncTarget accepts policy versions from any goroutine.
type syncTarget struct {
	mu       sync.Mutex
	versions int
}

func (s *syncTarget) SetPolicy(*policy.Snapshot, pipeline.BlockConfig) {
	s.mu.Lock()
	s.versions++
	s.mu.Unlock()
}

// TestCheckDuringReload checks a name while a long list reloads: the check
// must not wait for the reload to end.
func TestCheckDuringReload(t *testing.T) {
	dir := t.TempDir()
	var big strings.Builder
	for i := range 300_000 {
		fmt.Fprintf(&big, "h%d.example%d.com\n", i, i%97)
	}
	write(t, dir, "malware.txt", big.String())
	cfgPath := write(t, dir, "bulwark.yaml", "policy:\n  lists:\n    - name: malware\n      file: malware.txt\n      format: domains\n      category: malware\n")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewManager(cfg, &syncTarget{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	started, done := make(chan struct{}), make(chan struct{})
	go func() {
		close(started)
		m.Reload(true)
		close(done)
	}()
	<-started
	checked := 0
	for {
		d, hit, ok := m.Check("protective", "h7.example7.com.")
		if !ok || !hit || !d.Blocked() {
			t.Fatal("a listed name was not blocked during the reload")
		}
		checked++
		select {
		case <-done:
			if checked < 2 {
				t.Errorf("%d checks completed during the reload, want checks to run while it loads", checked)
			}
			return
		default:
		}
	}
}
