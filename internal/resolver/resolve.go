package resolver

import (
	"fmt"
	"strings"

	"bulwark/internal/cache"
	"bulwark/internal/dnssec"

	"github.com/miekg/dns"
)

// resolve answers name and qtype from the cache where it can and iterates
// where it must, following CNAME and DNAME records up to the chain limit.
// The answer section carries the RRSIGs of its RRsets, and the authority
// section the proofs, for clients that request DNSSEC records. The result
// is secure only when every step is.
func (r *Resolver) resolve(req *request, name string, qtype uint16) (final Result) {
	// The zone and the shedding of the last step that left the cache,
	// and whether cached NSEC records answered it.
	var cut string
	var limited, synthesised bool
	defer func() { final.Zone, final.Limited, final.Synthesised = cut, limited, synthesised }()
	var chain []dns.RR
	seen := map[string]bool{}
	state := validation{sec: dnssec.Secure}
	// A refresh skips the cached answers and NSEC proofs of this question
	// and its CNAME targets; the nested lookups of servers and keys still
	// use the cache.
	refresh := req.refresh
	req.refresh = false
	for steps := 0; ; steps++ {
		if steps > r.cfg.MaxCNAMEChain || seen[name] {
			return failure(EDEOther, fmt.Sprintf("CNAME chain longer than %d or looping at %s", r.cfg.MaxCNAMEChain, name))
		}
		seen[name] = true
		var res Result
		var next string
		var done bool
		if !refresh {
			res, next, done = r.fromCache(req, name, qtype)
		}
		if done {
			res.Answer = append(chain, res.Answer...)
			state.add(res.Security, res.reason)
			return state.apply(res)
		} else if next != "" {
			req.traceAliases(res.Answer)
			chain = append(chain, res.Answer...)
			state.add(res.Security, res.reason)
			name = next
			continue
		}
		if res, ok := r.fromNSEC(name, qtype); ok && !refresh {
			cut, limited, synthesised = res.Zone, false, true
			req.traceNSEC(name, qtype, res)
			res.Answer = chain
			state.add(res.Security, nil)
			return state.apply(res)
		}
		out := r.iterate(req, name, qtype)
		cut, limited, synthesised = out.cut, out.limited, false
		state.add(out.sec, out.secErr)
		req.traceAliases(out.rrs)
		switch out.kind {
		case kindAnswer:
			res := Result{Rcode: dns.RcodeSuccess, Answer: append(chain, withSigs(out)...)}
			if out.wildcard {
				res.Authority = out.auth
			}
			return state.apply(res)
		case kindCNAME:
			chain = append(chain, withSigs(out)...)
			name = dns.CanonicalName(out.target)
		case kindNXDomain, kindNoData:
			res := negative(chain, out.kind == kindNXDomain, r.negativeSOA(out.soa))
			res.Authority = append(res.Authority, out.auth...)
			return state.apply(res)
		default:
			return failure(out.ede.Code, out.ede.Text)
		}
	}
}

// fromNSEC answers from the validated NSEC records of earlier answers
// (RFC 8198) when they prove that name or qtype does not exist.
func (r *Resolver) fromNSEC(name string, qtype uint16) (Result, bool) {
	if !r.cfg.Validation || !r.cfg.AggressiveNSEC || r.underNegativeAnchor(name) {
		return Result{}, false
	}
	// A budget of its own: a failed attempt must not leave the query less
	// work for validating the servers' answer.
	return r.nsec.answer(name, qtype, r.now(), dnssec.NewBudget(r.cfg.Limits))
}

// withSigs returns the answer chain of out followed by its RRSIGs.
func withSigs(out outcome) []dns.RR {
	rrs := out.rrs
	for _, s := range out.sigs {
		if s.Header().Rrtype == dns.TypeRRSIG {
			rrs = append(rrs, s)
		}
	}
	return rrs
}

// validation combines the states of the steps of one answer.
type validation struct {
	sec    dnssec.Security
	reason *dnssec.Error
}

func (v *validation) add(sec dnssec.Security, reason *dnssec.Error) {
	// The first bogus step names the failure; otherwise the first reason
	// for insecurity, such as an unsupported algorithm, is kept.
	if reason != nil && (v.reason == nil || sec == dnssec.Bogus && v.sec != dnssec.Bogus) {
		v.reason = reason
	}
	v.sec = dnssec.Combine(v.sec, sec)
}

// apply sets the combined state on res, with the reason as an EDE.
func (v *validation) apply(res Result) Result {
	res.Security = v.sec
	if v.reason != nil && (v.sec == dnssec.Bogus || v.sec == dnssec.Insecure) {
		res.EDE = &EDE{Code: v.reason.EDE, Text: v.reason.Text}
		res.reason = v.reason
	}
	return res
}

