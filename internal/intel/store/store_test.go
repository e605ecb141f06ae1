package store

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bulwark/internal/intel/indicator"
	"bulwark/internal/intel/traffic"
)

// fakeClock is a settable clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

type popular map[string]bool

func (p popular) SteadilyPopular(domain string) bool { return p[domain] }

type allowlist map[string]bool

func (a allowlist) Allowlisted(name string) bool { return a[name] }

func testConfig() Config {
	return Config{
		MaxEntries: 100, MaxHistory: 10, SuspiciousScore: 0.5, AutoBlockScore: 0.9, MinFindings: 2,
		FeedBlockTrust: 80, Expiry: 24 * time.Hour, DecisionExpiry: 72 * time.Hour,
		BlockingDetectors: []string{"dga", "tunnel"},
	}
}

func newTestStore(t *testing.T, cfg Config) (*Store, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	s, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), clk.now)
	if err != nil {
		t.Fatal(err)
	}
	return s, clk
}

func finding(clk *fakeClock, detector, domain string, score float64, malicious bool) traffic.Finding {
	return traffic.Finding{Time: clk.now(), Detector: detector, Domain: domain, Score: score, Malicious: malicious,
		Reason: detector + " reason"}
}

func mustEntry(t *testing.T, s *Store, name string) Entry {
	t.Helper()
	e, ok := s.Entry(name)
	if !ok {
		t.Fatalf("no entry for %s", name)
	}
	return e
}

func TestFindingMakesObservedEntry(t *testing.T) {
	s, clk := newTestStore(t, testConfig())
	s.Report(finding(clk, "nod", "new.example", 0.5, false))
	e := mustEntry(t, s, "new.example.")
	if e.State != indicator.Observed {
		t.Errorf("state = %s, want observed", e.State)
	}
	if e.Score != 0 {
		t.Errorf("score = %g, want 0 for a finding that is not malicious", e.Score)
	}
	if len(e.History) != 1 || e.History[0].Source != "detector:nod" {
		t.Errorf("history = %+v, want one event from detector:nod", e.History)
	}
	if !e.Expires.Equal(clk.now().Add(24 * time.Hour)) {
		t.Errorf("expires = %s, want a day after the finding", e.Expires)
	}
}

func TestEvidenceMakesSuspiciousThenBlocked(t *testing.T) {
	s, clk := newTestStore(t, testConfig())
	v0 := s.Version()
	s.Report(finding(clk, "dga", "xjo4vk9bk1f19hxz.net", 0.7, true))
	if e := mustEntry(t, s, "xjo4vk9bk1f19hxz.net."); e.State != indicator.Suspicious {
		t.Fatalf("after one finding of 0.7: state = %s, want suspicious", e.State)
	}
	if s.Version() != v0 {
		t.Error("version changed without a change of the blocking entries")
	}
	clk.advance(time.Minute)
	s.Report(finding(clk, "tunnel", "xjo4vk9bk1f19hxz.net", 0.8, true))
	e := mustEntry(t, s, "xjo4vk9bk1f19hxz.net.")
	if e.State != indicator.AutoBlocked {
		t.Fatalf("after findings of 0.7 and 0.8: state = %s (score %g), want auto_blocked", e.State, e.Score)
	}
	if want := 1 - 0.3*0.2; e.Score < want-1e-9 || e.Score > want+1e-9 {
		t.Errorf("score = %g, want %g", e.Score, want)
	}
	if s.Version() == v0 {
		t.Error("version unchanged after an auto-block")
	}
	blocks := s.Blocking()
	if len(blocks) != 1 || blocks[0].Name != "xjo4vk9bk1f19hxz.net." {
		t.Fatalf("blocking = %+v, want the one name", blocks)
	}
	if !strings.Contains(blocks[0].Reason, "tunnel reason") || blocks[0].Category != "tunnel" {
		t.Errorf("block = %+v, want the category and reason of the strongest finding", blocks[0])
	}
}

func TestMinFindingsHoldsOneStrongFinding(t *testing.T) {
	s, clk := newTestStore(t, testConfig())
	s.Report(finding(clk, "nxdomain", "flood.example", 0.99, true))
	if e := mustEntry(t, s, "flood.example."); e.State != indicator.Suspicious {
		t.Errorf("state = %s, want suspicious: one finding is fewer than min findings 2", e.State)
	}
}

