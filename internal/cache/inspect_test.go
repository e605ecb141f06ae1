package cache

import (
	"testing"
	"time"

	"bulwark/internal/dnssec"

	"github.com/miekg/dns"
)

// fillName caches, for www.example.com., an A RRset, a NODATA for AAAA
// and a packed response, and an A RRset for a name below it.
func fillName(t *testing.T, c *Cache, clk *clock) {
	t.Helper()
	c.StoreSet(Set{
		RRs:  []dns.RR{mustRR(t, "www.example.com. 300 IN A 192.0.2.1")},
		Sigs: []dns.RR{mustRR(t, "www.example.com. 300 IN RRSIG A 13 3 300 20260201000000 20251201000000 12345 example.com. AAAA")},
		Rank: RankAnswer, Security: dnssec.Secure,
	}, 0)
	soa := mustRR(t, "example.com. 600 IN SOA ns.example.com. admin.example.com. 1 3600 600 86400 120").(*dns.SOA)
	c.StoreNegativeProof("www.example.com.", dns.TypeAAAA, Negative{SOA: soa, Security: dnssec.Insecure}, 0)
	c.StoreRRset([]dns.RR{mustRR(t, "a.www.example.com. 300 IN A 192.0.2.2")}, RankAnswer)

	m := new(dns.Msg)
	m.SetQuestion("www.example.com.", dns.TypeA)
	m.Response, m.AuthenticatedData = true, true
	m.Answer = []dns.RR{mustRR(t, "www.example.com. 300 IN A 192.0.2.1")}
	pk, err := Pack(m, 300, clk.now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	key := AnswerKey(nil, []byte("\x03WWW\x07example\x03com\x00"), dns.TypeA, 1)
	c.StoreAnswer(append(key, 2, 0, 9), pk)
}

func TestInspectName(t *testing.T) {
	c, clk := newTestCache(t)
	fillName(t, c, clk)
	clk.t = clk.t.Add(20 * time.Second)

	entries, answers := c.Inspect("WWW.example.com")
	if len(entries) != 2 {
		t.Fatalf("Inspect returned %d entries, want 2: %+v", len(entries), entries)
	}
	a, neg := entries[0], entries[1]
	if a.Type != dns.TypeA || a.Negative || a.TTL != 280 || a.Security != dnssec.Secure || len(a.RRs) != 1 || len(a.Sigs) != 1 {
		t.Errorf("A entry = %+v, want a secure RRset with one record and one RRSIG, TTL 280", a)
	}
	if got := a.RRs[0].Header().Ttl; got != 280 {
		t.Errorf("A record TTL %d, want 280", got)
	}
	if neg.Type != dns.TypeAAAA || !neg.Negative || neg.NXDomain || neg.TTL != 100 || neg.Security != dnssec.Insecure {
		t.Errorf("AAAA entry = %+v, want an insecure NODATA with TTL 100", neg)
	}
	if len(neg.RRs) != 1 || neg.RRs[0].Header().Rrtype != dns.TypeSOA {
		t.Errorf("NODATA records %v, want its SOA", neg.RRs)
	}

	if len(answers) != 1 {
		t.Fatalf("Inspect returned %d answers, want 1", len(answers))
	}
	ans := answers[0]
	if ans.Type != dns.TypeA || ans.Flags != 1 || string(ans.Variant) != "\x02\x00\x09" || ans.TTL != 280 ||
		ans.Rcode != dns.RcodeSuccess || !ans.AD || ans.Records != 1 {
		t.Errorf("answer = %+v, want A flags 1 variant 020009 TTL 280 NOERROR AD with 1 record", ans)
	}

	clk.t = clk.t.Add(100 * time.Second)
	if entries, _ := c.Inspect("www.example.com."); len(entries) != 1 {
		t.Errorf("after the NODATA expired, Inspect returned %d entries, want 1", len(entries))
	}
}

func TestFlushName(t *testing.T) {
	c, clk := newTestCache(t)
	fillName(t, c, clk)
	if n := c.FlushName("www.example.com."); n != 3 {
		t.Errorf("FlushName(www.example.com.) = %d, want 3", n)
	}
	if entries, answers := c.Inspect("www.example.com."); len(entries)+len(answers) != 0 {
		t.Errorf("after FlushName, Inspect returned %v and %v", entries, answers)
	}
	if _, _, ok := c.RRset("a.www.example.com.", dns.TypeA); !ok {
		t.Error("FlushName removed a name below the one flushed")
	}
}
