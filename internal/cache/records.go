package cache

import (
	"time"

	"github.com/miekg/dns"
)

// StoreRRset caches rrs, which must share one owner name, type and class.
// The RRset gets the lowest TTL of its records (RFC 2181 section 5.2),
// clamped. An unexpired RRset of higher rank is kept instead. An RRset whose
// clamped TTL is 0 is not stored. StoreRRset copies the records.
func (c *Cache) StoreRRset(rrs []dns.RR, rank Rank) {
	if len(rrs) == 0 {
		return
	}
	h := rrs[0].Header()
	ttl := h.Ttl
	for _, rr := range rrs[1:] {
		ttl = min(ttl, rr.Header().Ttl)
	}
	ttl = c.ClampTTL(ttl)
	if ttl == 0 {
		return
	}
	key := recordKey(kindRRset, h.Name, h.Rrtype)
	now := c.now()
	if old, ok := c.records.get(key); ok && old.rank > rank && now.Before(old.expires) {
		return
	}
	copied := make([]dns.RR, len(rrs))
	size := int64(0)
	for i, rr := range rrs {
		copied[i] = dns.Copy(rr)
		copied[i].Header().Ttl = ttl
		size += int64(dns.Len(rr)) + rrOverhead
	}
	e := &entry{rrs: copied, rank: rank, stored: now, expires: now.Add(time.Duration(ttl) * time.Second)}
	c.records.set(key, e, size+entryOverhead)
}

// RRset returns copies of the cached RRset for name and qtype with their TTLs
// counted down, and its rank. ok is false when nothing unexpired is cached.
func (c *Cache) RRset(name string, qtype uint16) (rrs []dns.RR, rank Rank, ok bool) {
	e, ok := c.records.get(recordKey(kindRRset, name, qtype))
	if !ok {
		return nil, 0, false
	}
	ttl, ok := remaining(c.now(), e.expires)
	if !ok {
		return nil, 0, false
	}
	rrs = make([]dns.RR, len(e.rrs))
	for i, rr := range e.rrs {
		rrs[i] = dns.Copy(rr)
		rrs[i].Header().Ttl = ttl
	}
	return rrs, e.rank, true
}

// Negative is a cached negative answer.
type Negative struct {
	// NXDomain is true for a name that does not exist, false for NODATA.
	NXDomain bool
	// SOA is the SOA record to put in the authority section, with its TTL
	// counted down; nil when the answer carried none.
	SOA *dns.SOA
	// TTL is the seconds left.
	TTL uint32
}

// StoreNegative caches that name does not exist (nxdomain) or has no data of
// qtype. The TTL is the lower of the SOA's TTL and its MINIMUM field (RFC
// 2308 section 5), capped by the maximum negative TTL. Without an SOA nothing
// is stored, as RFC 2308 section 5 asks.
func (c *Cache) StoreNegative(name string, qtype uint16, nxdomain bool, soa *dns.SOA) {
	if soa == nil {
		return
	}
	ttl := c.NegativeTTL(soa)
	if ttl == 0 {
		return
	}
	kind, t := byte(kindNoData), qtype
	if nxdomain {
		kind, t = kindNXDomain, 0
	}
	s := dns.Copy(soa).(*dns.SOA)
	s.Hdr.Ttl = ttl
	now := c.now()
	e := &entry{
		negative: true, nxdomain: nxdomain, soa: s, rank: RankAnswer,
		stored: now, expires: now.Add(time.Duration(ttl) * time.Second),
	}
	c.records.set(recordKey(kind, name, t), e, int64(dns.Len(s))+rrOverhead+entryOverhead)
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
		return Negative{NXDomain: e.nxdomain, SOA: soa, TTL: ttl}, true
	}
	return Negative{}, false
}