func TestPopularDomainGoesToReview(t *testing.T) {
	cfg := testConfig()
	cfg.MinFindings = 1
	s, clk := newTestStore(t, cfg)
	s.SetGuard(popular{"bigcdn.com": true}, nil)
	s.Report(finding(clk, "dga", "bigcdn.com", 0.95, true))
	e := mustEntry(t, s, "bigcdn.com.")
	if e.State != indicator.Review {
		t.Fatalf("state = %s, want review for a steadily popular domain", e.State)
	}
	if last := e.History[len(e.History)-1]; !strings.Contains(last.Reason, "steadily popular") {
		t.Errorf("last event = %+v, want the popularity veto as reason", last)
	}
	if len(s.Blocking()) != 0 {
		t.Error("a vetoed entry blocks")
	}
	if src := sourceNamed(s, "detector:dga"); src.Vetoed != 1 {
		t.Errorf("detector:dga vetoed = %d, want 1", src.Vetoed)
	}
}

func TestAllowlistsVeto(t *testing.T) {
	cfg := testConfig()
	cfg.MinFindings = 1
	cfg.Allowlist = []string{"corp.example."}
	s, clk := newTestStore(t, cfg)
	s.SetGuard(nil, allowlist{"listed.example.": true})
	s.Report(finding(clk, "tunnel", "vpn.corp.example", 0.95, true))
	s.Report(finding(clk, "dga", "listed.example", 0.95, true))
	for _, name := range []string{"vpn.corp.example.", "listed.example."} {
		if e := mustEntry(t, s, name); e.State != indicator.Review {
			t.Errorf("%s: state = %s, want review", name, e.State)
		}
	}
}

func TestConfirmAndReject(t *testing.T) {
	cfg := testConfig()
	cfg.MinFindings = 1
	s, clk := newTestStore(t, cfg)
	s.SetGuard(popular{"popular.example": true}, nil)
	s.Report(finding(clk, "flux", "popular.example", 0.95, true))

	if _, err := s.Confirm("popular.example", "", ""); !errors.Is(err, ErrMissingBy) {
		t.Errorf("confirm without by: err = %v, want ErrMissingBy", err)
	}
	if _, err := s.Confirm("absent.example", "alice", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("confirm of an unknown name: err = %v, want ErrNotFound", err)
	}
	e, err := s.Confirm("popular.example", "alice", "seen in an incident")
	if err != nil {
		t.Fatal(err)
	}
	if e.State != indicator.Confirmed || e.DecidedBy != "alice" {
		t.Errorf("after confirm: %+v, want confirmed by alice", e)
	}
	if len(s.Blocking()) != 1 {
		t.Error("a confirmed entry does not block")
	}

	clk.advance(time.Hour)
	if _, err := s.Reject("popular.example", "bob", "false alarm"); err != nil {
		t.Fatal(err)
	}
	if len(s.Blocking()) != 0 {
		t.Error("a rejected entry blocks")
	}
	s.Report(finding(clk, "flux", "popular.example", 0.99, true))
	if e := mustEntry(t, s, "popular.example."); e.State != indicator.Rejected {
		t.Errorf("new evidence moved a rejected entry to %s", e.State)
	}
	if src := sourceNamed(s, "detector:flux"); src.Rejected != 1 || src.FalsePositiveRate() <= 0 {
		t.Errorf("detector:flux = %+v, want one rejection and a false-positive rate above 0", src)
	}
}

func TestReportMovesBlockToReview(t *testing.T) {
	cfg := testConfig()
	cfg.MinFindings = 1
	s, clk := newTestStore(t, cfg)
	s.Report(finding(clk, "dga", "qwrtzpxk.example", 0.95, true))
	name, moved := s.ReportMistake("www.qwrtzpxk.example.", "my bank")
	if name != "qwrtzpxk.example." || !moved {
		t.Fatalf("report = %q, %v; want the entry moved", name, moved)
	}
	e := mustEntry(t, s, "qwrtzpxk.example.")
	if e.State != indicator.Review {
		t.Errorf("state = %s, want review", e.State)
	}
	if len(s.Blocking()) != 0 {
		t.Error("an entry in review blocks")
	}
	if _, moved := s.ReportMistake("qwrtzpxk.example.", "again"); moved {
		t.Error("a report on an entry in review moved it")
	}
	if _, moved := s.ReportMistake("unknown.example.", ""); moved {
		t.Error("a report on an unknown name moved something")
	}
}

