package pipeline

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"bulwark/internal/policy"

	"github.com/miekg/dns"
)

// testPolicy makes flavour 0 unfiltered and flavour 1 protective, with
// lists of each kind of trigger and action.
func testPolicy(t *testing.T, p *Pipeline, generation uint32) {
	t.Helper()
	list := func(name, category string, action policy.Action, rules ...policy.Rule) *policy.List {
		return &policy.List{Name: name, Category: category, Verdicts: []policy.Verdict{
			{Action: action},
			{Action: policy.Drop},
			{Action: policy.TCPOnly},
		}, Set: policy.Compile(rules)}
	}
	malware := list("urlhaus", policy.CategoryMalware, policy.NXDomain,
		policy.Rule{Name: "bad.example.", Match: policy.Exact | policy.Below},
		policy.Rule{Name: "drop.example.", Match: policy.Exact, Verdict: 1},
		policy.Rule{Name: "tcp.example.", Match: policy.Exact, Verdict: 2},
		policy.Rule{Prefix: netip.MustParsePrefix("192.0.2.66/32")})
	allow := list("allow", policy.CategoryMalware, policy.Allow, policy.Rule{Name: "good.bad.example.", Match: policy.Exact})
	ads := list("ads", policy.CategoryAds, policy.Redirect, policy.Rule{Name: "ads.example.", Match: policy.Exact | policy.Below})
	court := list("court", policy.CategoryLawful, policy.NXDomain, policy.Rule{Name: "casino.example.", Match: policy.Exact})
	s := policy.NewSnapshot(generation, []*policy.Flavour{
		policy.NewFlavour("unfiltered", nil),
		policy.NewFlavour("protective", []*policy.List{malware, ads, allow, court}),
	})
	p.SetPolicy(s, BlockConfig{BlockPage4: netip.MustParseAddr("192.0.2.80"), Contact: "mailto:abuse@example.net", Organization: "Example"})
}

func ask(t *testing.T, p *Pipeline, name string, qtype uint16, flavour uint8, udp bool) *dns.Msg {
	t.Helper()
	pkt := query(t, name, qtype, true, 1232)
	resp, outcome, _ := p.HandleFast(pkt, nil, udp, flavour, testClient)
	if outcome == Slow {
		resp, _ = p.HandleSlow(pkt, udp, flavour, testClient)
	}
	if resp == nil {
		return nil
	}
	return unpack(t, resp)
}

// ede returns the EDE code and text of m, or -1.
func ede(m *dns.Msg) (int, string) {
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				return int(e.InfoCode), e.ExtraText
			}
		}
	}
	return -1, ""
}

func TestPolicyDecisions(t *testing.T) {
	p, _, _ := newTestPipeline(t)
	testPolicy(t, p, 1)
	for _, tt := range []struct {
		name    string
		qtype   uint16
		flavour uint8
		rcode   int
		ede     int
		answer  string
	}{
		{"www.bad.example.", dns.TypeA, 0, dns.RcodeSuccess, -1, "192.0.2.1"},
		{"www.bad.example.", dns.TypeA, 1, dns.RcodeNameError, edeBlocked, ""},
		{"good.bad.example.", dns.TypeA, 1, dns.RcodeSuccess, -1, "192.0.2.1"},
		{"to-bad.example.", dns.TypeA, 1, dns.RcodeNameError, edeBlocked, ""},
		{"ip66.example.", dns.TypeA, 1, dns.RcodeNameError, edeBlocked, ""},
		{"ip66.example.", dns.TypeA, 0, dns.RcodeSuccess, -1, "192.0.2.66"},
		{"t.ads.example.", dns.TypeA, 1, dns.RcodeSuccess, edeFiltered, "192.0.2.80"},
		{"t.ads.example.", dns.TypeAAAA, 1, dns.RcodeSuccess, edeFiltered, ""},
		{"casino.example.", dns.TypeA, 1, dns.RcodeNameError, edeCensored, ""},
		{"fine.example.", dns.TypeA, 1, dns.RcodeSuccess, -1, "192.0.2.1"},
	} {
		for round := range 2 { // resolved, then from the answer cache
			m := ask(t, p, tt.name, tt.qtype, tt.flavour, true)
			where := tt.name + " " + dns.TypeToString[tt.qtype]
			if m.Rcode != tt.rcode {
				t.Errorf("%s flavour %d round %d: rcode %s, want %s", where, tt.flavour, round, dns.RcodeToString[m.Rcode], dns.RcodeToString[tt.rcode])
			}
			if code, _ := ede(m); code != tt.ede {
				t.Errorf("%s flavour %d round %d: EDE %d, want %d", where, tt.flavour, round, code, tt.ede)
			}
			got := ""
			for _, rr := range m.Answer {
				if a, ok := rr.(*dns.A); ok {
					got = a.A.String()
				}
			}
			if got != tt.answer {
				t.Errorf("%s flavour %d round %d: answer %q, want %q", where, tt.flavour, round, got, tt.answer)
			}
		}
	}
}

