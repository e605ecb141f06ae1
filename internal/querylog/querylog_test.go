package querylog

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"bulwark/internal/observe"
	"bulwark/internal/privacy"

	"github.com/miekg/dns"
)

var start = time.Date(2026, 3, 4, 10, 15, 0, 0, time.UTC)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testConfig(t *testing.T) Config {
	return Config{
		Queries: true, Directory: t.TempDir(),
		Rotation: time.Hour, Retention: 24 * time.Hour, QueueSize: 16,
		Anonymise: privacy.Config{Mode: privacy.Truncate},
		Interval:  time.Hour, MinClients: 3, MaxRows: 100, AggregateRetention: 48 * time.Hour,
	}
}

// syncLogger is a Logger whose writer handles each query as the test
// sends it, so that the clock can move between queries.
type syncLogger struct {
	*Logger
	w   *writer
	now time.Time
}

func newSyncLogger(t *testing.T, cfg Config) *syncLogger {
	t.Helper()
	s := &syncLogger{now: start}
	cfg.Now = func() time.Time { return s.now }
	l := &Logger{cfg: cfg, log: quiet(), queue: make(chan *entry, cfg.QueueSize)}
	w, err := newWriter(l)
	if err != nil {
		t.Fatalf("newWriter: %v", err)
	}
	s.Logger, s.w = l, w
	return s
}

// query reports one query for name from client, with a response of
// rcode, and writes it.
// query reports one query; policy, when given, is the list, category and
// action that decided the response.
func (s *syncLogger) query(t *testing.T, flavour, client, name string, rcode int, policy ...string) {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeA)
	r := new(dns.Msg)
	r.SetRcode(q, rcode)
	qw, _ := q.Pack()
	rw, err := r.Pack()
	if err != nil {
		t.Fatal(err)
	}
	oq := &observe.Query{
		Received: s.now, Duration: 1500 * time.Microsecond, Transport: observe.DoT,
		FlavourName: flavour, Client: netip.MustParseAddr(client), Query: qw, Response: rw,
	}
	if len(policy) == 3 {
		oq.List, oq.Category, oq.Action = policy[0], policy[1], policy[2]
	}
	s.ClientQuery(oq)
	s.w.handle(<-s.queue)
}

func (s *syncLogger) close() { s.w.finish() }

func readLines[T any](t *testing.T, path string) []T {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("%s: line %q: %v", path, sc.Text(), err)
		}
		out = append(out, v)
	}
	return out
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestLineFields(t *testing.T) {
	cfg := testConfig(t)
	s := newSyncLogger(t, cfg)
	s.query(t, "protective", "192.0.2.177", "Bad.Example.", dns.RcodeNameError, "urlhaus", "malware", "nxdomain")
	// An allowlist decision is not a block: no list in the line.
	s.query(t, "protective", "192.0.2.177", "good.example.", dns.RcodeSuccess, "lab-allow", "malware", "allow")
	s.close()

	lines := readLines[map[string]any](t, filepath.Join(cfg.Directory, "queries-20260304T1000Z.jsonl"))
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2", len(lines))
	}
	want := map[string]any{
		"time": "2026-03-04T10:15:00.000000Z", "flavour": "protective", "transport": "dot",
		"client": "192.0.2.0/24", "qname": "bad.example.", "qtype": "A", "rcode": "NXDOMAIN",
		"duration_seconds": 0.0015, "cached": false, "list": "urlhaus", "category": "malware",
		"action": "nxdomain",
	}
	for k, v := range want {
		if lines[0][k] != v {
			t.Errorf("field %s = %v, want %v", k, lines[0][k], v)
		}
	}
	if len(lines[0]) != len(want) {
		t.Errorf("line has %d fields, want %d: %v", len(lines[0]), len(want), lines[0])
	}
	if _, ok := lines[1]["list"]; ok {
		t.Errorf("allowed line names a list: %v", lines[1])
	}
	if s.Stats().Written != 2 {
		t.Errorf("Stats().Written = %d, want 2", s.Stats().Written)
	}
}

