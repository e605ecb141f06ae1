package resolver

import (
	"fmt"
	"strings"
	"time"

	"bulwark/internal/cache"
	"bulwark/internal/dnssec"

	"github.com/miekg/dns"
)

// This file builds the chain of trust (RFC 4035 section 5). The DS RRset of
// a zone comes from its parent and is validated with the parent's keys, down
// from a trust anchor. The zone's DNSKEY RRset must match it, and the zone's
// other data must be signed by those keys. Every step goes through resolve,
// so DS and DNSKEY RRsets are cached with their validation state like any
// other data.

// validationTime returns the time signatures are checked against.
func (r *Resolver) validationTime() time.Time {
	if r.cfg.ValidationTime != nil {
		return r.cfg.ValidationTime()
	}
	return r.now()
}

// validate sets the validation state of c, the final outcome of asking the
// servers of zone for qname and qtype.
func (r *Resolver) validate(req *request, zone string, c *outcome, qname string, qtype uint16) {
	if !r.cfg.Validation || qtype == dns.TypeRRSIG {
		// RRSIG records are not signed themselves, so an answer of them
		// stays indeterminate and never gets AD.
		return
	}
	switch c.kind {
	case kindAnswer, kindCNAME, kindNXDomain, kindNoData:
	default:
		return
	}
	if qtype == dns.TypeDNSKEY && (qname == zone || c.kind == kindAnswer) {
		// A zone's DNSKEY RRset is checked against its DS RRset, even
		// when a server of an ancestor zone that also serves the child
		// sent it.
		r.validateKeys(req, qname, c)
		return
	}
	if c.soa != nil {
		// A negative answer comes from the zone of its SOA, which can be
		// a child hosted on the same servers as zone.
		if owner := dns.CanonicalName(c.soa.Hdr.Name); owner != zone && under(owner, zone) {
			zone = owner
		}
	}
	keys, sec, err := r.keysFor(req, zone)
	if sec != dnssec.Secure {
		c.sec, c.secErr = sec, err
		return
	}
	d := r.denialIn(req, zone, c.auth, keys)
	if d.err != nil {
		c.sec, c.secErr = dnssec.Bogus, d.err
		return
	}
	switch c.kind {
	case kindAnswer, kindCNAME:
		c.sec, c.secErr = r.validateAnswer(req, zone, c, keys, d)
	case kindNXDomain:
		if sec, err := r.validateSOA(req, zone, c, keys); sec != dnssec.Secure {
			c.sec, c.secErr = sec, err
			return
		}
		c.sec, c.secErr = d.NXDomain(c.owner, req.budget)
		req.traceDenial(zone, c.owner, qtype, "NXDOMAIN", d, c.sec, c.secErr)
	case kindNoData:
		if sec, err := r.validateSOA(req, zone, c, keys); sec != dnssec.Secure {
			c.sec, c.secErr = sec, err
			return
		}
		c.sec, c.secErr = d.NoData(c.owner, qtype, req.budget)
		req.traceDenial(zone, c.owner, qtype, "NODATA", d, c.sec, c.secErr)
	}
}

// validateAnswer checks every RRset of an answer chain from zone, and the
// proofs of wildcard expansions.
func (r *Resolver) validateAnswer(req *request, zone string, c *outcome, keys []*dns.DNSKEY, d denial) (dnssec.Security, *dnssec.Error) {
	for _, set := range rrsets(c.rrs) {
		h := set[0].Header()
		owner := dns.CanonicalName(h.Name)
		if h.Rrtype == dns.TypeCNAME && c.synthesised[owner] || h.Rrtype == dns.TypeRRSIG {
			// A synthesised CNAME is made from a DNAME, which is checked
			// itself; RRSIGs are not signed.
			continue
		}
		sigs := sigsFor(c.sigs, owner, h.Rrtype)
		setKeys := keys
		if signer, ok := deeperSigner(sigs, zone, owner); ok {
			// Signed by a child zone on the same servers as zone.
			k, sec, err := r.keysFor(req, signer)
			if sec != dnssec.Secure {
				return sec, err
			}
			setKeys = k
		}
		if len(sigs) == 0 {
			if cut, ok := r.insecureCutBetween(req, zone, owner); ok {
				// The RRset lies below an unsigned delegation whose
				// child is served by the same servers as zone.
				r.log.Debug("unsigned RRset below an insecure delegation", "owner", owner, "cut", cut)
				return dnssec.Insecure, nil
			}
		}
		sig, err := r.verify(req, set, sigs, setKeys)
		if err != nil {
			return dnssec.Bogus, dnssec.AsError(err)
		}
		if labels := int(sig.Labels); labels < dnssec.LabelCount(owner) {
			sec, err := d.Wildcard(owner, labels, req.budget)
			req.traceDenial(zone, owner, h.Rrtype, "wildcard expansion", d, sec, err)
			if sec != dnssec.Secure {
				return sec, err
			}
			c.wildcard = true
		}
	}
	return dnssec.Secure, nil
}

