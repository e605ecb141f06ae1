package resolver

import (
	"context"
	"crypto"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"bulwark/internal/autotrust"
	"bulwark/internal/dnssec"

	"github.com/miekg/dns"
)

// zoneKey is a signing key of a test zone.
type zoneKey struct {
	key  *dns.DNSKEY
	priv crypto.Signer
}

func newZoneKey(t *testing.T, zone string) zoneKey {
	t.Helper()
	k := &dns.DNSKEY{
		Hdr:   dns.RR_Header{Name: zone, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags: 257, Protocol: 3, Algorithm: dns.ED25519,
	}
	priv, err := k.Generate(256)
	if err != nil {
		t.Fatal(err)
	}
	return zoneKey{key: k, priv: priv.(crypto.Signer)}
}

func (k zoneKey) ds() string { return k.key.ToDS(dns.SHA256).String() }

// signZone adds the key, an NSEC chain and RRSIGs to the zone at origin
// served by addr. Signatures are valid around the test clock's start.
func signZone(t *testing.T, n *fakeNet, addr, origin string, k zoneKey) {
	t.Helper()
	var z *fakeZone
	for _, cand := range n.server(addr).zones {
		if cand.origin == origin {
			z = cand
		}
	}
	if z == nil {
		t.Fatalf("no zone %s at %s", origin, addr)
	}
	z.rrs = append(z.rrs, k.key)

	types := map[string]map[uint16]bool{}
	for _, rr := range z.rrs {
		name := rr.Header().Name
		if cut := z.cutAbove(name); cut != "" && cut != name {
			continue // glue
		}
		if types[name] == nil {
			types[name] = map[uint16]bool{}
		}
		types[name][rr.Header().Rrtype] = true
	}
	var owners []string
	for o := range types {
		owners = append(owners, o)
	}
	sort.Slice(owners, func(i, j int) bool { return dnssec.Compare(owners[i], owners[j]) < 0 })
	for i, o := range owners {
		bitmap := []uint16{dns.TypeNSEC, dns.TypeRRSIG}
		for typ := range types[o] {
			bitmap = append(bitmap, typ)
		}
		sort.Slice(bitmap, func(a, b int) bool { return bitmap[a] < bitmap[b] })
		z.rrs = append(z.rrs, &dns.NSEC{
			Hdr:        dns.RR_Header{Name: o, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: 300},
			NextDomain: owners[(i+1)%len(owners)], TypeBitMap: bitmap,
		})
	}

	sets := map[string][]dns.RR{}
	var keys []string
	for _, rr := range z.rrs {
		h := rr.Header()
		cut := z.cutAbove(h.Name)
		if cut != "" && (cut != h.Name || h.Rrtype == dns.TypeNS) {
			continue // glue and the child's NS RRset are not signed
		}
		key := fmt.Sprintf("%s/%d", h.Name, h.Rrtype)
		if sets[key] == nil {
			keys = append(keys, key)
		}
		sets[key] = append(sets[key], rr)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, key := range keys {
		set := sets[key]
		sig := &dns.RRSIG{
			Hdr:        dns.RR_Header{Name: set[0].Header().Name, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: set[0].Header().Ttl},
			KeyTag:     k.key.KeyTag(),
			SignerName: origin,
			Algorithm:  k.key.Algorithm,
			Inception:  uint32(start.Add(-90 * 24 * time.Hour).Unix()),
			Expiration: uint32(start.Add(90 * 24 * time.Hour).Unix()),
		}
		if err := sig.Sign(k.priv, set); err != nil {
			t.Fatalf("sign %s: %v", key, err)
		}
		z.rrs = append(z.rrs, sig)
	}
}

// corrupt flips a bit in the signature over name's RRset of type t.
func corrupt(t *testing.T, n *fakeNet, addr, name string, typ uint16) {
	t.Helper()
	for _, z := range n.server(addr).zones {
		for _, rr := range z.rrs {
			if s, ok := rr.(*dns.RRSIG); ok && s.Hdr.Name == name && s.TypeCovered == typ {
				raw, _ := base64.StdEncoding.DecodeString(s.Signature)
				raw[3] ^= 1
				s.Signature = base64.StdEncoding.EncodeToString(raw)
				return
			}
		}
	}
	t.Fatalf("no RRSIG over %s %s", name, dns.Type(typ))
}

// signedNet is a signed root (10.0.0.1) with the signed zone example.
// (10.0.0.2), its unsigned child insecure.example. (10.0.0.3), and the
// signed zone broken. (10.0.0.4) whose www A signature is corrupted.
func signedNet(t *testing.T) (*fakeNet, []dns.RR) {
	t.Helper()
	return signedNetWith(t, "")
}

// signedNetWith is signedNet with extra records in the root zone.
func signedNetWith(t *testing.T, rootExtra string) (*fakeNet, []dns.RR) {
	t.Helper()
	rootKey, exampleKey, brokenKey := newZoneKey(t, "."), newZoneKey(t, "example."), newZoneKey(t, "broken.")
	n := newFakeNet()
	n.serve(t, "10.0.0.1", ".", `
. SOA a.root.test. admin.test. 1 3600 600 86400 300
. NS a.root.test.
a.root.test. A 10.0.0.1
example. NS ns.example.
ns.example. A 10.0.0.2
`+exampleKey.ds()+`
broken. NS ns.broken.
ns.broken. A 10.0.0.4
`+brokenKey.ds()+"\n"+rootExtra)
	n.serve(t, "10.0.0.2", "example.", `
example. SOA ns.example. admin.example. 1 3600 600 86400 300
example. NS ns.example.
ns.example. A 10.0.0.2
www.example. A 192.0.2.1
alias.example. CNAME www.example.
b.c.example. A 192.0.2.2
*.w.example. A 192.0.2.3
insecure.example. NS ns.insecure.example.
ns.insecure.example. A 10.0.0.3
`)
	n.serve(t, "10.0.0.3", "insecure.example.", `
insecure.example. SOA ns.insecure.example. admin.example. 1 3600 600 86400 300
insecure.example. NS ns.insecure.example.
ns.insecure.example. A 10.0.0.3
www.insecure.example. A 192.0.2.9
`)
	n.serve(t, "10.0.0.4", "broken.", `
broken. SOA ns.broken. admin.broken. 1 3600 600 86400 300
broken. NS ns.broken.
ns.broken. A 10.0.0.4
www.broken. A 192.0.2.4
`)
	signZone(t, n, "10.0.0.2", "example.", exampleKey)
	signZone(t, n, "10.0.0.4", "broken.", brokenKey)
	signZone(t, n, "10.0.0.1", ".", rootKey)
	corrupt(t, n, "10.0.0.4", "www.broken.", dns.TypeA)
	return n, []dns.RR{rootKey.key.ToDS(dns.SHA256)}
}

func validating(anchors []dns.RR) func(*Config) {
	return func(c *Config) {
		c.Validation = true
		c.AggressiveNSEC = true
		c.Anchors = anchors
		c.BogusTTL = time.Minute
		c.Limits = dnssec.DefaultLimits
	}
}

func TestValidationStates(t *testing.T) {
	n, anchors := signedNet(t)
	r, _ := testResolver(t, n, validating(anchors))
	for _, tt := range []struct {
		name  string
		qtype uint16
		rcode int
		want  dnssec.Security
		ede   uint16
	}{
		{"www.example.", dns.TypeA, dns.RcodeSuccess, dnssec.Secure, 0},
		{"alias.example.", dns.TypeA, dns.RcodeSuccess, dnssec.Secure, 0},
		{"x.w.example.", dns.TypeA, dns.RcodeSuccess, dnssec.Secure, 0},
		{"nope.example.", dns.TypeA, dns.RcodeNameError, dnssec.Secure, 0},
		{"www.example.", dns.TypeAAAA, dns.RcodeSuccess, dnssec.Secure, 0},
		{"c.example.", dns.TypeA, dns.RcodeSuccess, dnssec.Secure, 0},
		{"example.", dns.TypeDS, dns.RcodeSuccess, dnssec.Secure, 0},
		{"insecure.example.", dns.TypeDS, dns.RcodeSuccess, dnssec.Secure, 0},
		{"www.insecure.example.", dns.TypeA, dns.RcodeSuccess, dnssec.Insecure, 0},
		{"www.broken.", dns.TypeA, dns.RcodeSuccess, dnssec.Bogus, dnssec.EDEBogus},
		{"nope.", dns.TypeA, dns.RcodeNameError, dnssec.Secure, 0},
		{"www.example.", dns.TypeRRSIG, dns.RcodeSuccess, dnssec.Indeterminate, 0},
	} {
		t.Run(tt.name+dns.Type(tt.qtype).String(), func(t *testing.T) {
			res := r.Resolve(context.Background(), tt.name, tt.qtype)
			if res.Rcode != tt.rcode {
				t.Fatalf("rcode %s, want %s", dns.RcodeToString[res.Rcode], dns.RcodeToString[tt.rcode])
			}
			if res.Security != tt.want {
				t.Errorf("security %v (EDE %+v), want %v", res.Security, res.EDE, tt.want)
			}
			if tt.ede != 0 && (res.EDE == nil || res.EDE.Code != tt.ede) {
				t.Errorf("EDE %+v, want code %d", res.EDE, tt.ede)
			}
		})
	}
}

func TestAnswerCarriesSignatures(t *testing.T) {
	n, anchors := signedNet(t)
	r, _ := testResolver(t, n, validating(anchors))
	for round := range 2 { // resolved, then from the cache
		res := r.Resolve(context.Background(), "www.example.", dns.TypeA)
		if !hasRRSIG(res.Answer, dns.TypeA) {
			t.Errorf("round %d: answer %v has no RRSIG over A", round, res.Answer)
		}
		neg := r.Resolve(context.Background(), "nope.example.", dns.TypeA)
		if !hasRRSIG(neg.Authority, dns.TypeSOA) || !hasType(neg.Authority, dns.TypeNSEC) {
			t.Errorf("round %d: authority %v lacks the signed SOA or NSEC", round, neg.Authority)
		}
	}
}

func hasRRSIG(rrs []dns.RR, covered uint16) bool {
	for _, rr := range rrs {
		if s, ok := rr.(*dns.RRSIG); ok && s.TypeCovered == covered {
			return true
		}
	}
	return false
}

func hasType(rrs []dns.RR, t uint16) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype == t {
			return true
		}
	}
	return false
}

