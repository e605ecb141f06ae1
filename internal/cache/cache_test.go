package cache

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestCache(t *testing.T) (*Cache, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := New(Config{
		MaxBytes: 1 << 20, MinTTL: 5 * time.Second, MaxTTL: time.Hour,
		MaxNegativeTTL: 10 * time.Minute, Now: clk.now,
	})
	return c, clk
}

func mustRR(t *testing.T, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatalf("dns.NewRR(%q): %v", s, err)
	}
	return rr
}

func TestRRsetTTLCountsDown(t *testing.T) {
	c, clk := newTestCache(t)
	c.StoreRRset([]dns.RR{mustRR(t, "www.Example.com. 300 IN A 192.0.2.1")}, RankAnswer)
	clk.t = clk.t.Add(100 * time.Second)
	rrs, _, ok := c.RRset("WWW.example.COM.", dns.TypeA)
	if !ok {
		t.Fatal("RRset(www.example.com, A) not found after 100s of 300s")
	}
	if got := rrs[0].Header().Ttl; got != 200 {
		t.Errorf("TTL after 100s = %d, want 200", got)
	}
	clk.t = clk.t.Add(200 * time.Second)
	if _, _, ok := c.RRset("www.example.com.", dns.TypeA); ok {
		t.Error("RRset still found at its expiry time")
	}
}

func TestRRsetTTLClamping(t *testing.T) {
	tests := []struct {
		name string
		rrs  []string
		want uint32
	}{
		{"below minimum", []string{"a.example. 1 IN A 192.0.2.1"}, 5},
		{"above maximum", []string{"a.example. 86400 IN A 192.0.2.1"}, 3600},
		{"lowest of set", []string{"a.example. 300 IN A 192.0.2.1", "a.example. 100 IN A 192.0.2.2"}, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newTestCache(t)
			var rrs []dns.RR
			for _, s := range tt.rrs {
				rrs = append(rrs, mustRR(t, s))
			}
			c.StoreRRset(rrs, RankAnswer)
			got, _, ok := c.RRset("a.example.", dns.TypeA)
			if !ok {
				t.Fatal("RRset not stored")
			}
			for _, rr := range got {
				if rr.Header().Ttl != tt.want {
					t.Errorf("TTL = %d, want %d", rr.Header().Ttl, tt.want)
				}
			}
		})
	}
}

func TestRRsetRank(t *testing.T) {
	c, clk := newTestCache(t)
	c.StoreRRset([]dns.RR{mustRR(t, "ns1.example. 300 IN A 192.0.2.1")}, RankAnswer)
	c.StoreRRset([]dns.RR{mustRR(t, "ns1.example. 300 IN A 192.0.2.99")}, RankGlue)
	rrs, rank, _ := c.RRset("ns1.example.", dns.TypeA)
	if got := rrs[0].(*dns.A).A.String(); got != "192.0.2.1" || rank != RankAnswer {
		t.Errorf("after glue over answer: %s rank %d, want 192.0.2.1 rank %d", got, rank, RankAnswer)
	}
	clk.t = clk.t.Add(301 * time.Second)
	c.StoreRRset([]dns.RR{mustRR(t, "ns1.example. 300 IN A 192.0.2.99")}, RankGlue)
	rrs, _, _ = c.RRset("ns1.example.", dns.TypeA)
	if got := rrs[0].(*dns.A).A.String(); got != "192.0.2.99" {
		t.Errorf("glue after answer expired = %s, want 192.0.2.99", got)
	}
}

