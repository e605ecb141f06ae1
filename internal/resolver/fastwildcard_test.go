package resolver

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"bulwark/internal/cache"
	"bulwark/internal/dnssec"

	"github.com/miekg/dns"
)

// testZoneExists reports whether name, below or at zone, exists in the
// test zone of testZoneNames: as an owner or as an empty non-terminal.
func testZoneExists(name, zone string) bool {
	for rel := range testZoneNames {
		if dns.IsSubDomain(name, below(rel, zone)) {
			return true
		}
	}
	return false
}

// wildcardExpansion returns the outcome of a secure answer for name A
// from the wildcard *.w of the test zone, with the records of auth that
// prove it.
func wildcardExpansion(name, zone string, auth []dns.RR) outcome {
	a := &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 600}, A: net.IPv4(192, 0, 2, 1)}
	sig := &dns.RRSIG{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: 600},
		TypeCovered: dns.TypeA, Algorithm: dns.ECDSAP256SHA256, Labels: uint8(dns.CountLabel(below("w", zone))),
		OrigTtl: 600, Expiration: 2000000000, Inception: 1, KeyTag: 1, SignerName: zone, Signature: "AAAA"}
	return outcome{kind: kindAnswer, rrs: []dns.RR{a}, sigs: []dns.RR{sig}, auth: auth, sec: dnssec.Secure, wildcard: true}
}

// TestAppendWildcardAnswersBelowWildcard learns the expansion of one name
// below the wildcard *.w and checks every probe name: the fast path must
// answer exactly the names that do not exist and whose closest encloser
// is w, with the wildcard's RRset owned by the name and a proof that
// dnssec.Denial accepts.
func TestAppendWildcardAnswersBelowWildcard(t *testing.T) {
	now := time.Unix(1800000000, 0)
	for _, tc := range []struct {
		name          string
		zone          string
		nsec3, optOut bool
	}{
		{"NSEC", "example.", false, false},
		{"NSEC at the root", ".", false, false},
		{"NSEC3", "example.", true, false},
		{"NSEC3 at the root", ".", true, false},
		{"NSEC3 opt-out", "example.", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			soa, rrs := denialRecords(tc.zone, tc.nsec3, tc.optOut)
			r := &Resolver{cfg: Config{Validation: true, AggressiveNSEC: true, Limits: dnssec.DefaultLimits}}
			r.nsec.learnWildcard(tc.zone, wildcardExpansion(below("first.w", tc.zone), tc.zone, rrs[1:]), below("first.w", tc.zone), dns.TypeA, now)
			r.nsec.learn(tc.zone, outcome{soa: soa, auth: rrs}, now)

			answered := 0
			rng := rand.New(rand.NewPCG(3, 4))
			for _, name := range probeNames(tc.zone, rng) {
				name = dns.CanonicalName(name)
				if strings.Contains(name, "*") {
					continue // the pipeline leaves '*' names to the slow path
				}
				want := !tc.optOut && !testZoneExists(name, tc.zone) && dns.IsSubDomain(below("w", tc.zone), name) &&
					!dns.IsSubDomain(below("e.w", tc.zone), name)
				msg := append(binary.BigEndian.AppendUint16(make([]byte, 12), 0), 0)[:12]
				q, _ := dns.PackDomainName(name, make([]byte, 256), 0, nil, false)
				wire := make([]byte, q)
				dns.PackDomainName(name, wire, 0, nil, false)
				msg = append(append(msg, wire...), 0, 1, 0, 1)
				out, an, ns, got := r.AppendWildcard(msg, name, dns.TypeA, true, now.Add(10*time.Second))
				if got != want {
					t.Errorf("%s: answered %v, want %v", name, got, want)
					continue
				}
				if !got {
					continue
				}
				answered++
				m := unpackWildcardAnswer(t, out, an, ns, name)
				if len(m.Answer) != 2 || m.Answer[0].Header().Name != name || m.Answer[0].Header().Ttl != 290 {
					t.Errorf("%s: answer %v, want the A and its RRSIG owned by the name, TTL 290: the proof's 300 s less the 10 s since", name, m.Answer)
				}
				d := &dnssec.Denial{Zone: tc.zone}
				d.Add(m.Ns...)
				labels := dns.CountLabel(below("w", tc.zone))
				if sec, err := d.Wildcard(name, labels, dnssec.NewBudget(dnssec.DefaultLimits)); sec != dnssec.Secure {
					t.Errorf("%s: the proof %v does not show the expansion: %v (%v)", name, m.Ns, sec, err)
				}
			}
			if !tc.optOut && answered == 0 {
				t.Error("the fast path expanded no name")
			}
			if _, _, _, got := r.AppendWildcard(nil, below("other.w", tc.zone), dns.TypeAAAA, true, now); got {
				t.Error("AAAA answered from the wildcard's A RRset")
			}
			if _, _, _, got := r.AppendWildcard(nil, below("other.w", tc.zone), dns.TypeA, true, now.Add(time.Hour)); got {
				t.Error("answered after the wildcard's TTL ran out")
			}
		})
	}
}