func TestBogusIsCached(t *testing.T) {
	n, anchors := signedNet(t)
	r, _ := testResolver(t, n, validating(anchors))
	first := r.Resolve(context.Background(), "www.broken.", dns.TypeA)
	sent := n.count("")
	second := r.Resolve(context.Background(), "www.broken.", dns.TypeA)
	if first.Security != dnssec.Bogus || second.Security != dnssec.Bogus {
		t.Fatalf("security %v then %v, want bogus twice", first.Security, second.Security)
	}
	if got := n.count(""); got != sent {
		t.Errorf("second query sent %d upstream queries, want 0", got-sent)
	}
	if second.EDE == nil || second.EDE.Code != dnssec.EDEBogus || !strings.Contains(second.EDE.Text, "does not verify") {
		t.Errorf("cached bogus EDE %+v, want the original reason", second.EDE)
	}
}

func TestAggressiveNSEC(t *testing.T) {
	n, anchors := signedNet(t)
	r, _ := testResolver(t, n, validating(anchors))
	r.Resolve(context.Background(), "d1.example.", dns.TypeA) // learns the span c.example to example's next owners
	sent := n.count("10.0.0.2")
	res := r.Resolve(context.Background(), "d2.example.", dns.TypeA)
	if res.Rcode != dns.RcodeNameError || res.Security != dnssec.Secure {
		t.Fatalf("d2.example: rcode %s, security %v; want a secure NXDOMAIN", dns.RcodeToString[res.Rcode], res.Security)
	}
	if got := n.count("10.0.0.2"); got != sent {
		t.Errorf("d2.example sent %d queries to example's server, want 0 (answered from NSEC)", got-sent)
	}

	// A NODATA proof for one type proves nothing about ANY.
	r.Resolve(context.Background(), "www.example.", dns.TypeTXT)
	anyRes := r.Resolve(context.Background(), "www.example.", dns.TypeANY)
	if !hasType(anyRes.Answer, dns.TypeA) {
		t.Errorf("www.example. ANY after a TXT NODATA: answer %v, want the A record", anyRes.Answer)
	}

	off, _ := testResolver(t, n, func(c *Config) { validating(anchors)(c); c.AggressiveNSEC = false })
	off.Resolve(context.Background(), "d1.example.", dns.TypeA)
	sent = n.count("10.0.0.2")
	off.Resolve(context.Background(), "d2.example.", dns.TypeA)
	if n.count("10.0.0.2") == sent {
		t.Error("with aggressive NSEC off, d2.example sent no query")
	}
}