// deeperSigner returns the signer of sigs when every one names the same
// zone strictly below zone and at or above owner.
func deeperSigner(sigs []*dns.RRSIG, zone, owner string) (string, bool) {
	signer := ""
	for _, s := range sigs {
		name := dns.CanonicalName(s.SignerName)
		if signer != "" && name != signer {
			return "", false
		}
		signer = name
	}
	if signer == "" || signer == zone || !under(signer, zone) || !under(owner, signer) {
		return "", false
	}
	return signer, true
}

// maxCutSearch bounds the names between a zone and an unsigned RRset that
// are checked for an insecure delegation.
const maxCutSearch = 6

// insecureCutBetween looks for a zone cut with a proven absent DS RRset
// between zone (exclusive) and owner (inclusive), querying the DS RRset of
// each name in turn from the top. An unsigned RRset from the servers of a
// signed zone may come from an unsigned child that they serve too.
func (r *Resolver) insecureCutBetween(req *request, zone, owner string) (string, bool) {
	for i := 0; i < maxCutSearch && owner != zone; i++ {
		n := childToward(zone, owner)
		key := "cut:" + n
		if req.stack[key] {
			return "", false
		}
		req.stack[key] = true
		req.enter(n, dns.TypeDS, "a zone cut between "+zone+" and an unsigned RRset at "+owner)
		res := r.resolve(req, n, dns.TypeDS)
		req.leave()
		delete(req.stack, key)
		if res.Security == dnssec.Insecure {
			return n, true
		}
		if res.Security != dnssec.Secure || res.Rcode != dns.RcodeSuccess || hasRR(res.Answer, dns.TypeDS) {
			return "", false
		}
		if dnssec.DelegationProven(res.Authority, n, r.cfg.Limits.MaxNSEC3Iterations) {
			return n, true
		}
		zone = n
	}
	return "", false
}

// childToward returns the child of zone that is owner or an ancestor of it.
func childToward(zone, owner string) string {
	keep := dns.CountLabel(zone) + 1
	off, _ := dns.PrevLabel(owner, keep)
	return owner[off:]
}

func hasRR(rrs []dns.RR, t uint16) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype == t {
			return true
		}
	}
	return false
}

// learnDelegation validates the DS RRset, or the proof that there is
// none, that a referral from parent carried for its child, so that the
// chain of trust needs no DS query of its own. Anything that does not
// validate is ignored: the DS query is then sent as usual.
func (r *Resolver) learnDelegation(req *request, parent string, c outcome) {
	child := c.zone
	if !r.cfg.Validation || len(c.ds) == 0 && len(c.auth) == 0 || r.underNegativeAnchor(child) {
		return
	}
	if s, ok := r.cache.Set(child, dns.TypeDS); ok && s.Rank >= cache.RankAnswer {
		return
	}
	if r.insecureDelegations.has(child, r.now()) {
		return
	}

	keys, sec, _ := r.keysFor(req, parent)
	if sec != dnssec.Secure {
		return
	}

	if len(c.ds) > 0 {
		sigs := sigsFor(c.auth, child, dns.TypeDS)
		if _, err := r.verify(req, c.ds, sigs, keys); err != nil {
			return
		}
		s := cache.Set{RRs: c.ds, Sigs: rrsOf(sigs), Rank: cache.RankAnswer, Security: dnssec.Secure}
		r.cache.StoreSet(s, r.sigTTLCap(sigs, 0))
		return
	}

	d := r.denialIn(req, parent, c.auth, keys)
	if d.err != nil {
		return
	}
	sec, err := d.NoData(child, dns.TypeDS, req.budget)
	req.traceDenial(parent, child, dns.TypeDS, "insecure delegation", d, sec, err)
	optOut := sec == dnssec.Insecure && err == nil
	if optOut || sec == dnssec.Secure && dnssec.DelegationProven(c.auth, child, r.cfg.Limits.MaxNSEC3Iterations) {
		ttl := uint32(3600)
		for _, rr := range c.auth {
			ttl = min(ttl, rr.Header().Ttl)
		}
		r.insecureDelegations.add(child, r.now().Add(time.Duration(ttl)*time.Second))
	}
}

// validateSOA checks the SOA of a negative answer, when there is one.
func (r *Resolver) validateSOA(req *request, zone string, c *outcome, keys []*dns.DNSKEY) (dnssec.Security, *dnssec.Error) {
	if c.soa == nil {
		return dnssec.Secure, nil
	}
	owner := dns.CanonicalName(c.soa.Hdr.Name)
	_, err := r.verify(req, []dns.RR{c.soa}, sigsFor(c.auth, owner, dns.TypeSOA), keys)
	if err != nil {
		return dnssec.Bogus, dnssec.AsError(err)
	}
	return dnssec.Secure, nil
}

