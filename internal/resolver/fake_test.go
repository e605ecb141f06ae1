package resolver

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"bulwark/internal/cache"
	"bulwark/internal/config"
	"bulwark/internal/dnssec"
	"bulwark/internal/exchange"

	"github.com/miekg/dns"
)

// fakeNet is a scripted internet for unit tests: each address serves zones
// from text, or misbehaves as told. It records every query it receives.
type fakeNet struct {
	mu      sync.Mutex
	servers map[netip.Addr]*fakeServer
	queries []string // "addr qname qtype"
}

type fakeServer struct {
	zones  []*fakeZone
	silent bool
	// lose is how many of the next queries get no response, as if lost.
	lose int
	// refuse is how many of the next queries fail at once with a network
	// error, as a datagram dropped by a local firewall does.
	refuse int
	// delay holds every response for that long.
	delay time.Duration
	// nxdomainFor answers NXDOMAIN for these names instead of NODATA.
	nxdomainFor map[string]bool
	// plainReferrals leaves DS records and their proofs out of referrals.
	plainReferrals bool
}

type fakeZone struct {
	origin string
	rrs    []dns.RR
	// nsec3 is set when the zone is signed with NSEC3 instead of NSEC.
	nsec3 bool
}

func newFakeNet() *fakeNet {
	return &fakeNet{servers: map[netip.Addr]*fakeServer{}}
}

// serve makes addr serve the zones whose records are in text. Each SOA
// record starts a new zone at its owner; records before any SOA belong to
// origin.
func (n *fakeNet) serve(t *testing.T, addr, origin, text string) {
	t.Helper()
	s := n.server(addr)
	z := &fakeZone{origin: dns.CanonicalName(origin)}
	zp := dns.NewZoneParser(strings.NewReader(text), z.origin, "")
	zp.SetDefaultTTL(300)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rr.Header().Name = dns.CanonicalName(rr.Header().Name)
		if rr.Header().Rrtype == dns.TypeSOA && rr.Header().Name != z.origin {
			if len(z.rrs) > 0 {
				s.zones = append(s.zones, z)
			}
			z = &fakeZone{origin: rr.Header().Name}
		}
		z.rrs = append(z.rrs, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("zone %s: %v", origin, err)
	}
	s.zones = append(s.zones, z)
}

func (n *fakeNet) server(addr string) *fakeServer {
	a := netip.MustParseAddr(addr)
	if n.servers[a] == nil {
		n.servers[a] = &fakeServer{}
	}
	return n.servers[a]
}

// count returns how many queries addr received, or all servers for "".
func (n *fakeNet) count(addr string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for _, q := range n.queries {
		if addr == "" || strings.HasPrefix(q, addr+" ") {
			c++
		}
	}
	return c
}

func (n *fakeNet) Exchange(ctx context.Context, q exchange.Query) (exchange.Response, error) {
	n.mu.Lock()
	n.queries = append(n.queries, fmt.Sprintf("%s %s %s", q.Server.Addr(), q.Name, dns.TypeToString[q.Type]))
	s := n.servers[q.Server.Addr()]
	var lost, refused bool
	var delay time.Duration
	if s != nil {
		lost, refused, delay = s.lose > 0, s.lose == 0 && s.refuse > 0, s.delay
		if lost {
			s.lose--
		} else if refused {
			s.refuse--
		}
	}
	n.mu.Unlock()
	if s == nil || s.silent || lost {
		return exchange.Response{}, exchange.ErrTimeout
	}
	if refused {
		return exchange.Response{}, &net.OpError{Op: "write", Net: "udp", Err: syscall.EPERM}
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return exchange.Response{}, ctx.Err()
		}
	}
	m := new(dns.Msg)
	m.SetQuestion(q.Name, q.Type)
	m.Response = true
	s.answer(m, dns.CanonicalName(q.Name), q.Type)
	return exchange.Response{Msg: m, RTT: time.Millisecond}, nil
}