func TestNegativeTrustAnchor(t *testing.T) {
	n, anchors := signedNet(t)
	r, _, clk := testResolverClock(t, n, validating(anchors))
	r.AddNegativeTrustAnchor("Broken.", clk.t.Add(time.Hour))
	res := r.Resolve(context.Background(), "www.broken.", dns.TypeA)
	if res.Security != dnssec.Insecure || res.Rcode != dns.RcodeSuccess {
		t.Fatalf("under the negative anchor: %s %v, want an insecure answer", dns.RcodeToString[res.Rcode], res.Security)
	}
	if got := len(r.NegativeTrustAnchors()); got != 1 {
		t.Errorf("%d negative anchors listed, want 1", got)
	}
	clk.t = clk.t.Add(2 * time.Hour)
	res = r.Resolve(context.Background(), "www.broken.", dns.TypeA)
	if res.Security != dnssec.Bogus {
		t.Errorf("after expiry: %v, want bogus", res.Security)
	}
	if got := len(r.NegativeTrustAnchors()); got != 0 {
		t.Errorf("%d negative anchors listed after expiry, want 0", got)
	}
}

func TestValidationOff(t *testing.T) {
	n, anchors := signedNet(t)
	r, _ := testResolver(t, n, func(c *Config) { validating(anchors)(c); c.Validation = false })
	res := r.Resolve(context.Background(), "www.broken.", dns.TypeA)
	if res.Security != dnssec.Indeterminate || res.Rcode != dns.RcodeSuccess {
		t.Errorf("validation off: %s %v, want NOERROR indeterminate", dns.RcodeToString[res.Rcode], res.Security)
	}
}

