package dnssec

import (
	"bytes"
	"strings"

	"github.com/miekg/dns"
)

// Compare orders two names canonically (RFC 4034 section 6.1): by labels
// from the rightmost, each compared as lower-case octets. It returns -1, 0
// or 1.
func Compare(a, b string) int {
	la, lb := wireLabels(a), wireLabels(b)
	for i := 1; i <= len(la) && i <= len(lb); i++ {
		if c := bytes.Compare(la[len(la)-i], lb[len(lb)-i]); c != 0 {
			return c
		}
	}
	switch {
	case len(la) < len(lb):
		return -1
	case len(la) > len(lb):
		return 1
	}
	return 0
}

// wireLabels returns the labels of name as lower-case octets, escapes
// decoded.
func wireLabels(name string) [][]byte {
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(dns.Fqdn(name), buf, 0, nil, false)
	if err != nil {
		// Not a valid name: fall back to the text, which orders
		// consistently.
		var out [][]byte
		for _, l := range dns.SplitDomainName(name) {
			out = append(out, []byte(strings.ToLower(l)))
		}
		return out
	}
	var out [][]byte
	for off := 0; off < n && buf[off] != 0; {
		l := int(buf[off])
		out = append(out, bytes.ToLower(buf[off+1:off+1+l]))
		off += 1 + l
	}
	return out
}

// isAncestor reports whether anc is name or an ancestor of it.
func isAncestor(anc, name string) bool {
	return dns.IsSubDomain(anc, name)
}

// commonAncestor returns the deepest name that is an ancestor of, or equal
// to, both a and b.
func commonAncestor(a, b string) string {
	n := dns.CompareDomainName(a, b)
	if n == 0 {
		return "."
	}
	off, _ := dns.PrevLabel(a, n)
	return dns.CanonicalName(a[off:])
}

// parentName returns name without its first label, or "" for the root.
func parentName(name string) string {
	if name == "." {
		return ""
	}
	off, end := dns.NextLabel(name, 0)
	if end {
		return "."
	}
	return name[off:]
}

// childToward returns the child of anc that is an ancestor of, or equal to,
// name, which must be below anc.
func childToward(anc, name string) string {
	keep := dns.CountLabel(anc) + 1
	off, _ := dns.PrevLabel(name, keep)
	return name[off:]
}

func hasType(bitmap []uint16, t uint16) bool {
	for _, b := range bitmap {
		if b == t {
			return true
		}
	}
	return false
}

// WildcardName returns the wildcard at name: "*." before it, or "*." alone
// for the root, where "*.." would not be a name.
func WildcardName(name string) string {
	if name == "." {
		return "*."
	}
	return "*." + name
}
