package resolver

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"bulwark/internal/dnssec"

	"github.com/miekg/dns"
)

// testZoneNames are the names of a test zone and their types. b is a
// delegation, d an empty non-terminal above c.d, w holds a wildcard and
// the name e.w, and x is a DNAME.
var testZoneNames = map[string][]uint16{
	"":          {dns.TypeSOA, dns.TypeNS, dns.TypeDNSKEY},
	"a":         {dns.TypeA},
	"b":         {dns.TypeNS, dns.TypeDS},
	"c.d":       {dns.TypeA, dns.TypeTXT},
	"*.w":       {dns.TypeA},
	"e.w":       {dns.TypeA},
	"x":         {dns.TypeDNAME},
	"m":         {dns.TypeMX},
	"p-q":       {dns.TypeAAAA},
	"deep.er.y": {dns.TypeA},
}

// denialRecords returns the SOA of zone and its NSEC chain, or NSEC3 chain
// with optOut spans when nsec3 is set, each record with a fake RRSIG. The
// index does not check signatures: the resolver stores only validated
// records in it.
func denialRecords(zone string, nsec3, optOut bool) (*dns.SOA, []dns.RR) {
	soa := &dns.SOA{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 3600},
		Ns: below("ns", zone), Mbox: below("host", zone), Serial: 1, Refresh: 1, Retry: 1, Expire: 1, Minttl: 300}
	sig := func(owner string, covered uint16) dns.RR {
		return &dns.RRSIG{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: 3600},
			TypeCovered: covered, Algorithm: dns.ECDSAP256SHA256, Labels: uint8(dns.CountLabel(owner)),
			OrigTtl: 3600, Expiration: 2000000000, Inception: 1, KeyTag: 1, SignerName: zone, Signature: "AAAA"}
	}
	rrs := []dns.RR{sig(zone, dns.TypeSOA)}
	var owners []string
	for rel := range testZoneNames {
		owners = append(owners, below(rel, zone))
	}
	types := func(owner string) []uint16 {
		rel := strings.TrimSuffix(strings.TrimSuffix(owner, zone), ".")
		if zone == "." {
			rel = strings.TrimSuffix(owner, ".")
		}
		t := append([]uint16{dns.TypeRRSIG}, testZoneNames[rel]...)
		if nsec3 {
			return t
		}
		return append(t, dns.TypeNSEC)
	}
	if !nsec3 {
		sort.Slice(owners, func(i, j int) bool { return dnssec.Compare(owners[i], owners[j]) < 0 })
		for i, o := range owners {
			bitmap := types(o)
			slices.Sort(bitmap)
			rrs = append(rrs, &dns.NSEC{Hdr: dns.RR_Header{Name: o, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: 600},
				NextDomain: owners[(i+1)%len(owners)], TypeBitMap: bitmap}, sig(o, dns.TypeNSEC))
		}
		return soa, rrs
	}
	// NSEC3: the owners and their empty non-terminals, hashed.
	all := map[string]bool{}
	for _, o := range owners {
		for n := o; n != zone; n = parent(n) {
			all[n] = true
		}
	}
	all[zone] = true
	type hashed struct{ hash, name string }
	var list []hashed
	for n := range all {
		list = append(list, hashed{dns.HashName(n, dns.SHA1, 0, ""), n})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].hash < list[j].hash })
	for i, h := range list {
		var bitmap []uint16
		if slices.Contains(owners, h.name) {
			bitmap = types(h.name)
			slices.Sort(bitmap)
		}
		var flags uint8
		if optOut {
			flags = 1
		}
		owner := below(strings.ToLower(h.hash), zone)
		rrs = append(rrs, &dns.NSEC3{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeNSEC3, Class: dns.ClassINET, Ttl: 600},
			Hash: dns.SHA1, Flags: flags, Iterations: 0, SaltLength: 0, Salt: "", HashLength: 20,
			NextDomain: list[(i+1)%len(list)].hash, TypeBitMap: bitmap}, sig(owner, dns.TypeNSEC3))
	}
	return soa, rrs
}

// below returns the name rel below zone; rel "" is the zone.
func below(rel, zone string) string {
	switch {
	case rel == "":
		return zone
	case zone == ".":
		return rel + "."
	}
	return rel + "." + zone
}

