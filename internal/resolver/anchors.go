package resolver

import (
	"sync"
	"time"

	"bulwark/internal/cache"
	"bulwark/internal/dnssec"

	"github.com/miekg/dns"
)

// anchorSet holds the trust anchors by zone.
type anchorSet map[string]dnssec.Trust

// SetTrustAnchors replaces the trust anchors, DS and DNSKEY records. Data
// validated with the old anchors stays cached until it expires.
func (r *Resolver) SetTrustAnchors(rrs []dns.RR) {
	set := newAnchorSet(rrs)
	r.anchors.Store(&set)
}

func newAnchorSet(rrs []dns.RR) anchorSet {
	set := anchorSet{}
	for _, rr := range rrs {
		zone := dns.CanonicalName(rr.Header().Name)
		t := set[zone]
		switch rr := rr.(type) {
		case *dns.DS:
			t.DS = append(t.DS, rr)
		case *dns.DNSKEY:
			t.DNSKEYs = append(t.DNSKEYs, rr)
		default:
			continue
		}
		set[zone] = t
	}
	return set
}

// at returns the anchors of zone.
func (s anchorSet) at(zone string) (dnssec.Trust, bool) {
	t, ok := s[zone]
	return t, ok
}

// above reports whether an anchor sits at zone or one of its ancestors.
func (s anchorSet) above(zone string) bool {
	for n := zone; n != ""; n = parent(n) {
		if _, ok := s[n]; ok {
			return true
		}
	}
	return false
}

// negativeAnchors holds the domains whose data is not validated (RFC 7646),
// each with its expiry; the zero time means none. It is safe for concurrent
// use.
type negativeAnchors struct {
	mu      sync.RWMutex
	domains map[string]time.Time
	// timers flush each expiring domain's cached data when it expires.
	timers map[string]*time.Timer
}

// NegativeTrustAnchor is a domain at and below which validation is off
// (RFC 7646) until Expires, or for good when Expires is zero.
type NegativeTrustAnchor struct {
	Domain  string
	Expires time.Time
}

// AddNegativeTrustAnchor turns validation off at and below domain until
// expires (never when zero), replacing an entry for the same domain. When
// the entry expires, the data cached for the domain without validation is
// flushed.
func (r *Resolver) AddNegativeTrustAnchor(domain string, expires time.Time) {
	name := dns.CanonicalName(domain)
	r.ntas.mu.Lock()
	defer r.ntas.mu.Unlock()
	if r.ntas.domains == nil {
		r.ntas.domains = map[string]time.Time{}
		r.ntas.timers = map[string]*time.Timer{}
	}
	r.ntas.domains[name] = expires
	if t := r.ntas.timers[name]; t != nil {
		t.Stop()
		delete(r.ntas.timers, name)
	}
	if !expires.IsZero() {
		r.ntas.timers[name] = time.AfterFunc(expires.Sub(r.validationTime()), func() {
			r.expireNegativeAnchor(name, expires)
		})
	}
}

// expireNegativeAnchor removes the entry for name if it still expires at
// expires, and flushes what was cached for it without validation.
func (r *Resolver) expireNegativeAnchor(name string, expires time.Time) {
	r.ntas.mu.Lock()
	exp, ok := r.ntas.domains[name]
	current := ok && exp.Equal(expires)
	if current {
		delete(r.ntas.domains, name)
		delete(r.ntas.timers, name)
	}
	r.ntas.mu.Unlock()
	if current {
		n := r.Flush(name)
		r.log.Info("negative trust anchor expired", "domain", name, "cache_entries_flushed", n)
	}
}

// RemoveNegativeTrustAnchor turns validation back on for domain and reports
// whether it had an entry. The caller flushes the domain's cached data.
func (r *Resolver) RemoveNegativeTrustAnchor(domain string) bool {
	r.ntas.mu.Lock()
	defer r.ntas.mu.Unlock()
	name := dns.CanonicalName(domain)
	_, ok := r.ntas.domains[name]
	delete(r.ntas.domains, name)
	if t := r.ntas.timers[name]; t != nil {
		t.Stop()
		delete(r.ntas.timers, name)
	}
	return ok
}

