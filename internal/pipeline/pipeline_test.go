package pipeline

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"bulwark/internal/cache"
	"bulwark/internal/dnssec"
	"bulwark/internal/resolver"

	"github.com/miekg/dns"
)

// fakeResolver answers every name with one A record, or big TXT records, and
// counts calls.
type fakeResolver struct {
	calls atomic.Int32
}

func (f *fakeResolver) Resolve(ctx context.Context, name string, qtype uint16) resolver.Result {
	f.calls.Add(1)
	switch {
	case name == "fail.example.":
		return resolver.Result{Rcode: dns.RcodeServerFailure, EDE: &resolver.EDE{Code: 22, Text: "no server answered"}}
	case qtype == dns.TypeTXT:
		var rrs []dns.RR
		for i := range 40 {
			rr, _ := dns.NewRR(fmt.Sprintf("%s 300 IN TXT \"%070d\"", name, i))
			rrs = append(rrs, rr)
		}
		return resolver.Result{Answer: rrs}
	}
	if sec, ok := securityOf[name]; ok {
		rr, _ := dns.NewRR(name + " 300 IN A 192.0.2.3")
		sig, _ := dns.NewRR(name + " 300 IN RRSIG A 13 2 300 20270101000000 20260101000000 1 example. AAAA")
		res := resolver.Result{Answer: []dns.RR{rr, sig}, Security: sec}
		if sec == dnssec.Bogus {
			res.EDE = &resolver.EDE{Code: dnssec.EDESignatureExpired, Text: "RRSIG expired"}
		}
		return res
	}
	switch name {
	case "to-bad.example.":
		c, _ := dns.NewRR("to-bad.example. 300 IN CNAME www.bad.example.")
		a, _ := dns.NewRR("www.bad.example. 300 IN A 192.0.2.1")
		return resolver.Result{Answer: []dns.RR{c, a}}
	case "ip66.example.":
		a, _ := dns.NewRR("ip66.example. 300 IN A 192.0.2.66")
		return resolver.Result{Answer: []dns.RR{a}}
	}
	if name == "long.example." {
		rr, _ := dns.NewRR(name + " 604800 IN A 192.0.2.2")
		return resolver.Result{Answer: []dns.RR{rr}}
	}
	rr, _ := dns.NewRR(name + " 300 IN A 192.0.2.1")
	return resolver.Result{Answer: []dns.RR{rr}}
}

// Servers names the servers of every zone: names below hosted.example. are
// served by a listed hoster, the others by ns.example.
func (f *fakeResolver) Servers(name string) (string, []string, []netip.Addr) {
	if strings.HasSuffix(name, ".hosted.example.") {
		return "hosted.example.", []string{"ns1.evil-hoster.example."}, []netip.Addr{netip.MustParseAddr("203.0.113.53")}
	}
	return "example.", []string{"ns.example."}, []netip.Addr{netip.MustParseAddr("192.0.2.53")}
}

// securityOf gives names whose answers carry a validation state.
var securityOf = map[string]dnssec.Security{
	"secure.example.":   dnssec.Secure,
	"insecure.example.": dnssec.Insecure,
	"bogus.example.":    dnssec.Bogus,
}

type testClock struct{ t time.Time }

func (c *testClock) now() time.Time { return c.t }

func newTestPipeline(t *testing.T) (*Pipeline, *fakeResolver, *testClock) {
	t.Helper()
	clk := &testClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := cache.New(cache.Config{MaxBytes: 8 << 20, MaxTTL: time.Hour, MaxNegativeTTL: time.Hour, Now: clk.now})
	fr := &fakeResolver{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := New(Config{BufferSize: 1232, ClientTimeout: time.Second, FailureTTL: 5 * time.Second, MaxResolutions: 10}, c, fr, log, clk.now)
	return p, fr, clk
}

func query(t *testing.T, name string, qtype uint16, edns bool, bufsize uint16) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = 0xbeef
	if edns {
		m.SetEdns0(bufsize, false)
	}
	wire, err := m.Pack()
	if err != nil {
		t.Fatalf("pack query: %v", err)
	}
	return wire
}

// testClient is the address of the test queries' client.
var testClient = netip.MustParseAddr("192.0.2.200")

// handle runs a packet through the fast path and, on a miss, the slow path.
func handle(p *Pipeline, pkt []byte, udp bool) []byte {
	resp, outcome, _ := p.HandleFast(pkt, nil, udp, 0, testClient)
	switch outcome {
	case Answered:
		return resp
	case Slow:
		resp, _ := p.HandleSlow(pkt, udp, 0, testClient)
		return resp
	}
	return nil
}

func unpack(t *testing.T, wire []byte) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(wire); err != nil {
		t.Fatalf("unpack response %x: %v", wire, err)
	}
	return m
}

