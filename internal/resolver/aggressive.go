package resolver

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"bulwark/internal/dnssec"

	"github.com/miekg/dns"
)

// Aggressive use of the DNSSEC-validated cache (RFC 8198): the NSEC and
// NSEC3 records of secure negative answers are kept per zone. A later query
// for a name they prove absent is answered NXDOMAIN or NODATA without
// querying the zone's servers. This stops random-subdomain floods against
// signed zones at the resolver. NSEC3 opt-out spans prove nothing here, as
// they may hide unsigned delegations.

// Bounds of the NSEC index, so that a zone with many names or many zones
// cannot grow it without limit.
const (
	maxNSECPerZone = 4096
	maxNSECZones   = 10000
)

// nsecIndex holds validated NSEC and NSEC3 records by zone. It is safe for
// concurrent use. Answers only read it, under the read lock, so that a
// flood of random names answered from it runs on every core instead of
// queueing for one lock.
type nsecIndex struct {
	mu    sync.RWMutex
	zones map[string]*zoneNSEC
}

// zoneNSEC is the validated denial records of one zone and the zone's SOA
// with its RRSIGs, for synthesised negative answers. soaExpires is when
// the first of those RRSIGs expires. NSEC records are
// sorted by owner. NSEC3 records share params; nsec3 holds them with
// their RRSIGs, sorted by owner hash, and nsec3Hashes the owner hashes in
// upper case, in the same order.
type zoneNSEC struct {
	soa         *dns.SOA
	soaSigs     []dns.RR
	soaExpires  time.Time
	wire        zoneWire
	entries     []proofEntry
	nsec3       []proofEntry
	nsec3Hashes []string
	params      string
	hash        hashParams
	// wildcards holds the validated RRsets of wildcards, by wildcardKey.
	wildcards map[string]*wildcardSet
}

// proofEntry is one NSEC or NSEC3 record with its RRSIGs. key is the
// canonicalKey of an NSEC record's owner.
type proofEntry struct {
	rr      dns.RR
	sigs    []dns.RR
	expires time.Time
	key     string
	wire    entryWire
}

func (e proofEntry) nsec() *dns.NSEC { return e.rr.(*dns.NSEC) }

// learn stores the NSEC and NSEC3 records of c, a secure answer from zone.
// Their lifetime is the lower of their TTL and the SOA's negative TTL (RFC
// 9077), and ends when the first of their RRSIGs expires (RFC 4035 section
// 5.3.3): a proof with an expired signature is bogus to the client.
func (x *nsecIndex) learn(zone string, c outcome, now time.Time) {
	if c.soa == nil {
		return
	}
	if owner := dns.CanonicalName(c.soa.Hdr.Name); owner != zone && dns.IsSubDomain(zone, owner) {
		// A child zone on the same servers answered, as validate found
		// from the SOA: its records belong to its own index, where the
		// last NSEC span wraps to its own apex.
		zone = owner
	}
	var proofs []dns.RR
	for _, rr := range c.auth {
		switch rr.(type) {
		case *dns.NSEC, *dns.NSEC3:
			proofs = append(proofs, rr)
		}
	}
	if len(proofs) == 0 {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	z := x.zone(zone)
	z.soa = c.soa
	z.soaSigs = rrsOf(sigsFor(c.auth, dns.CanonicalName(c.soa.Hdr.Name), dns.TypeSOA))
	z.wire = newZoneWire(zone, z.soa, z.soaSigs)
	z.soaExpires = sigsExpire(z.soaSigs, now, now.Add(time.Duration(z.wire.ttl)*time.Second))
	z.addProofs(zone, proofs, c.auth, min(c.soa.Minttl, c.soa.Hdr.Ttl), now)
}

// zone returns the index of zone, adding it when it is missing. The caller
// holds x.mu.
func (x *nsecIndex) zone(zone string) *zoneNSEC {
	if x.zones == nil {
		x.zones = map[string]*zoneNSEC{}
	}
	z := x.zones[zone]
	if z == nil {
		if len(x.zones) >= maxNSECZones {
			for k := range x.zones { // drop an arbitrary zone
				delete(x.zones, k)
				break
			}
		}
		z = &zoneNSEC{}
		x.zones[zone] = z
	}
	return z
}

// addProofs stores the NSEC and NSEC3 records proofs of zone, with their
// RRSIGs from auth. Each lives for the lower of its TTL and maxTTL, and
// no longer than its first RRSIG is valid.
func (z *zoneNSEC) addProofs(zone string, proofs, auth []dns.RR, maxTTL uint32, now time.Time) {
	for _, rr := range proofs {
		h := rr.Header()
		owner := dns.CanonicalName(h.Name)
		e := proofEntry{
			rr:   rr,
			sigs: rrsOf(sigsFor(auth, owner, h.Rrtype)),
		}
		e.expires = sigsExpire(e.sigs, now, now.Add(time.Duration(min(h.Ttl, maxTTL))*time.Second))
		e.wire = newEntryWire(zone, owner, rr, e.sigs)
		if n3, ok := rr.(*dns.NSEC3); ok {
			z.insertNSEC3(owner, n3, e)
		} else {
			z.insert(e)
		}
	}
}

// sigsExpire returns the time at which the first RRSIG of sigs expires or
// its original TTL runs out, or limit when neither comes before it.
func sigsExpire(sigs []dns.RR, now, limit time.Time) time.Time {
	for _, rr := range sigs {
		s, ok := rr.(*dns.RRSIG)
		if !ok {
			continue
		}
		// Serial number arithmetic, as the validator compares them.
		left := time.Duration(int32(s.Expiration-uint32(now.Unix()))) * time.Second
		if t := now.Add(left); t.Before(limit) {
			limit = t
		}
		// Nor past the original TTL the signature covers (RFC 4035
		// section 5.3.3), as for cached RRsets.
		if t := now.Add(time.Duration(s.OrigTtl) * time.Second); t.Before(limit) {
			limit = t
		}
	}
	return limit
}

// flush removes the spans that concern names at and below name: the
// indexes of zones below it, and in the zones above it the NSEC records
// owned below it or covering it, and every NSEC3 record, whose hashes do
// not show which names they cover. It returns how many records it dropped.
func (x *nsecIndex) flush(name string) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := 0
	for zone, z := range x.zones {
		if dns.IsSubDomain(name, zone) {
			n += len(z.entries) + len(z.nsec3)
			delete(x.zones, zone)
			continue
		}
		if !dns.IsSubDomain(zone, name) {
			continue
		}
		n += len(z.nsec3) + len(z.wildcards)
		z.nsec3, z.nsec3Hashes = nil, nil
		// The key of a wildcard does not show its name readily: drop
		// them all.
		z.wildcards = nil
		kept := z.entries[:0]
		for _, e := range z.entries {
			owner := dns.CanonicalName(e.rr.Header().Name)
			next := dns.CanonicalName(e.nsec().NextDomain)
			if dns.IsSubDomain(name, owner) || dnssec.Covers(owner, next, name) {
				n++
				continue
			}
			kept = append(kept, e)
		}
		z.entries = kept
	}
	return n
}