func TestAnonymisationPerFlavour(t *testing.T) {
	cfg := testConfig(t)
	cfg.Flavours = map[string]privacy.Mode{"tenant:school": privacy.Hash, "unfiltered": privacy.Omit}
	s := newSyncLogger(t, cfg)
	for _, flavour := range []string{"protective", "tenant:school", "unfiltered"} {
		s.query(t, flavour, "198.51.100.123", "a.example.", dns.RcodeSuccess)
	}
	s.close()

	lines := readLines[line](t, filepath.Join(cfg.Directory, "queries-20260304T1000Z.jsonl"))
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3", len(lines))
	}
	if got := lines[0].Client; got != "198.51.100.0/24" {
		t.Errorf("protective client = %q, want the default truncation 198.51.100.0/24", got)
	}
	if got := lines[1].Client; !strings.HasPrefix(got, "h:") || len(got) != 18 {
		t.Errorf("tenant:school client = %q, want h: and 16 hexadecimal digits", got)
	}
	if got := lines[2].Client; got != "" {
		t.Errorf("unfiltered client = %q, want none", got)
	}
	data, _ := os.ReadFile(filepath.Join(cfg.Directory, "queries-20260304T1000Z.jsonl"))
	if strings.Contains(string(data), "198.51.100.123") {
		t.Errorf("the client address is in the file:\n%s", data)
	}
}

func TestQueueFullDropsAndCounts(t *testing.T) {
	cfg := testConfig(t)
	cfg.QueueSize = 2
	l := &Logger{cfg: cfg, log: quiet(), queue: make(chan *entry, cfg.QueueSize)}
	q := &observe.Query{Client: netip.MustParseAddr("192.0.2.1"), Query: []byte{1, 2, 3}}
	for range 5 {
		l.ClientQuery(q)
	}
	if got := l.Stats().Dropped; got != 3 {
		t.Errorf("Stats().Dropped = %d after 5 queries into a queue of 2, want 3", got)
	}
}