func TestCacheHitEchoesCaseAndCountsTTLDown(t *testing.T) {
	p, fr, clk := newTestPipeline(t)
	first := unpack(t, handle(p, query(t, "www.example.", dns.TypeA, true, 1232), true))
	if first.Id != 0xbeef || first.Rcode != dns.RcodeSuccess || len(first.Answer) != 1 {
		t.Fatalf("first response = %v, want ID beef and one A", first)
	}
	clk.t = clk.t.Add(30 * time.Second)
	resp, outcome, _ := p.HandleFast(query(t, "WwW.ExAmPlE.", dns.TypeA, false, 0), nil, true, 0, testClient)
	if outcome != Answered {
		t.Fatalf("HandleFast outcome = %d for a cached name, want Answered", outcome)
	}
	m := unpack(t, resp)
	if m.Question[0].Name != "WwW.ExAmPlE." {
		t.Errorf("question = %q, want the client's case WwW.ExAmPlE.", m.Question[0].Name)
	}

	if ttl := m.Answer[0].Header().Ttl; ttl != 270 {
		t.Errorf("TTL after 30s = %d, want 270", ttl)
	}
	if m.IsEdns0() != nil {
		t.Error("response has OPT although the query had none")
	}
	if got := fr.calls.Load(); got != 1 {
		t.Errorf("resolver called %d times, want 1", got)
	}
}

func TestFreshAnswerTTLClamped(t *testing.T) {
	p, _, _ := newTestPipeline(t)
	m := unpack(t, handle(p, query(t, "long.example.", dns.TypeA, false, 0), true))
	if len(m.Answer) != 1 || m.Answer[0].Header().Ttl != 3600 {
		t.Errorf("answer %v, want TTL 604800 clamped to the maximum 3600", m.Answer)
	}
}

func TestTruncation(t *testing.T) {
	p, _, _ := newTestPipeline(t)
	tests := []struct {
		name    string
		edns    bool
		bufsize uint16
		udp     bool
		wantTC  bool
	}{
		{"udp without edns", false, 0, true, true},
		{"udp with 1232", true, 1232, true, true},
		{"udp with 4096 capped at 1232", true, 4096, true, true},
		{"tcp", false, 0, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := unpack(t, handle(p, query(t, "big.example.", dns.TypeTXT, tt.edns, tt.bufsize), tt.udp))
			if m.Truncated != tt.wantTC {
				t.Errorf("TC = %v, want %v", m.Truncated, tt.wantTC)
			}
			if tt.wantTC && len(m.Answer) != 0 {
				t.Errorf("truncated response has %d answers, want none (no partial RRset)", len(m.Answer))
			}
			if !tt.wantTC && len(m.Answer) != 40 {
				t.Errorf("response has %d answers, want 40", len(m.Answer))
			}
			if tt.edns && m.IsEdns0() == nil {
				t.Error("EDNS query got no OPT in the response")
			}
		})
	}
}

func TestFailureCarriesEDEAndIsCached(t *testing.T) {
	p, fr, clk := newTestPipeline(t)
	m := unpack(t, handle(p, query(t, "fail.example.", dns.TypeA, true, 1232), true))
	if m.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode = %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	var ede *dns.EDNS0_EDE
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				ede = e
			}
		}
	}
	if ede == nil || ede.InfoCode != 22 {
		t.Errorf("EDE = %v, want code 22", ede)
	}
	handle(p, query(t, "fail.example.", dns.TypeA, true, 1232), true)
	if got := fr.calls.Load(); got != 1 {
		t.Errorf("resolver called %d times within the failure TTL, want 1", got)
	}
	clk.t = clk.t.Add(6 * time.Second)
	handle(p, query(t, "fail.example.", dns.TypeA, true, 1232), true)
	if got := fr.calls.Load(); got != 2 {
		t.Errorf("resolver called %d times after the failure TTL, want 2", got)
	}
}