func TestBlockEDEText(t *testing.T) {
	p, _, _ := newTestPipeline(t)
	testPolicy(t, p, 1)
	m := ask(t, p, "www.bad.example.", dns.TypeA, 1, true)
	_, text := ede(m)
	var got map[string]any
	if err := json.Unmarshal([]byte(text), &got); err != nil {
		t.Fatalf("EDE text %q is not JSON: %v", text, err)
	}
	for key, want := range map[string]string{"list": "urlhaus", "category": "malware", "trigger": "*.bad.example.", "o": "Example"} {
		if got[key] != want {
			t.Errorf("EDE %s = %v, want %q (text %s)", key, got[key], want, text)
		}
	}
	if !strings.Contains(text, "mailto:abuse@example.net") {
		t.Errorf("EDE text %s lacks the contact", text)
	}
}

func TestDropAndTCPOnly(t *testing.T) {
	p, _, _ := newTestPipeline(t)
	testPolicy(t, p, 1)
	if m := ask(t, p, "drop.example.", dns.TypeA, 1, true); m != nil {
		t.Errorf("dropped name got a response: %v", m)
	}
	m := ask(t, p, "tcp.example.", dns.TypeA, 1, true)
	if m == nil || !m.Truncated || len(m.Answer) != 0 {
		t.Fatalf("tcp-only name over UDP: %v, want TC set and no answer", m)
	}
	m = ask(t, p, "tcp.example.", dns.TypeA, 1, false)
	if m == nil || m.Truncated || len(m.Answer) != 1 {
		t.Errorf("tcp-only name over TCP: %v, want the answer", m)
	}
	// The TCP answer is not cached for UDP clients.
	if m := ask(t, p, "tcp.example.", dns.TypeA, 1, true); m == nil || !m.Truncated {
		t.Errorf("tcp-only name over UDP after TCP: %v, want TC again", m)
	}
}

func TestNewPolicyVersionDropsCachedBlocks(t *testing.T) {
	p, _, _ := newTestPipeline(t)
	testPolicy(t, p, 1)
	if m := ask(t, p, "www.bad.example.", dns.TypeA, 1, true); m.Rcode != dns.RcodeNameError {
		t.Fatalf("blocked name: %s", dns.RcodeToString[m.Rcode])
	}
	p.SetPolicy(policy.NewSnapshot(2, []*policy.Flavour{
		policy.NewFlavour("unfiltered", nil),
		policy.NewFlavour("protective", []*policy.List{{Name: "other", Category: policy.CategoryMalware,
			Verdicts: []policy.Verdict{{Action: policy.NXDomain}}, Set: policy.Compile([]policy.Rule{{Name: "else.example.", Match: policy.Exact}})}}),
	}), BlockConfig{})
	if m := ask(t, p, "www.bad.example.", dns.TypeA, 1, true); m.Rcode != dns.RcodeSuccess {
		t.Errorf("after the list was removed: %s, want NOERROR", dns.RcodeToString[m.Rcode])
	}
}

func TestFlavourWithoutValidation(t *testing.T) {
	p, _, _ := newTestPipeline(t)
	off := policy.NewFlavour("lab-no-validation", nil)
	off.NoValidation = true
	p.SetPolicy(policy.NewSnapshot(1, []*policy.Flavour{policy.NewFlavour("unfiltered", nil), off}), BlockConfig{})
	for round := range 2 {
		if m := ask(t, p, "bogus.example.", dns.TypeA, 0, true); m.Rcode != dns.RcodeServerFailure {
			t.Errorf("round %d: bogus name with validation: %s, want SERVFAIL", round, dns.RcodeToString[m.Rcode])
		}
		m := ask(t, p, "bogus.example.", dns.TypeA, 1, true)
		if m.Rcode != dns.RcodeSuccess || len(m.Answer) == 0 || m.AuthenticatedData {
			t.Errorf("round %d: bogus name without validation: %s, %d records, AD %v; want the data without AD", round, dns.RcodeToString[m.Rcode], len(m.Answer), m.AuthenticatedData)
		}
		if m := askAD(t, p, "secure.example.", 1); m.AuthenticatedData {
			t.Errorf("round %d: secure name without validation has AD", round)
		}
		if m := askAD(t, p, "secure.example.", 0); !m.AuthenticatedData {
			t.Errorf("round %d: secure name with validation lacks AD", round)
		}
	}
}

// askAD asks name A with the AD bit set, so that a secure answer shows it.
func askAD(t *testing.T, p *Pipeline, name string, flavour uint8) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.AuthenticatedData = true
	pkt, _ := m.Pack()
	resp, outcome, _ := p.HandleFast(pkt, nil, true, flavour, testClient)
	if outcome == Slow {
		resp, _ = p.HandleSlow(pkt, true, flavour, testClient)
	}
	return unpack(t, resp)
}

func TestTruncatedAnswerFitsWithLongEDE(t *testing.T) {
	p, _, _ := newTestPipeline(t)
	testPolicy(t, p, 1)
	p.SetPolicy(p.snapshot(), BlockConfig{Organization: strings.Repeat("x", 600), Contact: "mailto:" + strings.Repeat("y", 400)})
	m := new(dns.Msg)
	m.SetQuestion("www.bad.example.", dns.TypeTXT)
	m.SetEdns0(512, false)
	pkt, _ := m.Pack()
	resp, _ := p.HandleSlow(pkt, true, 1, testClient)
	if len(resp) > 512 {
		t.Errorf("UDP response of %d bytes to a client with a 512-byte limit", len(resp))
	}
}

