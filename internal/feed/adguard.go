package feed

import (
	"bytes"
	"net/netip"
)

// cosmeticMarkers separate the domains of an element-hiding, CSS, scriptlet
// or HTML filtering rule from its body. Such rules act on web pages only.
var cosmeticMarkers = [][]byte{
	[]byte("##"), []byte("#@#"), []byte("#?#"), []byte("#@?#"),
	[]byte("#$#"), []byte("#@$#"), []byte("#%#"), []byte("#@%#"),
	[]byte("$$"), []byte("$@$"),
}

// urlOnlyChars appear in URL patterns but never in a host name or address.
const urlOnlyChars = "/?=&%"

// parseAdGuardLine reads one line of an AdGuard or Adblock Plus filter list.
// Only rules that name a whole host or address apply to DNS:
//
//	||name^   name and its subdomains   |name^   name only
//	name      name and its subdomains   @@rule   the same names, allowed
//	||1.2.3.4^ or 1.2.3.4               ResponseIP rule
//
// A trailing "|" end anchor is accepted after "^", and "$important" is the
// only modifier accepted: it sets Rule.Important. Hosts file lines ("0.0.0.0 name") are read as in a
// hosts file.
func parseAdGuardLine(b *builder, text []byte, line int) {
	s := bytes.TrimSpace(text)
	switch {
	case len(s) == 0, s[0] == '!':
		b.res.Comments++
		return
	case s[0] == '[' && s[len(s)-1] == ']':
		// A header such as "[Adblock Plus 2.0]".
		b.res.Comments++
		return
	}
	if isHostsLine(s) {
		parseHostsEntry(b, text, stripComment(s, '#'), line)
		return
	}
	for _, m := range cosmeticMarkers {
		if bytes.Contains(s, m) {
			b.res.Unsupported++
			return
		}
	}
	if s[0] == '#' {
		// A hosts-style comment. The cosmetic markers that start with "#"
		// were handled above.
		b.res.Comments++
		return
	}

	action := Block
	if bytes.HasPrefix(s, []byte("@@")) {
		action = Passthru
		s = s[2:]
	}
	if len(s) > 1 && s[0] == '/' && bytes.LastIndexByte(s, '/') > 0 {
		// A regular expression, or a URL path pattern such as "/ads/".
		b.res.Unsupported++
		return
	}
	pattern, modifiers, hasModifiers := bytes.Cut(s, []byte("$"))
	important := false
	if hasModifiers {
		important = true
		switch checkModifiers(modifiers) {
		case modifiersInvalid:
			b.bad(line, text, "empty modifier after '$'")
			return
		case modifiersUnsupported:
			b.res.Unsupported++
			return
		}
	}

	subdomains := true
	switch {
	case bytes.HasPrefix(pattern, []byte("||")):
		pattern = pattern[2:]
	case bytes.HasPrefix(pattern, []byte("|")):
		pattern = pattern[1:]
		subdomains = false
	}
	// NOTE: without "||" or "|", the Adblock Plus syntax matches a pattern
	// anywhere in a host, so "name.com^" also matches "badname.com". A Rule
	// cannot express that, so these rules match the name and its subdomains
	// only.
	pattern = bytes.TrimSuffix(pattern, []byte("|"))
	pattern = bytes.TrimSuffix(pattern, []byte("^"))

	if len(pattern) == 0 {
		b.bad(line, text, "empty pattern")
		return
	}
	if bytes.ContainsAny(pattern, urlOnlyChars) || bytes.ContainsAny(pattern, "*^|") {
		// A URL path or query, a wildcard inside the host, or a separator
		// in the middle of the pattern.
		b.res.Unsupported++
		return
	}

	if p, ok := adGuardAddress(pattern); ok {
		b.add(Rule{Trigger: ResponseIP, Prefix: p, Action: action, Important: important, Line: line})
		return
	}
	if pattern[0] == '[' {
		// A bracketed IPv6 address with a port.
		b.res.Unsupported++
		return
	}
	if bytes.IndexByte(pattern, ':') >= 0 {
		if looksLikeAddress(pattern) && bytes.Count(pattern, []byte(":")) > 1 {
			b.bad(line, text, reasonBadAddress)
			return
		}
		// A host with a port, which only URL filters can match.
		b.res.Unsupported++
		return
	}
	if looksLikeAddress(pattern) {
		b.bad(line, text, reasonBadAddress)
		return
	}
	name, reason := canonicalName(pattern)
	if reason != "" {
		b.bad(line, text, reason)
		return
	}
	b.add(Rule{Trigger: QName, Name: name, Subdomains: subdomains, Action: action, Important: important, Line: line})
}

// isHostsLine reports whether s starts with an IP address followed by
// another field.
func isHostsLine(s []byte) bool {
	addr, rest := cutField(s)
	if len(rest) == 0 || !looksLikeAddress(addr) {
		return false
	}
	_, err := netip.ParseAddr(string(addr))
	return err == nil
}

// adGuardAddress reads an IPv4 address, an IPv6 address or a bracketed IPv6
// address from a pattern, as a /32 or /128 prefix.
func adGuardAddress(pattern []byte) (netip.Prefix, bool) {
	if len(pattern) > 2 && pattern[0] == '[' && pattern[len(pattern)-1] == ']' {
		pattern = pattern[1 : len(pattern)-1]
	}
	if !looksLikeAddress(pattern) {
		return netip.Prefix{}, false
	}
	a, err := netip.ParseAddr(string(pattern))
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, a.BitLen()), true
}

type modifierCheck uint8

const (
	modifiersAccepted modifierCheck = iota
	modifiersUnsupported
	modifiersInvalid
)

// checkModifiers checks the comma-separated modifiers after "$". Only
// "important" is accepted: the others either narrow a rule to some clients,
// query types or pages ($client, $dnstype, $denyallow, $ctag, $all...) or
// change what it does ($dnsrewrite, $badfilter), which a Rule cannot hold.
func checkModifiers(modifiers []byte) modifierCheck {
	if len(bytes.TrimSpace(modifiers)) == 0 {
		return modifiersInvalid
	}
	for m := range bytes.SplitSeq(modifiers, []byte(",")) {
		m = bytes.TrimSpace(m)
		switch {
		case len(m) == 0:
			return modifiersInvalid
		case string(m) != "important":
			return modifiersUnsupported
		}
	}
	return modifiersAccepted
}
