package traffic

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bulwark/internal/config"
	"bulwark/internal/intel/events"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// fakeClock is a clock that tests move by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func testConfig(dir string) Config {
	cfg := DefaultConfig()
	cfg.NOD.WarmUp = 0
	cfg.NOD.Expected = 10_000
	if dir != "" {
		cfg.NOD.Path = filepath.Join(dir, "nod.state")
		cfg.Popularity.Path = filepath.Join(dir, "popularity.json")
	}
	return cfg
}

func newTestEngine(t *testing.T, cfg Config, clock *fakeClock) *Engine {
	t.Helper()
	e, err := New(cfg, make(chan events.Event), slog.New(slog.NewTextHandler(io.Discard, nil)), clock.now)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// event returns an answered A query for qname at at, with rcode and the
// given addresses, each with ttl seconds.
func event(qname string, at time.Time, rcode uint8, ttl uint32, addrs ...string) *events.Event {
	ev := &events.Event{Time: at, QType: 1, Answered: true, Rcode: rcode, QuerySize: 40, ResponseSize: 80, Client: 7}
	ev.SetQName(qname)
	for _, a := range addrs {
		ev.AddAddr(netip.MustParseAddr(a), ttl)
	}
	return ev
}

// byDetector returns the findings of one detector, newest first.
func byDetector(e *Engine, detector string) []Finding {
	var out []Finding
	for _, f := range e.Findings() {
		if f.Detector == detector {
			out = append(out, f)
		}
	}
	return out
}

func TestNODReportsFirstResolution(t *testing.T) {
	clock := &fakeClock{t0}
	e := newTestEngine(t, testConfig(""), clock)
	blocked := event("www.blocked.example", t0, 3, 0)
	blocked.Blocked = true
	e.process(blocked)
	e.process(event("www.fresh.example", t0, 0, 300, "192.0.2.1"))
	e.process(event("mail.fresh.example", t0.Add(time.Second), 0, 300, "192.0.2.2"))
	e.process(event("nothing.gone.example", t0, 3, 0))
	got := byDetector(e, DetectorNOD)
	if len(got) != 1 || got[0].Domain != "fresh.example" {
		t.Fatalf("NOD findings = %+v, want one for fresh.example", got)
	}
	if got[0].Malicious || got[0].Score != 0.5 || !strings.Contains(got[0].Reason, "newly observed") {
		t.Errorf("NOD finding = %+v, want score 0.5, not malicious, with a reason", got[0])
	}
	if e.NOD().Seen("blocked.example") || e.NOD().Seen("gone.example") {
		t.Error("blocked or NXDOMAIN domains joined the seen-set")
	}
}

func TestNODWarmUp(t *testing.T) {
	clock := &fakeClock{t0}
	cfg := testConfig("")
	cfg.NOD.WarmUp = time.Hour
	e := newTestEngine(t, cfg, clock)
	e.process(event("a.early.example", t0.Add(time.Minute), 0, 300, "192.0.2.1"))
	e.process(event("a.late.example", t0.Add(2*time.Hour), 0, 300, "192.0.2.1"))
	got := byDetector(e, DetectorNOD)
	if len(got) != 1 || got[0].Domain != "late.example" {
		t.Errorf("NOD findings = %+v, want only late.example after the warm-up", got)
	}
}

func TestDGAScoresUnseenDomains(t *testing.T) {
	clock := &fakeClock{t0}
	e := newTestEngine(t, testConfig(""), clock)
	for i := range 3 {
		e.process(event("xjo4vk9bk1f19hxz.net", t0.Add(time.Duration(i)*time.Second), 3, 0))
	}
	e.process(event("www.google.com", t0, 0, 300, "192.0.2.1"))
	got := byDetector(e, DetectorDGA)
	if len(got) != 1 || got[0].Domain != "xjo4vk9bk1f19hxz.net" || !got[0].Malicious {
		t.Fatalf("DGA findings = %+v, want one malicious for xjo4vk9bk1f19hxz.net per window", got)
	}
	// The next window scores it again, since it never resolved.
	e.process(event("xjo4vk9bk1f19hxz.net", t0.Add(time.Minute), 3, 0))
	if got := byDetector(e, DetectorDGA); len(got) != 2 {
		t.Errorf("DGA findings after a second window = %d, want 2", len(got))
	}
}

func TestNXDomainFlood(t *testing.T) {
	tests := []struct {
		name      string
		qname     func(i int) string
		rcode     uint8
		malicious bool
		kind      string
	}{
		{"random subdomains", func(i int) string { return fmt.Sprintf("x%016x.victim.example", uint64(i)*0x9E3779B97F4A7C15) }, 3, true, "random-subdomain attack"},
		{"word subdomains", func(i int) string { return fmt.Sprintf("host%d.victim.example", i) }, 3, true, "NXDOMAIN flood"},
		{"existing names", func(i int) string { return fmt.Sprintf("host%d.victim.example", i) }, 0, false, ""},
		{"one name repeated", func(int) string { return "gone.victim.example" }, 3, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{t0}
			e := newTestEngine(t, testConfig(""), clock)
			for i := range 200 {
				e.process(event(tt.qname(i), t0.Add(time.Duration(i)*100*time.Millisecond), tt.rcode, 0))
			}
			e.tick(t0.Add(time.Minute))
			got := byDetector(e, DetectorNXDomain)
			if !tt.malicious {
				if len(got) != 0 {
					t.Errorf("findings = %+v, want none", got)
				}
				return
			}
			if len(got) != 1 || got[0].Domain != "victim.example" || got[0].Score < verdictScore {
				t.Fatalf("findings = %+v, want one for victim.example", got)
			}
			if !strings.HasPrefix(got[0].Reason, tt.kind) {
				t.Errorf("reason %q, want it to start with %q", got[0].Reason, tt.kind)
			}
		})
	}
}

