package guard

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"bulwark/internal/dnssec"
	"bulwark/internal/resolver"

	"github.com/miekg/dns"
)

// clock is a fake clock that tests move by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func testConfig() Config {
	return Config{
		Window: 10 * time.Second, MinRate: 10, FailureRatio: 0.5,
		Hold: 30 * time.Second, MaxHold: 2 * time.Minute,
		ProbeRate: 2, MaxInFlight: 4, TableSize: 64,
		Exempt: []string{"dnsbl.example"},
	}
}

func newTestGuard(cfg Config) (*Guard, *clock) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	return New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), c.now), c
}

// flood reports n resolutions in zone with rcode, spread evenly over d.
func flood(g *Guard, c *clock, zone string, rcode, n int, d time.Duration) {
	for i := range n {
		g.Observe(fmt.Sprintf("r%d.%s", i, zone), resolver.Result{Zone: zone, Rcode: rcode})
		c.advance(d / time.Duration(n))
	}
}

func isProtected(g *Guard, zone string) bool {
	for _, p := range g.Protected() {
		if p.Zone == zone {
			return true
		}
	}
	return false
}

func TestThresholds(t *testing.T) {
	tests := []struct {
		name  string
		zone  string
		rcode int
		// n resolutions over 10 seconds.
		n    int
		want bool
	}{
		{"nxdomain flood", "victim.example.", dns.RcodeNameError, 300, true},
		{"servfail flood", "victim.example.", dns.RcodeServerFailure, 300, true},
		{"busy but healthy", "busy.example.", dns.RcodeSuccess, 300, false},
		{"failing but slow", "slow.example.", dns.RcodeNameError, 50, false},
		{"exempt zone", "dnsbl.example.", dns.RcodeNameError, 300, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, c := newTestGuard(testConfig())
			flood(g, c, tt.zone, tt.rcode, tt.n, 10*time.Second)
			if got := isProtected(g, tt.zone); got != tt.want {
				t.Errorf("after %d rcode %d in 10s: protected = %v, want %v", tt.n, tt.rcode, got, tt.want)
			}
			if got, want := g.Stats().Protected, map[bool]int{true: 1}[tt.want]; got != want {
				t.Errorf("Stats().Protected = %d, want %d", got, want)
			}
		})
	}
}

func TestFailureRatioMixed(t *testing.T) {
	g, c := newTestGuard(testConfig())
	// 40% failures stay under a ratio of 0.5.
	for i := range 300 {
		rcode := dns.RcodeSuccess
		if i%5 < 2 {
			rcode = dns.RcodeNameError
		}
		g.Observe("www.mixed.example.", resolver.Result{Zone: "mixed.example.", Rcode: rcode})
		c.advance(30 * time.Millisecond)
	}
	if isProtected(g, "mixed.example.") {
		t.Errorf("zone with 40%% failures protected, want not at a ratio of 0.5")
	}
}

func TestProtectionShedsAndProbes(t *testing.T) {
	g, c := newTestGuard(testConfig())
	flood(g, c, "victim.example.", dns.RcodeNameError, 300, 10*time.Second)
	if !isProtected(g, "victim.example.") {
		t.Fatal("victim.example. not protected after the flood")
	}

	// The probe budget starts at one second's worth and refills at 2/s.
	admitted := 0
	for range 100 {
		if ok, reason := g.Acquire("victim.example.", "random.victim.example."); ok {
			admitted++
			g.Release("victim.example.")
		} else if !strings.Contains(reason, "victim.example.") {
			t.Errorf("Acquire reason %q does not name the zone", reason)
		}
	}
	if admitted != 2 {
		t.Errorf("admitted %d of 100 queries at once, want the burst of 2", admitted)
	}
	c.advance(time.Second)
	if ok, _ := g.Acquire("victim.example.", "random.victim.example."); !ok {
		t.Error("Acquire after a second of refill = false, want a probe")
	}
	g.Release("victim.example.")
	if got := g.Stats().ShedProtected; got != 98 {
		t.Errorf("ShedProtected = %d, want 98", got)
	}

	// Other zones are not affected.
	if ok, reason := g.Acquire("other.example.", "random.other.example."); !ok {
		t.Errorf("Acquire(other.example.) = false (%s), want true", reason)
	}
}

