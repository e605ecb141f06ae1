package cache

import (
	"time"

	"bulwark/internal/dnssec"

	"github.com/miekg/dns"
)

// StoreRRset caches rrs, which must share one owner name, type and class,
// with no signatures and no validation state. See StoreSet.
func (c *Cache) StoreRRset(rrs []dns.RR, rank Rank) {
	c.StoreSet(Set{RRs: rrs, Rank: rank}, 0)
}

// Set is a cached RRset with its RRSIGs, the NSEC or NSEC3 records that
// proved a wildcard expansion, and its validation state.
type Set struct {
	RRs   []dns.RR
	Sigs  []dns.RR
	Proof []dns.RR
	Rank  Rank
	// Security is the DNSSEC validation state of the RRset, and Reason
	// why it is bogus or insecure, when known.
	Security dnssec.Security
	Reason   *dnssec.Error
}

// StoreSet caches s. The RRset gets the lowest TTL of its records (RFC 2181
// section 5.2), clamped, and lowered to maxTTL when that is not 0. An
// unexpired RRset of higher rank is kept instead. An RRset whose TTL comes
// to 0 is not stored. StoreSet copies the records.
func (c *Cache) StoreSet(s Set, maxTTL uint32) {
	if len(s.RRs) == 0 {
		return
	}
	h := s.RRs[0].Header()
	ttl := h.Ttl
	for _, rr := range s.RRs[1:] {
		ttl = min(ttl, rr.Header().Ttl)
	}
	ttl = c.ClampTTL(ttl)
	if maxTTL > 0 {
		ttl = min(ttl, maxTTL)
	}
	if ttl == 0 {
		return
	}
	key := recordKey(kindRRset, h.Name, h.Rrtype)
	now := c.now()
	if old, ok := c.records.get(key); ok && old.rank > s.Rank && now.Before(old.expires) {
		return
	}
	e := &entry{rank: s.Rank, security: s.Security, reason: s.Reason, stored: now, expires: now.Add(time.Duration(ttl) * time.Second)}
	var size int64
	e.rrs, size = copyWithTTL(s.RRs, ttl)
	var n int64
	e.sigs, n = copyWithTTL(s.Sigs, ttl)
	size += n
	e.proof, n = copyWithTTL(s.Proof, ttl)
	size += n
	c.records.set(key, e, size+entryOverhead)
}

// copyWithTTL copies rrs with every TTL set to ttl and returns the copies
// with their estimated size.
func copyWithTTL(rrs []dns.RR, ttl uint32) ([]dns.RR, int64) {
	if len(rrs) == 0 {
		return nil, 0
	}
	out := make([]dns.RR, len(rrs))
	var size int64
	for i, rr := range rrs {
		out[i] = dns.Copy(rr)
		out[i].Header().Ttl = ttl
		size += int64(dns.Len(rr)) + rrOverhead
	}
	return out, size
}

// countedDown returns copies of rrs with their TTL set to ttl.
func countedDown(rrs []dns.RR, ttl uint32) []dns.RR {
	if len(rrs) == 0 {
		return nil
	}
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		out[i] = dns.Copy(rr)
		out[i].Header().Ttl = ttl
	}
	return out
}

// RRset returns copies of the cached RRset for name and qtype with their TTLs
// counted down, and its rank. ok is false when nothing unexpired is cached.
func (c *Cache) RRset(name string, qtype uint16) (rrs []dns.RR, rank Rank, ok bool) {
	s, ok := c.Set(name, qtype)
	return s.RRs, s.Rank, ok
}

// Set returns copies of the cached RRset for name and qtype, its signatures
// and proof, with TTLs counted down. ok is false when nothing unexpired is
// cached.
func (c *Cache) Set(name string, qtype uint16) (Set, bool) {
	e, ok := c.records.get(recordKey(kindRRset, name, qtype))
	if !ok {
		return Set{}, false
	}
	ttl, ok := remaining(c.now(), e.expires)
	if !ok {
		return Set{}, false
	}
	return Set{
		RRs: countedDown(e.rrs, ttl), Sigs: countedDown(e.sigs, ttl), Proof: countedDown(e.proof, ttl),
		Rank: e.rank, Security: e.security, Reason: e.reason,
	}, true
}