func TestMalformedQueries(t *testing.T) {
	tests := []struct {
		name      string
		hex       string
		wantRcode int // -1: no response
	}{
		{"two questions", "1234010000020000000000000161076578616d706c6500000100010162076578616d706c650000010001", dns.RcodeFormatError},
		{"no question", "23450000000000000000000000", dns.RcodeFormatError},
		{"opcode 15", "345678000001000000000000076578616d706c650000010001", dns.RcodeNotImplemented},
		{"two OPT records", "456701000001000000000002076578616d706c65000001000100002904d000000000000000002904d0000000000000", dns.RcodeFormatError},
		{"EDNS version 1", "567801000001000000000001076578616d706c65000001000100002904d0000100000000", dns.RcodeBadVers},
		{"response bit set", "67898100000100000000000007076578616d706c650000010001", -1},
		{"short header", "1234", -1},
		{"label past end", "789a0100000100000000000005ab", dns.RcodeFormatError},
		{"class CH", "89ab01000001000000000000076578616d706c650000100003", dns.RcodeRefused},
		{"AXFR", "9abc01000001000000000000076578616d706c650000fc0001", dns.RcodeRefused},
		{"question without type and class", "12340100000100000000000003777777096d6963726f736f667403636f6d00", dns.RcodeFormatError},
		{"EDNS option longer than the record", "567801000001000000000001076578616d706c65000001000100002904d000000000000400080004", dns.RcodeFormatError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, fr, _ := newTestPipeline(t)
			pkt, err := hex.DecodeString(tt.hex)
			if err != nil {
				t.Fatalf("bad test hex: %v", err)
			}
			resp := handle(p, pkt, true)
			if tt.wantRcode < 0 {
				if resp != nil {
					t.Errorf("got a response %x, want none", resp)
				}
				return
			}
			if resp == nil {
				t.Fatalf("got no response, want rcode %s", dns.RcodeToString[tt.wantRcode])
			}
			if len(resp) < 12 || resp[0] != pkt[0] || resp[1] != pkt[1] {
				t.Fatalf("response %x does not echo the ID of %x", resp, pkt[:2])
			}
			rcode := int(resp[3] & 0x0f)
			if m := new(dns.Msg); m.Unpack(resp) == nil {
				rcode = m.Rcode
			}
			if rcode != tt.wantRcode {
				t.Errorf("rcode = %s, want %s", dns.RcodeToString[rcode], dns.RcodeToString[tt.wantRcode])
			}
			if fr.calls.Load() != 0 {
				t.Error("a malformed query reached the resolver")
			}
		})
	}
}

func TestExtendedRcodeInQueryIgnored(t *testing.T) {
	p, _, _ := newTestPipeline(t)
	pkt, _ := hex.DecodeString("567801000001000000000001076578616d706c65000001000100002904d0050000000000")
	m := unpack(t, handle(p, pkt, true))
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
		t.Errorf("query with extended RCODE 5 in its OPT got %s with %d answers, want NOERROR with 1", dns.RcodeToString[m.Rcode], len(m.Answer))
	}
}

func TestCacheHitDoesNotAllocate(t *testing.T) {
	p, _, _ := newTestPipeline(t)
	pkt := query(t, "www.example.", dns.TypeA, true, 1232)
	handle(p, pkt, true)
	out := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		if _, outcome, _ := p.HandleFast(pkt, out, true, 0, testClient); outcome != Answered {
			t.Fatal("cache miss on the fast path")
		}
	})
	if allocs != 0 {
		t.Errorf("HandleFast on a cache hit made %.1f allocations, want 0", allocs)
	}
}

func TestDNSSECFlags(t *testing.T) {
	p, _, _ := newTestPipeline(t)
	for _, tt := range []struct {
		name       string
		qname      string
		ad, cd, do bool
		rcode      int
		wantAD     bool
		wantSigs   bool
		wantEDE    uint16
	}{
		{"secure with AD", "secure.example.", true, false, false, dns.RcodeSuccess, true, false, 0},
		{"secure with DO", "secure.example.", false, false, true, dns.RcodeSuccess, true, true, 0},
		{"secure without AD or DO", "secure.example.", false, false, false, dns.RcodeSuccess, false, false, 0},
		{"insecure", "insecure.example.", true, false, true, dns.RcodeSuccess, false, true, 0},
		{"bogus", "bogus.example.", true, false, true, dns.RcodeServerFailure, false, false, dnssec.EDESignatureExpired},
		{"bogus with CD", "bogus.example.", true, true, true, dns.RcodeSuccess, false, true, dnssec.EDESignatureExpired},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion(tt.qname, dns.TypeA)
			m.AuthenticatedData, m.CheckingDisabled = tt.ad, tt.cd
			m.SetEdns0(1232, tt.do)
			pkt, _ := m.Pack()
			for round := range 2 { // resolved, then from the answer cache
				r := unpack(t, handle(p, pkt, true))
				if r.Rcode != tt.rcode {
					t.Fatalf("round %d: rcode %s, want %s", round, dns.RcodeToString[r.Rcode], dns.RcodeToString[tt.rcode])
				}
				if r.AuthenticatedData != tt.wantAD {
					t.Errorf("round %d: AD %v, want %v", round, r.AuthenticatedData, tt.wantAD)
				}
				if r.CheckingDisabled != tt.cd {
					t.Errorf("round %d: CD %v, want %v", round, r.CheckingDisabled, tt.cd)
				}
				sigs := false
				for _, rr := range r.Answer {
					sigs = sigs || rr.Header().Rrtype == dns.TypeRRSIG
				}
				if sigs != tt.wantSigs {
					t.Errorf("round %d: RRSIG in answer %v, want %v", round, sigs, tt.wantSigs)
				}
				var ede uint16
				if opt := r.IsEdns0(); opt != nil {
					for _, o := range opt.Option {
						if e, ok := o.(*dns.EDNS0_EDE); ok {
							ede = e.InfoCode
						}
					}
				}
				if ede != tt.wantEDE {
					t.Errorf("round %d: EDE %d, want %d", round, ede, tt.wantEDE)
				}
			}
		})
	}
}