func TestProtectionEndsAfterFlood(t *testing.T) {
	g, c := newTestGuard(testConfig())
	flood(g, c, "victim.example.", dns.RcodeNameError, 300, 10*time.Second)

	// While the flood goes on, shed queries keep the miss rate up and the
	// probes keep the failure ratio up: protection is extended.
	for range 600 {
		ok, _ := g.Acquire("victim.example.", "random.victim.example.")
		g.Observe("random.victim.example.", resolver.Result{Zone: "victim.example.", Rcode: dns.RcodeServerFailure, Limited: !ok})
		if ok {
			g.Release("victim.example.")
		}
		c.advance(50 * time.Millisecond)
	}
	if !isProtected(g, "victim.example.") {
		t.Fatal("protection ended during a flood 30s long, want it extended")
	}

	// Once the flood stops, the hold runs out.
	c.advance(29 * time.Second)
	g.Sweep()
	if !isProtected(g, "victim.example.") {
		t.Error("protection ended 29s after the flood, before the hold of 30s")
	}
	c.advance(2 * time.Second)
	g.Sweep()
	if isProtected(g, "victim.example.") {
		t.Error("zone still protected 31s after the flood, want the hold of 30s over")
	}
	if got := g.Stats().Protected; got != 0 {
		t.Errorf("Stats().Protected = %d, want 0", got)
	}
	if ok, _ := g.Acquire("victim.example.", "random.victim.example."); !ok {
		t.Error("Acquire after protection ended = false, want true")
	}
}

func TestRepeatedAttackDoublesHold(t *testing.T) {
	g, c := newTestGuard(testConfig())
	var holds []time.Duration
	for range 4 {
		c.advance(time.Minute) // the previous window is empty again
		start := c.now()
		flood(g, c, "victim.example.", dns.RcodeNameError, 300, 10*time.Second)
		ps := g.Protected()
		if len(ps) != 1 {
			t.Fatalf("Protected() = %v, want victim.example. alone", ps)
		}
		holds = append(holds, ps[0].Until.Sub(start).Round(10*time.Second))
		// Let it expire.
		c.t = ps[0].Until
		g.Sweep()
	}
	// Each hold counts from the last miss of its flood, about 10s in.
	want := []time.Duration{40 * time.Second, 70 * time.Second, 130 * time.Second, 130 * time.Second}
	for i := range want {
		if holds[i] != want[i] {
			t.Errorf("attack %d: protected until %v after its start, want %v (holds %v)", i+1, holds[i], want[i], holds)
		}
	}
}

func TestMaxInFlight(t *testing.T) {
	g, _ := newTestGuard(testConfig())
	// A cap of 4 admits 3 queries for unknown names and keeps 1 place
	// for known ones.
	for i := range 3 {
		if ok, reason := g.Acquire("slow.example.", fmt.Sprintf("r%d.slow.example.", i)); !ok {
			t.Fatalf("Acquire %d = false (%s), want true below the cap of 3 unknown names", i+1, reason)
		}
	}
	ok, reason := g.Acquire("slow.example.", "r3.slow.example.")
	if ok {
		t.Fatal("fourth Acquire of an unknown name = true, want the reserve to shed it")
	}
	if !strings.Contains(reason, "slow.example.") {
		t.Errorf("reason %q does not name the zone", reason)
	}
	if ok, reason := g.Acquire("slow.example.", "slow.example."); !ok {
		t.Fatalf("Acquire of the zone's own name = false (%s), want the reserve to admit it", reason)
	}
	if ok, _ := g.Acquire("slow.example.", "slow.example."); ok {
		t.Fatal("fifth Acquire = true, want the cap of 4 to shed it")
	}
	if ok, _ := g.Acquire("fast.example.", "www.fast.example."); !ok {
		t.Error("Acquire(fast.example.) = false, want another zone unaffected")
	}
	g.Release("slow.example.")
	if ok, _ := g.Acquire("slow.example.", "slow.example."); !ok {
		t.Error("Acquire after a Release = false, want true")
	}
	if got := g.Stats().ShedInFlight; got != 2 {
		t.Errorf("ShedInFlight = %d, want 2", got)
	}
}

