package resolver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"bulwark/internal/cache"
	"bulwark/internal/dnssec"

	"github.com/miekg/dns"
)

// maxMinimisedQueries caps the minimised queries sent into one zone before
// the full name is sent (RFC 9156 section 2.3 suggests about 10).
const maxMinimisedQueries = 10

// iterate resolves name and qtype from the closest known zone cut downwards
// (RFC 1034 section 5.3.3, steps 2 to 4).
func (r *Resolver) iterate(req *request, name string, qtype uint16) (out outcome) {
	zone, nsset, err := r.closestCut(req, name, qtype)
	defer func() { out.cut = zone }()
	if err != nil {
		return r.unreachable(req, ".", err)
	}
	minimise := r.cfg.QNAMEMinimisation
	extra := 1 // labels beyond the zone in the next minimised query
	for referrals := 0; ; {
		if r.infra.isFailed(zone) {
			req.traceZoneError(zone, errors.New("its servers all failed recently; not asked again until the failure TTL ends"))
			return failed(EDENoReachableAuthority, fmt.Sprintf("servers of %s failed recently", zone))
		}
		qname, qtype2 := name, qtype
		if minimise && extra <= maxMinimisedQueries {
			qname, qtype2 = minimised(zone, name, qtype, extra)
		}
		resp, err := r.askGated(req, zone, nsset, qname, qtype2)
		var shed *shedError
		if errors.As(err, &shed) {
			req.traceZoneError(zone, err)
			out = failed(EDEOther, shed.reason)
			out.limited = true
			return out
		}
		if err != nil {
			return r.unreachable(req, zone, err)
		}
		c := classify(resp, zone, qname, qtype2)
		if c.kind == kindReferral {
			if referrals++; referrals > r.cfg.MaxReferrals {
				return failed(EDEOther, fmt.Sprintf("more than %d referrals for %s", r.cfg.MaxReferrals, name))
			}
			r.storeReferral(c)
			r.learnDelegation(req, zone, c)
			req.traceZoneCut(c.zone, "referral from "+zone)
			zone, nsset, extra = c.zone, c.ns, 1
			continue
		}
		if qname != name {
			// The minimised name is not a zone cut. NXDOMAIN or any odd
			// answer for it is not trusted to end the search: ask for the
			// full name instead (RFC 9156 section 2.3, RFC 8020 section 2).
			switch c.kind {
			case kindAnswer, kindNoData:
				extra++
			default:
				minimise = false
			}
			continue
		}
		r.validate(req, zone, &c, name, qtype)
		if r.cfg.Validation {
			req.traceSecurity(name, qtype, c.sec, c.secErr)
		}
		r.logBogus(c, name, qtype)
		if c.sec == dnssec.Secure && r.cfg.AggressiveNSEC {
			switch {
			case c.kind == kindNXDomain || c.kind == kindNoData:
				r.nsec.learn(zone, c, r.now())
			case c.kind == kindAnswer && c.wildcard:
				r.nsec.learnWildcard(zone, c, name, qtype, r.now())
			}
		}
		r.store(c, name, qtype)
		return c
	}
}

// shedError is a query to the servers of zone that the Gate did not let
// through, with the Gate's reason.
type shedError struct{ zone, reason string }

func (e *shedError) Error() string {
	return "query to the servers of " + e.zone + " shed: " + e.reason
}

// askGated asks the servers of zone as askZone does, once the Gate admits
// the query. A shed query returns a *shedError.
func (r *Resolver) askGated(req *request, zone string, nsset []dns.RR, qname string, qtype uint16) (*dns.Msg, error) {
	if r.gate != nil {
		ok, reason := r.gate.Acquire(zone, qname)
		if !ok {
			return nil, &shedError{zone: zone, reason: reason}
		}
		defer r.gate.Release(zone)
	}
	resp, err := r.askZone(req, zone, nsset, qname, qtype)
	if resp == nil && err == nil {
		// NOTE: askZone returns neither when the request's context ends
		// just as a server responds; the caller needs one of them.
		err = fmt.Errorf("servers of %s: %w", zone, context.Cause(req.ctx))
	}
	return resp, err
}

