package resolver

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"bulwark/internal/cache"

	"github.com/miekg/dns"
)

const rootZone = `
. SOA a.root.test. host.test. 1 3600 600 86400 300
. NS a.root.test.
a.root.test. A 10.0.0.1
com. NS ns.nic.com.
ns.nic.com. A 10.0.1.1
net. NS ns.nic.net.
ns.nic.net. A 10.0.2.1
`

const comZone = `
com. SOA ns.nic.com. host.test. 1 3600 600 86400 900
com. NS ns.nic.com.
ns.nic.com. A 10.0.1.1
example.com. NS ns1.example.com.
ns1.example.com. A 10.0.3.1
glueless.com. NS ns1.host.net.
cyc1.com. NS ns.cyc2.net.
noglue.com. NS ns1.noglue.com.
lame.com. NS ns.lame.net.
halflame.com. NS ns.lame.net.
halflame.com. NS ns1.host.net.
attacker.com. NS ns1.host.net.
silent.com. NS ns.silent.com.
ns.silent.com. A 10.0.9.9
cdn.com. NS ns1.cdn-dns.com.
cdn.com. NS ns2.cdn-dns.com.
cdn.com. NS ns3.cdn-dns.com.
cdn.com. NS ns4.cdn-dns.com.
cdn.com. NS ns5.cdn-dns.com.
cdn.com. NS ns6.cdn-dns.com.
cdn.com. NS ns7.cdn-dns.com.
cdn.com. NS ns8.cdn-dns.com.
cdn-dns.com. NS ns1.host.net.
victim.com. NS ns1.victim.com.
ns1.victim.com. A 10.0.7.1
`

const netZone = `
net. SOA ns.nic.net. host.test. 1 3600 600 86400 900
net. NS ns.nic.net.
ns.nic.net. A 10.0.2.1
host.net. NS ns1.host.net.
ns1.host.net. A 10.0.4.1
cyc2.net. NS ns.cyc1.com.
lame.net. NS ns1.host.net.
`

const exampleZone = `
example.com. SOA ns1.example.com. host.example.com. 1 3600 600 86400 60
example.com. NS ns1.example.com.
ns1.example.com. A 10.0.3.1
www.example.com. CNAME edge.host.net.
mail.example.com. 600 A 192.0.2.25
example.com. MX 10 mail.example.com.
deep.a.b.c.example.com. A 192.0.2.40
www.x1.ent.example.com. A 192.0.2.10
old.example.com. 3600 DNAME new.example.com.
host.new.example.com. A 192.0.2.20
mail.new.example.com. A 192.0.2.21
loop1.example.com. CNAME loop2.example.com.
loop2.example.com. CNAME loop1.example.com.
`

const hostZone = `
host.net. SOA ns1.host.net. host.host.net. 1 3600 600 86400 300
host.net. NS ns1.host.net.
ns1.host.net. A 10.0.4.1
edge.host.net. 60 A 192.0.2.80
lame.net. SOA ns1.host.net. host.host.net. 1 3600 600 86400 300
lame.net. NS ns1.host.net.
ns.lame.net. A 10.0.5.5
glueless.com. SOA ns1.host.net. host.host.net. 1 3600 600 86400 300
glueless.com. NS ns1.host.net.
www.glueless.com. A 192.0.2.50
halflame.com. SOA ns1.host.net. host.host.net. 1 3600 600 86400 300
halflame.com. NS ns1.host.net.
www.halflame.com. A 192.0.2.51
cdn-dns.com. SOA ns1.host.net. host.host.net. 1 3600 600 86400 300
cdn-dns.com. NS ns1.host.net.
ns7.cdn-dns.com. A 10.0.6.1
ns8.cdn-dns.com. A 10.0.6.1
attacker.com. SOA ns1.host.net. host.host.net. 1 3600 600 86400 300
attacker.com. NS ns1.host.net.
`

