package resolver

import (
	"strings"

	"bulwark/internal/dnssec"

	"github.com/miekg/dns"
)

// kind is the meaning of a response for the question sent.
type kind int

const (
	kindFailed   kind = iota // no usable response
	kindAnswer               // the RRset asked for, maybe after CNAMEs
	kindCNAME                // a CNAME or DNAME chain leaving the zone
	kindReferral             // a delegation to a child zone
	kindNXDomain             // the name does not exist
	kindNoData               // the name exists without the type
	kindLame                 // the server does not serve the zone
)

// outcome is a classified response. Only records inside the zone queried
// (its bailiwick) are kept in it.
type outcome struct {
	kind kind
	// rrs is the answer chain: CNAMEs, DNAMEs with synthesised CNAMEs, then
	// the RRset asked for.
	rrs []dns.RR
	// synthesised marks the owners of CNAMEs made from a DNAME, which are
	// not cached: the DNAME is (RFC 6672 section 3.4).
	synthesised map[string]bool
	// target is the name at which a kindCNAME chain continues.
	target string
	// zone, ns and glue describe a referral.
	zone string
	ns   []dns.RR
	glue []dns.RR
	// soa is the SOA of a negative answer; owner is the name it denies.
	soa   *dns.SOA
	owner string
	// ede explains kindFailed.
	ede EDE

	// sigs holds the RRSIGs of the answer section and auth the NSEC,
	// NSEC3 and RRSIG records of the authority section, all inside zone.
	sigs, auth []dns.RR
	// sec is the validation state and secErr its reason.
	sec    dnssec.Security
	secErr *dnssec.Error
	// wildcard is set when an answer RRset was expanded from a wildcard,
	// so that auth holds its proof.
	wildcard bool
	// ds is the DS RRset of a referral's child, from the authority section.
	ds []dns.RR
	// cut is the zone whose servers iterate asked last, and limited is
	// set when the Gate shed that query.
	cut     string
	limited bool
}

func failed(code uint16, text string) outcome {
	return outcome{kind: kindFailed, ede: EDE{Code: code, Text: text}}
}

// maxChainInResponse bounds the CNAME steps read from one response.
const maxChainInResponse = 16

// classify reads resp, an answer from a server of zone to qname and qtype.
// Both names are canonical.
func classify(resp *dns.Msg, zone, qname string, qtype uint16) outcome {
	out := classifyKind(resp, zone, qname, qtype)
	switch out.kind {
	case kindAnswer, kindCNAME, kindNXDomain, kindNoData:
		out.sigs = dnssecRecords(resp.Answer, zone)
		out.auth = dnssecRecords(resp.Ns, zone)
	case kindReferral:
		// The parent's DS RRset or its proof that there is none.
		out.auth = dnssecRecords(resp.Ns, zone)
		out.ds = find(resp.Ns, out.zone, dns.TypeDS)
	}
	return out
}

// dnssecRecords returns the RRSIG, NSEC and NSEC3 records of rrs inside
// zone.
func dnssecRecords(rrs []dns.RR, zone string) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		switch rr.Header().Rrtype {
		case dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3:
			if under(dns.CanonicalName(rr.Header().Name), zone) {
				out = append(out, rr)
			}
		}
	}
	return out
}

func classifyKind(resp *dns.Msg, zone, qname string, qtype uint16) outcome {
	if len(resp.Answer) > 0 {
		if out, ok := classifyAnswer(resp, zone, qname, qtype); ok {
			return out
		}
	}
	soa := findSOA(resp.Ns, zone, qname)
	if resp.Rcode == dns.RcodeNameError {
		return outcome{kind: kindNXDomain, soa: soa, owner: qname}
	}
	if soa != nil {
		return outcome{kind: kindNoData, soa: soa, owner: qname}
	}
	if out, ok := classifyReferral(resp, zone, qname); ok {
		return out
	}
	if resp.Authoritative && !hasNS(resp.Ns) {
		// NODATA without an SOA: valid, but it cannot be cached.
		return outcome{kind: kindNoData, owner: qname}
	}
	return outcome{kind: kindLame}
}