func TestExpiryUnlessRenewed(t *testing.T) {
	cfg := testConfig()
	cfg.MinFindings = 1
	s, clk := newTestStore(t, cfg)
	s.Report(finding(clk, "dga", "old.example", 0.95, true))
	s.Report(finding(clk, "dga", "renewed.example", 0.95, true))
	clk.advance(20 * time.Hour)
	s.Report(finding(clk, "dga", "renewed.example", 0.95, true))
	clk.advance(5 * time.Hour)
	v := s.Version()
	if n := s.Expire(); n != 1 {
		t.Errorf("expired %d entries, want 1", n)
	}
	if _, ok := s.Entry("old.example."); ok {
		t.Error("old.example still present a day after its last evidence")
	}
	if _, ok := s.Entry("renewed.example."); !ok {
		t.Error("renewed.example expired though renewed")
	}
	if s.Version() == v {
		t.Error("version unchanged after a blocking entry expired")
	}
}

func TestFeedImportModesAndTrust(t *testing.T) {
	s, clk := newTestStore(t, testConfig())
	items := func(name string) []indicator.Indicator {
		return []indicator.Indicator{{Name: name, Category: "phishing", Reason: "reported by a CERT",
			Provenance: []indicator.Provenance{{Source: "cert", Ref: "indicator--1", Seen: clk.now()}}}}
	}
	s.Import("audit-cert", 100, indicator.Audit, items("audit.example"))
	s.Import("low-cert", 50, indicator.Enforce, items("low.example"))
	s.Import("high-cert", 90, indicator.Enforce, items("high.example"))
	s.Import("high-cert", 90, indicator.Enforce, []indicator.Indicator{{Name: "not a name"}})

	if e := mustEntry(t, s, "audit.example."); e.State != indicator.Observed || e.Score != 0 {
		t.Errorf("audit-mode entry = %s score %g, want observed with score 0", e.State, e.Score)
	}
	if e := mustEntry(t, s, "low.example."); e.State != indicator.Suspicious {
		t.Errorf("trust 50 entry = %s, want suspicious", e.State)
	}
	e := mustEntry(t, s, "high.example.")
	if e.State != indicator.AutoBlocked {
		t.Fatalf("trust 90 entry = %s, want auto_blocked", e.State)
	}
	if ev := e.History[0]; ev.Ref != "indicator--1" || ev.Source != "high-cert" || ev.Kind != KindFeed {
		t.Errorf("provenance = %+v, want the feed's ref and source", ev)
	}
	if src := sourceNamed(s, "audit-cert"); src.Audited != 1 || src.Reports != 1 {
		t.Errorf("audit-cert = %+v, want one audited report", src)
	}
}

func TestRejectionsLowerFeedTrust(t *testing.T) {
	s, _ := newTestStore(t, testConfig())
	for _, name := range []string{"a.example", "b.example"} {
		s.Import("noisy", 90, indicator.Enforce, []indicator.Indicator{{Name: name, Category: "malware"}})
		if _, err := s.Reject(name, "alice", ""); err != nil {
			t.Fatal(err)
		}
	}
	// Two rejections in fewer than 10 reports: the effective trust is
	// 90 × (1 − 0.2) = 72, below the feed block trust of 80.
	s.Import("noisy", 90, indicator.Enforce, []indicator.Indicator{{Name: "c.example", Category: "malware"}})
	if e := mustEntry(t, s, "c.example."); e.State == indicator.AutoBlocked {
		t.Errorf("entry of a source whose reports were all rejected is %s, want not blocked", e.State)
	}
	if rate := sourceNamed(s, "noisy").FalsePositiveRate(); rate != 0.2 {
		t.Errorf("false-positive rate = %g, want 0.2", rate)
	}
}

