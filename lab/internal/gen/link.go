package gen

import (
	"fmt"
	"net"
	"sort"

	"github.com/miekg/dns"
)

// glueTTL is the TTL of delegation NS records in the root and TLD zones
// and of all glue, as in the real root zone.
const glueTTL = 172800

// link adds what ties the zones together: apex SOA and NS records,
// delegation NS records in each parent, address records of name server
// hosts in the zone that is authoritative for them, and glue.
func (l *Lab) link() error {
	zones := l.sortedZones()
	for _, z := range zones {
		if err := l.linkParent(z); err != nil {
			return err
		}
		if z.SOA != nil {
			z.Add(z.SOA)
		}
		for _, ns := range z.NS {
			z.Add(rr("%s %d IN NS %s", z.Name, z.NSTTL, ns))
		}
	}
	l.addHostRecords()
	for _, z := range zones {
		l.addGlue(z)
	}
	l.assignInstances(zones)
	return nil
}

// linkParent adds the delegation of z to its parent zone.
func (l *Lab) linkParent(z *Zone) error {
	if z.Name == "." {
		return nil
	}
	parent := l.findZone(parentName(z.Name))
	if parent == nil {
		return fmt.Errorf("zone %s has no parent zone", z.Name)
	}
	if len(z.NS) == 0 {
		return fmt.Errorf("zone %s has no NS names", z.Name)
	}
	z.parent = parent

	ttl := z.NSTTL
	if parent.Role == "root" || parent.Role == "tld" {
		ttl = glueTTL
	}
	for _, ns := range z.NS {
		parent.Add(rr("%s %d IN NS %s", z.Name, ttl, ns))
	}
	return nil
}

// addHostRecords adds the A and AAAA records of every name server host to
// the zone that is authoritative for the host name. Hosts inside a zone
// that no process loads are left out.
func (l *Lab) addHostRecords() {
	for _, host := range sortedKeys(l.hosts) {
		z := l.findZone(host)
		if z == nil || !z.Loaded() {
			continue
		}
		for _, addr := range l.hosts[host] {
			z.Add(addressRR(host, z.NSTTL, addr))
		}
	}
}

// addGlue adds address records for NS names that fall below a zone cut of
// z (RFC 9471 calls them in-domain and sibling glue), unless the child
// zone is marked NoGlue.
func (l *Lab) addGlue(z *Zone) {
	targets := map[string]bool{}
	for _, owner := range z.Owners() {
		for _, ns := range z.RRs(owner, dns.TypeNS) {
			targets[ns.(*dns.NS).Ns] = true
		}
	}
	for _, t := range sortedKeys(targets) {
		if !z.Contains(t) {
			continue
		}
		cut := z.cutBelow(t)
		if cut == "" {
			continue // authoritative data, added by addHostRecords
		}
		if child := l.zones[cut]; child != nil && child.NoGlue {
			continue
		}
		for _, addr := range l.hosts[t] {
			z.Add(addressRR(t, glueTTL, addr))
		}
	}
}

// addressRR returns an A or AAAA record for addr.
func addressRR(owner string, ttl uint32, addr string) dns.RR {
	if net.ParseIP(addr).To4() != nil {
		return rr("%s %d IN A %s", owner, ttl, addr)
	}
	return rr("%s %d IN AAAA %s", owner, ttl, addr)
}

// assignInstances fills instance.Zones from Zone.Instances.
func (l *Lab) assignInstances(zones []*Zone) {
	for _, in := range l.instances {
		in.Zones = nil
	}
	for _, z := range zones {
		for _, name := range z.Instances {
			in := l.byInst[name]
			in.Zones = append(in.Zones, z)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