func labNet(t *testing.T) *fakeNet {
	n := newFakeNet()
	n.serve(t, "10.0.0.1", ".", rootZone)
	n.serve(t, "10.0.1.1", "com.", comZone)
	n.serve(t, "10.0.2.1", "net.", netZone)
	n.serve(t, "10.0.3.1", "example.com.", exampleZone)
	n.serve(t, "10.0.4.1", "host.net.", hostZone)
	n.serve(t, "10.0.6.1", "cdn.com.", "cdn.com. SOA ns7.cdn-dns.com. h. 1 2 3 4 5\ncdn.com. NS ns7.cdn-dns.com.\nwww.cdn.com. A 192.0.2.11\n")
	n.serve(t, "10.0.7.1", "victim.com.", "victim.com. SOA ns1.victim.com. h. 1 2 3 4 300\nvictim.com. NS ns1.victim.com.\nns1.victim.com. A 10.0.7.1\n")
	n.server("10.0.5.5") // lame: serves nothing, answers REFUSED
	n.server("10.0.9.9").silent = true
	// The attacker zone answers every name below it with a referral to 20
	// NS names in victim.com that do not exist.
	var attack strings.Builder
	for i := 1; i <= 20; i++ {
		fmt.Fprintf(&attack, "sub.attacker.com. 300 NS ns%02d.victim.com.\n", i)
	}
	attacker := n.server("10.0.4.1").zoneFor("attacker.com.")
	zp := dns.NewZoneParser(strings.NewReader(attack.String()), "", "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		attacker.rrs = append(attacker.rrs, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("attacker zone: %v", err)
	}
	return n
}

func resolveOK(t *testing.T, r *Resolver, name string, qtype uint16) Result {
	t.Helper()
	res := r.Resolve(context.Background(), name, qtype)
	if res.Rcode != dns.RcodeSuccess {
		t.Fatalf("Resolve(%s, %s) rcode = %s (%+v), want NOERROR", name, dns.TypeToString[qtype], dns.RcodeToString[res.Rcode], res.EDE)
	}
	return res
}

func lastValue(res Result) string {
	if len(res.Answer) == 0 {
		return ""
	}
	rr := res.Answer[len(res.Answer)-1]
	return strings.TrimPrefix(rr.String(), rr.Header().String())
}

func TestResolveCNAMEAcrossZones(t *testing.T) {
	n := labNet(t)
	r, _ := testResolver(t, n, nil)
	res := resolveOK(t, r, "WWW.Example.COM.", dns.TypeA)
	if got := lastValue(res); got != "192.0.2.80" {
		t.Errorf("www.example.com A ends in %q, want 192.0.2.80", got)
	}
	if len(res.Answer) != 2 || res.Answer[0].Header().Rrtype != dns.TypeCNAME {
		t.Errorf("answer = %v, want CNAME then A", res.Answer)
	}
	before := n.count("")
	res = resolveOK(t, r, "www.example.com.", dns.TypeA)
	if n.count("") != before {
		t.Errorf("second resolution sent %d queries, want 0 (cached)", n.count("")-before)
	}
	if len(res.Answer) != 2 {
		t.Errorf("cached answer = %v, want CNAME then A", res.Answer)
	}
}

func TestQNAMEMinimisation(t *testing.T) {
	n := labNet(t)
	r, _ := testResolver(t, n, nil)
	resolveOK(t, r, "deep.a.b.c.example.com.", dns.TypeA)
	for _, q := range n.queries {
		if strings.HasPrefix(q, "10.0.0.1 ") && strings.Contains(q, "example") {
			t.Errorf("root server saw %q, want only the TLD label", q)
		}
		if strings.HasPrefix(q, "10.0.1.1 ") && strings.Contains(q, "deep") {
			t.Errorf("com server saw %q, want at most example.com", q)
		}
	}
}

func TestQNAMEMinimisationNXDomainForEmptyNonTerminal(t *testing.T) {
	n := labNet(t)
	n.server("10.0.3.1").nxdomainFor = map[string]bool{"x1.ent.example.com.": true, "ent.example.com.": true}
	r, _ := testResolver(t, n, nil)
	res := resolveOK(t, r, "www.x1.ent.example.com.", dns.TypeA)
	if got := lastValue(res); got != "192.0.2.10" {
		t.Errorf("www.x1.ent.example.com A = %q, want 192.0.2.10", got)
	}
	if res := r.Resolve(context.Background(), "x1.ent.example.com.", dns.TypeA); res.Rcode != dns.RcodeNameError {
		t.Errorf("x1.ent.example.com rcode = %s, want the server's NXDOMAIN", dns.RcodeToString[res.Rcode])
	}
	resolveOK(t, r, "www.x1.ent.example.com.", dns.TypeA)
}

