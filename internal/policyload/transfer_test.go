package policyload

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"bulwark/internal/config"
)

// transferConfig writes a config with one transferred list whose copy is
// zone.rpz in dir. Its primary is never contacted: the tests do not call
// Transfer.
func transferConfig(t *testing.T, dir string) *config.Config {
	t.Helper()
	path := write(t, dir, "bulwark.yaml", `policy:
  lists:
    - name: feed
      file: zone.rpz
      format: rpz
      category: malware
      zone: rpz.example
      primaries: [192.0.2.53]
`)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestTransferredListServesItsCopy(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "zone.rpz", "; bulwark zone copy zone=rpz.example. serial=7 transfer=IXFR time=2026-01-01T00:00:00Z primary=192.0.2.53:53\n"+
		"rpz.example.\t300\tIN\tSOA\tns.rpz.example. admin.rpz.example. 7 3600 600 86400 60\n"+
		"bad.example.rpz.example.\t300\tIN\tCNAME\t.\n")
	m, err := NewManager(transferConfig(t, dir), &recorder{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if d, hit, ok := m.Check("protective", "bad.example."); !ok || !hit || !d.Blocked() {
		t.Errorf("Check(bad.example.) = %+v hit %v, want blocked by the copy read at start", d, hit)
	}
	lists := m.Lists()
	if len(lists) != 1 || lists[0].Transfer == nil {
		t.Fatalf("Lists() = %+v, want one list with a transfer state", lists)
	}
	ts := lists[0].Transfer
	if !ts.HasCopy || ts.Serial != 7 || ts.Transfer != "IXFR" || ts.Zone != "rpz.example." {
		t.Errorf("transfer state %+v, want the copy of serial 7 from an IXFR", ts)
	}
	if _, ok := m.NotifyStats(); !ok {
		t.Error("NotifyStats() not available with a transferred list")
	}
	if m.NotifyHandler() == nil {
		t.Error("NotifyHandler() = nil with a transferred list")
	}
}

func TestTransferredListStartsEmpty(t *testing.T) {
	dir := t.TempDir()
	cfg := transferConfig(t, dir)
	m, err := NewManager(cfg, &recorder{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("NewManager without a copy: %v, want the list to start empty", err)
	}
	if st := m.Lists()[0]; st.Rules != 0 || st.Transfer == nil || st.Transfer.HasCopy {
		t.Errorf("state %+v, want no rules and no copy", st)
	}
	if _, _, _, err := Load(cfg, 1, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Errorf("Load without a copy: %v, want the list empty, as check-config shows it", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "zone.rpz")); err == nil {
		t.Error("a copy was written without a transfer")
	}
}
