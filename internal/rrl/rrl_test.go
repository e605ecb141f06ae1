package rrl

import (
	"net/netip"
	"testing"
)

func testConfig() Config {
	return Config{Rate: 10, Burst: 10, Slip: 2, IPv4Prefix: 24, IPv6Prefix: 56, TableSize: 1024}
}

// count sends n responses to client at now and returns how many got each
// action.
func count(l *Limiter, client netip.Addr, now uint32, n int) (sent, slipped, dropped int) {
	for range n {
		switch l.Check(client, now) {
		case Send:
			sent++
		case Slip:
			slipped++
		case Drop:
			dropped++
		}
	}
	return
}

func TestBurstThenSlip(t *testing.T) {
	l := New(testConfig())
	sent, slipped, dropped := count(l, netip.MustParseAddr("192.0.2.1"), 0, 30)
	if sent != 10 || slipped != 10 || dropped != 10 {
		t.Errorf("30 responses: sent %d, slipped %d, dropped %d; want 10, 10, 10", sent, slipped, dropped)
	}
}

func TestPrefixShared(t *testing.T) {
	l := New(testConfig())
	count(l, netip.MustParseAddr("192.0.2.1"), 0, 10)
	if got := l.Check(netip.MustParseAddr("192.0.2.200"), 0); got == Send {
		t.Error("second address of an exhausted /24 got Send, want it limited")
	}
	if got := l.Check(netip.MustParseAddr("192.0.3.1"), 0); got != Send {
		t.Errorf("address of another /24 got %d, want Send", got)
	}
	count(l, netip.MustParseAddr("2001:db8:0:1::1"), 0, 10)
	if got := l.Check(netip.MustParseAddr("2001:db8:0:ff::2"), 0); got == Send {
		t.Error("second address of an exhausted /56 got Send, want it limited")
	}
	if got := l.Check(netip.MustParseAddr("2001:db8:0:100::1"), 0); got != Send {
		t.Errorf("address of another /56 got %d, want Send", got)
	}
}

func TestRefillKeepsFractions(t *testing.T) {
	cfg := testConfig()
	cfg.Rate, cfg.Burst = 5, 1 // one token every 200 ms
	l := New(cfg)
	client := netip.MustParseAddr("198.51.100.9")
	sent := 0
	// One response every 50 ms for 10 s earns 50 tokens, 1 in the
	// bucket at the start.
	for now := uint32(0); now < 10_000; now += 50 {
		if l.Check(client, now) == Send {
			sent++
		}
	}
	if sent < 49 || sent > 51 {
		t.Errorf("sent %d responses in 10 s at 5/s, want about 50", sent)
	}
}

func TestSlipSettings(t *testing.T) {
	tests := []struct {
		slip             int
		slipped, dropped int
	}{{0, 0, 12}, {1, 12, 0}, {3, 4, 8}}
	for _, tt := range tests {
		cfg := testConfig()
		cfg.Slip = tt.slip
		l := New(cfg)
		_, slipped, dropped := count(l, netip.MustParseAddr("203.0.113.4"), 0, 22)
		if slipped != tt.slipped || dropped != tt.dropped {
			t.Errorf("slip %d: slipped %d, dropped %d; want %d, %d", tt.slip, slipped, dropped, tt.slipped, tt.dropped)
		}
	}
}

func TestClockWraps(t *testing.T) {
	l := New(testConfig())
	client := netip.MustParseAddr("192.0.2.77")
	start := ^uint32(0) - 500
	count(l, client, start, 10)
	if got := l.Check(client, start); got == Send {
		t.Fatal("exhausted bucket got Send")
	}
	if got := l.Check(client, start+1000); got != Send { // wrapped past zero
		t.Errorf("a second after the bucket emptied, across the wrap: got %d, want Send", got)
	}
}

func TestExempt(t *testing.T) {
	cfg := testConfig()
	cfg.Exempt = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	l := New(cfg)
	for _, tt := range []struct {
		addr string
		want bool
	}{{"127.0.0.9", true}, {"::1", true}, {"::ffff:127.0.0.1", true}, {"192.0.2.1", false}} {
		if got := l.Exempt(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("Exempt(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

func TestCheckAllocatesNothing(t *testing.T) {
	l := New(testConfig())
	client := netip.MustParseAddr("192.0.2.1")
	if n := testing.AllocsPerRun(1000, func() { l.Check(client, 5) }); n != 0 {
		t.Errorf("Check allocates %v times a call, want 0", n)
	}
}

func BenchmarkCheck(b *testing.B) {
	cfg := testConfig()
	cfg.Rate, cfg.Burst, cfg.TableSize = 1000, 1000, 1<<16
	l := New(cfg)
	client := netip.MustParseAddr("192.0.2.1")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		l.Check(client, uint32(i))
	}
}