func TestWrongAnchorIsBogus(t *testing.T) {
	n, _ := signedNet(t)
	other := newZoneKey(t, ".")
	r, _ := testResolver(t, n, validating([]dns.RR{other.key.ToDS(dns.SHA256)}))
	res := r.Resolve(context.Background(), "www.example.", dns.TypeA)
	if res.Security != dnssec.Bogus || res.EDE == nil || res.EDE.Code != dnssec.EDEDNSKEYMissing {
		t.Errorf("root key not matching the anchor: %v %+v, want bogus with EDE %d", res.Security, res.EDE, dnssec.EDEDNSKEYMissing)
	}
}

func TestProbeTrustAnchorsAcceptsNewKey(t *testing.T) {
	newRoot := newZoneKey(t, ".")
	n, anchors := signedNetWith(t, newRoot.key.String())
	path := filepath.Join(t.TempDir(), "root.state")
	st := autotrust.New(path)
	st.Seed(anchors)
	r, _, clk := testResolverClock(t, n, validating(st.TrustAnchors()))

	r.ProbeTrustAnchors(context.Background(), st)
	states := map[uint16]autotrust.KeyState{}
	for _, k := range st.Keys() {
		if key, ok := k.Record.(*dns.DNSKEY); ok {
			states[key.KeyTag()] = k.State
		}
	}
	if got := states[newRoot.key.KeyTag()]; got != autotrust.AddPend {
		t.Fatalf("new key after the first probe: %v, want AddPend (states %v)", got, states)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("state file not written: %v", err)
	}

	clk.t = clk.t.Add(31 * 24 * time.Hour)
	r.ProbeTrustAnchors(context.Background(), st)
	for _, k := range st.Keys() {
		if key, ok := k.Record.(*dns.DNSKEY); ok && key.KeyTag() == newRoot.key.KeyTag() && k.State != autotrust.Valid {
			t.Errorf("new key after the hold-down: %v, want Valid", k.State)
		}
	}
	trust, ok := r.anchors.Load().at(".")
	if !ok || len(trust.DNSKEYs) != 2 {
		t.Errorf("resolver anchors after the hold-down: %d DNSKEYs, want 2", len(trust.DNSKEYs))
	}
	if res := r.Resolve(context.Background(), "www.example.", dns.TypeA); res.Security != dnssec.Secure {
		t.Errorf("after the update: %v, want secure", res.Security)
	}
}