// validateKeys checks a zone's DNSKEY RRset against the DS RRset from its
// parent or the trust anchors.
func (r *Resolver) validateKeys(req *request, zone string, c *outcome) {
	trust, sec, err := r.trustFor(req, zone)
	if sec != dnssec.Secure {
		c.sec, c.secErr = sec, err
		return
	}
	var keys []*dns.DNSKEY
	for _, rr := range c.rrs {
		if k, ok := rr.(*dns.DNSKEY); ok && dns.CanonicalName(k.Hdr.Name) == zone {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		c.sec, c.secErr = dnssec.Bogus, &dnssec.Error{EDE: dnssec.EDEDNSKEYMissing, Text: "no DNSKEY records for " + zone}
		return
	}
	sigs := sigsFor(c.sigs, zone, dns.TypeDNSKEY)
	_, insecure, verr := dnssec.VerifyDNSKEYs(keys, sigs, trust, r.validationTime(), req.budget)
	req.traceKeySigs(zone, sigs, trust, verr)
	switch {
	case insecure:
		c.sec, c.secErr = dnssec.Insecure, verr
	case verr != nil:
		c.sec, c.secErr = dnssec.Bogus, verr
	default:
		c.sec = dnssec.Secure
	}
}

// trustFor returns what authenticates the DNSKEY RRset of zone: trust
// anchors, or the zone's DS RRset validated through its parent. The state
// is Insecure when no chain of trust leads to zone.
func (r *Resolver) trustFor(req *request, zone string) (dnssec.Trust, dnssec.Security, *dnssec.Error) {
	if r.underNegativeAnchor(zone) {
		return dnssec.Trust{}, dnssec.Insecure, nil
	}
	anchors := r.anchors.Load()
	if t, ok := anchors.at(zone); ok {
		t, sec, err := r.usableTrust(t)
		req.traceTrust(zone, t, "trust anchor", sec, err)
		return t, sec, err
	}
	if !anchors.above(zone) {
		req.traceNoTrust(zone, "no trust anchor at or above the zone", dnssec.Insecure, nil)
		return dnssec.Trust{}, dnssec.Insecure, nil
	}
	if r.insecureDelegations.has(zone, r.now()) {
		req.traceNoTrust(zone, "a referral proved the delegation unsigned", dnssec.Insecure, nil)
		return dnssec.Trust{}, dnssec.Insecure, nil
	}
	key := "ds:" + zone
	if req.stack[key] {
		return dnssec.Trust{}, dnssec.Bogus, &dnssec.Error{EDE: dnssec.EDEBogus, Text: "the DS lookup for " + zone + " needs itself"}
	}
	req.stack[key] = true
	req.enter(zone, dns.TypeDS, "the chain of trust")
	res := r.resolve(req, zone, dns.TypeDS)
	req.leave()
	delete(req.stack, key)

	switch res.Security {
	case dnssec.Secure:
	case dnssec.Insecure:
		req.traceNoTrust(zone, "DS lookup insecure", dnssec.Insecure, nil)
		return dnssec.Trust{}, dnssec.Insecure, nil
	case dnssec.Bogus:
		req.traceNoTrust(zone, "DS lookup bogus", dnssec.Bogus, res.validationError())
		return dnssec.Trust{}, dnssec.Bogus, res.validationError()
	default:
		err := fetchFailure(res, dnssec.EDEIndeterminate, "the DS RRset of "+zone+" could not be fetched")
		req.traceNoTrust(zone, "DS lookup failed", dnssec.Bogus, err)
		return dnssec.Trust{}, dnssec.Bogus, err
	}
	var t dnssec.Trust
	for _, rr := range res.Answer {
		if ds, ok := rr.(*dns.DS); ok && dns.CanonicalName(ds.Hdr.Name) == zone {
			t.DS = append(t.DS, ds)
		}
	}
	if len(t.DS) == 0 {
		// A secure proof that the zone has no DS makes it insecure only
		// at a delegation: a name inside a signed zone with a made-up SOA
		// or missing signatures must not pass as an unsigned child.
		if !dnssec.DelegationProven(res.Authority, zone, r.cfg.Limits.MaxNSEC3Iterations) {
			err := &dnssec.Error{EDE: dnssec.EDEBogus, Text: zone + " has no DS RRset and is not a delegation"}
			req.traceNoTrust(zone, "no DS RRset", dnssec.Bogus, err)
			return dnssec.Trust{}, dnssec.Bogus, err
		}
		req.traceNoTrust(zone, "no DS RRset at the delegation", dnssec.Insecure, nil)
		return dnssec.Trust{}, dnssec.Insecure, nil
	}
	t, sec, err := r.usableTrust(t)
	req.traceTrust(zone, t, "DS RRset from the parent zone", sec, err)
	return t, sec, err
}

func (r *Resolver) usableTrust(t dnssec.Trust) (dnssec.Trust, dnssec.Security, *dnssec.Error) {
	if ok, err := t.Usable(); !ok {
		return dnssec.Trust{}, dnssec.Insecure, err
	}
	return t, dnssec.Secure, nil
}

// keysFor returns the validated DNSKEYs of zone, or the state that replaces
// them: Insecure below an insecure delegation, Bogus when the chain
// of trust is broken.
func (r *Resolver) keysFor(req *request, zone string) ([]*dns.DNSKEY, dnssec.Security, *dnssec.Error) {
	if _, sec, err := r.trustFor(req, zone); sec != dnssec.Secure {
		return nil, sec, err
	}
	key := "dnskey:" + zone
	if req.stack[key] {
		return nil, dnssec.Bogus, &dnssec.Error{EDE: dnssec.EDEBogus, Text: "the DNSKEY lookup for " + zone + " needs itself"}
	}
	req.stack[key] = true
	req.enter(zone, dns.TypeDNSKEY, "the chain of trust")
	res := r.resolve(req, zone, dns.TypeDNSKEY)
	req.leave()
	delete(req.stack, key)

	var keys []*dns.DNSKEY
	for _, rr := range res.Answer {
		if k, ok := rr.(*dns.DNSKEY); ok && dns.CanonicalName(k.Hdr.Name) == zone {
			keys = append(keys, k)
		}
	}
	switch res.Security {
	case dnssec.Secure:
		req.traceKeys(zone, keys, dnssec.Secure, nil)
	case dnssec.Insecure:
		req.traceKeys(zone, keys, dnssec.Insecure, res.validationError())
		return nil, dnssec.Insecure, res.validationError()
	case dnssec.Bogus:
		req.traceKeys(zone, keys, dnssec.Bogus, res.validationError())
		return nil, dnssec.Bogus, res.validationError()
	default:
		err := fetchFailure(res, dnssec.EDEDNSKEYMissing, "the DNSKEY RRset of "+zone+" could not be fetched")
		req.traceKeys(zone, keys, dnssec.Bogus, err)
		return nil, dnssec.Bogus, err
	}
	if len(keys) == 0 {
		return nil, dnssec.Bogus, &dnssec.Error{EDE: dnssec.EDEDNSKEYMissing, Text: "no DNSKEY records for " + zone}
	}
	return keys, dnssec.Secure, nil
}

// fetchFailure returns the reason a DS or DNSKEY lookup failed: the
// lookup's own EDE when it has one, such as No Reachable Authority for
// servers that did not answer, or else code with text.
func fetchFailure(res Result, code uint16, text string) *dnssec.Error {
	if res.Rcode == dns.RcodeServerFailure && res.EDE != nil {
		return &dnssec.Error{EDE: res.EDE.Code, Text: text + ": " + res.EDE.Text}
	}
	return &dnssec.Error{EDE: code, Text: text}
}

// denial is the verified NSEC and NSEC3 records of one response, or why
// they failed verification.
type denial struct {
	dnssec.Denial
	err *dnssec.Error
}

// denialIn verifies the NSEC and NSEC3 RRsets in auth, signed by zone, and
// returns them. A record whose signature fails makes the response bogus.
func (r *Resolver) denialIn(req *request, zone string, auth []dns.RR, keys []*dns.DNSKEY) denial {
	d := denial{Denial: dnssec.Denial{Zone: zone}}
	for _, set := range rrsets(auth) {
		h := set[0].Header()
		if h.Rrtype != dns.TypeNSEC && h.Rrtype != dns.TypeNSEC3 {
			continue
		}
		owner := dns.CanonicalName(h.Name)
		if _, err := r.verify(req, set, sigsFor(auth, owner, h.Rrtype), keys); err != nil {
			d.err = dnssec.AsError(err)
			return d
		}
		d.Add(set...)
	}
	return d
}

// sigsFor returns the RRSIGs in rrs over owner's RRset of type t.
func sigsFor(rrs []dns.RR, owner string, t uint16) []*dns.RRSIG {
	var out []*dns.RRSIG
	for _, rr := range rrs {
		if s, ok := rr.(*dns.RRSIG); ok && s.TypeCovered == t && strings.EqualFold(s.Hdr.Name, owner) {
			out = append(out, s)
		}
	}
	return out
}

// validationError returns the reason for a result's validation state.
func (res Result) validationError() *dnssec.Error {
	if res.EDE != nil {
		return &dnssec.Error{EDE: res.EDE.Code, Text: res.EDE.Text}
	}
	return &dnssec.Error{EDE: dnssec.EDEBogus, Text: fmt.Sprintf("validation failed (%s)", res.Security)}
}