// probeNames returns names in and around zone for the proofs to decide.
func probeNames(zone string, rng *rand.Rand) []string {
	names := []string{zone}
	for _, rel := range []string{"d", "*.w", "*", "er.y", "y"} {
		names = append(names, below(rel, zone))
	}
	for rel := range testZoneNames {
		owner := below(rel, zone)
		names = append(names, owner)
		for _, l := range []string{"q", "a.b.q", "zz", "-", "0"} {
			names = append(names, below(l, owner))
		}
	}
	for range 300 {
		label := make([]byte, 1+rng.IntN(12))
		for i := range label {
			label[i] = "abcdefghijklmnopqrstuvwxyz0123456789-_"[rng.IntN(38)]
		}
		for _, rel := range []string{"", ".d", ".w", ".b"} {
			names = append(names, below(string(label)+rel, zone))
		}
		names = append(names, below("n."+string(label), zone))
	}
	return names
}

// TestAppendNXDomainAgreesWithAnswer compares the wire proofs of the fast
// path with the resolver's own: every name the fast path answers must be
// NXDOMAIN there too, with the same records, and every name the index
// answers NXDOMAIN must be answered by the fast path.
func TestAppendNXDomainAgreesWithAnswer(t *testing.T) {
	now := time.Unix(1800000000, 0)
	for _, tc := range []struct {
		name           string
		zone           string
		nsec3, optOut  bool
		keep           func(i int) bool
		wantAnswered   bool
		wantNoAnswered bool
	}{
		{name: "NSEC", zone: "example.", wantAnswered: true},
		{name: "NSEC at the root", zone: ".", wantAnswered: true},
		{name: "NSEC, every other span", zone: "example.", keep: func(i int) bool { return i%2 == 0 }, wantAnswered: true},
		{name: "NSEC3", zone: "example.", nsec3: true, wantAnswered: true},
		{name: "NSEC3, every third record", zone: "example.", nsec3: true, keep: func(i int) bool { return i%3 != 0 }, wantAnswered: true},
		{name: "NSEC3 opt-out", zone: "example.", nsec3: true, optOut: true, wantNoAnswered: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			soa, rrs := denialRecords(tc.zone, tc.nsec3, tc.optOut)
			r := &Resolver{cfg: Config{Validation: true, AggressiveNSEC: true, Limits: dnssec.DefaultLimits}}
			var auth []dns.RR
			for i := 1; i < len(rrs); i += 2 {
				if tc.keep == nil || tc.keep(i/2) {
					auth = append(auth, rrs[i], rrs[i+1])
				}
			}
			auth = append(auth, rrs[0])
			r.nsec.learn(tc.zone, outcome{soa: soa, auth: auth}, now)

			rng := rand.New(rand.NewPCG(1, 2))
			answered := 0
			for _, name := range probeNames(tc.zone, rng) {
				name = dns.CanonicalName(name)
				want, ok := r.nsec.answer(name, dns.TypeA, now, dnssec.NewBudget(dnssec.DefaultLimits))
				wantNX := ok && want.Rcode == dns.RcodeNameError
				for _, do := range []bool{false, true} {
					wire, n, got := r.AppendNXDomain(nil, name, do, now.Add(10*time.Second))
					if got != wantNX {
						t.Errorf("%s (DO %v): fast path answered %v, index NXDOMAIN %v", name, do, got, wantNX)
						continue
					}
					if !got {
						continue
					}
					answered++
					gotRRs := unpackRecords(t, wire, n)
					wantRRs := expectedAuthority(want.Authority, do, 10)
					if !slices.Equal(gotRRs, wantRRs) {
						t.Errorf("%s (DO %v): fast path records\n%s\nwant\n%s", name, do, strings.Join(gotRRs, "\n"), strings.Join(wantRRs, "\n"))
					}
				}
			}
			if tc.wantAnswered && answered == 0 {
				t.Error("the fast path answered no name")
			}
			if tc.wantNoAnswered && answered != 0 {
				t.Errorf("the fast path answered %d names, want none", answered)
			}
		})
	}
}

// expectedAuthority returns, sorted as unpackRecords sorts them, the records
// of auth that a fast NXDOMAIN carries: all of them with DO, only the SOA
// without, each with its TTL lowered by age seconds.
func expectedAuthority(auth []dns.RR, do bool, age uint32) []string {
	var out []string
	for _, rr := range auth {
		if do || rr.Header().Rrtype == dns.TypeSOA {
			c := dns.Copy(rr)
			c.Header().Ttl -= age
			out = append(out, c.String())
		}
	}
	slices.Sort(out)
	return out
}

// unpackRecords unpacks n records from wire and returns them as sorted
// strings.
func unpackRecords(t *testing.T, wire []byte, n int) []string {
	t.Helper()
	var out []string
	off := 0
	for range n {
		rr, next, err := dns.UnpackRR(wire, off)
		if err != nil {
			t.Fatalf("record at %d of %x: %v", off, wire, err)
		}
		out = append(out, rr.String())
		off = next
	}
	if off != len(wire) {
		t.Fatalf("%d bytes after %d records", len(wire)-off, n)
	}
	slices.Sort(out)
	return out
}

