package pipeline

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"bulwark/internal/cache"
	"bulwark/internal/cookie"
	"bulwark/internal/policy"
	"bulwark/internal/proceed"

	"github.com/miekg/dns"
)

// denyingResolver is a fakeResolver that proves absent every name whose
// first label starts with "nx". Its proof is the SOA of example. and,
// with DO, an RRSIG of about 600 bytes, so that the answer does not fit
// in 512 bytes.
type denyingResolver struct {
	fakeResolver
	soa, sig []byte
	appends  atomic.Int32
	// last is the name of the last call, kept in a fixed buffer so that
	// the call does not allocate.
	last    [256]byte
	lastLen atomic.Int32
}

func newDenyingResolver(t *testing.T) *denyingResolver {
	t.Helper()
	pack := func(s string) []byte {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("record %q: %v", s, err)
		}
		b := make([]byte, dns.Len(rr)+64)
		n, err := dns.PackRR(rr, b, 0, nil, false)
		if err != nil {
			t.Fatalf("pack %s: %v", rr, err)
		}
		return b[:n]
	}
	sig := strings.Repeat("A", 800) // 600 bytes of signature
	return &denyingResolver{
		soa: pack("example. 300 IN SOA ns.example. host.example. 1 1 1 1 300"),
		sig: pack("example. 300 IN RRSIG SOA 13 1 300 20270101000000 20260101000000 1 example. " + sig),
	}
}

func (d *denyingResolver) AppendNXDomain(dst []byte, name string, dnssecOK bool, now time.Time) ([]byte, int, bool) {
	d.appends.Add(1)
	d.lastLen.Store(int32(copy(d.last[:], name)))
	if !strings.HasPrefix(name, "nx") {
		return dst, 0, false
	}
	dst = append(dst, d.soa...)
	if !dnssecOK {
		return dst, 1, true
	}
	return append(dst, d.sig...), 2, true
}

func (d *denyingResolver) lastName() string { return string(d.last[:d.lastLen.Load()]) }

// newDenialPipeline returns a pipeline whose resolver is a
// denyingResolver.
func newDenialPipeline(t *testing.T) (*Pipeline, *denyingResolver) {
	t.Helper()
	clk := &testClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := cache.New(cache.Config{MaxBytes: 8 << 20, MaxTTL: time.Hour, MaxNegativeTTL: time.Hour, Now: clk.now})
	dr := newDenyingResolver(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := New(Config{BufferSize: 1232, ClientTimeout: time.Second, FailureTTL: 5 * time.Second, MaxResolutions: 10}, c, dr, log, clk.now)
	return p, dr
}

// denialQuery returns a query for name A with ID 0x1234, the flags of
// the header word flags, and with EDNS when size is not 0.
func denialQuery(t *testing.T, name string, flags uint16, size uint16, do bool) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.Id = 0x1234
	m.RecursionDesired = flags&flagRD != 0
	m.CheckingDisabled = flags&flagCD != 0
	m.AuthenticatedData = flags&flagAD != 0
	if size != 0 {
		m.SetEdns0(size, do)
	}
	wire, err := m.Pack()
	if err != nil {
		t.Fatalf("pack query for %s: %v", name, err)
	}
	// The question keeps the case given: Pack does not change it.
	return wire
}

func TestDeniedResponse(t *testing.T) {
	for _, tc := range []struct {
		name   string
		flags  uint16
		size   uint16
		do     bool
		udp    bool
		wantAD bool
		wantNS int
		wantTC bool
	}{
		{name: "DO, RD and CD", flags: flagRD | flagCD, size: 1232, do: true, udp: true, wantAD: true, wantNS: 2},
		{name: "AD without DO", flags: flagRD | flagAD, size: 1232, udp: true, wantAD: true, wantNS: 1},
		{name: "neither AD nor DO", size: 1232, udp: true, wantNS: 1},
		{name: "no EDNS", flags: flagRD, udp: true, wantNS: 1},
		{name: "DO over UDP of 512 bytes", size: 512, do: true, udp: true, wantAD: true, wantTC: true},
		{name: "DO over TCP with 512 bytes", size: 512, do: true, wantAD: true, wantNS: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, dr := newDenialPipeline(t)
			pkt := denialQuery(t, "Nx-Q.Signed.EXAMPLE.", tc.flags, tc.size, tc.do)
			for round := range 2 {
				resp, outcome, _ := p.HandleFast(pkt, nil, tc.udp, 0, testClient)
				if outcome != Answered {
					t.Fatalf("round %d: outcome %d, want Answered", round, outcome)
				}
				if got := dr.lastName(); got != "nx-q.signed.example." {
					t.Errorf("round %d: AppendNXDomain got the name %q, want nx-q.signed.example.", round, got)
				}
				checkDenied(t, resp, pkt, tc.flags, tc.size != 0, tc.do, tc.wantAD, tc.wantTC, tc.wantNS)
			}
			if n := dr.appends.Load(); n != 2 {
				t.Errorf("AppendNXDomain called %d times for 2 queries, want 2: the answer must not be cached", n)
			}
			if n := dr.calls.Load(); n != 0 {
				t.Errorf("Resolve called %d times, want 0", n)
			}
		})
	}
}