func TestGluelessDelegation(t *testing.T) {
	n := labNet(t)
	r, _ := testResolver(t, n, nil)
	res := resolveOK(t, r, "www.glueless.com.", dns.TypeA)
	if got := lastValue(res); got != "192.0.2.50" {
		t.Errorf("www.glueless.com A = %q, want 192.0.2.50", got)
	}
}

func TestNegativeCaching(t *testing.T) {
	n := labNet(t)
	r, _ := testResolver(t, n, nil)
	res := r.Resolve(context.Background(), "nope.example.com.", dns.TypeA)
	if res.Rcode != dns.RcodeNameError {
		t.Fatalf("nope.example.com rcode = %s, want NXDOMAIN", dns.RcodeToString[res.Rcode])
	}
	if len(res.Authority) != 1 || res.Authority[0].Header().Ttl != 60 {
		t.Errorf("authority = %v, want the SOA with TTL 60 (its MINIMUM)", res.Authority)
	}
	before := n.count("")
	if res := r.Resolve(context.Background(), "nope.example.com.", dns.TypeAAAA); res.Rcode != dns.RcodeNameError {
		t.Errorf("nope.example.com AAAA rcode = %s, want NXDOMAIN from cache", dns.RcodeToString[res.Rcode])
	}
	if n.count("") != before {
		t.Errorf("cached NXDOMAIN still sent %d queries", n.count("")-before)
	}
	res = r.Resolve(context.Background(), "mail.example.com.", dns.TypeTXT)
	if res.Rcode != dns.RcodeSuccess || len(res.Answer) != 0 || len(res.Authority) != 1 {
		t.Errorf("mail.example.com TXT = %+v, want NODATA with SOA", res)
	}
}

func TestDNAME(t *testing.T) {
	n := labNet(t)
	r, _ := testResolver(t, n, nil)
	res := resolveOK(t, r, "host.old.example.com.", dns.TypeA)
	if got := lastValue(res); got != "192.0.2.20" {
		t.Errorf("host.old.example.com A = %q, want 192.0.2.20", got)
	}
	before := n.count("")
	res = resolveOK(t, r, "mail.old.example.com.", dns.TypeA)
	if len(res.Answer) != 3 {
		t.Fatalf("answer = %v, want DNAME, CNAME, A", res.Answer)
	}
	cname, ok := res.Answer[1].(*dns.CNAME)
	if !ok || cname.Hdr.Name != "mail.old.example.com." || cname.Target != "mail.new.example.com." {
		t.Errorf("second record = %v, want the CNAME synthesised from the DNAME", res.Answer[1])
	}
	if ok && cname.Hdr.Ttl != 3600 {
		t.Errorf("synthesised CNAME TTL = %d, want the DNAME's 3600", cname.Hdr.Ttl)
	}
	for _, q := range n.queries[before:] {
		if strings.Contains(q, "old.") {
			t.Errorf("second name under the cached DNAME sent %q, want queries for the target only", q)
		}
	}
}

func TestCNAMELoop(t *testing.T) {
	n := labNet(t)
	r, _ := testResolver(t, n, nil)
	res := r.Resolve(context.Background(), "loop1.example.com.", dns.TypeA)
	if res.Rcode != dns.RcodeServerFailure {
		t.Errorf("CNAME loop rcode = %s, want SERVFAIL", dns.RcodeToString[res.Rcode])
	}
}