func TestChildOnParentServers(t *testing.T) {
	rootKey, exampleKey, childKey := newZoneKey(t, "."), newZoneKey(t, "example."), newZoneKey(t, "signedsub.example.")
	n := newFakeNet()
	n.serve(t, "10.0.0.1", ".", `
. SOA a.root.test. admin.test. 1 3600 600 86400 300
. NS a.root.test.
a.root.test. A 10.0.0.1
example. NS ns.example.
ns.example. A 10.0.0.2
`+exampleKey.ds())
	// 10.0.0.2 serves example. and both children, so it answers for them
	// without a referral.
	n.serve(t, "10.0.0.2", "example.", `
example. SOA ns.example. admin.example. 1 3600 600 86400 300
example. NS ns.example.
ns.example. A 10.0.0.2
sub.example. NS ns.example.
signedsub.example. NS ns.example.
`+childKey.ds())
	n.serve(t, "10.0.0.2", "sub.example.", `
sub.example. SOA ns.example. admin.example. 1 3600 600 86400 300
sub.example. NS ns.example.
www.sub.example. A 192.0.2.20
`)
	n.serve(t, "10.0.0.2", "signedsub.example.", `
signedsub.example. SOA ns.example. admin.example. 1 3600 600 86400 300
signedsub.example. NS ns.example.
www.signedsub.example. A 192.0.2.21
`)
	signZone(t, n, "10.0.0.2", "signedsub.example.", childKey)
	signZone(t, n, "10.0.0.2", "example.", exampleKey)
	signZone(t, n, "10.0.0.1", ".", rootKey)
	r, _ := testResolver(t, n, validating([]dns.RR{rootKey.key.ToDS(dns.SHA256)}))

	for _, tt := range []struct {
		name  string
		rcode int
		want  dnssec.Security
	}{
		{"www.sub.example.", dns.RcodeSuccess, dnssec.Insecure},
		{"nope.sub.example.", dns.RcodeNameError, dnssec.Insecure},
		{"www.signedsub.example.", dns.RcodeSuccess, dnssec.Secure},
		{"nope.signedsub.example.", dns.RcodeNameError, dnssec.Secure},
	} {
		res := r.Resolve(context.Background(), tt.name, dns.TypeA)
		if res.Rcode != tt.rcode || res.Security != tt.want {
			t.Errorf("%s: %s %v (EDE %+v), want %s %v", tt.name, dns.RcodeToString[res.Rcode], res.Security, res.EDE, dns.RcodeToString[tt.rcode], tt.want)
		}
	}
}