// fromCache answers from cached data. done means res is final; a non-empty
// next means res.Answer holds a CNAME or a DNAME with its synthesised CNAME
// and resolution continues at next.
//
// Only data from answer sections is used: glue and NS records from referrals
// are the parent's copies and are never answered to clients (RFC 2181
// section 5.4.1).
func (r *Resolver) fromCache(req *request, name string, qtype uint16) (res Result, next string, done bool) {
	if s, ok := r.cache.Set(name, qtype); ok && s.Rank >= cache.RankAnswer {
		req.traceCacheSet(name, qtype, s)
		return fromSet(s, dns.RcodeSuccess), "", true
	}
	// A CNAME answers a query for CNAME or ANY itself; other types follow it.
	if qtype != dns.TypeCNAME && qtype != dns.TypeANY {
		if s, ok := r.cache.Set(name, dns.TypeCNAME); ok && s.Rank >= cache.RankAnswer {
			req.traceCacheSet(name, dns.TypeCNAME, s)
			return fromSet(s, dns.RcodeSuccess), dns.CanonicalName(s.RRs[0].(*dns.CNAME).Target), false
		}
	}
	if neg, ok := r.cache.Negative(name, qtype); ok {
		req.traceCacheNegative(name, qtype, neg)
		res := negative(nil, neg.NXDomain, neg.SOA)
		res.Authority = append(res.Authority, neg.Proof...)
		res.Security, res.reason = neg.Security, neg.Reason
		return res, "", true
	}
	if qtype == dns.TypeDNAME {
		return Result{}, "", false
	}
	// A DNAME at an ancestor redirects the whole subtree (RFC 6672).
	for anc := parent(name); anc != ""; anc = parent(anc) {
		s, ok := r.cache.Set(anc, dns.TypeDNAME)
		if !ok {
			continue
		}
		req.traceCacheSet(anc, dns.TypeDNAME, s)
		dname := s.RRs[0].(*dns.DNAME)
		res := fromSet(s, dns.RcodeSuccess)
		cname, ok := synthesise(dname, name)
		if !ok {
			res.Rcode = dns.RcodeYXDomain
			return res, "", true
		}
		res.Answer = append(res.Answer, cname)
		return res, cname.Target, false
	}
	return Result{}, "", false
}

// fromSet returns a cached RRset as a result, RRSIGs after the records.
func fromSet(s cache.Set, rcode int) Result {
	return Result{
		Rcode: rcode, Answer: append(s.RRs, s.Sigs...), Authority: s.Proof,
		Security: s.Security, reason: s.Reason,
	}
}

// synthesise builds the CNAME that a DNAME implies for name (RFC 6672
// section 2.2), with the DNAME's TTL (section 3.1). ok is false when the new
// name would exceed 255 octets.
func synthesise(d *dns.DNAME, name string) (*dns.CNAME, bool) {
	prefix := name[:len(name)-len(d.Hdr.Name)]
	target := prefix + d.Target
	if d.Target == "." {
		target = prefix
	}
	if _, ok := dns.IsDomainName(target); !ok || len(target) > 254 {
		return nil, false
	}
	return &dns.CNAME{
		Hdr:    dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: d.Hdr.Ttl},
		Target: dns.CanonicalName(target),
	}, true
}

// negativeSOA returns a copy of soa with the TTL of the negative answer it
// proves (RFC 2308 section 3), or nil.
func (r *Resolver) negativeSOA(soa *dns.SOA) *dns.SOA {
	if soa == nil {
		return nil
	}
	s := dns.Copy(soa).(*dns.SOA)
	s.Hdr.Ttl = r.cache.NegativeTTL(soa)
	return s
}

func negative(chain []dns.RR, nxdomain bool, soa *dns.SOA) Result {
	res := Result{Rcode: dns.RcodeSuccess, Answer: chain}
	if nxdomain {
		res.Rcode = dns.RcodeNameError
	}
	if soa != nil {
		res.Authority = []dns.RR{soa}
	}
	return res
}

func failure(code uint16, text string) Result {
	return Result{Rcode: dns.RcodeServerFailure, EDE: &EDE{Code: code, Text: text}}
}

// parent returns the name with its first label removed, "." for a top-level
// name, and "" for the root.
func parent(name string) string {
	if name == "." {
		return ""
	}
	i := strings.IndexByte(name, '.')
	for i > 0 && name[i-1] == '\\' {
		j := strings.IndexByte(name[i+1:], '.')
		if j < 0 {
			return "."
		}
		i += j + 1
	}
	if i+1 >= len(name) {
		return "."
	}
	return name[i+1:]
}

// under reports whether name is zone or below it; both must be canonical.
func under(name, zone string) bool {
	return dns.IsSubDomain(zone, name)
}