func TestUniqueResponse(t *testing.T) {
	clock := &fakeClock{t0}
	e := newTestEngine(t, testConfig(""), clock)
	at := t0
	for range 6 {
		e.process(event("www.bank.example", at, 0, 300, "192.0.2.10"))
		at = at.Add(time.Second)
	}
	e.process(event("www.bank.example", at, 0, 300, "192.0.2.11"))
	e.process(event("www.bank.example", at, 0, 300, "203.0.113.66"))
	e.process(event("www.bank.example", at, 0, 300, "203.0.113.66"))
	got := byDetector(e, DetectorUnique)
	if len(got) != 2 {
		t.Fatalf("unique findings = %+v, want 2", got)
	}
	newest, first := got[0], got[1]
	if first.Malicious || !strings.Contains(first.Reason, "already seen") {
		t.Errorf("finding for a new address in a known network = %+v, want not malicious", first)
	}
	if !newest.Malicious || newest.Name != "www.bank.example" || !strings.Contains(newest.Reason, "203.0.113.66") {
		t.Errorf("finding for a new network = %+v, want malicious naming 203.0.113.66", newest)
	}
}

func TestUniqueNeedsEstablishedName(t *testing.T) {
	clock := &fakeClock{t0}
	e := newTestEngine(t, testConfig(""), clock)
	for i := range 4 {
		e.process(event("new.example", t0, 0, 300, fmt.Sprintf("198.51.%d.1", i)))
	}
	if got := byDetector(e, DetectorUnique); len(got) != 0 {
		t.Errorf("unique findings for a name with few answers = %+v, want none", got)
	}
}

func TestFastFlux(t *testing.T) {
	tests := []struct {
		name      string
		ttl       uint32
		networks  int
		malicious bool
	}{
		{"flux", 60, 12, true},
		{"long TTL", 3600, 12, false},
		{"one network", 20, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{t0}
			e := newTestEngine(t, testConfig(""), clock)
			for i := range 12 {
				addr := fmt.Sprintf("198.%d.%d.%d", 18+i%2, i%tt.networks, i+1)
				e.process(event("flux.example", t0.Add(time.Duration(i)*time.Second), 0, tt.ttl, addr))
			}
			e.tick(t0.Add(time.Minute))
			got := byDetector(e, DetectorFlux)
			if tt.malicious != (len(got) == 1) {
				t.Fatalf("flux findings = %+v, want malicious %v", got, tt.malicious)
			}
			if tt.malicious && !strings.Contains(got[0].Reason, "in 12 networks") {
				t.Errorf("reason %q, want it to count 12 networks", got[0].Reason)
			}
		})
	}
}