func TestNegativeTTL(t *testing.T) {
	c, clk := newTestCache(t)
	soa := mustRR(t, "example. 86400 IN SOA ns.example. host.example. 1 3600 600 86400 60").(*dns.SOA)
	c.StoreNegative("nope.example.", dns.TypeA, true, soa)
	clk.t = clk.t.Add(10 * time.Second)
	neg, ok := c.Negative("NOPE.example.", dns.TypeAAAA)
	if !ok || !neg.NXDomain {
		t.Fatalf("Negative(nope.example, AAAA) = %+v, %v; want NXDOMAIN for every type", neg, ok)
	}
	if neg.SOA.Hdr.Ttl != 50 {
		t.Errorf("SOA TTL after 10s = %d, want 50 (MINIMUM 60 minus 10)", neg.SOA.Hdr.Ttl)
	}
	c.StoreNegative("host.example.", dns.TypeMX, false, soa)
	if _, ok := c.Negative("host.example.", dns.TypeA); ok {
		t.Error("NODATA for MX was returned for A")
	}
	if neg, ok := c.Negative("host.example.", dns.TypeMX); !ok || neg.NXDomain {
		t.Errorf("Negative(host.example, MX) = %+v, %v; want NODATA", neg, ok)
	}
	clk.t = clk.t.Add(61 * time.Second)
	if _, ok := c.Negative("nope.example.", dns.TypeA); ok {
		t.Error("NXDOMAIN still cached after the negative TTL")
	}
}

func TestByteBound(t *testing.T) {
	c, _ := newTestCache(t)
	for i := range 20000 {
		c.StoreRRset([]dns.RR{mustRR(t, fmt.Sprintf("n%d.example. 300 IN TXT \"%0100d\"", i, i))}, RankAnswer)
	}
	_, _, bytes := c.Stats()
	if bytes > 1<<20 {
		t.Errorf("cache holds %d bytes, want at most %d", bytes, 1<<20)
	}
	if _, _, ok := c.RRset("n19999.example.", dns.TypeTXT); !ok {
		t.Error("newest entry was evicted")
	}
	if _, _, ok := c.RRset("n0.example.", dns.TypeTXT); ok {
		t.Error("oldest entry survived 2 MB of inserts into a 1 MB cache")
	}
}

func TestPackedTTLPatch(t *testing.T) {
	c, clk := newTestCache(t)
	m := new(dns.Msg)
	m.SetQuestion("www.example.com.", dns.TypeA)
	m.Response = true
	m.Answer = []dns.RR{
		mustRR(t, "www.example.com. 300 IN CNAME web.example.net."),
		mustRR(t, "web.example.net. 60 IN A 192.0.2.7"),
	}
	p, err := Pack(m, 60, clk.t, nil)
	if err != nil {
		t.Fatalf("Pack: %v", err)
	}
	key := AnswerKey(nil, []byte("\x03WWW\x07example\x03com\x00"), dns.TypeA, 0)
	c.StoreAnswer(key, p)
	clk.t = clk.t.Add(25 * time.Second)
	got, ok := c.Answer(AnswerKey(nil, []byte("\x03www\x07EXAMPLE\x03com\x00"), dns.TypeA, 0), clk.t)
	if !ok {
		t.Fatal("Answer not found under a key differing only in case")
	}
	var out dns.Msg
	if err := out.Unpack(got.AppendTo(nil, clk.t)); err != nil {
		t.Fatalf("unpack served response: %v", err)
	}
	if ttl := out.Answer[0].Header().Ttl; ttl != 275 {
		t.Errorf("CNAME TTL after 25s = %d, want 275", ttl)
	}
	if ttl := out.Answer[1].Header().Ttl; ttl != 35 {
		t.Errorf("A TTL after 25s = %d, want 35", ttl)
	}
	clk.t = clk.t.Add(35 * time.Second)
	if _, ok := c.Answer(key, clk.t); ok {
		t.Error("Answer served after its expiry")
	}
}

func TestTTLOffsetsRejectsTruncated(t *testing.T) {
	m := new(dns.Msg)
	m.SetQuestion("example.", dns.TypeA)
	m.Answer = []dns.RR{mustRR(t, "example. 300 IN A 192.0.2.1")}
	wire, _ := m.Pack()
	binary.BigEndian.PutUint16(wire[6:], 3)
	if _, err := ttlOffsets(wire); err == nil {
		t.Error("ttlOffsets accepted a message claiming 3 answers with 1 present")
	}
}