func TestAppendWildcardAllocatesNothing(t *testing.T) {
	now := time.Unix(1800000000, 0)
	for _, nsec3 := range []bool{false, true} {
		soa, rrs := denialRecords("example.", nsec3, false)
		r := &Resolver{cfg: Config{Validation: true, AggressiveNSEC: true, Limits: dnssec.DefaultLimits}}
		r.nsec.learnWildcard("example.", wildcardExpansion("first.w.example.", "example.", rrs[1:]), "first.w.example.", dns.TypeA, now)
		r.nsec.learn("example.", outcome{soa: soa, auth: rrs}, now)
		buf := make([]byte, 12, 4096)
		allocs := testing.AllocsPerRun(100, func() {
			if _, _, _, ok := r.AppendWildcard(buf[:12], "qqq.w.example.", dns.TypeA, true, now); !ok {
				t.Fatalf("qqq.w.example. not expanded (NSEC3 %v)", nsec3)
			}
		})
		if allocs != 0 {
			t.Errorf("NSEC3 %v: %.1f allocations per answer, want 0", nsec3, allocs)
		}
	}
}

// TestAppendWildcardTTL checks the lifetime of a learned wildcard RRset:
// no longer than its TTL, the original TTL of its RRSIGs and their
// expiration, as the cache keeps the same RRset (RFC 4035 section 5.3.3).
func TestAppendWildcardTTL(t *testing.T) {
	now := time.Unix(1800000000, 0)
	for _, tc := range []struct {
		name            string
		ttl, origTTL    uint32
		expiresIn       uint32
		wantTTL, wantBy uint32
	}{
		{name: "TTL", ttl: 100, origTTL: 100, expiresIn: 100000, wantTTL: 90, wantBy: 100},
		{name: "original TTL below the TTL", ttl: 86400, origTTL: 120, expiresIn: 100000, wantTTL: 110, wantBy: 120},
		{name: "RRSIG expiring before the TTL", ttl: 3600, origTTL: 3600, expiresIn: 50, wantTTL: 40, wantBy: 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, rrs := denialRecords("example.", false, false)
			c := wildcardExpansion("first.w.example.", "example.", rrs[1:])
			c.rrs[0].Header().Ttl = tc.ttl
			sig := c.sigs[0].(*dns.RRSIG)
			sig.Hdr.Ttl, sig.OrigTtl, sig.Expiration = tc.ttl, tc.origTTL, uint32(now.Unix())+tc.expiresIn
			r := &Resolver{cfg: Config{Validation: true, AggressiveNSEC: true, Limits: dnssec.DefaultLimits}}
			// The proof records have a TTL of 600: the RRset's lifetime
			// decides.
			r.nsec.learnWildcard("example.", c, "first.w.example.", dns.TypeA, now)

			msg := make([]byte, 12, 512)
			msg, _ = appendWire(msg, "qqq.w.example.", nil)
			msg = append(msg, 0, 1, 0, 1)
			out, an, ns, ok := r.AppendWildcard(msg, "qqq.w.example.", dns.TypeA, true, now.Add(10*time.Second))
			if !ok {
				t.Fatal("qqq.w.example. not expanded")
			}
			m := unpackWildcardAnswer(t, out, an, ns, "qqq.w.example.")
			for _, rr := range m.Answer {
				if rr.Header().Ttl != tc.wantTTL {
					t.Errorf("%v: TTL %d after 10 s, want %d", rr, rr.Header().Ttl, tc.wantTTL)
				}
			}
			if _, _, _, ok := r.AppendWildcard(msg, "qqq.w.example.", dns.TypeA, true, now.Add(time.Duration(tc.wantBy)*time.Second)); ok {
				t.Errorf("expanded %d s after learning, want no answer from then on", tc.wantBy)
			}
		})
	}
}

