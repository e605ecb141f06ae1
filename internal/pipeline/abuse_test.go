package pipeline

import (
	"encoding/hex"
	"net/netip"
	"testing"

	"bulwark/internal/cookie"

	"github.com/miekg/dns"
)

// cookieQuery returns a query for name with a COOKIE option of data.
func cookieQuery(t *testing.T, name string, data []byte) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.SetEdns0(1232, false)
	opt := m.IsEdns0()
	opt.Option = append(opt.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: hex.EncodeToString(data)})
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return wire
}

// responseCookie returns the COOKIE option data of r, or nil.
func responseCookie(t *testing.T, r *dns.Msg) []byte {
	t.Helper()
	opt := r.IsEdns0()
	if opt == nil {
		return nil
	}
	for _, o := range opt.Option {
		if c, ok := o.(*dns.EDNS0_COOKIE); ok {
			b, _ := hex.DecodeString(c.Cookie)
			return b
		}
	}
	return nil
}

func newCookiePipeline(t *testing.T) (*Pipeline, *cookie.Server) {
	t.Helper()
	p, _, _ := newTestPipeline(t)
	cs := cookie.NewServer(cookie.NewSecret(), nil)
	p.cfg.Cookies = cs
	return p, cs
}

func TestServerCookieOnEveryPath(t *testing.T) {
	p, cs := newCookiePipeline(t)
	cc := []byte("client01")
	pkt := cookieQuery(t, "www.example.", cc)
	now := uint32(p.now().Unix())
	for _, path := range []string{"resolved", "cached"} {
		r := unpack(t, handle(p, pkt, true))
		got := responseCookie(t, r)
		if len(got) != cookie.OptionLen || string(got[:8]) != string(cc) {
			t.Fatalf("%s: response COOKIE = %x, want client cookie %x and a server cookie", path, got, cc)
		}
		if !cs.Valid(cc, got[8:], testClient, now) {
			t.Errorf("%s: server cookie %x is not valid for the client", path, got[8:])
		}
		if len(r.Answer) != 1 {
			t.Errorf("%s: answer = %v, want one A", path, r.Answer)
		}
	}
	// An error response from the slow parser carries one too.
	m := new(dns.Msg)
	m.SetQuestion("www.example.", dns.TypeA)
	m.Question[0].Qclass = dns.ClassCHAOS
	m.SetEdns0(1232, false)
	m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: hex.EncodeToString(cc)})
	wire, _ := m.Pack()
	r := unpack(t, handle(p, wire, true))
	if r.Rcode != dns.RcodeRefused || len(responseCookie(t, r)) != cookie.OptionLen {
		t.Errorf("CHAOS query: rcode %s, COOKIE %x; want REFUSED with a cookie", dns.RcodeToString[r.Rcode], responseCookie(t, r))
	}
}

func TestCachedCookieAnswerDoesNotAllocate(t *testing.T) {
	p, _ := newCookiePipeline(t)
	pkt := cookieQuery(t, "www.example.", []byte("client01"))
	handle(p, pkt, true)
	out := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		if _, outcome, _ := p.HandleFast(pkt, out, true, 0, testClient); outcome != Answered {
			t.Fatal("cache miss on the fast path")
		}
	})
	if allocs != 0 {
		t.Errorf("HandleFast with a COOKIE made %.1f allocations, want 0", allocs)
	}
}

func TestMalformedCookieFormErr(t *testing.T) {
	p, _ := newCookiePipeline(t)
	for _, n := range []int{0, 7, 9, 15, 41} {
		r := unpack(t, handle(p, cookieQuery(t, "www.example.", make([]byte, n)), true))
		if r.Rcode != dns.RcodeFormatError {
			t.Errorf("COOKIE of %d bytes: rcode %s, want FORMERR", n, dns.RcodeToString[r.Rcode])
		}
	}
	// Two COOKIE options.
	m := new(dns.Msg)
	m.SetQuestion("www.example.", dns.TypeA)
	m.SetEdns0(1232, false)
	for range 2 {
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
	}
	wire, _ := m.Pack()
	if r := unpack(t, handle(p, wire, true)); r.Rcode != dns.RcodeFormatError {
		t.Errorf("two COOKIE options: rcode %s, want FORMERR", dns.RcodeToString[r.Rcode])
	}
}

func TestCookieValid(t *testing.T) {
	p, cs := newCookiePipeline(t)
	cc := []byte("client01")
	sc := cs.Append(nil, cc, testClient, uint32(p.now().Unix()))
	good := cookieQuery(t, "www.example.", append(append([]byte(nil), cc...), sc...))
	if !p.CookieValid(good, testClient) {
		t.Error("CookieValid(own server cookie) = false, want true")
	}
	if p.CookieValid(good, netip.MustParseAddr("192.0.2.201")) {
		t.Error("CookieValid from another address = true, want false")
	}
	if p.CookieValid(cookieQuery(t, "www.example.", cc), testClient) {
		t.Error("CookieValid(client cookie only) = true, want false")
	}
}

func TestRecursionAccess(t *testing.T) {
	p, _, _ := newTestPipeline(t)
	p.cfg.Recursion = &Access{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	pkt := query(t, "www.example.", dns.TypeA, true, 1232)
	inside := netip.MustParseAddr("10.1.2.3")
	if _, outcome, _ := p.HandleFast(pkt, nil, true, 0, inside); outcome != Slow {
		t.Fatalf("first query from an allowed client: outcome %d, want Slow", outcome)
	}
	p.HandleSlow(pkt, true, 0, inside) // now cached
	for _, path := range []string{"fast", "slow"} {
		var resp []byte
		if path == "fast" {
			resp, _, _ = p.HandleFast(pkt, nil, true, 0, testClient)
		} else {
			resp, _ = p.HandleSlow(pkt, true, 0, testClient)
		}
		r := unpack(t, resp)
		if r.Rcode != dns.RcodeRefused || len(r.Answer) != 0 || r.RecursionAvailable {
			t.Errorf("%s path, client outside: rcode %s, %d answers, RA %v; want REFUSED, none, no RA",
				path, dns.RcodeToString[r.Rcode], len(r.Answer), r.RecursionAvailable)
		}
		if ede := edeCode(r); ede != 18 {
			t.Errorf("%s path: EDE %d, want 18 (Prohibited)", path, ede)
		}
	}
}

// edeCode returns the Extended DNS Error code of r, or -1.
func edeCode(r *dns.Msg) int {
	if opt := r.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				return int(e.InfoCode)
			}
		}
	}
	return -1
}

func TestLimitedResponses(t *testing.T) {
	p, _ := newCookiePipeline(t)
	plain := query(t, "www.example.", dns.TypeA, true, 1232)
	r := unpack(t, p.Limited(plain, nil, testClient))
	if !r.Truncated || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 || len(r.Question) != 1 {
		t.Errorf("limited plain query: %v; want an empty NOERROR with TC and the question", r)
	}
	r = unpack(t, p.Limited(cookieQuery(t, "www.example.", []byte("client01")), nil, testClient))
	if r.Rcode != dns.RcodeBadCookie || len(responseCookie(t, r)) != cookie.OptionLen || r.Truncated {
		t.Errorf("limited cookie query: rcode %d, COOKIE %x; want BADCOOKIE with a fresh cookie", r.Rcode, responseCookie(t, r))
	}
	if got := p.Limited([]byte{1, 2, 3}, nil, testClient); got != nil {
		t.Errorf("limited short packet = %x, want nothing", got)
	}
}
