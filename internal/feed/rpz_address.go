package feed

import (
	"fmt"
	"net/netip"
	"strconv"
)

// parseRPZAddress reads the labels of an address trigger owner, without the
// rpz-ip, rpz-client-ip or rpz-nsip label: the prefix length, then the
// address with its parts in reverse order. IPv4 takes four decimal octets
// ("24.0.2.0.192" is 192.0.2.0/24). IPv6 takes hexadecimal 16-bit groups,
// where one "zz" stands for the run of zero groups that "::" stands for in
// text form ("128.1.zz.db8.2001" is 2001:db8::1/128).
func parseRPZAddress(labels []string) (netip.Prefix, string) {
	if len(labels) < 2 {
		return netip.Prefix{}, "missing address labels"
	}
	bits, ok := parseDecimal(labels[0], 128)
	if !ok || bits == 0 {
		return netip.Prefix{}, fmt.Sprintf("invalid prefix length %q", labels[0])
	}
	parts := labels[1:]
	var addr netip.Addr
	if isIPv4Labels(parts) {
		if bits > 32 {
			return netip.Prefix{}, fmt.Sprintf("prefix length %d outside 1-32 for an IPv4 address", bits)
		}
		var b [4]byte
		for i, part := range parts {
			octet, ok := parseDecimal(part, 255)
			if !ok {
				return netip.Prefix{}, fmt.Sprintf("invalid IPv4 address label %q", part)
			}
			b[3-i] = byte(octet)
		}
		addr = netip.AddrFrom4(b)
	} else {
		var reason string
		addr, reason = parseIPv6Labels(parts)
		if reason != "" {
			return netip.Prefix{}, reason
		}
	}
	p := netip.PrefixFrom(addr, bits)
	if p.Masked() != p {
		return netip.Prefix{}, reasonPrefixHostBit
	}
	return p, ""
}

// isIPv4Labels reports whether parts are four decimal labels, which an IPv6
// owner cannot be because it needs eight groups or a "zz".
func isIPv4Labels(parts []string) bool {
	if len(parts) != 4 {
		return false
	}
	for _, part := range parts {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return false
			}
		}
	}
	return true
}

// parseIPv6Labels reads the reversed groups of an IPv6 address.
func parseIPv6Labels(parts []string) (netip.Addr, string) {
	if len(parts) > 8 {
		return netip.Addr{}, "more than 8 IPv6 address groups"
	}
	zeroRun := -1 // index of "zz" in address order
	groups := make([]uint16, 0, 8)
	for i := len(parts) - 1; i >= 0; i-- {
		part := parts[i]
		if part == "zz" {
			if zeroRun >= 0 {
				return netip.Addr{}, "more than one \"zz\" in an IPv6 address"
			}
			zeroRun = len(groups)
			continue
		}
		if len(part) == 0 || len(part) > 4 {
			return netip.Addr{}, fmt.Sprintf("invalid IPv6 address label %q", part)
		}
		v, err := strconv.ParseUint(part, 16, 16)
		if err != nil {
			return netip.Addr{}, fmt.Sprintf("invalid IPv6 address label %q", part)
		}
		groups = append(groups, uint16(v))
	}
	switch {
	case zeroRun < 0 && len(groups) != 8:
		return netip.Addr{}, fmt.Sprintf("IPv6 address has %d groups and no \"zz\": expected 8", len(groups))
	case zeroRun >= 0 && len(groups) > 7:
		return netip.Addr{}, "\"zz\" stands for no group in a full IPv6 address"
	}
	var b [16]byte
	fill := 8 - len(groups) // zero groups that "zz" stands for
	pos := 0
	for i, g := range groups {
		if i == zeroRun {
			pos += fill
		}
		b[2*pos], b[2*pos+1] = byte(g>>8), byte(g)
		pos++
	}
	return netip.AddrFrom16(b), ""
}

// parseDecimal reads a decimal number from 0 to limit without leading zeros.
func parseDecimal(s string, limit int) (int, bool) {
	if s == "" || len(s) > 3 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, n <= limit
}