func TestKnownNamesPassProtection(t *testing.T) {
	g, c := newTestGuard(testConfig())
	ok := resolver.Result{Zone: "shop.victim.example.", Rcode: dns.RcodeSuccess}
	g.Observe("www.shop.victim.example.", ok)
	g.Observe("mail.victim.example.", resolver.Result{Zone: "victim.example.", Rcode: dns.RcodeSuccess})
	g.Observe("gone.victim.example.", resolver.Result{Zone: "victim.example.", Rcode: dns.RcodeNameError})
	flood(g, c, "victim.example.", dns.RcodeNameError, 300, 10*time.Second)
	if !isProtected(g, "victim.example.") {
		t.Fatal("victim.example. not protected after the flood")
	}
	// Spend the probe budget.
	for range 10 {
		if ok, _ := g.Acquire("victim.example.", "random.victim.example."); ok {
			g.Release("victim.example.")
		}
	}

	tests := []struct {
		qname string
		want  bool
	}{
		{"mail.victim.example.", true},
		// An ancestor of a name that resolved, as sent after QNAME
		// minimisation on the way to it.
		{"shop.victim.example.", true},
		{"www.shop.victim.example.", true},
		{"victim.example.", true},
		{"gone.victim.example.", false},
		{"x7f3k.victim.example.", false},
		{"x7f3k.mail.victim.example.", false},
	}
	for _, tt := range tests {
		got, reason := g.Acquire("victim.example.", tt.qname)
		if got {
			g.Release("victim.example.")
		}
		if got != tt.want {
			t.Errorf("Acquire(%s) = %v (%s), want %v", tt.qname, got, reason, tt.want)
		}
	}
}

func TestKnownNamesSkipFailures(t *testing.T) {
	g, _ := newTestGuard(testConfig())
	results := map[string]resolver.Result{
		"limited.example.": {Zone: "example.", Rcode: dns.RcodeSuccess, Limited: true},
		"bogus.example.":   {Zone: "example.", Rcode: dns.RcodeSuccess, Security: dnssec.Bogus},
		"fail.example.":    {Zone: "example.", Rcode: dns.RcodeServerFailure},
		"cached.example.":  {Rcode: dns.RcodeSuccess},
	}
	for name, res := range results {
		g.Observe(name, res)
		if g.known.contains(name) {
			t.Errorf("%s recorded as known after rcode %s, limited %v, security %v",
				name, dns.RcodeToString[res.Rcode], res.Limited, res.Security)
		}
	}
}

func TestTableBounded(t *testing.T) {
	cfg := testConfig()
	cfg.TableSize = 64
	g, c := newTestGuard(cfg)
	flood(g, c, "victim.example.", dns.RcodeNameError, 300, 10*time.Second)

	// A flood of random zones fills the table but cannot grow it, nor
	// push out the protected zone.
	for i := range 100000 {
		zone := fmt.Sprintf("z%d.example.", i)
		g.Observe(zone, resolver.Result{Zone: zone, Rcode: dns.RcodeNameError})
	}
	if n := len(g.table.entries); n != 64 {
		t.Errorf("table has %d entries after 100000 zones, want 64", n)
	}
	if !isProtected(g, "victim.example.") {
		t.Error("victim.example. lost its protection to a flood of new zones")
	}
}