func TestDelegationProven(t *testing.T) {
	rrs := func(lines ...string) []dns.RR {
		var out []dns.RR
		for _, l := range lines {
			rr, err := dns.NewRR(l)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, rr)
		}
		return out
	}
	cut := rrs("sub.example. 300 IN NSEC z.example. NS RRSIG NSEC")
	if !dnssec.DelegationProven(cut, "sub.example.", 50) {
		t.Error("NSEC with NS and no SOA: not a delegation, want one")
	}
	inside := rrs("sub.example. 300 IN NSEC z.example. A RRSIG NSEC")
	if dnssec.DelegationProven(inside, "sub.example.", 50) {
		t.Error("NSEC without NS: a delegation, want none")
	}
	apex := rrs("sub.example. 300 IN NSEC z.sub.example. NS SOA RRSIG NSEC DNSKEY")
	if dnssec.DelegationProven(apex, "sub.example.", 50) {
		t.Error("child apex NSEC: a delegation, want none")
	}
	h := strings.ToLower(dns.HashName("sub.example.", dns.SHA1, 0, ""))
	nsec3 := rrs(h + ".example. 300 IN NSEC3 1 0 0 - " + strings.ToUpper(h) + " NS")
	if !dnssec.DelegationProven(nsec3, "sub.example.", 50) {
		t.Error("matching NSEC3 with NS: not a delegation, want one")
	}
}

func TestRootNSValidatedAfterPriming(t *testing.T) {
	n, anchors := signedNet(t)
	r, _ := testResolver(t, n, validating(anchors))
	// Priming happens inside the first query, for another name.
	if res := r.Resolve(context.Background(), "www.example.", dns.TypeA); res.Security != dnssec.Secure {
		t.Fatalf("www.example.: %v, want secure", res.Security)
	}
	res := r.Resolve(context.Background(), ".", dns.TypeNS)
	if res.Rcode != dns.RcodeSuccess || res.Security != dnssec.Secure {
		t.Errorf(". NS after priming: %s %v, want a secure answer", dns.RcodeToString[res.Rcode], res.Security)
	}
}

// signZoneNSEC3 signs the zone like signZone, with an NSEC3 chain
// (iterations 0, empty salt) and, when optOut is set, the opt-out flag.
func signZoneNSEC3(t *testing.T, n *fakeNet, addr, origin string, k zoneKey, optOut bool) {
	t.Helper()
	signZone(t, n, addr, origin, k)
	var z *fakeZone
	for _, cand := range n.server(addr).zones {
		if cand.origin == origin {
			z = cand
		}
	}
	// Replace the NSEC chain and its signatures by an NSEC3 chain.
	type hashed struct {
		hash  string
		types []uint16
	}
	var kept []dns.RR
	var list []hashed
	names := map[string]bool{}
	for _, rr := range z.rrs {
		if nsec, ok := rr.(*dns.NSEC); ok {
			types := []uint16{}
			for _, typ := range nsec.TypeBitMap {
				if typ != dns.TypeNSEC {
					types = append(types, typ)
				}
			}
			list = append(list, hashed{dns.HashName(nsec.Hdr.Name, dns.SHA1, 0, ""), types})
			names[nsec.Hdr.Name] = true
			continue
		}
		if s, ok := rr.(*dns.RRSIG); ok && s.TypeCovered == dns.TypeNSEC {
			continue
		}
		kept = append(kept, rr)
	}
	// Empty non-terminals get NSEC3 records too (RFC 5155 section 7.1).
	for name := range names {
		for p := parent(name); p != "" && dns.IsSubDomain(origin, p) && p != origin; p = parent(p) {
			if !names[p] {
				names[p] = true
				list = append(list, hashed{dns.HashName(p, dns.SHA1, 0, ""), nil})
			}
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].hash < list[j].hash })
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, h := range list {
		rec := &dns.NSEC3{
			Hdr:  dns.RR_Header{Name: strings.ToLower(h.hash) + "." + origin, Rrtype: dns.TypeNSEC3, Class: dns.ClassINET, Ttl: 300},
			Hash: dns.SHA1, NextDomain: list[(i+1)%len(list)].hash, HashLength: 20, TypeBitMap: h.types,
		}
		if optOut {
			rec.Flags = 1
		}
		sig := &dns.RRSIG{
			Hdr:    dns.RR_Header{Name: rec.Hdr.Name, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: 300},
			KeyTag: k.key.KeyTag(), SignerName: origin, Algorithm: k.key.Algorithm,
			Inception: uint32(start.Add(-90 * 24 * time.Hour).Unix()), Expiration: uint32(start.Add(90 * 24 * time.Hour).Unix()),
		}
		if err := sig.Sign(k.priv, []dns.RR{rec}); err != nil {
			t.Fatal(err)
		}
		kept = append(kept, rec, sig)
	}
	z.rrs = kept
	z.nsec3 = true
}