// NegativeTrustAnchors returns the unexpired entries.
func (r *Resolver) NegativeTrustAnchors() []NegativeTrustAnchor {
	r.ntas.mu.RLock()
	defer r.ntas.mu.RUnlock()
	now := r.validationTime()
	var out []NegativeTrustAnchor
	for d, exp := range r.ntas.domains {
		if exp.IsZero() || now.Before(exp) {
			out = append(out, NegativeTrustAnchor{Domain: d, Expires: exp})
		}
	}
	return out
}

// hasNegativeAnchors reports whether any negative trust anchor is set,
// expired or not.
func (r *Resolver) hasNegativeAnchors() bool {
	r.ntas.mu.RLock()
	defer r.ntas.mu.RUnlock()
	return len(r.ntas.domains) > 0
}

// underNegativeAnchor reports whether an unexpired negative trust anchor
// covers zone. An expired entry is removed when found.
func (r *Resolver) underNegativeAnchor(zone string) bool {
	r.ntas.mu.RLock()
	if len(r.ntas.domains) == 0 {
		r.ntas.mu.RUnlock()
		return false
	}
	now := r.validationTime()
	var expired []string
	found := false
	for n := zone; n != ""; n = parent(n) {
		exp, ok := r.ntas.domains[n]
		if !ok {
			continue
		}
		if exp.IsZero() || now.Before(exp) {
			found = true
			break
		}
		expired = append(expired, n)
	}
	r.ntas.mu.RUnlock()
	for _, n := range expired {
		// Found before its timer fired, as under a testing clock.
		r.expireNegativeAnchor(n, r.negativeAnchorExpiry(n))
	}
	return found
}

func (r *Resolver) negativeAnchorExpiry(name string) time.Time {
	r.ntas.mu.RLock()
	defer r.ntas.mu.RUnlock()
	return r.ntas.domains[name]
}

// Flush removes the data cached at and below zone: RRsets, negative
// answers, packed responses, validated NSEC and NSEC3 spans, and proven
// unsigned delegations. It returns how many entries it removed.
func (r *Resolver) Flush(zone string) int {
	zone = dns.CanonicalName(zone)
	return r.cache.Flush(zone) + r.nsec.flush(zone) + r.insecureDelegations.flush(zone)
}

// FlushName removes the data cached for name exactly, of every type:
// RRsets, negative answers and packed responses. The validated NSEC and
// NSEC3 records that Flush(name) drops go too, since they could answer
// name without a query, and so does an unsigned delegation proven at
// name. It returns how many entries it removed.
func (r *Resolver) FlushName(name string) int {
	name = dns.CanonicalName(name)
	return r.cache.FlushName(name) + r.nsec.flush(name) + r.insecureDelegations.remove(name)
}

// Inspect returns what the cache holds for name exactly; see
// cache.Cache.Inspect.
func (r *Resolver) Inspect(name string) ([]cache.Entry, []cache.AnswerEntry) {
	return r.cache.Inspect(name)
}

// maxInsecureDelegations bounds the delegations remembered as unsigned.
const maxInsecureDelegations = 100000

// delegationSet holds the zones proven unsigned by the NSEC or NSEC3
// records of a referral, until the records' TTL ends. It is safe for
// concurrent use.
type delegationSet struct {
	mu    sync.Mutex
	zones map[string]time.Time
}

func (s *delegationSet) add(zone string, expires time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.zones == nil || len(s.zones) >= maxInsecureDelegations {
		s.zones = map[string]time.Time{}
	}
	s.zones[zone] = expires
}

func (s *delegationSet) has(zone string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.zones[zone]
	if ok && !now.Before(exp) {
		delete(s.zones, zone)
		return false
	}
	return ok
}

// flush forgets the delegations at and below zone and returns how many.
func (s *delegationSet) flush(zone string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for z := range s.zones {
		if dns.IsSubDomain(zone, z) {
			delete(s.zones, z)
			n++
		}
	}
	return n
}

// remove deletes the delegation at zone and returns 1 if it was there.
func (s *delegationSet) remove(zone string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.zones[zone]; !ok {
		return 0
	}
	delete(s.zones, zone)
	return 1
}