func TestLocalAnswersCounted(t *testing.T) {
	g, _ := newTestGuard(testConfig())
	g.Observe("random.victim.example.", resolver.Result{Zone: "victim.example.", Rcode: dns.RcodeServerFailure, Limited: true})
	g.Observe("www.example.", resolver.Result{Rcode: dns.RcodeSuccess})
	if got := g.Stats().LocalAnswers; got != 1 {
		t.Errorf("LocalAnswers = %d, want 1", got)
	}
}

func TestWindowEstimate(t *testing.T) {
	w := 10 * time.Second
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e := entry{zone: "a.", start: start, prev: counts{misses: 100}, cur: counts{misses: 20}}
	tests := []struct {
		name string
		at   time.Duration
		want float64
	}{
		{"bucket start", 0, 120},
		{"mid bucket", 5 * time.Second, 70},
		{"next bucket start", 10 * time.Second, 20},
		{"two windows on", 20 * time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := e.estimate(start.Add(tt.at), w).misses; got != tt.want {
				t.Errorf("estimate at +%v = %v misses, want %v", tt.at, got, tt.want)
			}
		})
	}
}

func TestSuspectUnderHotZone(t *testing.T) {
	g, c := newTestGuard(testConfig())
	g.Observe("www.victim.example.", resolver.Result{Zone: "victim.example.", Rcode: dns.RcodeSuccess})
	if g.Suspect([]byte("x7f3k.victim.example.")) {
		t.Fatal("name under a quiet zone suspect, want not")
	}
	// Answers from cached NSEC records make the zone hot, but cannot get
	// it protected, since its servers were not asked.
	for i := range 300 {
		g.Observe(fmt.Sprintf("r%d.victim.example.", i),
			resolver.Result{Zone: "victim.example.", Rcode: dns.RcodeNameError, Synthesised: true})
		c.advance(10 * time.Second / 300)
	}
	if isProtected(g, "victim.example.") {
		t.Error("victim.example. protected by answers from cached NSEC records")
	}

	tests := []struct {
		qname string
		want  bool
	}{
		{"x7f3k.victim.example.", true},
		{"a.b.victim.example.", true},
		{"www.victim.example.", false},
		{"x.www.victim.example.", false},
		{"victim.example.", false},
		{"www.other.example.", false},
	}
	for _, tt := range tests {
		if got := g.Suspect([]byte(tt.qname)); got != tt.want {
			t.Errorf("Suspect(%s) = %v, want %v", tt.qname, got, tt.want)
		}
	}

	c.advance(30 * time.Second)
	g.Sweep()
	if g.Suspect([]byte("x7f3k.victim.example.")) {
		t.Error("name suspect after the flood ended, want not")
	}
}

func TestSuspectRootFloodSparesKnownTLDs(t *testing.T) {
	g, c := newTestGuard(testConfig())
	g.Observe("www.example.com.", resolver.Result{Zone: "example.com.", Rcode: dns.RcodeSuccess})
	// Random top-level names all fail at the root.
	for i := range 300 {
		g.Observe(fmt.Sprintf("r%d.nx-r%d.", i, i), resolver.Result{Zone: ".", Rcode: dns.RcodeNameError})
		c.advance(10 * time.Second / 300)
	}
	if !g.isHot(".") {
		t.Fatal("root not hot after 300 random top-level names in 10 s")
	}

	tests := []struct {
		qname string
		want  bool
	}{
		{"x7f3k.nx-x7f3k.", true},
		{"nx-x7f3k.", true},
		{"mail.example.com.", false},
		{"www.other.com.", false},
		{".", false},
	}
	for _, tt := range tests {
		if got := g.Suspect([]byte(tt.qname)); got != tt.want {
			t.Errorf("Suspect(%s) = %v with the root hot, want %v", tt.qname, got, tt.want)
		}
	}
}