func TestAggressiveNSEC3(t *testing.T) {
	for _, optOut := range []bool{false, true} {
		t.Run(fmt.Sprintf("opt-out %v", optOut), func(t *testing.T) {
			rootKey, zoneKeyA := newZoneKey(t, "."), newZoneKey(t, "hashed.")
			n := newFakeNet()
			n.serve(t, "10.0.0.1", ".", `
. SOA a.root.test. admin.test. 1 3600 600 86400 300
. NS a.root.test.
a.root.test. A 10.0.0.1
hashed. NS ns.hashed.
ns.hashed. A 10.0.0.5
`+zoneKeyA.ds())
			n.serve(t, "10.0.0.5", "hashed.", `
hashed. SOA ns.hashed. admin.hashed. 1 3600 600 86400 300
hashed. NS ns.hashed.
ns.hashed. A 10.0.0.5
www.hashed. A 192.0.2.50
b.c.hashed. A 192.0.2.51
`)
			signZoneNSEC3(t, n, "10.0.0.5", "hashed.", zoneKeyA, optOut)
			signZone(t, n, "10.0.0.1", ".", rootKey)
			r, _ := testResolver(t, n, validating([]dns.RR{rootKey.key.ToDS(dns.SHA256)}))

			first := r.Resolve(context.Background(), "www.hashed.", dns.TypeAAAA)
			want := dnssec.Secure
			if first.Rcode != dns.RcodeSuccess || first.Security != want {
				t.Fatalf("www.hashed. AAAA: %s %v (%+v), want a secure NODATA", dns.RcodeToString[first.Rcode], first.Security, first.EDE)
			}
			nx := r.Resolve(context.Background(), "nope.hashed.", dns.TypeA)
			if optOut {
				want = dnssec.Insecure
			}
			if nx.Rcode != dns.RcodeNameError || nx.Security != want {
				t.Fatalf("nope.hashed.: %s %v (%+v), want NXDOMAIN %v", dns.RcodeToString[nx.Rcode], nx.Security, nx.EDE, want)
			}

			// The NODATA proof matched www.hashed., so TXT needs no query.
			sent := n.count("10.0.0.5")
			res := r.Resolve(context.Background(), "www.hashed.", dns.TypeTXT)
			if res.Rcode != dns.RcodeSuccess || res.Security != dnssec.Secure || len(res.Answer) != 0 {
				t.Errorf("www.hashed. TXT: %s %v, want a secure NODATA", dns.RcodeToString[res.Rcode], res.Security)
			}
			if got := n.count("10.0.0.5"); got != sent {
				t.Errorf("www.hashed. TXT sent %d queries, want 0 (answered from NSEC3)", got-sent)
			}
			if !hasType(res.Authority, dns.TypeNSEC3) {
				t.Errorf("synthesised NODATA has no NSEC3 in %v", res.Authority)
			}

			// Names whose hash falls in a learned span are NXDOMAIN at
			// once, unless the span is opt-out.
			synthesised := 0
			for i := range 40 {
				sent := n.count("10.0.0.5")
				res := r.Resolve(context.Background(), fmt.Sprintf("n%d.hashed.", i), dns.TypeA)
				if res.Rcode != dns.RcodeNameError {
					t.Fatalf("n%d.hashed.: %s, want NXDOMAIN", i, dns.RcodeToString[res.Rcode])
				}
				if n.count("10.0.0.5") == sent {
					synthesised++
					if res.Security != dnssec.Secure {
						t.Errorf("synthesised NXDOMAIN for n%d.hashed.: %v, want secure", i, res.Security)
					}
					if !res.Synthesised || res.Zone != "hashed." {
						t.Errorf("synthesised NXDOMAIN for n%d.hashed.: Synthesised %v in zone %q, want true in hashed.", i, res.Synthesised, res.Zone)
					}
				}
			}
			if optOut && synthesised > 0 {
				t.Errorf("%d NXDOMAIN answers synthesised from opt-out spans, want 0", synthesised)
			}
			if !optOut && synthesised == 0 {
				t.Error("no NXDOMAIN synthesised from 40 names, want some")
			}
			t.Logf("%d of 40 NXDOMAIN answers synthesised", synthesised)
		})
	}
}