// unreachable logs why no server of zone gave a usable response and returns
// the failure. The EDE text names the zone only: server addresses and
// network errors stay in the debug log.
func (r *Resolver) unreachable(req *request, zone string, err error) outcome {
	req.traceZoneError(zone, err)
	if r.log.Enabled(req.ctx, slog.LevelDebug) {
		r.log.Debug("no usable server", "zone", zone, "error", err)
	}
	if errors.Is(err, errBudget) {
		return failed(EDEOther, "work limit reached")
	}
	return failed(EDENoReachableAuthority, "no usable server for "+zone)
}

// minimised returns the name to send the servers of zone when looking for
// name: zone plus extra labels of name, with type A (RFC 9156 section 3).
// Once extra covers name, it returns name and qtype.
func minimised(zone, name string, qtype uint16, extra int) (string, uint16) {
	labels := dns.SplitDomainName(name)
	keep := dns.CountLabel(zone) + extra
	if keep >= len(labels) {
		return name, qtype
	}
	off, _ := dns.PrevLabel(name, keep)
	return name[off:], dns.TypeA
}

// closestCut returns the deepest zone cut above or at name whose NS RRset is
// cached, priming the root when nothing is. For DS the search starts at the
// parent, which holds the DS RRset (RFC 4035 section 3.1.4.1).
func (r *Resolver) closestCut(req *request, name string, qtype uint16) (string, []dns.RR, error) {
	start := name
	if qtype == dns.TypeDS && name != "." {
		start = parent(name)
	}
	for n := start; n != "."; n = parent(n) {
		// A cut whose server addresses were evicted while its NS RRset
		// stayed is skipped: the parent's referral brings them back.
		if ns, _, ok := r.cache.RRset(n, dns.TypeNS); ok && r.reachable(n, ns) {
			req.traceZoneCut(n, "the closest enclosing zone with a cached NS RRset")
			return n, ns, nil
		}
	}
	ns, err := r.prime(req)
	req.traceZoneCut(".", "the root")
	return ".", ns, err
}

// reachable reports whether some server of zone has a cached address or an
// NS name outside zone that can be looked up.
func (r *Resolver) reachable(zone string, nsset []dns.RR) bool {
	addrs, pending := r.nsAddrs(zone, nsset)
	return len(addrs) > 0 || len(pending) > 0
}

// storeReferral caches the child's NS RRset and its glue.
func (r *Resolver) storeReferral(c outcome) {
	r.cache.StoreRRset(c.ns, cache.RankReferral)
	for _, set := range rrsets(c.glue) {
		r.cache.StoreRRset(set, cache.RankGlue)
	}
}

// store caches the final outcome of an iteration for name and qtype, with
// its signatures and validation state. Bogus data is kept for the bogus TTL
// at most, so that a broken zone costs one validation per that time.
func (r *Resolver) store(c outcome, name string, qtype uint16) {
	var maxTTL uint32
	if c.sec == dnssec.Bogus {
		maxTTL = max(1, uint32(r.cfg.BogusTTL/time.Second))
	}
	switch c.kind {
	case kindAnswer, kindCNAME:
		for _, set := range rrsets(c.rrs) {
			h := set[0].Header()
			if h.Rrtype == dns.TypeCNAME && c.synthesised[h.Name] || h.Rrtype == dns.TypeRRSIG {
				continue
			}
			sigs := sigsFor(c.sigs, dns.CanonicalName(h.Name), h.Rrtype)
			s := cache.Set{
				RRs: set, Sigs: rrsOf(sigs),
				Rank: cache.RankAnswer, Security: c.sec, Reason: c.secErr,
			}
			if c.wildcard {
				s.Proof = c.auth
			}
			r.cache.StoreSet(s, r.sigTTLCap(sigs, maxTTL))
		}
	case kindNXDomain, kindNoData:
		neg := cache.Negative{NXDomain: c.kind == kindNXDomain, SOA: c.soa, Proof: c.auth, Security: c.sec, Reason: c.secErr}
		r.cache.StoreNegativeProof(name, qtype, neg, maxTTL)
	}
}

