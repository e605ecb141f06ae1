package policyload

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"bulwark/internal/config"
	"bulwark/internal/pipeline"
	"bulwark/internal/policy"
)

func write(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "malware.hosts", "# comment\n0.0.0.0 bad.example\n0.0.0.0 bad..name\n")
	write(t, dir, "adult.txt", "adult.example\n")
	write(t, dir, "court.rpz", `$TTL 60
@ SOA ns. hostmaster. 1 3600 600 86400 60
@ NS ns.
casino.example CNAME .
*.casino.example CNAME .
quiet.example CNAME *.
ok.casino.example CNAME rpz-passthru.
`)
	write(t, dir, "allow.txt", "good.bad.example\n")
	yaml := `policy:
  lists:
    - name: malware
      file: malware.hosts
      format: hosts
      category: malware
    - name: adult
      file: adult.txt
      format: domains
      category: adult
      action: nodata
    - name: court
      file: court.rpz
      format: rpz
      category: lawful
    - name: allow
      file: allow.txt
      format: domains
      category: malware
      action: allow
  flavours:
    - name: family
      categories: [adult]
    - name: raw
      validation: false
`
	cfgPath := write(t, dir, "bulwark.yaml", yaml)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, _, reports, err := Load(cfg, 7, log)
	if err != nil {
		t.Fatal(err)
	}
	if s.Generation != 7 {
		t.Errorf("generation %d, want 7", s.Generation)
	}
	if id, _ := s.ID("unfiltered"); id != 0 {
		t.Errorf("unfiltered has id %d, want 0", id)
	}
	if reports[0].Bad != 1 || reports[0].Rules != 1 {
		t.Errorf("malware report %+v, want 1 rule and 1 malformed line", reports[0])
	}

	check := func(flavour, name string, want policy.Action, blocked bool) {
		t.Helper()
		id, ok := s.ID(flavour)
		if !ok {
			t.Fatalf("no flavour %s", flavour)
		}
		d, hit := s.Flavour(id).CheckName(name)
		if hit && d.Blocked() != blocked || !hit && blocked {
			t.Errorf("%s %s: hit %v blocked %v, want blocked %v", flavour, name, hit, hit && d.Blocked(), blocked)
			return
		}
		if blocked && d.Verdict.Action != want {
			t.Errorf("%s %s: action %s, want %s", flavour, name, d.Verdict.Action, want)
		}
	}
	check("unfiltered", "bad.example.", 0, false)
	check("unfiltered", "casino.example.", policy.NXDomain, true) // lawful everywhere
	check("unfiltered", "www.casino.example.", policy.NXDomain, true)
	check("unfiltered", "ok.casino.example.", 0, false) // passthru
	check("unfiltered", "quiet.example.", policy.NoData, true)
	check("protective", "www.bad.example.", policy.NXDomain, true)
	check("protective", "good.bad.example.", 0, false) // allowlist
	check("protective", "adult.example.", 0, false)
	check("protective-child", "adult.example.", policy.NoData, true)
	check("family", "adult.example.", policy.NoData, true)
	check("family", "bad.example.", 0, false)
	for name, want := range map[string]bool{"raw": true, "family": false, "protective": false} {
		id, _ := s.ID(name)
		if got := s.Flavour(id).NoValidation; got != want {
			t.Errorf("flavour %s: NoValidation %v, want %v", name, got, want)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	cfg := &config.Config{Policy: config.Policy{Lists: []config.PolicyList{{Name: "x", File: "/nonexistent/list", Format: "domains", Category: "malware", Action: "nxdomain"}}}}
	_, _, _, err := Load(cfg, 1, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "policy list x") {
		t.Errorf("missing file: %v, want an error naming the list", err)
	}
}

type recorder struct{ snapshots []*policy.Snapshot }

func (r *recorder) SetPolicy(s *policy.Snapshot, _ pipeline.BlockConfig) {
	r.snapshots = append(r.snapshots, s)
}

func TestManagerReload(t *testing.T) {
	dir := t.TempDir()
	listPath := write(t, dir, "malware.txt", "bad.example\n")
	cfgPath := write(t, dir, "bulwark.yaml", "policy:\n  lists:\n    - name: malware\n      file: malware.txt\n      format: domains\n      category: malware\n")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	m, err := NewManager(cfg, rec, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	blocked := func(name string) bool {
		d, hit, ok := m.Check("protective", name)
		return ok && hit && d.Blocked()
	}
	if !blocked("bad.example.") || blocked("new.example.") {
		t.Fatal("first version: wrong decisions")
	}

	// Nothing changed: no new version.
	if err := m.Reload(false); err != nil || len(rec.snapshots) != 1 {
		t.Fatalf("reload without changes: %v, %d versions, want 1", err, len(rec.snapshots))
	}

	time.Sleep(10 * time.Millisecond) // a later modification time
	if err := os.WriteFile(listPath, []byte("new.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.Reload(false); err != nil {
		t.Fatal(err)
	}
	if len(rec.snapshots) != 2 || rec.snapshots[1].Generation <= rec.snapshots[0].Generation {
		t.Fatalf("%d versions after a change, want 2 with a higher generation", len(rec.snapshots))
	}
	if blocked("bad.example.") || !blocked("new.example.") {
		t.Error("second version: wrong decisions")
	}

	// An emptied file is refused: the list keeps its rules.
	time.Sleep(10 * time.Millisecond)
	if err := os.WriteFile(listPath, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.Reload(false); err == nil || !strings.Contains(err.Error(), "contains no rule") {
		t.Errorf("reload of an emptied file: %v, want it refused", err)
	}
	if !blocked("new.example.") {
		t.Error("the list was lost when its file was emptied")
	}

	// A file that disappears keeps the last version and reports the error.
	os.Remove(listPath)
	if err := m.Reload(false); err == nil {
		t.Error("reload of a missing file: no error")
	}
	if !blocked("new.example.") {
		t.Error("the list was lost when its file disappeared")
	}
	if st := m.Lists(); len(st) != 1 || st[0].Error == "" || st[0].Rules != 1 {
		t.Errorf("state %+v, want the error and the kept rule count", st)
	}
}

// TestReloadsKeepMemoryFlat reloads a list of 50,000 names 20 times and
// checks that the heap after the last reload is not larger than after the
// first by more than a tenth of the list's own size.
func TestReloadsKeepMemoryFlat(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	for i := range 50_000 {
		fmt.Fprintf(&b, "host%d.example%d.test\n", i, i%100)
	}
	write(t, dir, "big.txt", b.String())
	cfgPath := write(t, dir, "bulwark.yaml", "policy:\n  lists:\n    - name: big\n      file: big.txt\n      format: domains\n      category: malware\n")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	m, err := NewManager(cfg, rec, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	heap := func() int64 {
		// Keep only the current version, as the pipeline does.
		rec.snapshots = []*policy.Snapshot{rec.snapshots[len(rec.snapshots)-1]}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	if err := m.Reload(true); err != nil {
		t.Fatal(err)
	}
	first := heap()
	for range 20 {
		if err := m.Reload(true); err != nil {
			t.Fatal(err)
		}
	}
	last := heap()
	// The manager and the recorder must still be alive at the measure.
	runtime.KeepAlive(m)
	runtime.KeepAlive(rec)
	listBytes := int64(b.Len())
	t.Logf("heap after the first reload %d KiB, after 21 reloads %d KiB (list file %d KiB)", first>>10, last>>10, listBytes>>10)
	runtime.KeepAlive(m)
	if last-first > listBytes/10 {
		t.Errorf("heap grew by %d KiB over 20 reloads, want under %d KiB", (last-first)>>10, listBytes/10>>10)
	}
}

func TestTenants(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "malware.txt", "bad.example\nneeded.example\n")
	write(t, dir, "partner.txt", "needed.example\n")
	write(t, dir, "ministry-deny.txt", "social.example\n")
	cfgPath := write(t, dir, "bulwark.yaml", `policy:
  lists:
    - name: malware
      file: malware.txt
      format: domains
      category: malware
    - name: partner
      file: partner.txt
      format: domains
      category: ads
    - name: ministry-deny
      file: ministry-deny.txt
      format: domains
      category: ads
  tenants:
    - name: ministry
      subnets: [10.20.0.0/16]
      allow: [partner]
      deny: [ministry-deny]
`)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	s, _, _, err := Load(cfg, 1, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	id := s.ClientFlavour(netip.MustParseAddr("10.20.1.1"), 0)
	f := s.Flavour(id)
	if f == nil || f.Name != "tenant:ministry" {
		t.Fatalf("tenant client got flavour %v, want tenant:ministry", f)
	}
	for name, blocked := range map[string]bool{
		"bad.example.":    true,  // from the protective base
		"needed.example.": false, // the tenant's allowlist wins
		"social.example.": true,  // the tenant's own deny list
		"fine.example.":   false,
	} {
		d, hit := f.CheckName(name)
		if got := hit && d.Blocked(); got != blocked {
			t.Errorf("%s: blocked %v, want %v", name, got, blocked)
		}
	}
	if other := s.ClientFlavour(netip.MustParseAddr("10.21.1.1"), 0); other != 0 {
		t.Errorf("client outside the tenant got flavour %d, want the listener's 0", other)
	}
}

func TestAdGuardExceptionsStayInTheirList(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "agh.txt", "||exc.example^\n@@||ok.exc.example^\n@@||lab-policy.example^\n")
	write(t, dir, "other.txt", "ok.exc.example\nlab-policy.example\n")
	cfgPath := write(t, dir, "bulwark.yaml", `policy:
  lists:
    - name: agh
      file: agh.txt
      format: adguard
      category: malware
    - name: other
      file: other.txt
      format: domains
      category: malware
`)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	s, _, _, err := Load(cfg, 1, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := s.ID("protective")
	f := s.Flavour(id)
	for name, list := range map[string]string{
		"www.exc.example.":      "agh",
		"ok.exc.example.":       "other", // excepted in agh only
		"x.lab-policy.example.": "other",
	} {
		d, ok := f.CheckName(name)
		if !ok || !d.Blocked() || d.List.Name != list {
			t.Errorf("%s: %+v %v, want blocked by %s", name, d, ok, list)
		}
	}
}