// insertNSEC3 adds e. Records with other hash parameters than those stored
// replace them all, since proofs cannot mix parameters.
func (z *zoneNSEC) insertNSEC3(owner string, n *dns.NSEC3, e proofEntry) {
	params := fmt.Sprintf("%d/%d/%s", n.Hash, n.Iterations, strings.ToLower(n.Salt))
	if z.params != params {
		z.nsec3, z.nsec3Hashes, z.params = nil, nil, params
		z.hash = newHashParams(n)
	}
	h := strings.ToUpper(firstLabel(owner))
	i, found := slices.BinarySearch(z.nsec3Hashes, h)
	if found {
		z.nsec3[i] = e
		return
	}
	if len(z.nsec3) >= maxNSECPerZone {
		return
	}
	z.nsec3 = slices.Insert(z.nsec3, i, e)
	z.nsec3Hashes = slices.Insert(z.nsec3Hashes, i, h)
}

// nsec3Near returns the NSEC3 records that match or precede, and so may
// cover, the hashes of name, of its ancestors down to zone and of their
// wildcards: all a proof about name can use (RFC 5155 section 8). Handing
// only these to the proof keeps its cost independent of the chain's
// length.
func (z *zoneNSEC) nsec3Near(name, zone string) []*dns.NSEC3 {
	first := z.nsec3[0].rr.(*dns.NSEC3)
	var out []*dns.NSEC3
	add := func(n string) {
		h := dns.HashName(n, first.Hash, first.Iterations, first.Salt)
		i, found := slices.BinarySearch(z.nsec3Hashes, h)
		if !found {
			// The span that may cover h starts at the owner before it,
			// or at the last owner for a span that wraps.
			i = (i - 1 + len(z.nsec3)) % len(z.nsec3)
		}
		n3 := z.nsec3[i].rr.(*dns.NSEC3)
		if !slices.Contains(out, n3) {
			out = append(out, n3)
		}
	}
	for n := name; n != ""; n = parent(n) {
		add(n)
		add(dnssec.WildcardName(n))
		if n == zone {
			break
		}
	}
	return out
}

// insert adds e in canonical order, replacing an entry with the same owner.
func (z *zoneNSEC) insert(e proofEntry) {
	e.key = canonicalKey(e.rr.Header().Name)
	i := sort.Search(len(z.entries), func(i int) bool {
		return z.entries[i].key >= e.key
	})
	if i < len(z.entries) && z.entries[i].key == e.key {
		z.entries[i] = e
		return
	}
	if len(z.entries) >= maxNSECPerZone {
		return
	}
	z.entries = append(z.entries, proofEntry{})
	copy(z.entries[i+1:], z.entries[i:])
	z.entries[i] = e
}

