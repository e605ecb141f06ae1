package gen

import (
	"fmt"
	"sort"
	"strings"

	"github.com/miekg/dns"
)

// Zone is one zone of the lab with all its records, including delegation
// NS records and glue.
type Zone struct {
	Name string // FQDN, lowercase
	Role string // root, tld, popular, provider, cdn, infra, special, sub
	// Instances names the server processes that load the zone. A zone that
	// no process loads exists only so the expected answers can say why
	// resolution fails below its cut.
	Instances []string
	// Broken is the reason resolution inside the zone must fail, or "".
	Broken string
	// ViaStub is set when every NS address of the zone is a labstub
	// listener, so queries reach the zone only through a proxy.
	ViaStub bool
	// Special marks zones made for one of the special cases; names in and
	// below them are left out of queries.txt.
	Special bool
	// LameOK allows NS addresses that do not load the zone.
	LameOK bool
	// NoGlue suppresses glue for the zone's NS names in its parent.
	NoGlue bool

	// Signing is the DNSSEC setup of the zone, or nil for an unsigned zone.
	Signing *Signing

	NS     []string // NS targets at the apex, FQDN
	NSTTL  uint32   // TTL of the apex NS RRset and of the delegation
	SOA    *dns.SOA // nil for zones no process loads
	parent *Zone

	owners map[string][]dns.RR
	// above contains every proper ancestor of an owner, inside the zone.
	above map[string]bool
}

func newZone(name, role string) *Zone {
	return &Zone{Name: dns.Fqdn(strings.ToLower(name)), Role: role,
		owners: map[string][]dns.RR{}, above: map[string]bool{}}
}

// Loaded reports whether some server process loads the zone.
func (z *Zone) Loaded() bool { return len(z.Instances) > 0 }

// Contains reports whether name is at or below the zone apex.
func (z *Zone) Contains(name string) bool {
	return dns.IsSubDomain(z.Name, name)
}

// Add stores rr with the TTL of its RRset, if the RRset has records
// already; a record equal to one already stored is ignored.
func (z *Zone) Add(rr dns.RR) {
	owner := strings.ToLower(rr.Header().Name)
	rr.Header().Name = owner
	for _, old := range z.owners[owner] {
		if dns.IsDuplicate(old, rr) {
			return
		}
		// All records of an RRset share one TTL (RFC 2181 section 5.2).
		if old.Header().Rrtype == rr.Header().Rrtype {
			rr.Header().Ttl = old.Header().Ttl
		}
	}
	z.owners[owner] = append(z.owners[owner], rr)
	for n := owner; n != z.Name && n != "."; {
		n = parentName(n)
		z.above[n] = true
	}
}

// RRs returns the records of owner with type t, in insertion order.
func (z *Zone) RRs(owner string, t uint16) []dns.RR {
	var out []dns.RR
	for _, rr := range z.owners[owner] {
		if rr.Header().Rrtype == t {
			out = append(out, rr)
		}
	}
	return out
}

// HasOwner reports whether owner has records of its own.
func (z *Zone) HasOwner(owner string) bool {
	return len(z.owners[owner]) > 0
}

// HasAtOrBelow reports whether any owner is name or lies below it.
func (z *Zone) HasAtOrBelow(name string) bool {
	return z.HasOwner(name) || z.above[name]
}

// IsENT reports whether name is an empty non-terminal: no records of its
// own, but owners below it.
func (z *Zone) IsENT(name string) bool {
	return !z.HasOwner(name) && z.above[name]
}

// Owners returns every owner name in canonical order (RFC 4034 section
// 6.1), so that zone files list parents before children.
func (z *Zone) Owners() []string {
	owners := make([]string, 0, len(z.owners))
	for o := range z.owners {
		owners = append(owners, o)
	}
	sort.Slice(owners, func(i, j int) bool { return canonicalLess(owners[i], owners[j]) })
	return owners
}

// canonicalLess orders names by their labels from the root down.
func canonicalLess(a, b string) bool {
	la, lb := dns.SplitDomainName(a), dns.SplitDomainName(b)
	for i, j := len(la)-1, len(lb)-1; i >= 0 && j >= 0; i, j = i-1, j-1 {
		if la[i] != lb[j] {
			return la[i] < lb[j]
		}
	}
	return len(la) < len(lb)
}

// Records returns every record sorted by owner (canonical order), then
// SOA and NS first, then by type and text, for stable zone files.
func (z *Zone) Records() []dns.RR {
	var out []dns.RR
	for _, owner := range z.Owners() {
		rrs := append([]dns.RR(nil), z.owners[owner]...)
		sort.SliceStable(rrs, func(i, j int) bool {
			ri, rj := typeRank(rrs[i]), typeRank(rrs[j])
			if ri != rj {
				return ri < rj
			}
			return rrs[i].String() < rrs[j].String()
		})
		out = append(out, rrs...)
	}
	return out
}

func typeRank(rr dns.RR) int {
	switch rr.Header().Rrtype {
	case dns.TypeSOA:
		return 0
	case dns.TypeNS:
		return 1
	}
	return 2 + int(rr.Header().Rrtype)
}

// FileName is the zone file name inside the zones directory.
func (z *Zone) FileName() string {
	if z.Name == "." {
		return "root.zone"
	}
	return strings.TrimSuffix(z.Name, ".") + ".zone"
}

// cutBelow returns the delegation point of the zone that name is at or
// below, or "" when name is authoritative data of the zone.
func (z *Zone) cutBelow(name string) string {
	for n := name; n != z.Name && z.Contains(n); n = parentName(n) {
		if len(z.RRs(n, dns.TypeNS)) > 0 {
			return n
		}
	}
	return ""
}

// parentName returns name without its first label; the root's parent is
// the root.
func parentName(name string) string {
	if name == "." {
		return "."
	}
	i := strings.IndexByte(name, '.')
	if i == len(name)-1 {
		return "."
	}
	return name[i+1:]
}

// rr parses one record in master-file form and panics on a malformed
// string, which is always a generator bug.
func rr(format string, args ...any) dns.RR {
	text := fmt.Sprintf(format, args...)
	r, err := dns.NewRR(text)
	if err != nil {
		panic(fmt.Sprintf("generator built invalid record %q: %v", text, err))
	}
	return r
}