// answer fills m as an authoritative server would. For a signed zone, one
// holding NSEC records, it adds RRSIGs and NSEC proofs (RFC 4035 section
// 3.1).
func (s *fakeServer) answer(m *dns.Msg, qname string, qtype uint16) {
	z := s.zoneFor(qname)
	if qtype == dns.TypeDS && z != nil && z.origin == qname && qname != "." {
		// The DS RRset belongs to the parent side of a cut.
		if p := s.zoneFor(parent(qname)); p != nil {
			z = p
		}
	}
	if z == nil {
		m.Rcode = dns.RcodeRefused
		return
	}
	for cur, steps := qname, 0; steps < 8; steps++ {
		if cut := z.cutAbove(cur); cut != "" && !(cut == cur && qtype == dns.TypeDS) {
			m.Ns = append(m.Ns, z.get(cut, dns.TypeNS)...)
			if !s.plainReferrals {
				// A signed parent adds the DS RRset or proves its absence
				// (RFC 4035 section 3.1.4).
				if ds := z.get(cut, dns.TypeDS); len(ds) > 0 {
					m.Ns = append(append(m.Ns, ds...), z.sigs(cut, dns.TypeDS)...)
				} else if z.nsec3 {
					m.Ns = append(m.Ns, z.nsec3Proof(cut, false)...)
				} else if len(z.get(cut, dns.TypeNSEC)) > 0 {
					m.Ns = append(m.Ns, z.proof(cut)...)
				}
			}
			for _, ns := range z.get(cut, dns.TypeNS) {
				m.Extra = append(m.Extra, z.get(ns.(*dns.NS).Ns, dns.TypeA)...)
				m.Extra = append(m.Extra, z.get(ns.(*dns.NS).Ns, dns.TypeAAAA)...)
			}
			return
		}
		m.Authoritative = true
		if rrs := z.get(cur, qtype); len(rrs) > 0 {
			m.Answer = append(m.Answer, rrs...)
			m.Answer = append(m.Answer, z.sigs(cur, qtype)...)
			return
		}
		if c := z.get(cur, dns.TypeCNAME); len(c) > 0 {
			m.Answer = append(m.Answer, c...)
			m.Answer = append(m.Answer, z.sigs(cur, dns.TypeCNAME)...)
			cur = c[0].(*dns.CNAME).Target
			if dns.IsSubDomain(z.origin, cur) {
				continue
			}
			return
		}
		if d := z.dnameAbove(cur); d != nil {
			cname, _ := synthesise(d, cur)
			m.Answer = append(m.Answer, d, cname)
			return
		}
		soa := append(z.get(z.origin, dns.TypeSOA), z.sigs(z.origin, dns.TypeSOA)...)
		if z.exists(cur) && !s.nxdomainFor[cur] {
			if z.nsec3 {
				m.Ns = append(soa, z.nsec3Proof(cur, false)...)
			} else {
				m.Ns = append(soa, z.proof(cur)...)
			}
			return
		}
		if w := z.get("*."+parent(cur), qtype); len(w) > 0 {
			for _, rr := range append(w, z.sigs("*."+parent(cur), qtype)...) {
				rr = dns.Copy(rr)
				rr.Header().Name = cur
				m.Answer = append(m.Answer, rr)
			}
			if z.nsec3 {
				m.Ns = z.nsec3Proof(cur, true)
			} else {
				m.Ns = z.proof(cur)
			}
			return
		}
		m.Rcode = dns.RcodeNameError
		if z.nsec3 {
			m.Ns = append(soa, z.nsec3Proof(cur, true)...)
			m.Ns = append(m.Ns, z.nsec3Proof("*."+z.closestEncloser(cur), true)...)
			return
		}
		m.Ns = append(soa, z.proof(cur)...)
		m.Ns = append(m.Ns, z.proof("*."+parent(cur))...)
		return
	}
	m.Rcode = dns.RcodeServerFailure
}

// closestEncloser returns the deepest existing ancestor of name.
func (z *fakeZone) closestEncloser(name string) string {
	for n := parent(name); n != ""; n = parent(n) {
		if z.exists(n) || n == z.origin {
			return n
		}
	}
	return z.origin
}

// nsec3Proof returns, with RRSIGs, the NSEC3 record matching name, or for a
// name that does not exist (absent set) the closest encloser's matching
// record and the one covering the next closer name.
func (z *fakeZone) nsec3Proof(name string, absent bool) []dns.RR {
	var out []dns.RR
	add := func(n *dns.NSEC3) {
		if n != nil {
			out = append(out, n)
			out = append(out, z.sigs(n.Hdr.Name, dns.TypeNSEC3)...)
		}
	}
	if !absent {
		add(z.nsec3For(name, false))
		return out
	}
	ce := z.closestEncloser(name)
	add(z.nsec3For(ce, false))
	keep := dns.CountLabel(ce) + 1
	off, _ := dns.PrevLabel(name, keep)
	add(z.nsec3For(name[off:], true))
	return out
}

// nsec3For returns the NSEC3 record that matches name, or with cover set the
// one whose span holds its hash.
func (z *fakeZone) nsec3For(name string, cover bool) *dns.NSEC3 {
	h := dns.HashName(name, dns.SHA1, 0, "")
	for _, rr := range z.rrs {
		n, ok := rr.(*dns.NSEC3)
		if !ok {
			continue
		}
		owner := strings.ToUpper(strings.SplitN(n.Hdr.Name, ".", 2)[0])
		next := strings.ToUpper(n.NextDomain)
		if !cover && owner == h {
			return n
		}
		if cover && (owner < next && owner < h && h < next || owner >= next && (h > owner || h < next)) {
			return n
		}
	}
	return nil
}

