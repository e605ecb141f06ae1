package pipeline

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"bulwark/internal/proceed"

	"github.com/miekg/dns"
)

var (
	exemptClient = netip.MustParseAddr("192.0.2.201")
	otherClient  = netip.MustParseAddr("192.0.2.202")
)

// newProceedPipeline returns a pipeline with the policy of testPolicy, in
// which protective (flavour 1) lets clients proceed for 10 minutes, with
// exemptClient exempt for bad.example and casino.example.
func newProceedPipeline(t *testing.T) (*Pipeline, *testClock, *proceed.Exemptions) {
	t.Helper()
	p, _, clk := newTestPipeline(t)
	x := proceed.NewExemptions(0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	p.cfg.Exemptions = x
	p.cfg.Proceed = map[string]proceed.Rule{"protective": {Duration: 10 * time.Minute}}
	testPolicy(t, p, 1)
	return p, clk, x
}

// askFrom asks name A from client in flavour, over UDP, through both paths.
func askFrom(t *testing.T, p *Pipeline, client netip.Addr, name string, flavour uint8) *dns.Msg {
	t.Helper()
	pkt := query(t, name, dns.TypeA, true, 1232)
	resp, outcome, _ := p.HandleFast(pkt, nil, true, flavour, client)
	if outcome == Slow {
		resp, _ = p.HandleSlow(pkt, true, flavour, client)
	}
	return unpack(t, resp)
}

// checkBlocked checks that m is NXDOMAIN with the EDE code want; desc names the case.
func checkBlocked(t *testing.T, m *dns.Msg, want int, desc string) {
	t.Helper()
	if m.Rcode != dns.RcodeNameError {
		t.Errorf("%s: rcode %s, want NXDOMAIN", desc, dns.RcodeToString[m.Rcode])
	}
	if code, _ := ede(m); code != want {
		t.Errorf("%s: EDE %d, want %d", desc, code, want)
	}
}

// checkResolved checks that m is the fake resolver's answer, without EDE.
func checkResolved(t *testing.T, m *dns.Msg, desc string) {
	t.Helper()
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) == 0 {
		t.Errorf("%s: rcode %s with %d answers, want NOERROR with the address", desc, dns.RcodeToString[m.Rcode], len(m.Answer))
	}
	if code, _ := ede(m); code != -1 {
		t.Errorf("%s: EDE %d, want none", desc, code)
	}
}

func TestExemptClientResolvesBlockedName(t *testing.T) {
	p, clk, x := newProceedPipeline(t)
	// Blocked first, so that the blocked answer is in the cache.
	checkBlocked(t, askFrom(t, p, exemptClient, "www.bad.example.", 1), edeBlocked, "before the exemption")

	if err := x.Add(exemptClient, "bad.example.", 10*time.Minute, clk.t); err != nil {
		t.Fatal(err)
	}
	for round := range 2 { // resolved, then from the answer cache
		for _, name := range []string{"bad.example.", "www.bad.example.", "a.b.bad.example."} {
			checkResolved(t, askFrom(t, p, exemptClient, name, 1), fmt.Sprintf("exempt client, %s, round %d", name, round))
			checkBlocked(t, askFrom(t, p, otherClient, name, 1), edeBlocked, fmt.Sprintf("other client, %s, round %d", name, round))
		}
	}
	// The exemption goes by the query name: another name whose CNAME leads
	// into the exempt one stays blocked.
	checkBlocked(t, askFrom(t, p, exemptClient, "to-bad.example.", 1), edeBlocked, "exempt client, CNAME into the exempt name")
}

func TestExemptionNeverSkipsLawfulList(t *testing.T) {
	p, clk, x := newProceedPipeline(t)
	if err := x.Add(exemptClient, "casino.example.", 10*time.Minute, clk.t); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		checkBlocked(t, askFrom(t, p, exemptClient, "casino.example.", 1), edeCensored, fmt.Sprintf("lawful name, round %d", round))
	}
}

func TestExemptionExpiresInPipeline(t *testing.T) {
	p, clk, x := newProceedPipeline(t)
	if err := x.Add(exemptClient, "bad.example.", 10*time.Minute, clk.t); err != nil {
		t.Fatal(err)
	}
	checkResolved(t, askFrom(t, p, exemptClient, "www.bad.example.", 1), "during the exemption")
	clk.t = clk.t.Add(10 * time.Minute)
	checkBlocked(t, askFrom(t, p, exemptClient, "www.bad.example.", 1), edeBlocked, "after the exemption expired")
}

func TestExemptionNeedsProceedFlavour(t *testing.T) {
	p, clk, x := newProceedPipeline(t)
	p.cfg.Proceed = nil
	testPolicy(t, p, 2) // a new version, now with proceed anyway off
	if err := x.Add(exemptClient, "bad.example.", 10*time.Minute, clk.t); err != nil {
		t.Fatal(err)
	}
	checkBlocked(t, askFrom(t, p, exemptClient, "www.bad.example.", 1), edeBlocked, "flavour with proceed anyway off")
}

func TestFastPathWithExemptionsDoesNotAllocate(t *testing.T) {
	p, clk, x := newProceedPipeline(t)
	if err := x.Add(exemptClient, "bad.example.", 10*time.Minute, clk.t); err != nil {
		t.Fatal(err)
	}
	plain := query(t, "www.example.", dns.TypeA, true, 1232)
	exempt := query(t, "www.bad.example.", dns.TypeA, true, 1232)
	askFrom(t, p, otherClient, "www.example.", 1)
	askFrom(t, p, exemptClient, "www.bad.example.", 1)
	out := make([]byte, 0, 4096)
	for _, tt := range []struct {
		desc   string
		pkt    []byte
		client netip.Addr
	}{
		{"client without exemption", plain, otherClient},
		{"exempt client, exempt name", exempt, exemptClient},
	} {
		allocs := testing.AllocsPerRun(100, func() {
			if _, outcome, _ := p.HandleFast(tt.pkt, out, true, 1, tt.client); outcome != Answered {
				t.Fatalf("%s: cache miss on the fast path", tt.desc)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: HandleFast made %.1f allocations, want 0", tt.desc, allocs)
		}
	}
}
