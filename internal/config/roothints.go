package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// RootServer is one root name server from the hints: its name and addresses.
type RootServer struct {
	Name  string
	Addrs []netip.Addr
}

// ParseRootHints reads root hints in master-file format: NS records for the
// root and A or AAAA records for those names. Names without an address are
// dropped; at least one server with an address is required.
func ParseRootHints(text string) ([]RootServer, error) {
	zp := dns.NewZoneParser(strings.NewReader(text), ".", "root hints")
	var names []string
	addrs := map[string][]netip.Addr{}
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		switch rr := rr.(type) {
		case *dns.NS:
			if rr.Hdr.Name != "." {
				return nil, fmt.Errorf("NS record for %q in root hints: only the root may have NS records", rr.Hdr.Name)
			}
			names = append(names, strings.ToLower(rr.Ns))
		case *dns.A:
			a, _ := netip.AddrFromSlice(rr.A.To4())
			addrs[strings.ToLower(rr.Hdr.Name)] = append(addrs[strings.ToLower(rr.Hdr.Name)], a)
		case *dns.AAAA:
			a, _ := netip.AddrFromSlice(rr.AAAA.To16())
			addrs[strings.ToLower(rr.Hdr.Name)] = append(addrs[strings.ToLower(rr.Hdr.Name)], a)
		}
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("invalid root hints: %w", err)
	}
	var out []RootServer
	for _, n := range names {
		if len(addrs[n]) > 0 {
			out = append(out, RootServer{Name: n, Addrs: addrs[n]})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("root hints name no root server with an address: add NS records for \".\" and A or AAAA records for their names")
	}
	return out, nil
}