// checkDenied checks resp, a fast NXDOMAIN for pkt, byte by byte where
// the header and question are concerned.
func checkDenied(t *testing.T, resp, pkt []byte, flags uint16, edns, do, wantAD, wantTC bool, wantNS int) {
	t.Helper()
	if got := binary.BigEndian.Uint16(resp); got != 0x1234 {
		t.Errorf("ID %#x, want 0x1234", got)
	}
	want := uint16(flagQR|1<<7|dns.RcodeNameError) | flags&(flagRD|flagCD)
	if wantAD {
		want |= flagAD
	}
	if wantTC {
		want |= flagTC
	}
	if got := binary.BigEndian.Uint16(resp[2:]); got != want {
		t.Errorf("flags %016b, want %016b", got, want)
	}

	qlen := bytes.IndexByte(pkt[12:], 0) + 1 + 4
	if !bytes.Equal(resp[12:12+qlen], pkt[12:12+qlen]) {
		t.Errorf("question %q, want the query's %q", resp[12:12+qlen], pkt[12:12+qlen])
	}

	arcount := 0
	if edns {
		arcount = 1
	}
	counts := [4]int{1, 0, wantNS, arcount}
	for i, w := range counts {
		if got := int(binary.BigEndian.Uint16(resp[4+2*i:])); got != w {
			t.Errorf("count %d of the header is %d, want %d", i, got, w)
		}
	}

	m := new(dns.Msg)
	if err := m.Unpack(resp); err != nil {
		t.Fatalf("unpack response %x: %v", resp, err)
	}
	if len(m.Ns) != wantNS || wantNS > 0 && m.Ns[0].Header().Rrtype != dns.TypeSOA {
		t.Errorf("authority %v, want %d records starting with the SOA", m.Ns, wantNS)
	}

	opt := m.IsEdns0()
	switch {
	case edns && opt == nil:
		t.Error("no OPT record in the response to a query with EDNS")
	case !edns && opt != nil:
		t.Errorf("OPT record %v in the response to a query without EDNS", opt)
	case opt != nil && opt.Do() != do:
		t.Errorf("OPT DO %v, want %v as in the query", opt.Do(), do)
	}
	if len(resp) > 512 && wantTC {
		t.Errorf("truncated response of %d bytes, want at most 512", len(resp))
	}
}

func TestDeniedCookie(t *testing.T) {
	p, _ := newDenialPipeline(t)
	cs := cookie.NewServer(cookie.NewSecret(), nil)
	p.cfg.Cookies = cs
	cc := []byte("client01")
	m := new(dns.Msg)
	m.SetQuestion("nx.signed.example.", dns.TypeA)
	m.SetEdns0(1232, true)
	m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: hex.EncodeToString(cc)})
	pkt, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	resp, outcome, _ := p.HandleFast(pkt, nil, true, 0, testClient)
	if outcome != Answered {
		t.Fatalf("outcome %d, want Answered", outcome)
	}
	r := unpack(t, resp)
	got := responseCookie(t, r)
	if r.Rcode != dns.RcodeNameError || len(got) != cookie.OptionLen || !bytes.Equal(got[:8], cc) {
		t.Fatalf("rcode %s, COOKIE %x; want NXDOMAIN with client cookie %x and a server cookie", dns.RcodeToString[r.Rcode], got, cc)
	}
	if !cs.Valid(cc, got[8:], testClient, uint32(p.now().Unix())) {
		t.Errorf("server cookie %x is not valid for the client", got[8:])
	}
}

