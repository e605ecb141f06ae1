package gen

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/miekg/dns"

	"bulwark/lab/internal/stub"
)

// check verifies the invariants the lab promises; a failure is a generator
// bug, so Generate refuses to write anything.
func (l *Lab) check() error {
	var errs []error
	for _, z := range l.sortedZones() {
		errs = append(errs, l.checkDelegations(z)...)
		errs = append(errs, l.checkServers(z)...)
	}
	errs = append(errs, l.checkAncestors()...)
	errs = append(errs, l.checkNSAddresses()...)
	errs = append(errs, l.checkBackends()...)
	if len(errs) > 10 {
		errs = append(errs[:10], fmt.Errorf("and %d more", len(errs)-10))
	}
	return errors.Join(errs...)
}

// checkDelegations verifies that every NS RRset below the apex of z is the
// delegation of a zone of the lab, so the expected answers know the child.
func (l *Lab) checkDelegations(z *Zone) []error {
	var errs []error
	for _, owner := range z.Owners() {
		if owner == z.Name || len(z.RRs(owner, dns.TypeNS)) == 0 {
			continue
		}
		if _, ok := l.zones[owner]; !ok {
			errs = append(errs, fmt.Errorf("zone %s delegates %s, which is not a lab zone", z.Name, owner))
		}
	}
	return errs
}

// checkServers verifies that every NS address of z belongs to a process
// that loads z, or to a stub that proxies to one. Zones marked LameOK or
// Broken may also name lame, silent or missing servers, but a zone that
// must resolve needs at least one working address.
func (l *Lab) checkServers(z *Zone) []error {
	if z.Broken != "" {
		if z.Loaded() {
			return []error{fmt.Errorf("broken zone %s is loaded by %v", z.Name, z.Instances)}
		}
		return nil
	}
	if !z.Loaded() {
		return []error{fmt.Errorf("zone %s is not loaded by any process", z.Name)}
	}

	var errs []error
	working := 0
	for _, ns := range z.NS {
		addrs := l.hosts[ns]
		if len(addrs) == 0 && !z.LameOK {
			errs = append(errs, fmt.Errorf("zone %s: NS %s has no address", z.Name, ns))
		}
		for _, addr := range addrs {
			ok, err := l.serves(addr, z)
			if err != nil && !z.LameOK {
				errs = append(errs, fmt.Errorf("zone %s: NS %s: %w", z.Name, ns, err))
			}
			if ok {
				working++
			}
		}
	}
	if working == 0 {
		errs = append(errs, fmt.Errorf("zone %s has no working name server address", z.Name))
	}
	return errs
}

// serves reports whether a query for z sent to addr reaches a process that
// loads z.
func (l *Lab) serves(addr string, z *Zone) (bool, error) {
	if in := l.instanceAt(addr); in != nil {
		if !containsString(z.Instances, in.Name) {
			return false, fmt.Errorf("address %s belongs to %s, which does not load the zone", addr, in.Name)
		}
		if in.Backend {
			return false, fmt.Errorf("address %s is backend-only", addr)
		}
		return true, nil
	}
	for _, s := range l.stubs {
		if s.Addr != addr {
			continue
		}
		if s.Mode != stub.ModeProxy {
			return false, fmt.Errorf("address %s is the %s stub listener %q", addr, s.Mode, s.Name)
		}
		if !containsString(z.Instances, s.Backend) {
			return false, fmt.Errorf("stub listener %q proxies to %s, which does not load the zone", s.Name, s.Backend)
		}
		return true, nil
	}
	return false, fmt.Errorf("address %s belongs to no lab process", addr)
}

func (l *Lab) instanceAt(addr string) *instance {
	for _, in := range l.instances {
		if containsString(in.Addrs, addr) {
			return in
		}
	}
	return nil
}

// checkAncestors verifies that no process loads a zone and one of its
// ancestors, which would let it answer below a cut instead of referring.
// root-servers.net on the root instances is allowed, as on the real roots.
func (l *Lab) checkAncestors() []error {
	var errs []error
	for _, in := range l.instances {
		loaded := map[string]bool{}
		for _, z := range in.Zones {
			loaded[z.Name] = true
		}
		for _, z := range in.Zones {
			if z.Name == "." || z.Name == rootServersZone {
				continue
			}
			for p := parentName(z.Name); ; p = parentName(p) {
				if loaded[p] {
					errs = append(errs, fmt.Errorf("instance %s loads %s and its ancestor %s", in.Name, z.Name, p))
				}
				if p == "." {
					break
				}
			}
		}
	}
	return errs
}

// checkNSAddresses verifies that every address a resolver can learn for an
// NS name, from glue or by resolving it, is a lab loopback address, so no
// query ever leaves the machine.
func (l *Lab) checkNSAddresses() []error {
	var errs []error
	seen := map[string]bool{}
	for _, z := range l.sortedZones() {
		for _, owner := range z.Owners() {
			for _, r := range z.RRs(owner, dns.TypeNS) {
				target := r.(*dns.NS).Ns
				if seen[target] {
					continue
				}
				seen[target] = true
				errs = append(errs, l.checkHostAddresses(target)...)
			}
		}
	}
	for _, z := range l.zones {
		for _, r := range z.Records() {
			if err := checkGlueAddress(z, r); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}

func (l *Lab) checkHostAddresses(host string) []error {
	var errs []error
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		for _, r := range l.resolve(host, qtype).Answer {
			if ip := rrAddress(r); ip != nil && !isLabAddress(ip) {
				errs = append(errs, fmt.Errorf("NS name %s resolves to %s outside the lab", host, ip))
			}
		}
	}
	return errs
}

// checkGlueAddress verifies that address records below a zone cut (glue)
// use lab addresses.
func checkGlueAddress(z *Zone, r dns.RR) error {
	ip := rrAddress(r)
	if ip == nil || z.cutBelow(r.Header().Name) == "" {
		return nil
	}
	if !isLabAddress(ip) {
		return fmt.Errorf("zone %s has glue %s outside the lab", z.Name, strings.TrimSpace(r.String()))
	}
	return nil
}

func rrAddress(r dns.RR) net.IP {
	switch v := r.(type) {
	case *dns.A:
		return v.A
	case *dns.AAAA:
		return v.AAAA
	}
	return nil
}

// isLabAddress reports whether ip is in 127.53.0.0/16 or is ::1.
func isLabAddress(ip net.IP) bool {
	if v4 := ip.To4(); v4 != nil {
		return v4[0] == 127 && v4[1] == 53
	}
	return ip.Equal(net.IPv6loopback)
}

// checkBackends verifies that backend-only addresses appear in no NS set
// and that every proxy stub has a backend that loads some zone.
func (l *Lab) checkBackends() []error {
	var errs []error
	for host, addrs := range l.hosts {
		for _, a := range addrs {
			if in := l.instanceAt(a); in != nil && in.Backend {
				errs = append(errs, fmt.Errorf("NS name %s uses backend-only address %s", host, a))
			}
		}
	}
	for _, in := range l.instances {
		if len(in.Zones) == 0 && len(in.Extra) == 0 {
			errs = append(errs, fmt.Errorf("instance %s loads no zone", in.Name))
		}
	}
	return errs
}