func TestAppendNXDomainAllocatesNothing(t *testing.T) {
	now := time.Unix(1800000000, 0)
	for _, nsec3 := range []bool{false, true} {
		soa, rrs := denialRecords("example.", nsec3, false)
		r := &Resolver{cfg: Config{Validation: true, AggressiveNSEC: true, Limits: dnssec.DefaultLimits}}
		r.nsec.learn("example.", outcome{soa: soa, auth: rrs}, now)
		buf := make([]byte, 0, 4096)
		allocs := testing.AllocsPerRun(100, func() {
			if _, _, ok := r.AppendNXDomain(buf[:0], "qqq.example.", true, now); !ok {
				panic(fmt.Sprintf("qqq.example. not proven absent (NSEC3 %v)", nsec3))
			}
		})
		if allocs != 0 {
			t.Errorf("NSEC3 %v: %.1f allocations per answer, want 0", nsec3, allocs)
		}
	}
}

// TestAppendNXDomainHashLimit checks that the fast path hashes no more
// names than the slow path's budget allows: x.y.a.example. needs four
// hashes, w.x.y.a.example. five.
func TestAppendNXDomainHashLimit(t *testing.T) {
	now := time.Unix(1800000000, 0)
	soa, rrs := denialRecords("example.", true, false)
	limits := dnssec.DefaultLimits
	limits.MaxNSEC3Hashes = 4
	r := &Resolver{cfg: Config{Validation: true, AggressiveNSEC: true, Limits: limits}}
	r.nsec.learn("example.", outcome{soa: soa, auth: rrs}, now)
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"x.y.a.example.", true},
		{"w.x.y.a.example.", false},
		{strings.Repeat("w.", 100) + "a.example.", false},
	} {
		_, _, got := r.AppendNXDomain(nil, tc.name, true, now)
		res, ok := r.nsec.answer(tc.name, dns.TypeA, now, dnssec.NewBudget(limits))
		slow := ok && res.Rcode == dns.RcodeNameError
		if got != tc.want || slow != tc.want {
			t.Errorf("%s with 4 hashes: fast path answered %v, index NXDOMAIN %v, want %v", tc.name, got, slow, tc.want)
		}
	}
}

// TestAppendNXDomainEscapes checks spans whose names have escapes. In
// canonical order \200 sorts after every letter and digit, but its
// presentation text sorts before "a": the span from \200.example. back to
// the apex must not seem to cover zz.example., nor the span from
// m.example. to \200.example. seem to cover 0.example. Likewise "(" sorts
// before "0", but its text "\(" after it.
func TestAppendNXDomainEscapes(t *testing.T) {
	now := time.Unix(1800000000, 0)
	nsec := func(owner, next string) []dns.RR {
		n := &dns.NSEC{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: 600},
			NextDomain: next, TypeBitMap: []uint16{dns.TypeA, dns.TypeRRSIG, dns.TypeNSEC}}
		return []dns.RR{n, fakeSig("example.", owner, dns.TypeNSEC, 600)}
	}
	soa, _ := denialRecords("example.", false, false)
	for _, tc := range []struct {
		spans [][]dns.RR
		name  string
	}{
		{[][]dns.RR{nsec("example.", "a.example."), nsec("\\200.example.", "example.")}, "zz.example."},
		{[][]dns.RR{nsec("m.example.", "\\200.example.")}, "0.example."},
		{[][]dns.RR{nsec("example.", "a.example."), nsec("zz.example.", "\\(.zz.example.")}, "0.zz.example."},
	} {
		var auth []dns.RR
		for _, s := range tc.spans {
			auth = append(auth, s...)
		}
		r := &Resolver{cfg: Config{Validation: true, AggressiveNSEC: true, Limits: dnssec.DefaultLimits}}
		r.nsec.learn("example.", outcome{soa: soa, auth: auth}, now)
		if wire, _, ok := r.AppendNXDomain(nil, tc.name, true, now); ok {
			t.Errorf("%s proven absent by %v: answered with %x, want no answer", tc.name, auth, wire)
		}
	}
}