// TestDeniedLeftToSlowPath checks each query whose answer a policy might
// change, or that the fast path cannot name, goes to the slow path.
func TestDeniedLeftToSlowPath(t *testing.T) {
	nxList := func(name string) *policy.List {
		return &policy.List{Name: "malware", Category: policy.CategoryMalware,
			Verdicts: []policy.Verdict{{Action: policy.NXDomain}},
			Set:      policy.Compile([]policy.Rule{{Name: name, Match: policy.Exact | policy.Below}})}
	}
	clients := &policy.List{Name: "infected-clients", Category: policy.CategoryMalware,
		Verdicts: []policy.Verdict{{Action: policy.NXDomain}}, Set: policy.Compile(nil),
		Clients: policy.Compile([]policy.Rule{{Prefix: netip.MustParsePrefix("192.0.2.0/24")}})}
	servers := &policy.List{Name: "hosters", Category: policy.CategoryMalware,
		Verdicts: []policy.Verdict{{Action: policy.NXDomain}}, Set: policy.Compile(nil),
		Servers: policy.Compile([]policy.Rule{{Name: "evil-hoster.example.", Match: policy.Below}})}
	noValidation := policy.NewFlavour("no-validation", nil)
	noValidation.NoValidation = true
	flavours := []*policy.Flavour{
		policy.NewFlavour("unfiltered", nil),
		policy.NewFlavour("listed", []*policy.List{nxList("nx-listed.example.")}),
		policy.NewFlavour("client-ip", []*policy.List{clients}),
		policy.NewFlavour("servers", []*policy.List{servers}),
		noValidation,
		policy.NewFlavour("protective", []*policy.List{nxList("bad.example.")}),
	}
	outside := netip.MustParseAddr("198.51.100.1")
	for _, tc := range []struct {
		name    string
		qname   string
		flavour uint8
		client  netip.Addr
		exempt  bool
		want    Outcome
	}{
		{name: "proven absent", qname: "nx.example.", want: Answered},
		{name: "not proven", qname: "www.example.", want: Slow},
		{name: "listed name", qname: "nx-listed.example.", flavour: 1, want: Slow},
		{name: "name below a listed one", qname: "nx.nx-listed.example.", flavour: 1, want: Slow},
		{name: "name of no list", qname: "nx.example.", flavour: 1, want: Answered},
		{name: "client-IP trigger", qname: "nx.example.", flavour: 2, client: testClient, want: Slow},
		{name: "client outside the trigger", qname: "nx.example.", flavour: 2, client: outside, want: Answered},
		{name: "NSDNAME trigger", qname: "nx.example.", flavour: 3, want: Slow},
		{name: "validation off", qname: "nx.example.", flavour: 4, want: Slow},
		{name: "exempt client", qname: "nx.signed.example.", flavour: 5, client: exemptClient, exempt: true, want: Slow},
		{name: "client without exemption", qname: "nx.signed.example.", flavour: 5, client: otherClient, exempt: true, want: Answered},
		{name: "wildcard label", qname: "nx.*.example.", want: Slow},
		{name: "asterisk in a label", qname: "nx*.example.", want: Slow},
		{name: "byte needing an escape", qname: "nx\\032q.example.", want: Slow},
		{name: "dot in a label", qname: "nx\\.q.example.", want: Slow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := newDenialPipeline(t)
			p.SetPolicy(policy.NewSnapshot(1, flavours), BlockConfig{})
			if tc.exempt {
				x := proceed.NewExemptions(0, slog.New(slog.NewTextHandler(io.Discard, nil)))
				p.cfg.Exemptions = x
				p.cfg.Proceed = map[string]proceed.Rule{"protective": {Duration: 10 * time.Minute}}
				p.SetPolicy(policy.NewSnapshot(2, flavours), BlockConfig{})
				if err := x.Add(exemptClient, "signed.example.", 10*time.Minute, p.now()); err != nil {
					t.Fatal(err)
				}
			}
			client := tc.client
			if !client.IsValid() {
				client = testClient
			}
			pkt := denialQuery(t, tc.qname, flagRD, 1232, true)
			resp, outcome, _ := p.HandleFast(pkt, nil, true, tc.flavour, client)
			if outcome != tc.want {
				t.Fatalf("%s in flavour %d from %s: outcome %d, want %d", tc.qname, tc.flavour, client, outcome, tc.want)
			}
			if outcome == Answered {
				if r := unpack(t, resp); r.Rcode != dns.RcodeNameError {
					t.Errorf("%s: rcode %s, want NXDOMAIN", tc.qname, dns.RcodeToString[r.Rcode])
				}
			}
		})
	}
}