func TestPopularitySpike(t *testing.T) {
	clock := &fakeClock{t0}
	cfg := testConfig("")
	cfg.Spike.MinWindows = 5
	cfg.Spike.MinQueries = 50
	e := newTestEngine(t, cfg, clock)
	at := t0
	window := func(domain string, queries int) {
		for i := range queries {
			e.process(event(fmt.Sprintf("h%d.%s", i%3, domain), at.Add(time.Duration(i)*time.Millisecond), 0, 300, "192.0.2.1"))
		}
		at = at.Add(time.Minute)
		e.tick(at)
	}
	for range 10 {
		window("steady.example", 5)
	}
	if got := byDetector(e, DetectorSpike); len(got) != 0 {
		t.Fatalf("spike findings on steady traffic = %+v, want none", got)
	}
	window("steady.example", 200)
	got := byDetector(e, DetectorSpike)
	if len(got) != 1 || got[0].Domain != "steady.example" || !got[0].Malicious {
		t.Fatalf("spike findings = %+v, want one for steady.example", got)
	}
	if !strings.Contains(got[0].Reason, "40.0 times the baseline of 5.0") {
		t.Errorf("reason %q, want 40.0 times the baseline of 5.0", got[0].Reason)
	}
}

func TestTunnelTraffic(t *testing.T) {
	clock := &fakeClock{t0}
	e := newTestEngine(t, testConfig(""), clock)
	for i := range 400 {
		ev := event(fmt.Sprintf("%032x.%08x.t.tunnel.example", uint64(i)*0x9E3779B97F4A7C15, i), t0.Add(time.Duration(i)*100*time.Millisecond), 0, 0)
		ev.QType = 16
		e.process(ev)
	}
	e.tick(t0.Add(time.Minute))
	got := byDetector(e, DetectorTunnel)
	if len(got) != 1 || got[0].Domain != "tunnel.example" {
		t.Fatalf("tunnel findings = %+v, want one for tunnel.example", got)
	}
}

func TestWindowDropsPastMaxDomains(t *testing.T) {
	clock := &fakeClock{t0}
	cfg := testConfig("")
	cfg.MaxDomains = 2
	e := newTestEngine(t, cfg, clock)
	for _, d := range []string{"a.example", "b.example", "c.example", "a.example"} {
		e.process(event(d, t0, 0, 300, "192.0.2.1"))
	}
	if st := e.Stats(); st.WindowDropped != 1 || st.Processed != 4 {
		t.Errorf("Stats() = %+v, want 4 processed and 1 dropped", st)
	}
}

func TestSinkReceivesFindings(t *testing.T) {
	clock := &fakeClock{t0}
	e := newTestEngine(t, testConfig(""), clock)
	var got []Finding
	e.SetSink(SinkFunc(func(f Finding) { got = append(got, f) }))
	e.process(event("a.sink.example", t0, 0, 300, "192.0.2.1"))
	if len(got) != 1 || got[0].Detector != DetectorNOD {
		t.Errorf("sink got %+v, want one NOD finding", got)
	}
	if st := e.Stats(); st.Findings[detectorIndex(DetectorNOD)] != 1 {
		t.Errorf("Stats().Findings = %v, want 1 NOD finding", st.Findings)
	}
}