// span returns the unexpired NSEC entry whose owner is name or precedes it
// most closely; before the first owner, the last entry, whose span wraps.
func (z *zoneNSEC) span(name string, now time.Time) (proofEntry, bool) {
	if len(z.entries) == 0 {
		return proofEntry{}, false
	}
	key := canonicalKey(name)
	i := sort.Search(len(z.entries), func(i int) bool {
		return z.entries[i].key > key
	})
	e := z.entries[(i-1+len(z.entries))%len(z.entries)]
	if !now.Before(e.expires) {
		return proofEntry{}, false
	}
	return e, true
}

// deepest returns the deepest indexed zone at or above name, and its
// index, or nil. The caller holds x.mu.
func (x *nsecIndex) deepest(name string) (string, *zoneNSEC) {
	for n := name; n != ""; n = parent(n) {
		if z := x.zones[n]; z != nil {
			return n, z
		}
	}
	return "", nil
}

// answer synthesises a negative answer for name and qtype from the denial
// records of the deepest indexed zone above name, when they prove one.
func (x *nsecIndex) answer(name string, qtype uint16, now time.Time, b *dnssec.Budget) (Result, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	zone, z := x.deepest(name)
	if z == nil || z.soa == nil || !now.Before(z.soaExpires) || qtype == dns.TypeDS && name == zone || qtype == dns.TypeANY {
		// ANY is left to the servers: a proof that some types are absent
		// does not replace their answer (RFC 8482).
		return Result{}, false
	}
	d := &dnssec.Denial{Zone: zone}
	entries := map[dns.RR]proofEntry{}
	if len(z.nsec3) > 0 {
		// The proof may use expired records: those it used are checked
		// below.
		d.NSEC3 = z.nsec3Near(name, zone)
	} else {
		e, ok := z.span(name, now)
		if !ok {
			return Result{}, false
		}
		entries[e.rr] = e
		d.NSEC = append(d.NSEC, e.nsec())
		// The closest encloser's wildcard must be covered too, by the
		// same span or another cached one.
		ce := dnssec.SpanEncloser(name, e.nsec())
		if w, ok := z.span(dnssec.WildcardName(ce), now); ok && w.rr != e.rr {
			entries[w.rr] = w
			d.NSEC = append(d.NSEC, w.nsec())
		}
	}
	rcode := dns.RcodeSuccess
	if sec, _ := d.NoData(name, qtype, b); sec != dnssec.Secure {
		if sec, _ = d.NXDomain(name, b); sec != dnssec.Secure {
			return Result{}, false
		}
		rcode = dns.RcodeNameError
	}

	soa := dns.Copy(z.soa).(*dns.SOA)
	ttl := min(soa.Hdr.Ttl, soa.Minttl, uint32(z.soaExpires.Sub(now)/time.Second))
	var proof []dns.RR
	for _, rr := range d.Used() {
		e, ok := entries[rr]
		if n3, isNSEC3 := rr.(*dns.NSEC3); isNSEC3 {
			var i int
			if i, ok = slices.BinarySearch(z.nsec3Hashes, strings.ToUpper(firstLabel(n3.Hdr.Name))); ok {
				e = z.nsec3[i]
			}
		}
		if !ok || !now.Before(e.expires) {
			return Result{}, false
		}
		ttl = min(ttl, uint32(e.expires.Sub(now)/time.Second))
		proof = append(proof, e.rr)
		proof = append(proof, e.sigs...)
	}
	soa.Hdr.Ttl = ttl
	proof = append(proof, z.soaSigs...)
	for i, rr := range proof {
		proof[i] = dns.Copy(rr)
		proof[i].Header().Ttl = ttl
	}
	res := Result{Rcode: rcode, Authority: append([]dns.RR{soa}, proof...), Security: dnssec.Secure, Zone: zone}
	return res, true
}

// firstLabel returns the first label of name, without its dot.
func firstLabel(name string) string {
	if i, end := dns.NextLabel(name, 0); !end {
		return name[:i-1]
	}
	return strings.TrimSuffix(name, ".")
}

// canonicalKey returns a string whose byte order is the canonical order
// of names (RFC 4034 section 6.1): the labels from the root down, in lower
// case, each followed by a zero byte. Comparing keys costs far less than
// comparing names label by label, which matters when a flood of random
// names is answered from the index. A label with an escape keeps its
// presentation bytes, so its order may differ from the canonical one; the
// proof checks each span it is given, so a misplaced span only sends the
// query to the servers.
func canonicalKey(name string) string {
	labels := dns.SplitDomainName(name)
	n := 0
	for _, l := range labels {
		n += len(l) + 1
	}
	b := make([]byte, 0, n)
	for i := len(labels) - 1; i >= 0; i-- {
		for j := 0; j < len(labels[i]); j++ {
			c := labels[i][j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b = append(b, c)
		}
		b = append(b, 0)
	}
	return string(b)
}