// Negative is a cached negative answer.
type Negative struct {
	// NXDomain is true for a name that does not exist, false for NODATA.
	NXDomain bool
	// SOA is the SOA record to put in the authority section, with its TTL
	// counted down; nil when the answer carried none.
	SOA *dns.SOA
	// Proof holds the SOA's RRSIGs and the NSEC or NSEC3 records with
	// their RRSIGs that prove the answer, TTLs counted down.
	Proof []dns.RR
	// Security is the DNSSEC validation state of the answer, and Reason
	// why it is bogus or insecure, when known.
	Security dnssec.Security
	Reason   *dnssec.Error
	// TTL is the seconds left.
	TTL uint32
}

// StoreNegative caches that name does not exist (nxdomain) or has no data of
// qtype, with no proof and no validation state. See StoreNegativeProof.
func (c *Cache) StoreNegative(name string, qtype uint16, nxdomain bool, soa *dns.SOA) {
	c.StoreNegativeProof(name, qtype, Negative{NXDomain: nxdomain, SOA: soa}, 0)
}

// StoreNegativeProof caches the negative answer neg for name and qtype; its
// TTL field is ignored. The TTL is the lower of the SOA's TTL and its
// MINIMUM field (RFC 2308 section 5), capped by the maximum negative TTL
// and by maxTTL when that is not 0. Without an SOA nothing is stored, as
// RFC 2308 section 5 asks.
func (c *Cache) StoreNegativeProof(name string, qtype uint16, neg Negative, maxTTL uint32) {
	if neg.SOA == nil {
		return
	}
	ttl := c.NegativeTTL(neg.SOA)
	if maxTTL > 0 {
		ttl = min(ttl, maxTTL)
	}
	if ttl == 0 {
		return
	}
	kind, t := byte(kindNoData), qtype
	if neg.NXDomain {
		kind, t = kindNXDomain, 0
	}
	s := dns.Copy(neg.SOA).(*dns.SOA)
	s.Hdr.Ttl = ttl
	proof, size := copyWithTTL(neg.Proof, ttl)
	now := c.now()
	e := &entry{
		negative: true, nxdomain: neg.NXDomain, soa: s, proof: proof, rank: RankAnswer,
		security: neg.Security, reason: neg.Reason, stored: now, expires: now.Add(time.Duration(ttl) * time.Second),
	}
	c.records.set(recordKey(kind, name, t), e, int64(dns.Len(s))+size+rrOverhead+entryOverhead)
}

// NegativeTTL returns the TTL in seconds that a negative answer carrying soa
// is cached and served with.
func (c *Cache) NegativeTTL(soa *dns.SOA) uint32 {
	return min(soa.Hdr.Ttl, soa.Minttl, uint32(c.cfg.MaxNegativeTTL/time.Second))
}

// Negative returns a cached NXDOMAIN for name, or else a cached NODATA for
// name and qtype.
func (c *Cache) Negative(name string, qtype uint16) (Negative, bool) {
	now := c.now()
	for _, k := range []string{recordKey(kindNXDomain, name, 0), recordKey(kindNoData, name, qtype)} {
		e, ok := c.records.get(k)
		if !ok {
			continue
		}
		ttl, ok := remaining(now, e.expires)
		if !ok {
			continue
		}
		soa := dns.Copy(e.soa).(*dns.SOA)
		soa.Hdr.Ttl = ttl
		return Negative{NXDomain: e.nxdomain, SOA: soa, Proof: countedDown(e.proof, ttl), Security: e.security, Reason: e.reason, TTL: ttl}, true
	}
	return Negative{}, false
}
