package cache

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

func newStaleCache(staleMaxAge time.Duration) (*Cache, *clock) {
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := New(Config{MaxBytes: 1 << 20, MaxTTL: time.Hour, MaxNegativeTTL: time.Hour, StaleMaxAge: staleMaxAge, Now: clk.now})
	return c, clk
}

func packA(t *testing.T, ttl uint32, now time.Time) *Packed {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("www.example.", dns.TypeA)
	m.Response = true
	rr, _ := dns.NewRR("www.example. 60 IN A 192.0.2.1")
	m.Answer = []dns.RR{rr}
	p, err := Pack(m, ttl, now, []byte{0, 15, 0, 2, 0, 1})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var staleKey = AnswerKey(nil, []byte("\x03www\x07example\x00"), dns.TypeA, 0)

func TestStaleAnswerWindow(t *testing.T) {
	tests := []struct {
		name        string
		staleMaxAge time.Duration
		allow       bool
		age         time.Duration // since the store
		want        bool
	}{
		{"fresh", time.Hour, true, 30 * time.Second, false},
		{"just expired", time.Hour, true, 60 * time.Second, true},
		{"within max age", time.Hour, true, 60*time.Second + 59*time.Minute, true},
		{"at max age", time.Hour, true, 60*time.Second + time.Hour, false},
		{"not allowed", time.Hour, false, 2 * time.Minute, false},
		{"serve-stale off", 0, true, 2 * time.Minute, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, clk := newStaleCache(tt.staleMaxAge)
			p := packA(t, 60, clk.t)
			if tt.allow {
				p.AllowStale()
			}
			c.StoreAnswer(staleKey, p)
			clk.t = clk.t.Add(tt.age)
			if _, ok := c.StaleAnswer(staleKey, clk.t); ok != tt.want {
				t.Errorf("StaleAnswer after %s = %t, want %t", tt.age, ok, tt.want)
			}
		})
	}
}

func TestStaleCopy(t *testing.T) {
	c, clk := newStaleCache(time.Hour)
	p := packA(t, 60, clk.t)
	p.AllowStale()
	c.StoreAnswer(staleKey, p)
	clk.t = clk.t.Add(2 * time.Minute)
	stale := []byte{0, 15, 0, 2, 0, 3}
	cp := p.StaleCopy(clk.t, 30, 5*time.Second, stale)
	if !cp.Stale() || cp.Expired(clk.t) || !cp.Expired(clk.t.Add(5*time.Second)) {
		t.Errorf("StaleCopy: stale %t, expired now %t; want stale and served for 5s", cp.Stale(), cp.Expired(clk.t))
	}
	m := new(dns.Msg)
	if err := m.Unpack(cp.AppendTo(nil, clk.t.Add(time.Second))); err != nil {
		t.Fatal(err)
	}
	if ttl := m.Answer[0].Header().Ttl; ttl != 29 {
		t.Errorf("stale TTL one second on = %d, want 29", ttl)
	}
	if got, want := string(cp.Options()), string(p.Options())+string(stale); got != want {
		t.Errorf("options = %x, want %x", got, want)
	}
	if again := cp.StaleCopy(clk.t, 30, time.Second, stale); string(again.Options()) != string(cp.Options()) {
		t.Errorf("copy of a stale copy: options = %x, want them unchanged", again.Options())
	}

	// A copy is served no longer than its original may be.
	late := p.StaleCopy(p.staleUntil.Add(-time.Second), 30, time.Minute, stale)
	if !late.Expired(p.staleUntil) {
		t.Error("stale copy made near the end of the stale age outlives it")
	}
}

func TestClaimPrefetch(t *testing.T) {
	_, clk := newStaleCache(time.Hour)
	tests := []struct {
		name string
		ttl  uint32
		age  time.Duration
		want bool
	}{
		{"a tenth left", 100, 90 * time.Second, false},
		{"under a tenth left", 100, 91 * time.Second, true},
		{"short TTL", 9, 9 * time.Second, false},
		{"TTL of 10s", 10, 9500 * time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := packA(t, tt.ttl, clk.t)
			if got := p.ClaimPrefetch(clk.t.Add(tt.age)); got != tt.want {
				t.Errorf("ClaimPrefetch(ttl %d, age %s) = %t, want %t", tt.ttl, tt.age, got, tt.want)
			}
		})
	}

	p := packA(t, 100, clk.t)
	now := clk.t.Add(95 * time.Second)
	if !p.ClaimPrefetch(now) || p.ClaimPrefetch(now) {
		t.Error("ClaimPrefetch twice: want true, then false")
	}
	p.ReleasePrefetch()
	if !p.ClaimPrefetch(now) {
		t.Error("ClaimPrefetch after ReleasePrefetch = false, want true")
	}
	if p.StaleCopy(now, 30, time.Second, nil).ClaimPrefetch(now.Add(900 * time.Millisecond)) {
		t.Error("ClaimPrefetch on a stale copy = true, want false")
	}
}

func TestInspectListsStale(t *testing.T) {
	c, clk := newStaleCache(time.Hour)
	rr, _ := dns.NewRR("www.example. 60 IN A 192.0.2.1")
	c.StoreRRset([]dns.RR{rr}, RankAnswer)
	p := packA(t, 60, clk.t)
	p.AllowStale()
	c.StoreAnswer(staleKey, p)

	clk.t = clk.t.Add(2 * time.Minute)
	entries, answers := c.Inspect("www.example.")
	if len(entries) != 1 || !entries[0].Stale || entries[0].TTL != 0 || entries[0].StaleAge != time.Minute {
		t.Errorf("Inspect entries = %+v, want one stale RRset expired 1m ago", entries)
	}
	if len(answers) != 1 || !answers[0].Stale || answers[0].TTL != 0 {
		t.Errorf("Inspect answers = %+v, want one stale response", answers)
	}

	clk.t = clk.t.Add(time.Hour)
	if entries, answers := c.Inspect("www.example."); len(entries)+len(answers) != 0 {
		t.Errorf("Inspect past the stale age = %d entries, %d answers; want none", len(entries), len(answers))
	}
	if _, ok := c.Set("www.example.", dns.TypeA); ok {
		t.Error("Set returned an expired RRset")
	}
}