func TestCapDropsOldestObserved(t *testing.T) {
	cfg := testConfig()
	cfg.MaxEntries = 3
	cfg.MinFindings = 1
	s, clk := newTestStore(t, cfg)
	s.Report(finding(clk, "dga", "blocked.example", 0.95, true))
	clk.advance(time.Second)
	s.Report(finding(clk, "nod", "first.example", 0.5, false))
	clk.advance(time.Second)
	s.Report(finding(clk, "nod", "second.example", 0.5, false))
	clk.advance(time.Second)
	s.Report(finding(clk, "nod", "third.example", 0.5, false))
	if _, ok := s.Entry("first.example."); ok {
		t.Error("the oldest observed entry was kept at the cap")
	}
	for _, name := range []string{"blocked.example.", "second.example.", "third.example."} {
		if _, ok := s.Entry(name); !ok {
			t.Errorf("%s dropped", name)
		}
	}
	c := s.Counters()
	if c.Evicted != 1 {
		t.Errorf("evicted = %d, want 1", c.Evicted)
	}
	if c.States[indicator.AutoBlocked] != 1 || c.States[indicator.Observed] != 2 {
		t.Errorf("states = %v, want 1 auto_blocked and 2 observed", c.States)
	}
}

func TestCapFullOfBlocksDropsEvidence(t *testing.T) {
	cfg := testConfig()
	cfg.MaxEntries = 1
	cfg.MinFindings = 1
	s, clk := newTestStore(t, cfg)
	s.Report(finding(clk, "dga", "blocked.example", 0.95, true))
	s.Report(finding(clk, "nod", "new.example", 0.5, false))
	if _, ok := s.Entry("new.example."); ok {
		t.Error("a new entry replaced a blocking one")
	}
	if c := s.Counters(); c.Dropped != 1 {
		t.Errorf("dropped = %d, want 1", c.Dropped)
	}
}

func TestHistoryBoundKeepsFirstEvent(t *testing.T) {
	cfg := testConfig()
	cfg.MaxHistory = 3
	s, clk := newTestStore(t, cfg)
	for range 5 {
		s.Report(finding(clk, "nod", "busy.example", 0.5, false))
		clk.advance(time.Minute)
	}
	e := mustEntry(t, s, "busy.example.")
	if len(e.History) != 3 || e.HistoryDropped != 2 {
		t.Errorf("history %d events, %d dropped; want 3 and 2", len(e.History), e.HistoryDropped)
	}
	if !e.History[0].Time.Equal(e.FirstSeen) {
		t.Errorf("first event at %s, want the first finding at %s", e.History[0].Time, e.FirstSeen)
	}
}

func TestSaveAndLoad(t *testing.T) {
	cfg := testConfig()
	cfg.MinFindings = 1
	cfg.Path = filepath.Join(t.TempDir(), "store.json")
	s, clk := newTestStore(t, cfg)
	s.Report(finding(clk, "dga", "saved.example", 0.95, true))
	if _, err := s.Reject("saved.example", "alice", ""); err != nil {
		t.Fatal(err)
	}
	s.Report(finding(clk, "tunnel", "kept.example", 0.95, true))
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	again, _ := newTestStore(t, cfg)
	if e := mustEntry(t, again, "saved.example."); e.State != indicator.Rejected || e.DecidedBy != "alice" {
		t.Errorf("reloaded entry = %s by %q, want rejected by alice", e.State, e.DecidedBy)
	}
	if b := again.Blocking(); len(b) != 1 || b[0].Name != "kept.example." {
		t.Errorf("reloaded blocking = %+v, want kept.example.", b)
	}
	if src := sourceNamed(again, "detector:dga"); src.Rejected != 1 {
		t.Errorf("reloaded source score = %+v, want one rejection", src)
	}
	if st := again.Stats(); len(st.BlocksPerDay) != 1 || st.BlocksPerDay[0].Day != "2026-03-01" {
		t.Errorf("reloaded stats = %+v, want the blocks of 2026-03-01", st)
	}
}

func TestHandOffStopsSaves(t *testing.T) {
	cfg := testConfig()
	cfg.MinFindings = 1
	cfg.Path = filepath.Join(t.TempDir(), "store.json")
	s, clk := newTestStore(t, cfg)
	s.Report(finding(clk, "dga", "before.example", 0.95, true))
	if err := s.HandOff(); err != nil {
		t.Fatal(err)
	}
	loaded, _ := newTestStore(t, cfg)
	if _, ok := loaded.Entry("before.example."); !ok {
		t.Fatal("entry made before HandOff missing from the file it saved")
	}

	// The new process owns the file now: this one must not write it,
	// at stop neither.
	s.Report(finding(clk, "dga", "after.example", 0.95, true))
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.Run(ctx, time.Hour, time.Hour)
	again, _ := newTestStore(t, cfg)
	if _, ok := again.Entry("after.example."); ok {
		t.Error("entry made after HandOff written to the file")
	}

	s.Resume()
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	resumed, _ := newTestStore(t, cfg)
	if _, ok := resumed.Entry("after.example."); !ok {
		t.Error("entry missing from the file after Resume and Save")
	}
}

