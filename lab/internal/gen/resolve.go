package gen

import (
	"strings"

	"github.com/miekg/dns"
)

// maxChain bounds CNAME and DNAME steps in one resolution.
const maxChain = 10

// outcome is the response a correct iterative resolver returns for one
// question, computed from the zone data alone.
type outcome struct {
	Rcode  int
	Answer []dns.RR // records of the final qtype, owner set to the final name
	Broken string   // the reason resolution fails, for SERVFAIL
	// ViaStub and Special are set when any zone on the path is reached
	// through a labstub listener or belongs to a special case.
	ViaStub bool
	Special bool
	// Secure is set when every zone that the answer comes from is signed
	// with a chain of trust from the root, so a validator sets AD.
	Secure bool
}

// lookupKind is the result of looking a name up in one zone.
type lookupKind int

const (
	kindAnswer lookupKind = iota
	kindNoData
	kindNXDomain
	kindAlias // CNAME or DNAME: continue with next
)

type lookupResult struct {
	kind   lookupKind
	answer []dns.RR
	next   string // alias target
}

// resolve follows the lab from the root for (name, qtype) the way a
// correct iterative resolver does.
func (l *Lab) resolve(name string, qtype uint16) outcome {
	out := outcome{Secure: true}
	name = strings.ToLower(dns.Fqdn(name))
	for step := 0; step < maxChain; step++ {
		z := l.findZone(name)
		l.markPath(z, &out)
		out.Secure = out.Secure && z.Secure()
		if z.Broken != "" {
			out.Rcode = dns.RcodeServerFailure
			out.Broken = z.Broken
			out.Answer = nil
			return out
		}

		res := z.lookup(name, qtype)
		switch res.kind {
		case kindAnswer:
			out.Rcode = dns.RcodeSuccess
			out.Answer = res.answer
			return out
		case kindNoData:
			out.Rcode = dns.RcodeSuccess
			return out
		case kindNXDomain:
			out.Rcode = dns.RcodeNameError
			return out
		}
		name = res.next
	}
	out.Rcode = dns.RcodeServerFailure
	out.Broken = "CNAME chain too long"
	return out
}

// markPath records whether z or any zone above it is special or reached
// through a stub.
func (l *Lab) markPath(z *Zone, out *outcome) {
	for p := z; p != nil; p = p.parent {
		out.ViaStub = out.ViaStub || p.ViaStub
		out.Special = out.Special || p.Special
	}
}

// lookup answers name inside z as an authoritative server does (RFC 1034
// section 4.3.2, with DNAME from RFC 6672 and wildcards from RFC 4592).
// The caller has chosen z as the deepest zone at or above name, so no zone
// cut lies between the apex and name.
func (z *Zone) lookup(name string, qtype uint16) lookupResult {
	if target, ok := z.dnameTarget(name); ok {
		return lookupResult{kind: kindAlias, next: target}
	}
	if z.HasOwner(name) {
		return z.answerAt(name, name, qtype)
	}
	if z.IsENT(name) {
		return lookupResult{kind: kindNoData}
	}

	// Wildcard: the source of synthesis is "*." plus the closest encloser,
	// the deepest existing ancestor of name.
	encloser := parentName(name)
	for encloser != z.Name && !z.HasAtOrBelow(encloser) {
		encloser = parentName(encloser)
	}
	wildcard := "*." + encloser
	if z.HasOwner(wildcard) {
		return z.answerAt(wildcard, name, qtype)
	}
	return lookupResult{kind: kindNXDomain}
}

// answerAt answers qtype from the records at owner, rewritten to name.
func (z *Zone) answerAt(owner, name string, qtype uint16) lookupResult {
	if rrs := z.RRs(owner, qtype); len(rrs) > 0 {
		return lookupResult{kind: kindAnswer, answer: withOwner(rrs, name)}
	}
	if cname := z.RRs(owner, dns.TypeCNAME); len(cname) > 0 {
		return lookupResult{kind: kindAlias, next: cname[0].(*dns.CNAME).Target}
	}
	return lookupResult{kind: kindNoData}
}

// dnameTarget returns the name a DNAME above name rewrites it to.
func (z *Zone) dnameTarget(name string) (string, bool) {
	for owner := parentName(name); z.Contains(owner); owner = parentName(owner) {
		if d := z.RRs(owner, dns.TypeDNAME); len(d) > 0 {
			prefix := strings.TrimSuffix(name, owner)
			return prefix + d[0].(*dns.DNAME).Target, true
		}
		if owner == z.Name {
			break
		}
	}
	return "", false
}

func withOwner(rrs []dns.RR, owner string) []dns.RR {
	out := make([]dns.RR, len(rrs))
	for i, r := range rrs {
		c := dns.Copy(r)
		c.Header().Name = owner
		out[i] = c
	}
	return out
}
