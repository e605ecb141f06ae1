package resolver

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func newTestInfra() (*infra, *testClock) {
	clk := &testClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	return newInfra(800*time.Millisecond, time.Second, time.Minute, clk.now), clk
}

func TestInfraTimeoutsInFlightCountOnce(t *testing.T) {
	in, _ := newTestInfra()
	a := netip.MustParseAddr("192.0.2.1")
	var burst []uint64
	for range 10 {
		burst = append(burst, in.sending(a))
	}
	for i, seq := range burst {
		if in.timeout(a, seq) {
			t.Fatalf("timeout %d of queries sent together put the server on hold", i+1)
		}
	}
	if got := in.servers[a].timeouts; got != 1 {
		t.Fatalf("a burst of 10 timeouts counted %d times, want 1", got)
	}
	// The next ones, each sent after the last timeout, bring the count
	// to the hold-down threshold.
	held := false
	for range timeoutsBeforeHoldDown - 1 {
		held = in.timeout(a, in.sending(a))
	}
	if !held || !in.held(a) {
		t.Errorf("%d timeouts in a row did not put the server on hold", timeoutsBeforeHoldDown)
	}
}

func TestInfraBackoffAndKarn(t *testing.T) {
	in, _ := newTestInfra()
	a := netip.MustParseAddr("192.0.2.1")
	if got := in.queryTimeout(a); got != 800*time.Millisecond {
		t.Fatalf("timeout of a new server = %v, want the initial 800ms", got)
	}
	in.rtt(a, 10*time.Millisecond)
	if got := in.queryTimeout(a); got != minQueryTimeout {
		t.Fatalf("timeout after a 10ms response = %v, want the floor %v", got, minQueryTimeout)
	}
	want := []time.Duration{400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond, 1600 * time.Millisecond}
	for i, w := range want {
		in.timeout(a, in.sending(a))
		if got := in.queryTimeout(a); got != w {
			t.Errorf("timeout after %d timeouts = %v, want %v", i+1, got, w)
		}
	}
	// Timeouts did not feed the RTT estimate: one response brings the
	// timeout back to the floor.
	if s := in.servers[a]; s.srtt != 10*time.Millisecond {
		t.Errorf("smoothed RTT after timeouts = %v, want 10ms unchanged", s.srtt)
	}
	in.rtt(a, 10*time.Millisecond)
	if got := in.queryTimeout(a); got != minQueryTimeout {
		t.Errorf("timeout after a response = %v, want %v", got, minQueryTimeout)
	}
	if in.held(a) {
		t.Error("a response left the server on hold")
	}
}

func TestInfraHoldProbedWithGrowingHolds(t *testing.T) {
	in, clk := newTestInfra()
	a := netip.MustParseAddr("192.0.2.1")
	for range timeoutsBeforeHoldDown {
		in.timeout(a, in.sending(a))
	}
	// Each failed probe doubles the hold, up to the longest hold down.
	for _, hold := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, time.Minute, time.Minute} {
		if !in.held(a) {
			t.Fatalf("server not on hold at the start of a %v hold", hold)
		}
		clk.t = clk.t.Add(hold - time.Millisecond)
		if !in.held(a) {
			t.Fatalf("hold ended before %v", hold)
		}
		clk.t = clk.t.Add(time.Millisecond)
		if in.held(a) {
			t.Fatalf("hold lasted beyond %v", hold)
		}
		if got, ok := in.pick("example.", []netip.Addr{a}, nil); !ok || got != a {
			t.Fatalf("pick after the hold = %v %v, want the server probed", got, ok)
		}
		in.timeout(a, in.sending(a))
	}
	in.rtt(a, time.Millisecond)
	if in.held(a) {
		t.Error("a response to a probe left the server on hold")
	}
}

func TestInfraPickHeldServers(t *testing.T) {
	in, clk := newTestInfra()
	held, other := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	in.state(held).heldUntil = clk.t.Add(time.Minute)
	for range 50 {
		if got, _ := in.pick("example.", []netip.Addr{held, other}, nil); got != other {
			t.Fatalf("pick chose %s, want %s while %s is on hold", got, other, held)
		}
	}
	got, ok := in.pick("example.", []netip.Addr{held}, nil)
	if !ok || got != held {
		t.Errorf("pick with only a held server = %s %v, want it asked as a probe", got, ok)
	}
	// With every server on hold, the one whose hold ends first is asked.
	in.state(other).heldUntil = clk.t.Add(time.Second)
	for range 20 {
		if got, _ := in.pick("example.", []netip.Addr{held, other}, nil); got != other {
			t.Fatalf("pick with both on hold chose %s, want %s, whose hold ends first", got, other)
		}
	}
	in.setLame("example.", other)
	if _, ok := in.pick("example.", []netip.Addr{other}, nil); ok {
		t.Error("pick chose a server lame for the zone")
	}
}