func TestRotationAndRetention(t *testing.T) {
	cfg := testConfig(t)
	cfg.Retention = 2 * time.Hour
	keep := []string{
		"queries-20260304T0800Z.jsonl", // ends 09:00, kept until 11:00
		"notes.txt",
		"queries-garbage.jsonl",
	}
	expired := []string{
		"queries-20260304T0700Z.jsonl",    // ended 08:00, 2h15m ago
		"aggregates-20260302T0900Z.jsonl", // ended 10:00 two days ago
	}
	for _, name := range append(slices.Clone(keep), expired...) {
		if err := os.WriteFile(filepath.Join(cfg.Directory, name), []byte("{}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := newSyncLogger(t, cfg)
	got := dirNames(t, cfg.Directory)
	for _, name := range expired {
		if slices.Contains(got, name) {
			t.Errorf("%s is kept at start, want it deleted", name)
		}
	}
	for _, name := range keep {
		if !slices.Contains(got, name) {
			t.Errorf("%s is deleted at start, want it kept", name)
		}
	}

	s.query(t, "protective", "192.0.2.101", "a.example.", dns.RcodeSuccess)
	s.now = start.Add(time.Hour) // 11:15: a new file
	s.query(t, "protective", "192.0.2.101", "b.example.", dns.RcodeSuccess)
	s.w.housekeeping(s.now.Add(sweepInterval))
	s.close()

	got = dirNames(t, cfg.Directory)
	for _, name := range []string{"queries-20260304T1000Z.jsonl", "queries-20260304T1100Z.jsonl"} {
		if !slices.Contains(got, name) {
			t.Errorf("files %v, want %s", got, name)
		}
	}
	if slices.Contains(got, "queries-20260304T0800Z.jsonl") {
		t.Errorf("queries-20260304T0800Z.jsonl is kept at 11:16, 2h16m after its period, want it deleted")
	}
	if n := len(readLines[line](t, filepath.Join(cfg.Directory, "queries-20260304T1100Z.jsonl"))); n != 1 {
		t.Errorf("%d lines in the 11:00 file, want 1", n)
	}
}

func TestFilesReadableByOwnerOnly(t *testing.T) {
	cfg := testConfig(t)
	s := newSyncLogger(t, cfg)
	s.query(t, "protective", "192.0.2.101", "a.example.", dns.RcodeSuccess)
	s.close()
	info, err := os.Stat(filepath.Join(cfg.Directory, "queries-20260304T1000Z.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode %o, want 600", perm)
	}
}

func TestAggregatesKThreshold(t *testing.T) {
	cfg := testConfig(t)
	cfg.Queries = false
	cfg.Aggregates = true
	s := newSyncLogger(t, cfg)
	for _, client := range []string{"192.0.2.101", "192.0.2.102", "192.0.2.103", "192.0.2.103"} {
		s.query(t, "protective", client, "popular.example.", dns.RcodeSuccess)
	}
	// Two clients only: below k = 3.
	s.query(t, "protective", "192.0.2.101", "rare.example.", dns.RcodeSuccess)
	s.query(t, "protective", "192.0.2.102", "rare.example.", dns.RcodeSuccess)
	// The next interval writes this one.
	s.now = start.Add(time.Hour)
	s.w.housekeeping(s.now)

	rows := readLines[aggregateLine](t, filepath.Join(cfg.Directory, "aggregates-20260304T1000Z.jsonl"))
	want := []aggregateLine{{
		Start: "2026-03-04T10:00:00.000000Z", End: "2026-03-04T11:00:00.000000Z",
		Flavour: "protective", QName: "popular.example.", QType: "A", Rcode: "NOERROR",
		Queries: 4, Clients: 3,
	}}
	if !slices.Equal(rows, want) {
		t.Errorf("rows = %+v, want %+v", rows, want)
	}
	if slices.ContainsFunc(dirNames(t, cfg.Directory), func(n string) bool { return strings.HasPrefix(n, queriesPrefix) }) {
		t.Error("a query file is written with only the aggregates on")
	}

	// Shutdown writes the interval in progress, with its end.
	for _, client := range []string{"192.0.2.101", "192.0.2.102", "192.0.2.103"} {
		s.query(t, "protective", client, "late.example.", dns.RcodeNameError)
	}
	s.now = s.now.Add(10 * time.Minute)
	s.close()
	rows = readLines[aggregateLine](t, filepath.Join(cfg.Directory, "aggregates-20260304T1100Z.jsonl"))
	if len(rows) != 1 || rows[0].QName != "late.example." || rows[0].End != "2026-03-04T11:25:00.000000Z" {
		t.Errorf("rows at shutdown = %+v, want late.example. ending 11:25", rows)
	}
}

func TestAggregatesMaxRows(t *testing.T) {
	cfg := testConfig(t)
	cfg.Aggregates, cfg.MaxRows, cfg.MinClients = true, 1, 2
	s := newSyncLogger(t, cfg)
	s.query(t, "protective", "192.0.2.101", "a.example.", dns.RcodeSuccess)
	s.query(t, "protective", "192.0.2.102", "b.example.", dns.RcodeSuccess)
	if got := s.w.aggregates.notCounted; got != 1 {
		t.Errorf("notCounted = %d, want 1 past max_rows 1", got)
	}
	if got := len(s.w.aggregates.rows); got != 1 {
		t.Errorf("%d rows counted, want 1", got)
	}
}

func TestMalformedQueryNotLogged(t *testing.T) {
	cfg := testConfig(t)
	s := newSyncLogger(t, cfg)
	s.ClientQuery(&observe.Query{Client: netip.MustParseAddr("192.0.2.1"), Query: []byte{0, 1, 2}})
	s.w.handle(<-s.queue)
	s.close()
	if names := dirNames(t, cfg.Directory); len(names) != 0 {
		t.Errorf("files %v after a malformed query, want none", names)
	}
}

func TestLoggerWritesOnClose(t *testing.T) {
	cfg := testConfig(t)
	cfg.Aggregates, cfg.MinClients = true, 2
	l, err := New(cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	q := new(dns.Msg)
	q.SetQuestion("a.example.", dns.TypeAAAA)
	wire, _ := q.Pack()
	for _, client := range []string{"2001:db8:1:2::1", "2001:db8:1:3::1"} {
		l.ClientQuery(&observe.Query{Received: time.Now(), Transport: observe.UDP, FlavourName: "unfiltered", Client: netip.MustParseAddr(client), Query: wire})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var queries, aggregates int
	for _, name := range dirNames(t, cfg.Directory) {
		path := filepath.Join(cfg.Directory, name)
		switch {
		case strings.HasPrefix(name, queriesPrefix):
			for _, ln := range readLines[line](t, path) {
				queries++
				if ln.Client != "2001:db8:1::/56" || ln.Rcode != "" || ln.QType != "AAAA" {
					t.Errorf("line %+v, want client 2001:db8:1::/56, qtype AAAA and no rcode", ln)
				}
			}
		case strings.HasPrefix(name, aggregatesPrefix):
			aggregates += len(readLines[aggregateLine](t, path))
		}
	}
	if queries != 2 || aggregates != 1 {
		t.Errorf("%d query lines and %d aggregate rows after Close, want 2 and 1", queries, aggregates)
	}
}

func TestWriteFailureReopensFile(t *testing.T) {
	cfg := testConfig(t)
	s := newSyncLogger(t, cfg)
	s.query(t, "protective", "192.0.2.1", "one.example.", dns.RcodeSuccess)
	s.w.housekeeping(s.now) // flushes the first line
	s.query(t, "protective", "192.0.2.1", "two.example.", dns.RcodeSuccess)
	// The file breaks under the buffered writer, as on a full disk: the
	// buffered line is lost, and the writer keeps its error.
	s.w.queries.f.Close()
	s.w.housekeeping(s.now)
	s.query(t, "protective", "192.0.2.1", "three.example.", dns.RcodeSuccess)
	s.close()

	lines := readLines[line](t, filepath.Join(cfg.Directory, "queries-20260304T1000Z.jsonl"))
	var names []string
	for _, l := range lines {
		names = append(names, l.QName)
	}
	if strings.Join(names, " ") != "one.example. three.example." {
		t.Errorf("lines for %v, want one.example. and three.example.", names)
	}
	st := s.Stats()
	if st.Written != 2 {
		t.Errorf("Written = %d, want 2", st.Written)
	}
	if st.Failed != 1 {
		t.Errorf("Failed = %d, want 1 (the buffered line)", st.Failed)
	}
}

func TestDirectoryRemovedWhileOpen(t *testing.T) {
	cfg := testConfig(t)
	s := newSyncLogger(t, cfg)
	s.query(t, "protective", "192.0.2.1", "one.example.", dns.RcodeSuccess)
	s.w.housekeeping(s.now)
	if err := os.RemoveAll(cfg.Directory); err != nil {
		t.Fatal(err)
	}
	s.query(t, "protective", "192.0.2.1", "lost.example.", dns.RcodeSuccess)
	s.w.housekeeping(s.now) // notices the removal; the line went to the removed file
	s.query(t, "protective", "192.0.2.1", "two.example.", dns.RcodeSuccess)
	s.close()

	lines := readLines[line](t, filepath.Join(cfg.Directory, "queries-20260304T1000Z.jsonl"))
	if len(lines) != 1 || lines[0].QName != "two.example." {
		t.Errorf("lines %v, want two.example. alone in the new file", lines)
	}
	info, err := os.Stat(cfg.Directory)
	if err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("directory made again with %v (%v), want mode 0700", info.Mode().Perm(), err)
	}
	if st := s.Stats(); st.Failed != 1 || st.Written != 2 {
		t.Errorf("Written %d, Failed %d; want 2 and 1", st.Written, st.Failed)
	}
}

func TestCutLineEndedOnReopen(t *testing.T) {
	cfg := testConfig(t)
	path := filepath.Join(cfg.Directory, "queries-20260304T1000Z.jsonl")
	if err := os.WriteFile(path, []byte(`{"time":"cut`), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newSyncLogger(t, cfg)
	s.query(t, "protective", "192.0.2.1", "next.example.", dns.RcodeSuccess)
	s.close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(got) != 2 || got[0] != `{"time":"cut` || !strings.Contains(got[1], "next.example.") {
		t.Errorf("file lines %q, want the cut line alone, then the new one", got)
	}
}