func TestReferralDSSavesQueries(t *testing.T) {
	for _, plain := range []bool{false, true} {
		t.Run(fmt.Sprintf("plain referrals %v", plain), func(t *testing.T) {
			n, anchors := signedNet(t)
			for _, srv := range n.servers {
				srv.plainReferrals = plain
			}
			r, _ := testResolver(t, n, validating(anchors))
			for _, name := range []string{"www.example.", "www.insecure.example."} {
				r.Resolve(context.Background(), name, dns.TypeA)
			}
			ds := 0
			for _, q := range n.queries {
				if strings.HasSuffix(q, " DS") {
					ds++
				}
			}
			if plain && ds != 2 {
				t.Errorf("%d DS queries with plain referrals, want 2 (example. and insecure.example.)", ds)
			}
			if !plain && ds != 0 {
				t.Errorf("%d DS queries, want 0: the referrals carried the DS RRset or its absence", ds)
			}
			for name, want := range map[string]dnssec.Security{"www.example.": dnssec.Secure, "www.insecure.example.": dnssec.Insecure} {
				if got := r.Resolve(context.Background(), name, dns.TypeA).Security; got != want {
					t.Errorf("%s: %v, want %v", name, got, want)
				}
			}
		})
	}
}

func TestNegativeTrustAnchorExpiryFlushes(t *testing.T) {
	n, anchors := signedNet(t)
	r, c := testResolver(t, n, func(cfg *Config) {
		validating(anchors)(cfg)
		// Real time, so that the expiry timer and the check agree.
		cfg.ValidationTime = time.Now
	})
	r.AddNegativeTrustAnchor("broken.", time.Now().Add(200*time.Millisecond))
	if res := r.Resolve(context.Background(), "www.broken.", dns.TypeA); res.Security != dnssec.Insecure {
		t.Fatalf("under the negative anchor: %v, want insecure", res.Security)
	}
	if _, _, ok := c.RRset("www.broken.", dns.TypeA); !ok {
		t.Fatal("the unvalidated answer was not cached")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, _, ok := c.RRset("www.broken.", dns.TypeA); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the unvalidated answer is still cached 5s after the anchor expired")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(r.NegativeTrustAnchors()) != 0 {
		t.Error("expired negative anchor still listed")
	}
}

func TestFlushForgetsNSECSpans(t *testing.T) {
	n, anchors := signedNet(t)
	r, _ := testResolver(t, n, validating(anchors))
	r.Resolve(context.Background(), "d1.example.", dns.TypeA)
	r.Flush("d2.example.")
	sent := n.count("10.0.0.2")
	r.Resolve(context.Background(), "d2.example.", dns.TypeA)
	if n.count("10.0.0.2") == sent {
		t.Error("d2.example. answered from an NSEC span after a flush of d2.example.")
	}
}