func TestLoadRejectsCorruptFile(t *testing.T) {
	cfg := testConfig()
	cfg.Path = filepath.Join(t.TempDir(), "store.json")
	if err := writeFile(cfg.Path, "{not json"); err != nil {
		t.Fatal(err)
	}
	_, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err == nil || !strings.Contains(err.Error(), "move the file away") {
		t.Errorf("err = %v, want an error that says what to do", err)
	}
}

func TestStatsCountCategories(t *testing.T) {
	cfg := testConfig()
	cfg.MinFindings = 1
	s, clk := newTestStore(t, cfg)
	s.Report(finding(clk, "dga", "a.example", 0.95, true))
	s.Report(finding(clk, "dga", "b.example", 0.95, true))
	s.Report(finding(clk, "tunnel", "c.example", 0.95, true))
	st := s.Stats()
	want := []CategoryCount{{"botnet", 2}, {"malware", 1}}
	if len(st.Blocking) != 2 || st.Blocking[0] != want[0] || st.Blocking[1] != want[1] {
		t.Errorf("blocking = %+v, want %+v", st.Blocking, want)
	}
	if st.States[indicator.AutoBlocked] != 3 {
		t.Errorf("states = %+v, want 3 auto_blocked", st.States)
	}
}

func TestRPZRecords(t *testing.T) {
	cfg := testConfig()
	cfg.MinFindings = 1
	s, clk := newTestStore(t, cfg)
	s.Report(finding(clk, "dga", "bad.example", 0.95, true))
	s.Report(finding(clk, "nod", "new.example", 0.5, false))
	rrs := s.RPZ("rpz.test", 60).Records()
	if len(rrs) != 2 {
		t.Fatalf("records = %v, want 2", rrs)
	}
	if got := rrs[0].Header().Name; got != "bad.example.rpz.test." {
		t.Errorf("owner = %s, want bad.example.rpz.test.", got)
	}
	if got := rrs[1].Header().Name; got != "*.bad.example.rpz.test." {
		t.Errorf("owner = %s, want *.bad.example.rpz.test.", got)
	}
}

func sourceNamed(s *Store, name string) SourceScore {
	for _, src := range s.Sources() {
		if src.Name == name {
			return src
		}
	}
	return SourceScore{}
}

func TestNonBlockingDetectorsOnlySuspect(t *testing.T) {
	s, clk := newTestStore(t, testConfig())
	for range 3 {
		s.Report(finding(clk, "flux", "cdn.example", 0.99, true))
		clk.advance(time.Minute)
	}
	e, _ := s.Entry("cdn.example.")
	if e.State != indicator.Suspicious {
		t.Errorf("after 3 flux findings: state %s, want suspicious", e.State)
	}
	s.Report(finding(clk, "dga", "cdn.example", 0.99, true))
	if e, _ = s.Entry("cdn.example."); e.State != indicator.Suspicious {
		t.Errorf("after one dga finding: state %s, want suspicious until %d blocking findings", e.State, testConfig().MinFindings)
	}
	s.Report(finding(clk, "dga", "cdn.example", 0.99, true))
	if e, _ = s.Entry("cdn.example."); e.State != indicator.AutoBlocked {
		t.Errorf("after two dga findings: state %s, want auto_blocked", e.State)
	}
}

func TestFloodTargetGoesToReview(t *testing.T) {
	s, clk := newTestStore(t, testConfig())
	s.Report(finding(clk, "nxdomain", "victim.example", 0.9, true))
	s.Report(finding(clk, "tunnel", "victim.example", 1, true))
	clk.advance(time.Minute)
	s.Report(finding(clk, "tunnel", "victim.example", 1, true))
	e, _ := s.Entry("victim.example.")
	if e.State != indicator.Review {
		t.Fatalf("flood target with two tunnel findings: state %s, want review", e.State)
	}
	last := e.History[len(e.History)-1]
	if !strings.Contains(last.Reason, "target of an NXDOMAIN") {
		t.Errorf("last event reason %q, want the flood veto", last.Reason)
	}
}