func TestBrokenDelegations(t *testing.T) {
	tests := []struct {
		name      string
		qname     string
		wantRcode int
		maxQuery  int
	}{
		{"cycle", "www.cyc1.com.", dns.RcodeServerFailure, 20},
		{"in-bailiwick NS without glue", "www.noglue.com.", dns.RcodeServerFailure, 10},
		{"lame", "www.lame.com.", dns.RcodeServerFailure, 20},
		{"silent", "www.silent.com.", dns.RcodeServerFailure, 10},
		{"half lame", "www.halflame.com.", dns.RcodeSuccess, 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := labNet(t)
			r, _ := testResolver(t, n, nil)
			res := r.Resolve(context.Background(), tt.qname, dns.TypeA)
			if res.Rcode != tt.wantRcode {
				t.Errorf("Resolve(%s) rcode = %s (%+v), want %s", tt.qname, dns.RcodeToString[res.Rcode], res.EDE, dns.RcodeToString[tt.wantRcode])
			}
			if got := n.count(""); got > tt.maxQuery {
				t.Errorf("Resolve(%s) sent %d queries, want at most %d", tt.qname, got, tt.maxQuery)
			}
			if res.Rcode == dns.RcodeServerFailure && (res.EDE == nil || res.EDE.Code != EDENoReachableAuthority) {
				t.Errorf("Resolve(%s) EDE = %+v, want code %d", tt.qname, res.EDE, EDENoReachableAuthority)
			}
			before := n.count("")
			r.Resolve(context.Background(), tt.qname, dns.TypeA)
			if tt.wantRcode == dns.RcodeServerFailure && n.count("")-before > 2 {
				t.Errorf("repeated Resolve(%s) sent %d queries, want the failure cached", tt.qname, n.count("")-before)
			}
		})
	}
}

func TestNXNSAttackBounded(t *testing.T) {
	n := labNet(t)
	r, _ := testResolver(t, n, nil)
	res := r.Resolve(context.Background(), "r1.sub.attacker.com.", dns.TypeA)
	if res.Rcode != dns.RcodeServerFailure {
		t.Errorf("attack name rcode = %s, want SERVFAIL", dns.RcodeToString[res.Rcode])
	}
	if got := n.count("10.0.7.1"); got > 10 {
		t.Errorf("victim received %d queries, want at most 10", got)
	}
}

func TestPartlyBrokenDelegationResolves(t *testing.T) {
	for i := range 20 {
		n := labNet(t)
		r, _ := testResolver(t, n, nil)
		res := r.Resolve(context.Background(), "www.cdn.com.", dns.TypeA)
		if res.Rcode != dns.RcodeSuccess || lastValue(res) != "192.0.2.11" {
			t.Fatalf("run %d: www.cdn.com A = %s %v, want 192.0.2.11", i, dns.RcodeToString[res.Rcode], res.Answer)
		}
	}
}

func TestBudgetLimitsWork(t *testing.T) {
	n := labNet(t)
	r, _ := testResolver(t, n, func(c *Config) { c.MaxUpstreamQueries = 3 })
	res := r.Resolve(context.Background(), "deep.a.b.c.example.com.", dns.TypeA)
	if res.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode with a budget of 3 = %s, want SERVFAIL", dns.RcodeToString[res.Rcode])
	}
	if got := n.count(""); got > 3 {
		t.Errorf("sent %d queries with a budget of 3", got)
	}
}

func TestGlueNotAnswered(t *testing.T) {
	n := labNet(t)
	r, _ := testResolver(t, n, nil)
	resolveOK(t, r, "www.example.com.", dns.TypeA) // caches ns1.example.com as glue
	before := n.count("10.0.3.1")
	res := r.Resolve(context.Background(), "ns1.example.com.", dns.TypeA)
	if res.Rcode != dns.RcodeSuccess || lastValue(res) != "10.0.3.1" {
		t.Fatalf("ns1.example.com A = %v, want 10.0.3.1", res.Answer)
	}
	if n.count("10.0.3.1") == before {
		t.Error("ns1.example.com A was answered from glue, want a query to the zone's server")
	}
}

func TestCutWithoutAddressesSkipped(t *testing.T) {
	tests := []struct {
		name string
		ns   string
	}{
		{"zone whose glue was evicted", "example.com. 86400 IN NS ns9.example.com."},
		{"root whose addresses were evicted", ". 86400 IN NS z.root.test."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := labNet(t)
			r, c := testResolver(t, n, nil)
			rr, _ := dns.NewRR(tt.ns)
			c.StoreRRset([]dns.RR{rr}, cache.RankAnswer)
			res := resolveOK(t, r, "mail.example.com.", dns.TypeA)
			if got := lastValue(res); got != "192.0.2.25" {
				t.Errorf("mail.example.com A = %q, want 192.0.2.25", got)
			}
		})
	}
}