func TestBlockedNegativeAnswersCarrySOA(t *testing.T) {
	p, _, _ := newTestPipeline(t)
	testPolicy(t, p, 1)
	for _, tt := range []struct{ name, owner string }{
		{"www.bad.example.", "bad.example."},
		{"ip66.example.", "ip66.example."}, // an address trigger
	} {
		m := ask(t, p, tt.name, dns.TypeA, 1, true)
		if len(m.Ns) != 1 {
			t.Fatalf("%s: authority %v, want one SOA", tt.name, m.Ns)
		}
		soa, ok := m.Ns[0].(*dns.SOA)
		if !ok || !strings.EqualFold(soa.Hdr.Name, tt.owner) || soa.Minttl != BlockTTL || soa.Hdr.Ttl > BlockTTL {
			t.Errorf("%s: authority %v, want an SOA of %s with TTL and MINIMUM %d", tt.name, m.Ns[0], tt.owner, BlockTTL)
		}
	}
	if m := ask(t, p, "t.ads.example.", dns.TypeA, 1, true); len(m.Ns) != 0 {
		t.Errorf("redirect answer has authority %v, want none", m.Ns)
	}
}

func TestServerTriggers(t *testing.T) {
	p, _, _ := newTestPipeline(t)
	servers := func(rules ...policy.Rule) *policy.List {
		return &policy.List{Name: "hosters", Category: policy.CategoryMalware,
			Verdicts: []policy.Verdict{{Action: policy.NXDomain}}, Set: policy.Compile(nil), Servers: policy.Compile(rules)}
	}
	byName := servers(policy.Rule{Name: "evil-hoster.example.", Match: policy.Below})
	byAddr := servers(policy.Rule{Prefix: netip.MustParsePrefix("203.0.113.0/24")})
	p.SetPolicy(policy.NewSnapshot(1, []*policy.Flavour{
		policy.NewFlavour("by-name", []*policy.List{byName}),
		policy.NewFlavour("by-address", []*policy.List{byAddr}),
	}), BlockConfig{})
	for flavour, want := range []string{"*.evil-hoster.example.", "203.0.113.0/24"} {
		m := ask(t, p, "site.hosted.example.", dns.TypeA, uint8(flavour), true)
		if m.Rcode != dns.RcodeNameError {
			t.Errorf("flavour %d: %s, want NXDOMAIN for a name its listed servers host", flavour, dns.RcodeToString[m.Rcode])
		}
		if _, text := ede(m); !strings.Contains(text, `"trigger":"`+want+`"`) {
			t.Errorf("flavour %d: EDE text %q does not name the trigger %s", flavour, text, want)
		}
		if m := ask(t, p, "site.other.example.", dns.TypeA, uint8(flavour), true); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
			t.Errorf("flavour %d: a name on other servers got %s with %d answers", flavour, dns.RcodeToString[m.Rcode], len(m.Answer))
		}
	}
}

func TestClientIPTriggers(t *testing.T) {
	p, _, _ := newTestPipeline(t)
	infected := &policy.List{Name: "infected-clients", Category: policy.CategoryMalware,
		Verdicts: []policy.Verdict{{Action: policy.NXDomain}}, Set: policy.Compile(nil),
		Clients: policy.Compile([]policy.Rule{{Prefix: netip.MustParsePrefix("192.0.2.0/24")}})}
	p.SetPolicy(policy.NewSnapshot(1, []*policy.Flavour{policy.NewFlavour("protective", []*policy.List{infected})}), BlockConfig{})
	askFrom := func(client string) *dns.Msg {
		t.Helper()
		pkt := query(t, "www.example.", dns.TypeA, true, 1232)
		addr := netip.MustParseAddr(client)
		resp, outcome, _ := p.HandleFast(pkt, nil, true, 0, addr)
		if outcome == Slow {
			resp, _ = p.HandleSlow(pkt, true, 0, addr)
		}
		return unpack(t, resp)
	}
	// Each answer is cached: the order checks that the clients never share
	// one.
	for _, tt := range []struct {
		client string
		rcode  int
	}{
		{"192.0.2.5", dns.RcodeNameError},
		{"198.51.100.1", dns.RcodeSuccess},
		{"192.0.2.6", dns.RcodeNameError},
		{"198.51.100.2", dns.RcodeSuccess},
	} {
		m := askFrom(tt.client)
		if m.Rcode != tt.rcode {
			t.Errorf("client %s: %s, want %s", tt.client, dns.RcodeToString[m.Rcode], dns.RcodeToString[tt.rcode])
		}
		if code, text := ede(m); tt.rcode == dns.RcodeNameError && (code != 15 || !strings.Contains(text, `"trigger":"192.0.2.0/24"`)) {
			t.Errorf("client %s: EDE %d %q, want 15 naming the client trigger", tt.client, code, text)
		}
	}
}
