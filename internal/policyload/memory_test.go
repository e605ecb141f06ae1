package policyload

import (
	"io"
	"log/slog"
	"testing"

	"bulwark/internal/config"
	"bulwark/internal/policy"
)

func TestMemoryListsApplyByFlavourAndCategory(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "allow.txt", "good.example\n")
	cfgPath := write(t, dir, "bulwark.yaml", "policy:\n  lists:\n    - name: allow\n      file: allow.txt\n      format: domains\n      category: malware\n      action: allow\n")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	m, err := NewManager(cfg, rec, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	list := NewMemoryList("intel-botnet", "botnet", policy.NXDomain, []MemoryRule{
		{Name: "dga.example.", Reason: "blocked automatically as dga"},
		{Name: "good.example.", Reason: "on an allowlist too"},
	})
	m.SetMemoryLists([]*policy.List{list}, []string{"protective", "protective-child"})
	if len(rec.snapshots) != 2 {
		t.Fatalf("%d policy versions, want 2", len(rec.snapshots))
	}

	d, hit, _ := m.Check("protective", "www.dga.example.")
	if !hit || !d.Blocked() || d.List.Name != "intel-botnet" {
		t.Fatalf("protective: decision %+v, hit %v; want a block by intel-botnet", d, hit)
	}
	if d.Verdict.Reason != "blocked automatically as dga" || d.Verdict.Action != policy.NXDomain {
		t.Errorf("verdict = %+v, want the rule's reason and NXDOMAIN", d.Verdict)
	}
	if _, hit, _ := m.Check("protective-ads", "dga.example."); hit {
		t.Error("protective-ads applies the list though it is not among the flavours")
	}
	if _, hit, _ := m.Check("unfiltered", "dga.example."); hit {
		t.Error("unfiltered applies the list though it does not block botnet")
	}
	if d, hit, _ := m.Check("protective", "good.example."); hit && d.Blocked() {
		t.Error("the allowlist does not override the memory list")
	}
	if !m.Allowlisted("good.example.") || m.Allowlisted("dga.example.") {
		t.Error("Allowlisted: want true for good.example. only")
	}

	m.SetMemoryLists(nil, nil)
	if _, hit, _ := m.Check("protective", "dga.example."); hit {
		t.Error("the name still blocks after the list was removed")
	}
}
