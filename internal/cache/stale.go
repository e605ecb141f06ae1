package cache

import (
	"encoding/binary"
	"time"
)

// Serve-stale (RFC 8767): expired entries stay in the cache, within its
// byte budget, until StaleMaxAge past their expiry, so that a name whose
// servers fail can still be answered. They are evicted like any other
// entry when the budget runs out.

// Prefetch thresholds: a response with at least prefetchMinTTL of original
// TTL is refreshed once less than 1/prefetchFraction of it is left.
const (
	prefetchMinTTL   = 10 * time.Second
	prefetchFraction = 10
)

// AllowStale marks p as a response that may be served stale once expired.
// Only responses with validated or unsigned data should be marked: never
// SERVFAIL or bogus ones. It must be called before p is stored.
func (p *Packed) AllowStale() { p.staleOK = true }

// Stale reports whether p is a stale copy made by StaleCopy.
func (p *Packed) Stale() bool { return p.stale }

// StaleAnswer returns the expired packed response under key when it may
// still be served stale at now: it was marked with AllowStale and expired
// less than StaleMaxAge ago. A stale copy stored under key counts too,
// with the age of the response it was made from. A response past its
// stale age is removed.
func (c *Cache) StaleAnswer(key []byte, now time.Time) (*Packed, bool) {
	if c.cfg.StaleMaxAge <= 0 {
		return nil, false
	}
	p, ok := c.answers.getBytes(key)
	if !ok || !p.staleOK || !p.Expired(now) {
		return nil, false
	}
	if !now.Before(p.staleUntil) {
		c.answers.del(string(key))
		return nil, false
	}
	return p, true
}

// StaleCopy returns a copy of p to serve stale from now until now+hold,
// with every TTL set to ttl seconds and option, an EDNS option in wire
// format such as an EDE, added to p's options. A copy of a stale copy keeps
// its options. The copy may be served stale no longer than p.
func (p *Packed) StaleCopy(now time.Time, ttl uint32, hold time.Duration, option []byte) *Packed {
	options := p.options
	if !p.stale {
		options = append(append(make([]byte, 0, len(p.options)+len(option)), p.options...), option...)
	}
	expires := now.Add(hold)
	if expires.After(p.staleUntil) {
		expires = p.staleUntil
	}
	wire := append([]byte(nil), p.wire...)
	ttls := make([]uint32, len(p.ttlOffs))
	for i, off := range p.ttlOffs {
		ttls[i] = ttl
		binary.BigEndian.PutUint32(wire[off:], ttl)
	}
	return &Packed{
		wire: wire, ttlOffs: p.ttlOffs, ttls: ttls, options: options,
		stored: now, expires: expires, staleUntil: p.staleUntil,
		stale: true, staleOK: true, tag: p.tag,
	}
}

// Rcode returns the 4-bit response code in the header of p.
func (p *Packed) Rcode() int { return int(p.wire[3] & 0x0f) }

// ClaimPrefetch reports whether p should be refreshed now: it is not a
// stale copy, its original TTL was at least 10s, less than a tenth of it
// is left, and no other caller has claimed it. A caller that receives true
// must refresh p or call ReleasePrefetch. It does not allocate.
func (p *Packed) ClaimPrefetch(now time.Time) bool {
	if p.stale {
		return false
	}
	ttl := p.expires.Sub(p.stored)
	if ttl < prefetchMinTTL || p.expires.Sub(now) >= ttl/prefetchFraction {
		return false
	}
	return p.refreshing.CompareAndSwap(false, true)
}

// ReleasePrefetch undoes ClaimPrefetch, for a refresh that did not start.
func (p *Packed) ReleasePrefetch() { p.refreshing.Store(false) }

// staleAge returns how long ago an entry that expires at expires expired,
// and whether it may still be served stale at now.
func (c *Cache) staleAge(now, expires time.Time) (time.Duration, bool) {
	age := now.Sub(expires)
	return age, age >= 0 && c.cfg.StaleMaxAge > 0 && age < c.cfg.StaleMaxAge
}