func TestInfraPickAvoidsTimedOutServer(t *testing.T) {
	in, _ := newTestInfra()
	slow, good := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	in.rtt(good, time.Millisecond)
	in.timeout(slow, in.sending(slow))
	picked := 0
	for range 1000 {
		if got, _ := in.pick("example.", []netip.Addr{slow, good}, nil); got == slow {
			picked++
		}
	}
	// Not even the occasional random pick that keeps estimates fresh
	// chooses it: its next timeout is backed off.
	if picked > 0 {
		t.Errorf("a server that just timed out was picked %d times in 1000, want 0", picked)
	}
}

func TestLostQueriesRetried(t *testing.T) {
	for _, tt := range []struct {
		name  string
		fault func(*fakeServer)
	}{
		{"lost", func(s *fakeServer) { s.lose = 2 }},
		{"dropped locally", func(s *fakeServer) { s.refuse = 2 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := labNet(t)
			r, _ := testResolver(t, n, nil)
			// The only server of example.com misses two queries: the
			// third try of the same address gets the answer.
			n.mu.Lock()
			tt.fault(n.server("10.0.3.1"))
			n.mu.Unlock()
			res := resolveOK(t, r, "mail.example.com.", dns.TypeA)
			if got := lastValue(res); got != "192.0.2.25" {
				t.Errorf("mail.example.com A = %q, want 192.0.2.25", got)
			}
			if r.infra.isFailed("example.com.") {
				t.Error("two lost packets marked example.com. as failed")
			}
		})
	}
}

func TestZoneFailedOnlyWhenServersHeld(t *testing.T) {
	n := labNet(t)
	r, _ := testResolver(t, n, func(c *Config) { c.ServerTries = 2 })
	n.mu.Lock()
	n.server("10.0.3.1").lose = 2
	n.mu.Unlock()
	res := r.Resolve(context.Background(), "mail.example.com.", dns.TypeA)
	if res.Rcode != dns.RcodeServerFailure {
		t.Fatalf("with 2 tries and 2 lost queries rcode = %s, want SERVFAIL", dns.RcodeToString[res.Rcode])
	}
	// Two timeouts do not put the server on hold, so the zone is not
	// remembered as failed: the next question reaches the server.
	if r.infra.isFailed("example.com.") {
		t.Fatal("two timeouts marked example.com. as failed")
	}
	resolveOK(t, r, "mail.example.com.", dns.TypeA)
}

func TestLateResponseTaken(t *testing.T) {
	n := labNet(t)
	// One try per address and a 50ms timeout, against a server that
	// answers after 200ms: only the late response can resolve.
	r, _ := testResolver(t, n, func(c *Config) {
		c.QueryTimeout = 50 * time.Millisecond
		c.ServerTries = 1
	})
	n.mu.Lock()
	n.server("10.0.3.1").delay = 200 * time.Millisecond
	n.mu.Unlock()
	res := resolveOK(t, r, "mail.example.com.", dns.TypeA)
	if got := lastValue(res); got != "192.0.2.25" {
		t.Errorf("mail.example.com A = %q, want 192.0.2.25", got)
	}
	if got := n.count("10.0.3.1"); got != 1 {
		t.Errorf("the slow server got %d queries, want 1", got)
	}
}

func TestZoneNotFailedWhileServersAnswer(t *testing.T) {
	n := labNet(t)
	r, _ := testResolver(t, n, nil)
	resolveOK(t, r, "mail.example.com.", dns.TypeA)
	// Three lost queries in a row put the only server on hold, and the
	// next question fails. The server responded a moment ago, so the
	// zone is not remembered as failed.
	n.mu.Lock()
	n.server("10.0.3.1").lose = 3
	n.mu.Unlock()
	res := r.Resolve(context.Background(), "www.x1.ent.example.com.", dns.TypeA)
	if res.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode with every try lost = %s, want SERVFAIL", dns.RcodeToString[res.Rcode])
	}
	if !r.infra.held(netip.MustParseAddr("10.0.3.1")) {
		t.Error("3 timeouts in a row did not put the server on hold")
	}
	if r.infra.isFailed("example.com.") {
		t.Error("example.com. remembered as failed although its server answered within the failure TTL")
	}
}
