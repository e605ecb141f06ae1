package gen

import (
	"fmt"
	"sort"
	"strings"

	"github.com/miekg/dns"
)

// Lab-made zones that are not special cases.
const (
	rootServersZone = "root-servers.net."
	gtldServers     = "gtld-servers.net."
	cdnZone         = "cdn-lab.net."      // first CNAME hop, with A and AAAA records
	cdnFrontZone    = "cdnfront-lab.com." // first CNAME hop of two-hop chains
	edgeZone        = "edge-lab.org."     // second hop of two-hop chains
	edgeHosts       = 32                  // e0 to e31 in edgeZone
)

// qminTLD is the TLD served only through logging stub listeners.
const qminTLD = "io."

// labTLDs are TLDs the lab-made zones need, whatever the popular names use.
var labTLDs = []string{"com.", "net.", "org.", "io."}

// choosePopular groups the popular names by registered domain and keeps
// the first PopularZones domains in rank order. Later names below a kept
// domain become host names in it.
func (l *Lab) choosePopular(names []popularName, tldSet map[string]bool) error {
	sort.SliceStable(names, func(i, j int) bool { return names[i].Rank < names[j].Rank })
	reserved := reservedZones()

	byZone := map[string]*popularZone{}
	for _, p := range names {
		reg, err := registeredDomain(p.Name)
		if err != nil {
			continue // a bare public suffix such as "co.uk" has no zone of its own
		}
		tld := reg[strings.IndexByte(reg, '.')+1:]
		tld = tld[strings.LastIndex(strings.TrimSuffix(tld, "."), ".")+1:]
		if !tldSet[tld] || reg == "nic."+tld {
			continue // nic.<tld> holds the TLD's own name servers
		}
		if reserved[reg] {
			return fmt.Errorf("popular name %s (rank %d) collides with lab zone %s", p.Name, p.Rank, reg)
		}

		pz := byZone[reg]
		if pz == nil {
			if len(l.popular) >= l.opts.PopularZones {
				continue
			}
			pz = &popularZone{Zone: newZone(reg, "popular"), Rank: p.Rank}
			byZone[reg] = pz
			l.popular = append(l.popular, pz)
		}
		pz.Names = append(pz.Names, p)
	}
	if len(l.popular) < l.opts.PopularZones {
		return fmt.Errorf("popular names give %d zones, want %d", len(l.popular), l.opts.PopularZones)
	}
	return nil
}

// chooseTLDs keeps every TLD the popular zones and lab zones use, plus
// ExtraTLDs more spread evenly over the rest of the list.
func (l *Lab) chooseTLDs(tldSet map[string]bool, tldList []string) {
	used := map[string]bool{}
	for _, t := range labTLDs {
		used[t] = true
	}
	for _, pz := range l.popular {
		labels := dns.SplitDomainName(pz.Zone.Name)
		used[labels[len(labels)-1]+"."] = true
	}

	var unused []string
	for _, t := range tldList {
		if !used[t] {
			unused = append(unused, t)
		}
	}
	if n := l.opts.ExtraTLDs; n > 0 && len(unused) > 0 {
		step := max(len(unused)/n, 1)
		for i := 0; i < len(unused) && i/step < n; i += step {
			used[unused[i]] = true
		}
	}

	for t := range used {
		if tldSet[t] {
			l.tlds = append(l.tlds, t)
		}
	}
	sort.Strings(l.tlds)
}

// buildRoot makes the root zone and root-servers.net, both loaded by the
// Knot DNS and the NSD root instances.
func (l *Lab) buildRoot() {
	servers := []struct{ name, addr string }{
		{"a", loopback(1, 1)}, {"b", loopback(2, 1)}, {"c", loopback(1, 2)}, {"d", loopback(2, 2)},
	}
	var ns []string
	for _, s := range servers {
		host := s.name + "." + rootServersZone
		ns = append(ns, host)
		l.addHost(host, s.addr)
	}

	root := l.addZone(newZone(".", "root"))
	root.Instances = []string{knotRoot, nsdRoot}
	root.NS = ns
	root.NSTTL = 518400
	root.SOA = rr(". 86400 IN SOA a.root-servers.net. hostmaster.root-servers.net. 2026080100 1800 900 604800 86400").(*dns.SOA)

	rs := l.addZone(newZone(rootServersZone, "root"))
	rs.Instances = root.Instances
	rs.NS = ns
	rs.NSTTL = 3600000
	rs.SOA = rr("%s 3600000 IN SOA a.root-servers.net. hostmaster.root-servers.net. 2026080100 14400 7200 1209600 3600000", rootServersZone).(*dns.SOA)
}