// sigs returns the RRSIGs over name's RRset of type t.
func (z *fakeZone) sigs(name string, t uint16) []dns.RR {
	var out []dns.RR
	for _, rr := range z.get(name, dns.TypeRRSIG) {
		if rr.(*dns.RRSIG).TypeCovered == t {
			out = append(out, rr)
		}
	}
	return out
}

// proof returns the NSEC record at name, or the one whose span holds it,
// with its RRSIGs; nothing for an unsigned zone.
func (z *fakeZone) proof(name string) []dns.RR {
	var best *dns.NSEC
	for _, rr := range z.rrs {
		n, ok := rr.(*dns.NSEC)
		if !ok {
			continue
		}
		if n.Hdr.Name == name {
			best = n
			break
		}
		if dnssec.Compare(n.Hdr.Name, name) < 0 && (best == nil || dnssec.Compare(best.Hdr.Name, n.Hdr.Name) < 0) {
			best = n
		}
	}
	if best == nil {
		// Before the first owner: the last NSEC wraps around.
		for _, rr := range z.rrs {
			if n, ok := rr.(*dns.NSEC); ok && (best == nil || dnssec.Compare(best.Hdr.Name, n.Hdr.Name) < 0) {
				best = n
			}
		}
	}
	if best == nil {
		return nil
	}
	return append([]dns.RR{best}, z.sigs(best.Hdr.Name, dns.TypeNSEC)...)
}

func (s *fakeServer) zoneFor(name string) *fakeZone {
	var best *fakeZone
	for _, z := range s.zones {
		if dns.IsSubDomain(z.origin, name) && (best == nil || len(z.origin) > len(best.origin)) {
			best = z
		}
	}
	return best
}

func (z *fakeZone) get(name string, t uint16) []dns.RR {
	var out []dns.RR
	for _, rr := range z.rrs {
		if rr.Header().Name == dns.CanonicalName(name) && (rr.Header().Rrtype == t || t == dns.TypeANY) {
			out = append(out, rr)
		}
	}
	return out
}

// cutAbove returns the deepest delegation point between the origin
// (exclusive) and name (inclusive).
func (z *fakeZone) cutAbove(name string) string {
	cut := ""
	for n := name; n != z.origin && n != ""; n = parent(n) {
		if len(z.get(n, dns.TypeNS)) > 0 {
			cut = n
		}
	}
	return cut
}

func (z *fakeZone) dnameAbove(name string) *dns.DNAME {
	for n := parent(name); n != "" && dns.IsSubDomain(z.origin, n); n = parent(n) {
		if d := z.get(n, dns.TypeDNAME); len(d) > 0 {
			return d[0].(*dns.DNAME)
		}
	}
	return nil
}

// exists reports whether name owns records or is an empty non-terminal.
func (z *fakeZone) exists(name string) bool {
	for _, rr := range z.rrs {
		if dns.IsSubDomain(name, rr.Header().Name) {
			return true
		}
	}
	return false
}

// testResolver returns a resolver over n with root server 10.0.0.1 and a
// pinned clock.
func testResolver(t *testing.T, n *fakeNet, edit func(*Config)) (*Resolver, *cache.Cache) {
	t.Helper()
	r, c, _ := testResolverClock(t, n, edit)
	return r, c
}

// testClock is a clock that tests move by hand.
type testClock struct{ t time.Time }

func (c *testClock) now() time.Time { return c.t }

// testResolverClock is testResolver with the clock returned, for tests that
// let time pass.
func testResolverClock(t *testing.T, n *fakeNet, edit func(*Config)) (*Resolver, *cache.Cache, *testClock) {
	t.Helper()
	clk := &testClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	now := clk.now
	cfg := Config{
		Roots:              []config.RootServer{{Name: "a.root.test.", Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.1")}}},
		Port:               53,
		IPv4:               true,
		IPv6:               true,
		QNAMEMinimisation:  true,
		QueryTimeout:       100 * time.Millisecond,
		MaxUpstreamQueries: 64,
		MaxReferrals:       30,
		MaxCNAMEChain:      12,
		MaxNSNamesResolved: 8,
		MaxDepth:           6,
		FailureTTL:         5 * time.Second,
		ServerHoldDown:     time.Minute,

		ServerProbeInterval: time.Second,
		ServerTries:         3,
	}
	if edit != nil {
		edit(&cfg)
	}
	c := cache.New(cache.Config{MaxBytes: 16 << 20, MaxTTL: 24 * time.Hour, MaxNegativeTTL: time.Hour, Now: now})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return New(cfg, c, n, log, now), c, clk
}
