package feed

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

const (
	maxLabelBytes = 63
	// maxNameBytes is the longest name in text form without the trailing
	// dot: 255 bytes in wire form hold at most 253 text bytes.
	maxNameBytes = 253
)

// Reasons for malformed names, shared by every format.
const (
	reasonEmptyName     = "empty name"
	reasonEmptyLabel    = "empty label in name"
	reasonLongLabel     = "label longer than 63 bytes"
	reasonLongName      = "name longer than 253 bytes"
	reasonNumericName   = "all-numeric name is not a valid IPv4 address"
	reasonLineTooLong   = "line longer than the maximum line length"
	reasonBadAddress    = "invalid IP address"
	reasonBadPrefix     = "invalid CIDR prefix"
	reasonZeroPrefix    = "prefix length 0 would match every address"
	reasonAddressZone   = "IPv6 zone is not allowed in a rule address"
	reasonPrefixHostBit = "address has bits set beyond the prefix length"
)

// canonicalName validates a domain name and returns it in canonical form:
// lower case, with the trailing dot, internationalized labels converted to
// punycode with the IDNA lookup profile. A single trailing dot in the input
// is allowed. Labels may hold ASCII letters, digits, hyphens and
// underscores. On failure it returns the reason.
func canonicalName(b []byte) (string, string) {
	if n := len(b); n > 0 && b[n-1] == '.' {
		b = b[:n-1]
	}
	if len(b) == 0 {
		return "", reasonEmptyName
	}
	upper := false
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return canonicalIDN(b)
		}
		if 'A' <= c && c <= 'Z' {
			upper = true
		}
	}
	if reason := checkASCIIName(b); reason != "" {
		return "", reason
	}
	var sb strings.Builder
	sb.Grow(len(b) + 1)
	if upper {
		for _, c := range b {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			sb.WriteByte(c)
		}
	} else {
		sb.Write(b)
	}
	sb.WriteByte('.')
	return sb.String(), ""
}

// canonicalIDN converts a name with non-ASCII characters to punycode and
// validates the result.
func canonicalIDN(b []byte) (string, string) {
	if !utf8.Valid(b) {
		return "", "invalid UTF-8 in name"
	}
	ascii, err := idna.Lookup.ToASCII(string(b))
	if err != nil {
		return "", "invalid internationalized name: " + err.Error()
	}
	ascii = strings.TrimSuffix(ascii, ".")
	if ascii == "" {
		return "", reasonEmptyName
	}
	if reason := checkASCIIName([]byte(ascii)); reason != "" {
		return "", reason
	}
	return strings.ToLower(ascii) + ".", ""
}

// checkASCIIName checks the labels of a name without its trailing dot.
func checkASCIIName(b []byte) string {
	if len(b) > maxNameBytes {
		return reasonLongName
	}
	labelStart := 0
	numeric := true // every byte so far is a digit or a dot
	for i := 0; i <= len(b); i++ {
		if i == len(b) || b[i] == '.' {
			switch n := i - labelStart; {
			case n == 0:
				return reasonEmptyLabel
			case n > maxLabelBytes:
				return reasonLongLabel
			}
			labelStart = i + 1
			continue
		}
		c := b[i]
		switch {
		case '0' <= c && c <= '9':
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '-', c == '_':
			numeric = false
		default:
			return invalidCharReason(b[i:])
		}
	}
	if numeric {
		// No top-level domain is all digits, so the text is a mistyped
		// IPv4 address rather than a name.
		return reasonNumericName
	}
	return ""
}

func invalidCharReason(rest []byte) string {
	r, _ := utf8.DecodeRune(rest)
	return fmt.Sprintf("invalid character %q in name", r)
}

// looksLikeAddress reports whether an entry should be read as an IP address
// or prefix rather than a name: it has a colon, or holds only digits, dots
// and slashes with at least one digit.
func looksLikeAddress(b []byte) bool {
	numeric, digit := true, false
	for _, c := range b {
		switch {
		case c == ':':
			return true
		case '0' <= c && c <= '9':
			digit = true
		case c == '.', c == '/':
		default:
			numeric = false
		}
	}
	return numeric && digit
}

// parseAddressEntry reads an IP address or CIDR prefix from a list entry. A
// single address becomes a /32 or /128 prefix.
func parseAddressEntry(s string) (netip.Prefix, string) {
	if strings.IndexByte(s, '/') >= 0 {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, reasonBadPrefix
		}
		if p.Bits() == 0 {
			return netip.Prefix{}, reasonZeroPrefix
		}
		if p.Masked() != p {
			return netip.Prefix{}, reasonPrefixHostBit
		}
		return p, ""
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, reasonBadAddress
	}
	if a.Zone() != "" {
		return netip.Prefix{}, reasonAddressZone
	}
	return netip.PrefixFrom(a, a.BitLen()), ""
}

// parseEntry reads one list entry: a name, "*." followed by a name, an IP
// address or a CIDR prefix. Names match their subdomains too, "*." names
// match only their subdomains, and addresses become ResponseIP rules.
func parseEntry(b []byte, line int) (Rule, string) {
	if looksLikeAddress(b) {
		if bytes.Contains(b, []byte("://")) {
			return Rule{}, "URL instead of a name or address"
		}
		p, reason := parseAddressEntry(string(b))
		if reason != "" {
			return Rule{}, reason
		}
		return Rule{Trigger: ResponseIP, Prefix: p, Action: Block, Line: line}, ""
	}
	wildcard := len(b) > 2 && b[0] == '*' && b[1] == '.'
	if wildcard {
		b = b[2:]
	}
	name, reason := canonicalName(b)
	if reason != "" {
		return Rule{}, reason
	}
	return Rule{Trigger: QName, Name: name, Subdomains: !wildcard, Wildcard: wildcard, Action: Block, Line: line}, ""
}