// buildTLDs makes one zone per chosen TLD. com and net share the
// gtld-servers.net name servers on the Knot DNS TLD instance, the qmin TLD
// is served only through logging stubs, and the rest alternate between Knot DNS and
// NSD in name order.
func (l *Lab) buildTLDs() {
	i := 0
	for _, tld := range l.tlds {
		z := l.addZone(newZone(tld, "tld"))
		z.NSTTL = 172800
		r := rng("tld", tld)

		switch tld {
		case qminTLD:
			// The NS names lie outside the TLD, so a resolver looking up
			// their addresses adds no lines to the query log.
			z.Instances = []string{knotBack}
			z.ViaStub = true
			z.NS = []string{infraHost(stubQmin1), infraHost(stubQmin2)}
		case "com.", "net.":
			in := l.byInst[knotTLD]
			z.Instances = []string{in.Name}
			z.NS = []string{"a." + gtldServers, "b." + gtldServers}
			l.addHost(z.NS[0], in.Addrs[0])
			l.addHost(z.NS[1], in.Addrs[1])
		default:
			in := l.byInst[[]string{nsdTLD, knotTLD}[i%2]]
			i++
			z.Instances = []string{in.Name}
			z.NS = []string{"a.nic." + tld, "b.nic." + tld}
			l.addHost(z.NS[0], in.Addrs[0])
			l.addHost(z.NS[1], in.Addrs[1])
		}

		z.SOA = newSOA(z, r)
		z.Add(rr("nic.%s 3600 IN A %s", tld, hashIPv4("nic."+tld)))
	}
}

func (l *Lab) stubAddr(name string) string {
	for _, s := range l.stubs {
		if s.Name == name {
			return s.Addr
		}
	}
	panic("unknown stub listener " + name)
}

// hostAtProvider makes z a customer of p with nsCount of its name servers.
func (l *Lab) hostAtProvider(z *Zone, p provider, nsCount int) {
	z.Instances = appendUnique(z.Instances, p.Instance)
	z.NS = append(z.NS, p.NSNames(nsCount)...)
}

func appendUnique(list []string, s string) []string {
	if containsString(list, s) {
		return list
	}
	return append(list, s)
}

// buildProviders makes the hosting providers' own zones; each is hosted on
// its own name servers, with glue in its TLD.
func (l *Lab) buildProviders() {
	for _, p := range l.providers {
		z := l.addZone(newZone(p.Zone, "provider"))
		r := rng("provider", p.Zone)
		z.Instances = []string{p.Instance}
		z.NS = p.NSNames(2)
		z.NSTTL = 86400
		for i, host := range p.NSNames(4) {
			l.addHost(host, p.Addrs[i%2])
		}
		if p.AAAA {
			l.addHost(p.NSNames(2)[1], "::1")
		}

		z.SOA = newSOA(z, r)
		z.Add(rr("%s 3600 IN A %s", z.Name, hashIPv4(z.Name)))
		z.Add(rr("www.%s 3600 IN A %s", z.Name, hashIPv4("www."+z.Name)))
		z.Add(rr("mx1.%s 3600 IN A %s", z.Name, hashIPv4("mx1."+z.Name)))
		z.Add(rr("%s 3600 IN MX 10 mx1.%s", z.Name, z.Name))
	}
}

// buildCDNs makes the CDN-like zones that www names point into.
func (l *Lab) buildCDNs() {
	cdn := l.addZone(newZone(cdnZone, "cdn"))
	l.hostAtProvider(cdn, l.providers[1], 2)
	front := l.addZone(newZone(cdnFrontZone, "cdn"))
	l.hostAtProvider(front, l.providers[2], 2)
	edge := l.addZone(newZone(edgeZone, "cdn"))
	l.hostAtProvider(edge, l.providers[3], 2)

	for _, z := range []*Zone{cdn, front, edge} {
		z.NSTTL = 3600
		z.SOA = newSOA(z, rng("cdn", z.Name))
		z.Add(rr("%s 300 IN A %s", z.Name, hashIPv4(z.Name)))
	}
	for i := 0; i < edgeHosts; i++ {
		host := fmt.Sprintf("e%d.%s", i, edgeZone)
		edge.Add(rr("%s 60 IN A %s", host, hashIPv4(host)))
		edge.Add(rr("%s 60 IN AAAA %s", host, hashIPv6(host)))
	}
}

// cdnLabel turns a zone name into one label for CDN host names, for
// example "example.co.uk." into "example-co-uk".
func cdnLabel(zone string) string {
	label := strings.ReplaceAll(strings.TrimSuffix(zone, "."), ".", "-")
	if len(label) > 50 {
		label = fmt.Sprintf("h%x", rng("cdn-label", zone).Uint64())
	}
	return label
}

// cdnOneHop adds <label>.cdn-lab.net with addresses and returns its name.
func (l *Lab) cdnOneHop(zone string) string {
	host := cdnLabel(zone) + "." + cdnZone
	z := l.zones[cdnZone]
	z.Add(rr("%s 300 IN A %s", host, hashIPv4(host)))
	z.Add(rr("%s 300 IN AAAA %s", host, hashIPv6(host)))
	return host
}

// cdnTwoHop adds <label>.cdnfront-lab.com as a CNAME to an edge host and
// returns its name.
func (l *Lab) cdnTwoHop(zone string) string {
	host := cdnLabel(zone) + "." + cdnFrontZone
	edge := fmt.Sprintf("e%d.%s", rng("edge", zone).IntN(edgeHosts), edgeZone)
	l.zones[cdnFrontZone].Add(rr("%s 600 IN CNAME %s", host, edge))
	return host
}
