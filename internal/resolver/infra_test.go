package resolver

import (
	"net/netip"
	"testing"
	"time"
)

func TestInfraTimeoutsInFlightCountOnce(t *testing.T) {
	clk := &testClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	in := newInfra(time.Minute, clk.now)
	a := netip.MustParseAddr("192.0.2.1")
	sent := clk.t
	clk.t = clk.t.Add(time.Second)
	for i := range 10 {
		if in.timeout(a, time.Second, sent) {
			t.Fatalf("timeout %d of queries sent together put the server on hold", i+1)
		}
	}
	// The burst counted as one timeout; the next ones bring the count to
	// the hold-down threshold.
	held := false
	for range timeoutsBeforeHoldDown - 1 {
		sent = clk.t.Add(time.Millisecond)
		clk.t = sent.Add(time.Second)
		held = in.timeout(a, time.Second, sent)
	}
	if !held {
		t.Errorf("%d timeouts in a row did not put the server on hold", timeoutsBeforeHoldDown)
	}
}

func TestInfraPickHeldServers(t *testing.T) {
	clk := &testClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	in := newInfra(time.Minute, clk.now)
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
	in.setLame("example.", other)
	if _, ok := in.pick("example.", []netip.Addr{other}, nil); ok {
		t.Error("pick chose a server lame for the zone")
	}
}