func TestDeniedDoesNotAllocate(t *testing.T) {
	p, _ := newDenialPipeline(t)
	pkt := denialQuery(t, "nx.signed.example.", flagRD, 1232, true)
	out := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		if _, outcome, _ := p.HandleFast(pkt, out, true, 0, testClient); outcome != Answered {
			t.Fatal("nx.signed.example. not answered on the fast path")
		}
	})
	if allocs != 0 {
		t.Errorf("a fast NXDOMAIN made %.1f allocations, want 0", allocs)
	}
}

// wildcardAddr is the address of the A record that denyingResolver
// expands for names whose first label starts with "wild".
var wildcardAddr = netip.MustParseAddr("192.0.2.77")

func (d *denyingResolver) AppendWildcard(dst []byte, name string, qtype uint16, dnssecOK bool, now time.Time) ([]byte, int, int, bool) {
	if !strings.HasPrefix(name, "wild") || qtype != dns.TypeA {
		return dst, 0, 0, false
	}
	// An A record owned by the question's name, with a TTL of two hours.
	dst = append(dst, 0xC0, 12, 0, 1, 0, 1, 0, 0, 0x1C, 0x20, 0, 4)
	dst = append(dst, wildcardAddr.AsSlice()...)
	if !dnssecOK {
		return dst, 1, 0, true
	}
	if strings.HasPrefix(name, "wildbig") {
		// A proof too large for 512 bytes.
		return append(append(dst, d.soa...), d.sig...), 1, 2, true
	}
	return append(dst, d.soa...), 1, 1, true
}

// TestExpandedResponseFlags checks the header of answers expanded from a
// wildcard: AD only for clients that set DO or AD, the question as sent,
// and over UDP a response cut to the header and question with TC when it
// does not fit.
func TestExpandedResponseFlags(t *testing.T) {
	for _, tc := range []struct {
		name        string
		qname       string
		flags       uint16
		size        uint16
		do, udp     bool
		wantAD      bool
		wantTC      bool
		wantAnswers int
		wantNS      int
	}{
		{name: "AD without DO", qname: "wild.example.", flags: flagRD | flagAD, size: 1232, udp: true, wantAD: true, wantAnswers: 1},
		{name: "neither AD nor DO", qname: "wild.example.", flags: flagRD, size: 1232, udp: true, wantAnswers: 1},
		{name: "CD and DO", qname: "wild.example.", flags: flagRD | flagCD, size: 1232, do: true, udp: true, wantAD: true, wantAnswers: 1, wantNS: 1},
		{name: "no EDNS", qname: "wild.example.", flags: flagRD, udp: true, wantAnswers: 1},
		{name: "too large for UDP", qname: "WildBig.example.", flags: flagRD, size: 512, do: true, udp: true, wantAD: true, wantTC: true},
		{name: "too large for UDP, over TCP", qname: "WildBig.example.", flags: flagRD, size: 512, do: true, wantAD: true, wantAnswers: 1, wantNS: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := newDenialPipeline(t)
			pkt := denialQuery(t, tc.qname, tc.flags, tc.size, tc.do)
			resp, outcome, _ := p.HandleFast(pkt, nil, tc.udp, 0, testClient)
			if outcome != Answered {
				t.Fatalf("outcome %d, want %d (answered)", outcome, Answered)
			}
			r := unpack(t, resp)
			if r.Rcode != dns.RcodeSuccess || len(r.Question) != 1 || r.Question[0].Name != tc.qname {
				t.Errorf("rcode %s, question %v; want NOERROR for %s", dns.RcodeToString[r.Rcode], r.Question, tc.qname)
			}
			if r.AuthenticatedData != tc.wantAD || r.Truncated != tc.wantTC {
				t.Errorf("AD %v, TC %v; want AD %v, TC %v", r.AuthenticatedData, r.Truncated, tc.wantAD, tc.wantTC)
			}
			if r.CheckingDisabled != (tc.flags&flagCD != 0) || r.Id != 0x1234 {
				t.Errorf("CD %v, ID %#x; want the query's", r.CheckingDisabled, r.Id)
			}
			if len(r.Answer) != tc.wantAnswers || len(r.Ns) != tc.wantNS {
				t.Errorf("%d answers, %d authority records; want %d and %d", len(r.Answer), len(r.Ns), tc.wantAnswers, tc.wantNS)
			}
			if opt := r.IsEdns0(); (opt != nil) != (tc.size != 0) || opt != nil && opt.Do() != tc.do {
				t.Errorf("OPT %v, want one only for an EDNS query, with its DO bit %v", opt, tc.do)
			}
			if tc.udp && len(resp) > max(512, int(tc.size)) {
				t.Errorf("%d bytes over UDP, want at most %d", len(resp), max(512, int(tc.size)))
			}
		})
	}
}