// TestLearnWildcardInputs checks which answers learnWildcard keeps: one
// RRset of the query's type expanded from a wildcard of the zone, whatever
// the case of its names, and nothing else.
func TestLearnWildcardInputs(t *testing.T) {
	now := time.Unix(1800000000, 0)
	_, proofs := denialRecords("example.", false, false)
	for _, tc := range []struct {
		name  string
		zone  string
		qname string
		edit  func(c *outcome)
		want  bool
	}{
		{name: "expansion", zone: "example.", qname: "first.w.example.", want: true},
		{name: "upper case", zone: "example.", qname: "FiRsT.W.Example.", want: true},
		{name: "escaped label below the wildcard", zone: "example.", qname: "a\\.b.w.example.", want: true},
		{name: "CNAME chain", zone: "example.", qname: "first.w.example.", edit: func(c *outcome) {
			c.rrs = append([]dns.RR{&dns.CNAME{Hdr: dns.RR_Header{Name: "first.w.example.", Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 600}, Target: "a.example."}}, c.rrs...)
		}},
		{name: "record of another owner", zone: "example.", qname: "first.w.example.", edit: func(c *outcome) {
			a := dns.Copy(c.rrs[0])
			a.Header().Name = "other.w.example."
			c.rrs = append(c.rrs, a)
		}},
		{name: "RRSIG labels of the owner", zone: "example.", qname: "first.w.example.", edit: func(c *outcome) {
			c.sigs[0].(*dns.RRSIG).Labels = 3
		}},
		{name: "RRSIGs with mixed labels", zone: "example.", qname: "first.w.example.", edit: func(c *outcome) {
			s := dns.Copy(c.sigs[0]).(*dns.RRSIG)
			s.Labels = 3
			c.sigs = append(c.sigs, s)
		}},
		{name: "no RRSIG", zone: "example.", qname: "first.w.example.", edit: func(c *outcome) { c.sigs = nil }},
		{name: "wildcard outside the zone", zone: "x.example.", qname: "first.w.example."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := wildcardExpansion(tc.qname, "example.", proofs[1:])
			if tc.edit != nil {
				tc.edit(&c)
			}
			r := &Resolver{cfg: Config{Validation: true, AggressiveNSEC: true, Limits: dnssec.DefaultLimits}}
			r.nsec.learnWildcard(tc.zone, c, tc.qname, dns.TypeA, now)
			z := r.nsec.zones[tc.zone]
			if got := z != nil && len(z.wildcards) > 0; got != tc.want {
				t.Fatalf("%s in zone %s: stored %v, want %v", tc.qname, tc.zone, got, tc.want)
			}
			if !tc.want {
				return
			}
			if _, _, _, got := r.AppendWildcard(make([]byte, 12), "qqq.w.example.", dns.TypeA, false, now); !got {
				t.Error("qqq.w.example. not expanded")
			}
		})
	}
}

// TestAppendWildcardFlushAndAnchors checks that a flush of a name in the
// zone, or any negative trust anchor, stops the expansions.
func TestAppendWildcardFlushAndAnchors(t *testing.T) {
	now := time.Unix(1800000000, 0)
	for _, tc := range []struct {
		name   string
		change func(r *Resolver)
	}{
		{name: "flush of the zone", change: func(r *Resolver) { r.Flush("example.") }},
		{name: "flush of a name in the zone", change: func(r *Resolver) { r.FlushName("first.w.example.") }},
		{name: "negative trust anchor", change: func(r *Resolver) { r.AddNegativeTrustAnchor("elsewhere.", time.Time{}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			soa, rrs := denialRecords("example.", true, false)
			r := &Resolver{cfg: Config{Validation: true, AggressiveNSEC: true, Limits: dnssec.DefaultLimits}, cache: cache.New(cache.Config{MaxBytes: 1 << 20})}
			r.nsec.learnWildcard("example.", wildcardExpansion("first.w.example.", "example.", rrs[1:]), "first.w.example.", dns.TypeA, now)
			r.nsec.learn("example.", outcome{soa: soa, auth: rrs}, now)
			if _, _, _, ok := r.AppendWildcard(make([]byte, 12), "qqq.w.example.", dns.TypeA, true, now); !ok {
				t.Fatal("qqq.w.example. not expanded before the change")
			}
			tc.change(r)
			if _, _, _, ok := r.AppendWildcard(make([]byte, 12), "qqq.w.example.", dns.TypeA, true, now); ok {
				t.Error("qqq.w.example. expanded after the change, want no answer")
			}
		})
	}
}

// unpackWildcardAnswer sets the header of out, a response that
// AppendWildcard wrote after a query's 12-byte header and question, to one
// question, an answer and ns authority records, and parses it.
func unpackWildcardAnswer(t *testing.T, out []byte, an, ns int, where string) *dns.Msg {
	t.Helper()
	binary.BigEndian.PutUint16(out[2:], 0x8000)
	binary.BigEndian.PutUint16(out[4:], 1)
	binary.BigEndian.PutUint16(out[6:], uint16(an))
	binary.BigEndian.PutUint16(out[8:], uint16(ns))
	m := new(dns.Msg)
	if err := m.Unpack(out); err != nil {
		t.Fatalf("%s: response does not unpack: %v", where, err)
	}
	return m
}