// classifyAnswer follows the answer section from qname through CNAMEs and
// DNAMEs inside zone. A DNAME wins over a CNAME for the same name: that
// CNAME is the server's synthesis, which the resolver makes itself. ok is false when the section holds nothing for qname.
func classifyAnswer(resp *dns.Msg, zone, qname string, qtype uint16) (outcome, bool) {
	out := outcome{}
	cur := qname
	for range maxChainInResponse {
		if set := find(resp.Answer, cur, qtype); len(set) > 0 {
			out.kind, out.rrs = kindAnswer, append(out.rrs, set...)
			return out, true
		}
		if d := findDNAME(resp.Answer, cur, zone); d != nil && qtype != dns.TypeDNAME {
			cname, ok := synthesise(d, cur)
			if !ok {
				return outcome{kind: kindFailed, ede: EDE{Code: EDEOther, Text: "DNAME substitution too long for " + cur}}, true
			}
			if out.synthesised == nil {
				out.synthesised = map[string]bool{}
			}
			out.synthesised[cur] = true
			out.rrs = append(out.rrs, d, cname)
			cur = cname.Target
			if under(cur, zone) {
				continue
			}
			break
		}
		if qtype != dns.TypeCNAME {
			if set := find(resp.Answer, cur, dns.TypeCNAME); len(set) > 0 {
				out.rrs = append(out.rrs, set[0])
				cur = dns.CanonicalName(set[0].(*dns.CNAME).Target)
				if under(cur, zone) {
					continue
				}
				break
			}
		}
		break
	}
	if cur == qname {
		return outcome{}, false
	}
	out.kind, out.target = kindCNAME, cur
	return out, true
}

// classifyReferral recognises a delegation from zone to a child that is an
// ancestor of qname, or qname itself. The glue kept is the addresses of the
// child's name servers that lie inside zone.
func classifyReferral(resp *dns.Msg, zone, qname string) (outcome, bool) {
	var ns []dns.RR
	child := ""
	for _, rr := range resp.Ns {
		n, ok := rr.(*dns.NS)
		if !ok {
			continue
		}
		owner := dns.CanonicalName(n.Hdr.Name)
		if owner == zone || !under(owner, zone) || !under(qname, owner) {
			continue
		}
		if child == "" {
			child = owner
		}
		if owner == child {
			ns = append(ns, n)
		}
	}
	if child == "" {
		return outcome{}, false
	}
	return outcome{kind: kindReferral, zone: child, ns: ns, glue: glueFor(resp.Extra, ns, zone)}, true
}

// glueFor returns the A and AAAA records in extra that belong to a name in
// ns and lie inside zone.
func glueFor(extra []dns.RR, ns []dns.RR, zone string) []dns.RR {
	names := map[string]bool{}
	for _, rr := range ns {
		names[dns.CanonicalName(rr.(*dns.NS).Ns)] = true
	}
	var glue []dns.RR
	for _, rr := range extra {
		t := rr.Header().Rrtype
		owner := dns.CanonicalName(rr.Header().Name)
		if (t == dns.TypeA || t == dns.TypeAAAA) && names[owner] && under(owner, zone) {
			glue = append(glue, rr)
		}
	}
	return glue
}

// findSOA returns the SOA in the authority section whose owner is inside
// zone and at or above qname, or nil.
func findSOA(ns []dns.RR, zone, qname string) *dns.SOA {
	for _, rr := range ns {
		soa, ok := rr.(*dns.SOA)
		if !ok {
			continue
		}
		owner := dns.CanonicalName(soa.Hdr.Name)
		if under(owner, zone) && under(qname, owner) {
			return soa
		}
	}
	return nil
}

func hasNS(rrs []dns.RR) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeNS {
			return true
		}
	}
	return false
}

// find returns the records of rrs owned by name with type t; for ANY, the
// records of every type.
func find(rrs []dns.RR, name string, t uint16) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		h := rr.Header()
		if (h.Rrtype == t || t == dns.TypeANY && h.Rrtype != dns.TypeRRSIG) && h.Class == dns.ClassINET && strings.EqualFold(h.Name, name) {
			out = append(out, rr)
		}
	}
	return out
}

// findDNAME returns a DNAME in rrs owned by a proper ancestor of name inside
// zone, or nil.
func findDNAME(rrs []dns.RR, name, zone string) *dns.DNAME {
	for _, rr := range rrs {
		d, ok := rr.(*dns.DNAME)
		if !ok {
			continue
		}
		owner := dns.CanonicalName(d.Hdr.Name)
		if owner != name && under(name, owner) && under(owner, zone) {
			return d
		}
	}
	return nil
}