// TestExpandedResponse checks the answer expanded from a wildcard: NOERROR
// with the record, its TTL bounded by the cache's maximum, and the
// authority only with DO; and that a response-IP trigger on its address
// leaves the query to the slow path.
func TestExpandedResponse(t *testing.T) {
	other := &policy.List{Name: "other", Category: policy.CategoryMalware,
		Verdicts: []policy.Verdict{{Action: policy.NXDomain}},
		Set:      policy.Compile([]policy.Rule{{Prefix: netip.MustParsePrefix("198.51.100.0/24")}})}
	listed := &policy.List{Name: "listed-addresses", Category: policy.CategoryMalware,
		Verdicts: []policy.Verdict{{Action: policy.NXDomain}},
		Set:      policy.Compile([]policy.Rule{{Prefix: netip.PrefixFrom(wildcardAddr, 32)}})}
	flavours := []*policy.Flavour{
		policy.NewFlavour("unfiltered", nil),
		policy.NewFlavour("other addresses", []*policy.List{other}),
		policy.NewFlavour("listed address", []*policy.List{listed}),
	}
	for _, tc := range []struct {
		name    string
		flavour uint8
		do      bool
		want    Outcome
	}{
		{name: "with DO", do: true, want: Answered},
		{name: "without DO", want: Answered},
		{name: "address of no list", flavour: 1, do: true, want: Answered},
		{name: "listed address", flavour: 2, do: true, want: Slow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := newDenialPipeline(t)
			p.SetPolicy(policy.NewSnapshot(1, flavours), BlockConfig{})
			pkt := denialQuery(t, "Wild-Card.example.", flagRD, 1232, tc.do)
			resp, outcome, _ := p.HandleFast(pkt, nil, true, tc.flavour, testClient)
			if outcome != tc.want {
				t.Fatalf("flavour %d: outcome %d, want %d", tc.flavour, outcome, tc.want)
			}
			if outcome != Answered {
				return
			}
			r := unpack(t, resp)
			if r.Rcode != dns.RcodeSuccess || r.Question[0].Name != "Wild-Card.example." {
				t.Errorf("rcode %s, question %v; want NOERROR for Wild-Card.example.", dns.RcodeToString[r.Rcode], r.Question)
			}
			if len(r.Answer) != 1 {
				t.Fatalf("answer %v, want one A", r.Answer)
			}
			a, ok := r.Answer[0].(*dns.A)
			if !ok || a.Hdr.Name != "Wild-Card.example." || !a.A.Equal(wildcardAddr.AsSlice()) {
				t.Errorf("answer %v, want Wild-Card.example. A %s", r.Answer[0], wildcardAddr)
			}
			if a != nil && a.Hdr.Ttl != 3600 {
				t.Errorf("TTL %d, want 3600, the cache's maximum", a.Hdr.Ttl)
			}
			if wantNS := map[bool]int{true: 1, false: 0}[tc.do]; len(r.Ns) != wantNS {
				t.Errorf("authority %v, want %d records", r.Ns, wantNS)
			}
			if r.AuthenticatedData != tc.do {
				t.Errorf("AD %v, want %v", r.AuthenticatedData, tc.do)
			}
		})
	}
}
