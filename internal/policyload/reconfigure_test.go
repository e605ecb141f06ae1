package policyload

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"bulwark/internal/config"
)

// loadConfig writes text as bulwark.yaml in dir and loads it.
func loadConfig(t *testing.T, dir, text string) *config.Config {
	t.Helper()
	cfg, err := config.Load(write(t, dir, "bulwark.yaml", text))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

const reconfigureBase = `policy:
  lists:
    - name: malware
      file: malware.txt
      format: domains
      category: malware
`

func TestReconfigureListsAndFlavours(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "malware.txt", "bad.example\n")
	write(t, dir, "ads.txt", "ads.example\n")
	rec := &recorder{}
	m, err := NewManager(loadConfig(t, dir, reconfigureBase), rec, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	blocked := func(flavour, name string) bool {
		d, hit, ok := m.Check(flavour, name)
		return ok && hit && d.Blocked()
	}
	if !blocked("protective", "bad.example.") || blocked("protective-ads", "ads.example.") {
		t.Fatal("first version: wrong decisions")
	}
	malware := m.lists["malware"]

	// A new list of a category that protective-ads applies.
	next := loadConfig(t, dir, reconfigureBase+`    - name: ads
      file: ads.txt
      format: domains
      category: ads
`)
	if err := m.Reconfigure(next); err != nil {
		t.Fatalf("Reconfigure: %v", err)
	}
	if len(rec.snapshots) != 2 {
		t.Fatalf("%d policy versions, want 2", len(rec.snapshots))
	}
	if !blocked("protective", "bad.example.") {
		t.Error("the unchanged list no longer blocks")
	}
	if !blocked("protective-ads", "ads.example.") {
		t.Error("the new list does not block in the protective-ads flavour")
	}
	if blocked("protective", "ads.example.") {
		t.Error("the ads list blocks in the protective flavour")
	}
	if m.lists["malware"] != malware {
		t.Error("the unchanged list was read again")
	}
	if st := m.Lists(); len(st) != 2 || st[1].Name != "ads" || st[1].Rules != 1 {
		t.Errorf("list state %+v, want malware and ads with 1 rule", st)
	}

	// Removing the list takes it out of every flavour.
	if err := m.Reconfigure(loadConfig(t, dir, reconfigureBase)); err != nil {
		t.Fatal(err)
	}
	if blocked("protective-ads", "ads.example.") {
		t.Error("the removed list still blocks")
	}
	if st := m.Lists(); len(st) != 1 {
		t.Errorf("list state %+v, want malware only", st)
	}
}

func TestReconfigureRejectsMissingList(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "malware.txt", "bad.example\n")
	rec := &recorder{}
	m, err := NewManager(loadConfig(t, dir, reconfigureBase), rec, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	cfg := loadConfig(t, dir, reconfigureBase)
	cfg.Policy.Lists[0].File = dir + "/missing.txt"
	err = m.Reconfigure(cfg)
	if err == nil || !strings.Contains(err.Error(), "malware") {
		t.Fatalf("Reconfigure with a missing file: %v, want an error naming the list", err)
	}
	if len(rec.snapshots) != 1 {
		t.Errorf("%d policy versions, want the first only", len(rec.snapshots))
	}
	if d, hit, _ := m.Check("protective", "bad.example."); !hit || !d.Blocked() {
		t.Error("the current list was lost")
	}
}

func TestReconfigureNeedsRestart(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "malware.txt", "bad.example\n")
	m, err := NewManager(loadConfig(t, dir, reconfigureBase), &recorder{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	next := loadConfig(t, dir, reconfigureBase+`  flavours:
    - name: schools
      categories: [malware]
`)
	err = m.Reconfigure(next)
	if !errors.Is(err, ErrRestartNeeded) || !strings.Contains(err.Error(), "flavours") {
		t.Errorf("new flavour: %v, want ErrRestartNeeded naming the flavours", err)
	}
	if _, _, ok := m.Check("schools", "bad.example."); ok {
		t.Error("the new flavour was applied")
	}
}