func TestResolveANY(t *testing.T) {
	n := labNet(t)
	r, _ := testResolver(t, n, nil)
	res := resolveOK(t, r, "example.com.", dns.TypeANY)
	types := map[uint16]bool{}
	for _, rr := range res.Answer {
		types[rr.Header().Rrtype] = true
	}
	for _, want := range []uint16{dns.TypeSOA, dns.TypeNS, dns.TypeMX} {
		if !types[want] {
			t.Errorf("ANY answer %v lacks %s", res.Answer, dns.TypeToString[want])
		}
	}
	res = resolveOK(t, r, "www.example.com.", dns.TypeANY)
	if len(res.Answer) != 1 || res.Answer[0].Header().Rrtype != dns.TypeCNAME {
		t.Errorf("ANY at a CNAME = %v, want the CNAME alone", res.Answer)
	}
}

// TestNegativeCacheExpires follows a name that is NXDOMAIN, then gets a
// record: the NXDOMAIN is served from the cache with its SOA for the
// negative TTL (the SOA MINIMUM, 60s), and the record is found after it.
func TestNegativeCacheExpires(t *testing.T) {
	n := labNet(t)
	r, _, clk := testResolverClock(t, n, nil)
	if res := r.Resolve(context.Background(), "nope.example.com.", dns.TypeA); res.Rcode != dns.RcodeNameError {
		t.Fatalf("rcode = %s, want NXDOMAIN", dns.RcodeToString[res.Rcode])
	}
	rr, _ := dns.NewRR("nope.example.com. 300 IN A 192.0.2.70")
	zone := n.server("10.0.3.1").zoneFor("example.com.")
	zone.rrs = append(zone.rrs, rr)

	clk.t = clk.t.Add(10 * time.Second)
	before := n.count("")
	res := r.Resolve(context.Background(), "nope.example.com.", dns.TypeA)
	if res.Rcode != dns.RcodeNameError || len(res.Authority) != 1 || res.Authority[0].Header().Ttl != 50 {
		t.Errorf("after 10s: %s with authority %v, want cached NXDOMAIN with the SOA at TTL 50", dns.RcodeToString[res.Rcode], res.Authority)
	}
	if n.count("") != before {
		t.Error("the cached NXDOMAIN sent queries")
	}

	clk.t = clk.t.Add(51 * time.Second)
	res = resolveOK(t, r, "nope.example.com.", dns.TypeA)
	if got := lastValue(res); got != "192.0.2.70" {
		t.Errorf("after the negative TTL: %q, want 192.0.2.70", got)
	}
}

// TestZeroTTLAnsweredNotCached checks that a record with TTL 0 answers the
// query that fetched it but is asked for again next time (RFC 1035 section
// 3.2.1).
func TestZeroTTLAnsweredNotCached(t *testing.T) {
	n := labNet(t)
	rr, _ := dns.NewRR("zero.example.com. 0 IN A 192.0.2.80")
	zone := n.server("10.0.3.1").zoneFor("example.com.")
	zone.rrs = append(zone.rrs, rr)
	r, _ := testResolver(t, n, nil)
	res := resolveOK(t, r, "zero.example.com.", dns.TypeA)
	if got := lastValue(res); got != "192.0.2.80" {
		t.Fatalf("zero.example.com A = %q, want 192.0.2.80", got)
	}
	before := n.count("10.0.3.1")
	resolveOK(t, r, "zero.example.com.", dns.TypeA)
	if n.count("10.0.3.1") == before {
		t.Error("a TTL 0 record was answered from the cache")
	}
}

func TestServersFromCache(t *testing.T) {
	n := labNet(t)
	r, _ := testResolver(t, n, nil)
	if zone, names, _ := r.Servers("mail.example.com."); zone != "" || names != nil {
		t.Errorf("before any query: zone %q, servers %v; want nothing", zone, names)
	}
	resolveOK(t, r, "mail.example.com.", dns.TypeA)
	before := n.count("")
	zone, names, addrs := r.Servers("Mail.Example.com.")
	if zone != "example.com." {
		t.Errorf("zone = %q, want example.com.", zone)
	}
	if len(names) != 1 || names[0] != "ns1.example.com." {
		t.Errorf("server names = %v, want [ns1.example.com.]", names)
	}
	if len(addrs) != 1 || addrs[0] != netip.MustParseAddr("10.0.3.1") {
		t.Errorf("server addresses = %v, want [10.0.3.1]", addrs)
	}
	if n.count("") != before {
		t.Errorf("Servers sent %d queries, want none", n.count("")-before)
	}
}
