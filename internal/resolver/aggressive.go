package resolver

import (
	"sort"
	"sync"
	"time"

	"bulwark/internal/dnssec"

	"github.com/miekg/dns"
)

// Aggressive use of the DNSSEC-validated cache (RFC 8198): the NSEC records
// of secure negative answers are kept per zone in canonical order, and a
// later query for a name they cover is answered NXDOMAIN or NODATA without
// asking the zone's servers. This stops random-subdomain floods against
// signed zones at the resolver.
//
// NOTE: only NSEC is used. NSEC3 spans are not reused, so NSEC3-signed
// zones are asked for every new name, as before.

// Bounds of the NSEC index, so that a zone with many names or many zones
// cannot grow it without limit.
const (
	maxNSECPerZone = 4096
	maxNSECZones   = 10000
)

// nsecIndex holds validated NSEC records by zone. It is safe for concurrent
// use.
type nsecIndex struct {
	mu    sync.Mutex
	zones map[string]*zoneNSEC
}

// zoneNSEC is the validated NSEC records of one zone, sorted by owner, and
// the zone's SOA with its RRSIGs for synthesised negative answers.
type zoneNSEC struct {
	soa     *dns.SOA
	soaSigs []dns.RR
	entries []nsecEntry
}

type nsecEntry struct {
	nsec    *dns.NSEC
	sigs    []dns.RR
	expires time.Time
}

// learn stores the NSEC records of c, a secure answer from zone. Their
// lifetime is the lower of their TTL and the SOA's negative TTL (RFC 9077).
func (x *nsecIndex) learn(zone string, c outcome, now time.Time) {
	if c.soa == nil {
		return
	}
	var nsecs []*dns.NSEC
	for _, rr := range c.auth {
		if n, ok := rr.(*dns.NSEC); ok {
			nsecs = append(nsecs, n)
		}
	}
	if len(nsecs) == 0 {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
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
	z.soa = c.soa
	z.soaSigs = rrsOf(sigsFor(c.auth, dns.CanonicalName(c.soa.Hdr.Name), dns.TypeSOA))
	for _, n := range nsecs {
		ttl := min(n.Hdr.Ttl, c.soa.Minttl, c.soa.Hdr.Ttl)
		e := nsecEntry{
			nsec:    n,
			sigs:    rrsOf(sigsFor(c.auth, dns.CanonicalName(n.Hdr.Name), dns.TypeNSEC)),
			expires: now.Add(time.Duration(ttl) * time.Second),
		}
		z.insert(e)
	}
}

// insert adds e in canonical order, replacing an entry with the same owner.
func (z *zoneNSEC) insert(e nsecEntry) {
	owner := e.nsec.Hdr.Name
	i := sort.Search(len(z.entries), func(i int) bool {
		return dnssec.Compare(z.entries[i].nsec.Hdr.Name, owner) >= 0
	})
	if i < len(z.entries) && dnssec.Compare(z.entries[i].nsec.Hdr.Name, owner) == 0 {
		z.entries[i] = e
		return
	}
	if len(z.entries) >= maxNSECPerZone {
		return
	}
	z.entries = append(z.entries, nsecEntry{})
	copy(z.entries[i+1:], z.entries[i:])
	z.entries[i] = e
}

// span returns the unexpired entry whose owner is name or precedes it most
// closely; before the first owner, the last entry, whose span wraps.
func (z *zoneNSEC) span(name string, now time.Time) (nsecEntry, bool) {
	if len(z.entries) == 0 {
		return nsecEntry{}, false
	}
	i := sort.Search(len(z.entries), func(i int) bool {
		return dnssec.Compare(z.entries[i].nsec.Hdr.Name, name) > 0
	})
	e := z.entries[(i-1+len(z.entries))%len(z.entries)]
	if !now.Before(e.expires) {
		return nsecEntry{}, false
	}
	return e, true
}

// answer synthesises a negative answer for name and qtype from the NSEC
// records of the deepest indexed zone above name, when they prove one.
func (x *nsecIndex) answer(name string, qtype uint16, now time.Time, b *dnssec.Budget) (Result, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	var zone string
	var z *zoneNSEC
	for n := name; n != ""; n = parent(n) {
		if z = x.zones[n]; z != nil {
			zone = n
			break
		}
	}
	if z == nil || z.soa == nil || qtype == dns.TypeDS && name == zone {
		return Result{}, false
	}
	used := map[string]nsecEntry{}
	e, ok := z.span(name, now)
	if !ok {
		return Result{}, false
	}
	used[e.nsec.Hdr.Name] = e
	d := dnssec.Denial{Zone: zone, NSEC: []*dns.NSEC{e.nsec}}
	rcode := dns.RcodeSuccess
	sec, _ := d.NoData(name, qtype, b)
	if sec != dnssec.Secure {
		// Try NXDOMAIN: the closest encloser's wildcard must be covered
		// too, by the same span or another cached one.
		ce := commonAncestorOf(name, e.nsec)
		if w, ok := z.span("*."+ce, now); ok {
			used[w.nsec.Hdr.Name] = w
			d.NSEC = append(d.NSEC, w.nsec)
		}
		if sec, _ = d.NXDomain(name, b); sec != dnssec.Secure {
			return Result{}, false
		}
		rcode = dns.RcodeNameError
	}

	soa := dns.Copy(z.soa).(*dns.SOA)
	ttl := min(soa.Hdr.Ttl, soa.Minttl)
	var proof []dns.RR
	for _, u := range used {
		left := uint32(u.expires.Sub(now) / time.Second)
		ttl = min(ttl, left)
		proof = append(proof, u.nsec)
		proof = append(proof, u.sigs...)
	}
	soa.Hdr.Ttl = ttl
	proof = append(proof, z.soaSigs...)
	for i, rr := range proof {
		proof[i] = dns.Copy(rr)
		proof[i].Header().Ttl = ttl
	}
	res := Result{Rcode: rcode, Authority: append([]dns.RR{soa}, proof...), Security: dnssec.Secure}
	return res, true
}

// commonAncestorOf returns the closest encloser of name that the span of n
// shows: the deeper of name's common ancestors with n's owner and next name.
func commonAncestorOf(name string, n *dns.NSEC) string {
	a := sharedSuffix(name, dns.CanonicalName(n.Hdr.Name))
	b := sharedSuffix(name, dns.CanonicalName(n.NextDomain))
	if dns.CountLabel(b) > dns.CountLabel(a) {
		return b
	}
	return a
}

func sharedSuffix(a, b string) string {
	n := dns.CompareDomainName(a, b)
	if n == 0 {
		return "."
	}
	off, _ := dns.PrevLabel(a, n)
	return a[off:]
}