func TestFlushZone(t *testing.T) {
	c := New(Config{MaxBytes: 1 << 20, MaxTTL: time.Hour, MaxNegativeTTL: time.Hour})
	for _, name := range []string{"example.", "www.example.", "a.b.example.", "example.net.", "notexample."} {
		rr, _ := dns.NewRR(name + " 300 IN A 192.0.2.1")
		c.StoreRRset([]dns.RR{rr}, RankAnswer)
	}
	m := new(dns.Msg)
	m.SetQuestion("www.example.", dns.TypeA)
	pk, err := Pack(m, 60, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.StoreAnswer(AnswerKey(nil, []byte("\x03WWW\x07example\x00"), dns.TypeA, 0), pk)

	if got := c.Flush("Example."); got != 4 {
		t.Errorf("Flush removed %d entries, want 4 (3 RRsets, 1 response)", got)
	}
	for _, name := range []string{"example.net.", "notexample."} {
		if _, _, ok := c.RRset(name, dns.TypeA); !ok {
			t.Errorf("%s was flushed, want it kept", name)
		}
	}
	if _, _, ok := c.RRset("a.b.example.", dns.TypeA); ok {
		t.Error("a.b.example. survived the flush")
	}
	if records, answers, _ := c.Stats(); records != 2 || answers != 0 {
		t.Errorf("after flush %d records and %d responses, want 2 and 0", records, answers)
	}
}

func TestUsageCountsEachCache(t *testing.T) {
	c, clk := newTestCache(t)
	c.StoreRRset([]dns.RR{mustRR(t, "a.example. 300 IN A 192.0.2.1")}, RankAnswer)
	c.StoreRRset([]dns.RR{mustRR(t, "b.example. 300 IN A 192.0.2.2")}, RankAnswer)
	m := new(dns.Msg)
	m.SetQuestion("a.example.", dns.TypeA)
	pk, err := Pack(m, 60, clk.t, nil)
	if err != nil {
		t.Fatalf("Pack: %v", err)
	}
	c.StoreAnswer(AnswerKey(nil, []byte("\x01a\x07example\x00"), dns.TypeA, 0), pk)

	u := c.Usage()
	if u.RRsets != 2 {
		t.Errorf("RRsets = %d, want 2", u.RRsets)
	}
	if u.Answers != 1 {
		t.Errorf("Answers = %d, want 1", u.Answers)
	}
	if u.RRsetBytes <= 0 || u.AnswerBytes <= int64(pk.Len()) {
		t.Errorf("RRsetBytes = %d, AnswerBytes = %d; want both above 0 and the answer above its %d wire bytes",
			u.RRsetBytes, u.AnswerBytes, pk.Len())
	}
	if u.MaxBytes != 1<<20 {
		t.Errorf("MaxBytes = %d, want %d", u.MaxBytes, 1<<20)
	}
	if _, _, bytes := c.Stats(); bytes != u.RRsetBytes+u.AnswerBytes {
		t.Errorf("Stats bytes %d, want the sum of Usage's %d and %d", bytes, u.RRsetBytes, u.AnswerBytes)
	}
}

func TestPackedTagServedBack(t *testing.T) {
	c, clk := newTestCache(t)
	m := new(dns.Msg)
	m.SetQuestion("blocked.example.", dns.TypeA)
	pk, err := Pack(m, 60, clk.t, nil)
	if err != nil {
		t.Fatalf("Pack: %v", err)
	}
	if pk.Tag() != 0 {
		t.Errorf("new Packed has tag %d, want 0", pk.Tag())
	}
	pk.SetTag(0x10203)
	key := AnswerKey(nil, []byte("\x07blocked\x07example\x00"), dns.TypeA, 0)
	c.StoreAnswer(key, pk)
	got, ok := c.Answer(key, clk.t)
	if !ok {
		t.Fatal("tagged answer not found")
	}
	if got.Tag() != 0x10203 {
		t.Errorf("cached answer has tag %#x, want 0x10203", got.Tag())
	}
}
