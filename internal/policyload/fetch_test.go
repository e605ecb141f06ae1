package policyload

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"bulwark/internal/config"
)

// listServer serves a list with an ETag and counts conditional hits.
type listServer struct {
	mu          sync.Mutex
	body        string
	etag        string
	status      int
	notModified int
}

func (s *listServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status != 0 {
		w.WriteHeader(s.status)
		return
	}
	if r.Header.Get("If-None-Match") == s.etag {
		s.notModified++
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("ETag", s.etag)
	io.WriteString(w, s.body)
}

func (s *listServer) set(body, etag string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body, s.etag, s.status = body, etag, status
}

func TestDownloadedList(t *testing.T) {
	srv := &listServer{body: "bad.example\n", etag: `"v1"`}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	dir := t.TempDir()
	file := filepath.Join(dir, "feeds", "remote.txt")
	os.Mkdir(filepath.Dir(file), 0o755)
	cfgPath := write(t, dir, "bulwark.yaml", "policy:\n  lists:\n    - name: remote\n      file: feeds/remote.txt\n      url: "+ts.URL+"/list.txt\n      format: domains\n      category: malware\n")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewManager(cfg, &recorder{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("start without a copy: %v", err)
	}
	blocked := func(name string) bool {
		d, hit, _ := m.Check("protective", name)
		return hit && d.Blocked()
	}
	if blocked("bad.example.") {
		t.Fatal("blocked before the first download")
	}
	f := &fetcher{list: cfg.Policy.Lists[0], client: ts.Client(), log: m.log}
	ctx := context.Background()

	changed, err := f.fetch(ctx)
	if err != nil || !changed {
		t.Fatalf("first download: changed %v, %v", changed, err)
	}
	m.Reload(false)
	if !blocked("bad.example.") {
		t.Fatal("not blocked after the first download")
	}

	// Unchanged source: a conditional request and no new copy.
	if changed, err := f.fetch(ctx); err != nil || changed || srv.notModified != 1 {
		t.Errorf("second download: changed %v, %v, %d not-modified answers; want a 304", changed, err, srv.notModified)
	}

	// A failing source and an HTML page keep the last good copy.
	srv.set("", "", http.StatusBadGateway)
	if _, err := f.fetch(ctx); err == nil || !strings.Contains(err.Error(), "502") {
		t.Errorf("failing source: %v, want the status", err)
	}
	srv.set("<html><body>Service unavailable</body></html>\n<p>try later</p>\n", `"html"`, 0)
	if _, err := f.fetch(ctx); err == nil || !strings.Contains(err.Error(), "keeping the last good copy") {
		t.Errorf("HTML page: %v, want it rejected", err)
	}
	if data, _ := os.ReadFile(file); string(data) != "bad.example\n" {
		t.Errorf("file after failures: %q, want the last good copy", data)
	}

	// A new version replaces the copy and is loaded.
	srv.set("new.example\n", `"v2"`, 0)
	if changed, err := f.fetch(ctx); err != nil || !changed {
		t.Fatalf("new version: changed %v, %v", changed, err)
	}
	m.Reload(false)
	if blocked("bad.example.") || !blocked("new.example.") {
		t.Error("new version not applied")
	}
}

func TestDownloadURLValidation(t *testing.T) {
	dir := t.TempDir()
	cfgPath := write(t, dir, "bulwark.yaml", "policy:\n  lists:\n    - name: remote\n      file: remote.txt\n      url: ftp://example.net/list\n      format: domains\n      category: malware\n")
	if _, err := config.Load(cfgPath); err == nil || !strings.Contains(err.Error(), "invalid URL") {
		t.Errorf("ftp URL: %v, want an invalid URL error", err)
	}
}
