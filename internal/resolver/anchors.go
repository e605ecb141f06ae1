package resolver

import (
	"sync"
	"time"

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
}

// NegativeTrustAnchor is a domain at and below which validation is off
// (RFC 7646) until Expires, or for good when Expires is zero.
type NegativeTrustAnchor struct {
	Domain  string
	Expires time.Time
}

// AddNegativeTrustAnchor turns validation off at and below domain until
// expires (never when zero), replacing an entry for the same domain.
func (r *Resolver) AddNegativeTrustAnchor(domain string, expires time.Time) {
	r.ntas.mu.Lock()
	defer r.ntas.mu.Unlock()
	if r.ntas.domains == nil {
		r.ntas.domains = map[string]time.Time{}
	}
	r.ntas.domains[dns.CanonicalName(domain)] = expires
}

// RemoveNegativeTrustAnchor turns validation back on for domain and reports
// whether it had an entry.
func (r *Resolver) RemoveNegativeTrustAnchor(domain string) bool {
	r.ntas.mu.Lock()
	defer r.ntas.mu.Unlock()
	name := dns.CanonicalName(domain)
	_, ok := r.ntas.domains[name]
	delete(r.ntas.domains, name)
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
	if len(expired) > 0 {
		r.ntas.mu.Lock()
		for _, n := range expired {
			if exp, ok := r.ntas.domains[n]; ok && !exp.IsZero() && !now.Before(exp) {
				delete(r.ntas.domains, n)
				r.log.Info("negative trust anchor expired", "domain", n)
			}
		}
		r.ntas.mu.Unlock()
	}
	return found
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