// sigTTLCap lowers maxTTL (0 for none) so that a validated RRset leaves the
// cache before its signatures expire and does not outlive their original
// TTL (RFC 4035 section 5.3.3).
func (r *Resolver) sigTTLCap(sigs []*dns.RRSIG, maxTTL uint32) uint32 {
	now := uint32(r.validationTime().Unix())
	for _, s := range sigs {
		left := s.Expiration - now
		if int32(left) <= 0 {
			continue // an expired signature did not validate the RRset
		}
		for _, limit := range []uint32{left, s.OrigTtl} {
			if maxTTL == 0 || limit < maxTTL {
				maxTTL = max(limit, 1)
			}
		}
	}
	return maxTTL
}

// logBogus logs why an outcome failed validation, at most bogusLogLimit
// lines a second; each line counts the ones suppressed before it.
func (r *Resolver) logBogus(c outcome, name string, qtype uint16) {
	if c.sec != dnssec.Bogus || c.secErr == nil {
		return
	}
	ok, suppressed := r.bogusLog.allow(time.Now())
	if !ok {
		return
	}
	r.log.Info("validation failed", "qname", name, "qtype", dns.Type(qtype).String(),
		"ede", c.secErr.EDE, "reason", c.secErr.Text, "suppressed_before", suppressed)
}

func rrsOf(sigs []*dns.RRSIG) []dns.RR {
	out := make([]dns.RR, len(sigs))
	for i, s := range sigs {
		out[i] = s
	}
	return out
}

// prime returns the root NS RRset from the cache while some of its
// addresses are cached too, or asks the root hints for it (RFC 8109) and caches the answer with the addresses from the additional
// section. When priming fails, the hints themselves are returned.
func (r *Resolver) prime(req *request) ([]dns.RR, error) {
	if ns, _, ok := r.cache.RRset(".", dns.TypeNS); ok && r.reachable(".", ns) {
		return ns, nil
	}
	hints := r.hintRRs()
	req.traceZoneCut(".", "priming: the root NS RRset from the root hints (RFC 8109)")
	resp, err := r.askZone(req, ".", hints, ".", dns.TypeNS)
	if err != nil {
		r.log.Warn("root priming failed, using root hints", "error", err)
		return hints, nil
	}
	var ns []dns.RR
	for _, rr := range resp.Answer {
		if rr.Header().Rrtype == dns.TypeNS && rr.Header().Name == "." {
			ns = append(ns, rr)
		}
	}
	if len(ns) == 0 {
		return hints, nil
	}
	// The referral rank keeps this unvalidated copy from answering
	// clients: a client's query for the root NS RRset is resolved and
	// validated like any other.
	r.cache.StoreRRset(ns, cache.RankReferral)
	for _, set := range rrsets(glueFor(resp.Extra, ns, ".")) {
		r.cache.StoreRRset(set, cache.RankGlue)
	}
	return ns, nil
}

// hintRRs returns the root hints as an NS RRset, storing their addresses as
// glue so that server selection finds them.
func (r *Resolver) hintRRs() []dns.RR {
	var ns []dns.RR
	for _, s := range r.cfg.Roots {
		ns = append(ns, &dns.NS{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 3600000}, Ns: s.Name})
		var a, aaaa []dns.RR
		for _, addr := range s.Addrs {
			hdr := dns.RR_Header{Name: s.Name, Class: dns.ClassINET, Ttl: 3600000}
			if addr.Is4() {
				hdr.Rrtype = dns.TypeA
				a = append(a, &dns.A{Hdr: hdr, A: addr.AsSlice()})
			} else {
				hdr.Rrtype = dns.TypeAAAA
				aaaa = append(aaaa, &dns.AAAA{Hdr: hdr, AAAA: addr.AsSlice()})
			}
		}
		r.cache.StoreRRset(a, cache.RankGlue)
		r.cache.StoreRRset(aaaa, cache.RankGlue)
	}
	return ns
}

// rrsets groups records into RRsets by owner and type, keeping their order.
func rrsets(rrs []dns.RR) [][]dns.RR {
	var out [][]dns.RR
	index := map[string]int{}
	for _, rr := range rrs {
		h := rr.Header()
		key := fmt.Sprintf("%s/%d", dns.CanonicalName(h.Name), h.Rrtype)
		i, ok := index[key]
		if !ok {
			i = len(out)
			index[key] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], rr)
	}
	return out
}