// TestAppendNXDomainSignatureExpiry checks that a proof is not served past
// the expiry of its RRSIGs (RFC 4035 section 5.3.3), nor with a TTL that
// outlasts them. The RRSIGs of the NSEC records expire 100 seconds after
// they are learned, and that of the SOA after sigSOA seconds.
func TestAppendNXDomainSignatureExpiry(t *testing.T) {
	now := time.Unix(1800000000, 0)
	for _, tc := range []struct {
		sigSOA  uint32
		after   time.Duration
		wantTTL uint32 // 0: no answer
	}{
		{sigSOA: 1000, after: 50 * time.Second, wantTTL: 50},
		{sigSOA: 1000, after: 100 * time.Second},
		{sigSOA: 30, after: 20 * time.Second, wantTTL: 10},
		{sigSOA: 30, after: 40 * time.Second},
	} {
		soa, rrs := denialRecords("example.", false, false)
		for _, rr := range rrs {
			if s, ok := rr.(*dns.RRSIG); ok {
				s.Expiration = uint32(now.Unix()) + 100
				if s.TypeCovered == dns.TypeSOA {
					s.Expiration = uint32(now.Unix()) + tc.sigSOA
				}
			}
		}
		r := &Resolver{cfg: Config{Validation: true, AggressiveNSEC: true, Limits: dnssec.DefaultLimits}}
		r.nsec.learn("example.", outcome{soa: soa, auth: rrs}, now)
		at := now.Add(tc.after)
		wire, n, ok := r.AppendNXDomain(nil, "qqq.example.", true, at)
		res, slow := r.nsec.answer("qqq.example.", dns.TypeA, at, dnssec.NewBudget(dnssec.DefaultLimits))
		if ok != (tc.wantTTL > 0) || slow != ok {
			t.Errorf("SOA RRSIG for %d s, after %v: fast path answered %v, index %v; want %v", tc.sigSOA, tc.after, ok, slow, tc.wantTTL > 0)
			continue
		}
		if !ok {
			continue
		}
		off := 0
		for range n {
			rr, next, err := dns.UnpackRR(wire, off)
			if err != nil {
				t.Fatalf("record at %d: %v", off, err)
			}
			if rr.Header().Ttl != tc.wantTTL {
				t.Errorf("SOA RRSIG for %d s, after %v: %s has TTL %d, want %d", tc.sigSOA, tc.after, rr, rr.Header().Ttl, tc.wantTTL)
			}
			off = next
		}
		if got := res.Authority[0].Header().Ttl; got != tc.wantTTL {
			t.Errorf("SOA RRSIG for %d s, after %v: index answer TTL %d, want %d", tc.sigSOA, tc.after, got, tc.wantTTL)
		}
	}
}

// TestLearnChildZoneOnSameServers checks that a negative answer from a
// child zone served by the servers of its parent is kept in the child's
// index: in the parent's, the child's last span, which wraps to the
// child's apex, would seem to cover names of the parent.
func TestLearnChildZoneOnSameServers(t *testing.T) {
	now := time.Unix(1800000000, 0)
	soa, rrs := denialRecords("child.example.", false, false)
	r := &Resolver{cfg: Config{Validation: true, AggressiveNSEC: true, Limits: dnssec.DefaultLimits}}
	r.nsec.learn("example.", outcome{soa: soa, auth: rrs}, now)
	if r.nsec.zones["child.example."] == nil || r.nsec.zones["example."] != nil {
		t.Fatalf("indexed zones %v, want child.example. alone", slices.Collect(maps.Keys(r.nsec.zones)))
	}
	if _, _, ok := r.AppendNXDomain(nil, "zz.example.", true, now); ok {
		t.Error("zz.example., a name of the parent, proven absent by the child's records")
	}
	if _, _, ok := r.AppendNXDomain(nil, "zz.child.example.", true, now); !ok {
		t.Error("zz.child.example. not proven absent by the child's records")
	}
}

// TestAppendNXDomainOriginalTTL checks that a proof is not served past
// the original TTL its RRSIGs cover, which is below the records' TTL here.
func TestAppendNXDomainOriginalTTL(t *testing.T) {
	now := time.Unix(1800000000, 0)
	soa, rrs := denialRecords("example.", false, false)
	for _, rr := range rrs {
		if s, ok := rr.(*dns.RRSIG); ok {
			s.OrigTtl = 60
		}
	}
	r := &Resolver{cfg: Config{Validation: true, AggressiveNSEC: true, Limits: dnssec.DefaultLimits}}
	r.nsec.learn("example.", outcome{soa: soa, auth: rrs}, now)
	wire, n, ok := r.AppendNXDomain(nil, "zz.example.", true, now.Add(10*time.Second))
	if !ok {
		t.Fatal("zz.example. not proven absent 10 s after learning")
	}
	for _, rr := range unpackRecords(t, wire, n) {
		if !strings.Contains(rr, "\t50\tIN\t") {
			t.Errorf("record %q, want TTL 50: the original TTL of 60 less 10 s", rr)
		}
	}
	if _, _, ok := r.AppendNXDomain(nil, "zz.example.", true, now.Add(61*time.Second)); ok {
		t.Error("zz.example. proven absent 61 s after learning, past the original TTL of 60")
	}
}