// runEngine starts an Engine with its state files in dir and Run on its own
// goroutine. stop ends Run, which saves the state, and waits for it.
func runEngine(t *testing.T, dir string, clock *fakeClock) (e *Engine, queue chan events.Event, stop func()) {
	t.Helper()
	queue = make(chan events.Event, 16)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := New(testConfig(dir), queue, log, clock.now)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	return e, queue, func() {
		cancel()
		<-done
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{t0}
	e, queue, stop := runEngine(t, dir, clock)
	queue <- *event("www.before.example", t0, 0, 300, "192.0.2.1")
	stop()
	if got := byDetector(e, DetectorNOD); len(got) != 1 {
		t.Fatalf("NOD findings before the restart = %+v, want one", got)
	}

	clock.t = t0.Add(time.Hour)
	restarted := newTestEngine(t, testConfig(dir), clock)
	restarted.process(event("www.before.example", clock.t, 0, 300, "192.0.2.1"))
	restarted.process(event("www.after.example", clock.t, 0, 300, "192.0.2.1"))
	got := byDetector(restarted, DetectorNOD)
	if len(got) != 1 || got[0].Domain != "after.example" {
		t.Errorf("NOD findings after the restart = %+v, want only after.example", got)
	}
	if restarted.Popularity().DaysSeen("before.example", clock.t) != 1 {
		t.Errorf("popularity of before.example after the restart: %d days, want 1",
			restarted.Popularity().DaysSeen("before.example", clock.t))
	}
}

func TestHandOffStopsSaves(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{t0}
	e, queue, stop := runEngine(t, dir, clock)
	queue <- *event("www.before.example", t0, 0, 300, "192.0.2.1")
	for e.Stats().Processed < 1 {
		time.Sleep(time.Millisecond)
	}
	if err := e.HandOff(); err != nil {
		t.Fatal(err)
	}
	// Events after HandOff are analysed but not saved, at stop neither.
	queue <- *event("www.after.example", t0, 0, 300, "192.0.2.1")
	stop()

	// The next process's seen-set contains before.example from the file
	// that HandOff saved, and not after.example.
	clock.t = t0.Add(time.Hour)
	next := newTestEngine(t, testConfig(dir), clock)
	next.process(event("www.before.example", clock.t, 0, 300, "192.0.2.1"))
	next.process(event("www.after.example", clock.t, 0, 300, "192.0.2.1"))
	got := byDetector(next, DetectorNOD)
	if len(got) != 1 || got[0].Domain != "after.example" {
		t.Errorf("NOD findings of the next process = %+v, want only after.example", got)
	}
}

func TestFindingsNewestFirstAndBounded(t *testing.T) {
	l := newFindingLog(3, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for i := range 5 {
		l.add(Finding{Detector: DetectorNOD, Domain: fmt.Sprintf("d%d.example", i)})
	}
	var got []string
	for _, f := range l.list() {
		got = append(got, f.Domain)
	}
	if want := "[d4.example d3.example d2.example]"; fmt.Sprint(got) != want {
		t.Errorf("list() = %v, want %s", got, want)
	}
}

func TestSketchCount(t *testing.T) {
	for _, n := range []int{0, 1, 10, 100, 1000, 20_000} {
		var s sketch
		for i := range n {
			s.add(mix(uint64(i) + 1))
		}
		got := s.count()
		if tol := max(2, n/4); got < n-tol || got > n+tol {
			t.Errorf("count() after %d distinct = %d, want within %d", n, got, tol)
		}
	}
}

// BenchmarkProcess measures the aggregator's cost per event, off the
// query path, over a mix of names of 1,000 domains.
func BenchmarkProcess(b *testing.B) {
	clock := &fakeClock{t0}
	e, err := New(testConfig(""), make(chan events.Event), slog.New(slog.NewTextHandler(io.Discard, nil)), clock.now)
	if err != nil {
		b.Fatal(err)
	}
	evs := make([]*events.Event, 4096)
	for i := range evs {
		evs[i] = event(fmt.Sprintf("www%d.d%d.example", i%7, i%1000), t0, 0, 300, "192.0.2.1")
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e.process(evs[i%len(evs)])
		i++
	}
}

func TestConfigFromDefaults(t *testing.T) {
	cfg, err := config.Parse([]byte("intel:\n  enabled: true\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	got, want := ConfigFrom(cfg.Intel), DefaultConfig()
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("ConfigFrom(defaults) = %+v, want DefaultConfig() %+v", got, want)
	}
}

func TestSketchError(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{30, 80, 1000} {
		const trials = 200
		sum := 0.0
		for range trials {
			var s sketch
			for range n {
				s.add(rng.Uint64())
			}
			e := float64(s.count()-n) / float64(n)
			sum += e * e
		}
		if rmse := math.Sqrt(sum / trials); rmse > 0.10 {
			t.Errorf("root-mean-square error at %d hashes = %.3f, want at most 0.10", n, rmse)
		}
	}
}
