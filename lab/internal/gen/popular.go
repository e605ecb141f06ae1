package gen

import (
	"math/rand/v2"

	"github.com/miekg/dns"
)

// Shares of popular zones with each optional feature, in percent.
const (
	pctApexWildcard  = 6
	pctSitesWildcard = 6
	pctENT           = 12
	pctSRV           = 5
	pctSubDelegation = 4
	pctDMARC         = 30
)

// buildPopular fills one zone made from the popular names: hosting, apex
// records, the popular host names, www, mail and optional features.
func (l *Lab) buildPopular(pz *popularZone) {
	z := l.addZone(pz.Zone)
	r := rng("popular", z.Name)
	l.hostPopular(z, pz, r)
	z.SOA = newSOA(z, r)

	l.addAddresses(z, z.Name, r, r.IntN(100) < 60)
	if r.IntN(100) < 20 {
		z.Add(rr("%s %d IN A %s", z.Name, recordTTL(r), hashIPv4("second."+z.Name)))
	}
	for _, p := range pz.Names {
		if p.Name != z.Name {
			l.addAddresses(z, p.Name, r, r.IntN(100) < 50)
		}
	}

	l.addWWW(z, r)
	l.addMail(z, r)
	l.addTXT(z, r)
	l.addFeatures(z, r)
}

// hostPopular chooses who serves z: a provider (most zones), the zone's own
// in-bailiwick name servers with glue, or two providers on different
// programs.
func (l *Lab) hostPopular(z *Zone, pz *popularZone, r *rand.Rand) {
	z.NSTTL = pick(r, []uint32{3600, 86400, 172800})
	knotProviders := []provider{l.providers[0], l.providers[2], l.providers[4]}
	nsdProviders := []provider{l.providers[1], l.providers[3], l.providers[5]}

	x := r.IntN(100)
	switch {
	case x < 62:
		l.hostAtProvider(z, pick(r, l.providers), 2)
	case x < 70:
		l.hostAtProvider(z, pick(r, l.providers), 4)
	case x < 85 && !namesOwnNS(pz):
		l.hostSelf(z, r)
	default:
		l.hostAtProvider(z, pick(r, knotProviders), 1)
		l.hostAtProvider(z, pick(r, nsdProviders), 1)
	}
}

// namesOwnNS reports whether a popular name would clash with the ns1 and
// ns2 host names of a self-hosted zone.
func namesOwnNS(pz *popularZone) bool {
	for _, p := range pz.Names {
		if p.Name == "ns1."+pz.Zone.Name || p.Name == "ns2."+pz.Zone.Name {
			return true
		}
	}
	return false
}

// hostSelf gives z the name servers ns1 and ns2 inside itself, on two
// addresses of one SLD instance; some NSD-hosted ones also get ::1.
func (l *Lab) hostSelf(z *Zone, r *rand.Rand) {
	in := l.byInst[pick(r, []string{knotSLD, nsdSLD})]
	z.Instances = []string{in.Name}
	v4 := in.Addrs[:6]
	first := r.IntN(len(v4))
	second := (first + 1 + r.IntN(len(v4)-1)) % len(v4)

	z.NS = []string{"ns1." + z.Name, "ns2." + z.Name}
	l.addHost(z.NS[0], v4[first])
	l.addHost(z.NS[1], v4[second])
	if in.Name == nsdSLD && r.IntN(3) == 0 {
		l.addHost(z.NS[0], "::1")
	}
}

func recordTTL(r *rand.Rand) int {
	return pick(r, []int{60, 300, 600, 1800, 3600, 86400})
}

// addAddresses adds an A record, and an AAAA record when withAAAA is set,
// at name unless it already has one.
func (l *Lab) addAddresses(z *Zone, name string, r *rand.Rand, withAAAA bool) {
	if len(z.RRs(name, dns.TypeA)) > 0 || len(z.RRs(name, dns.TypeCNAME)) > 0 {
		return
	}
	ttl := recordTTL(r)
	z.Add(rr("%s %d IN A %s", name, ttl, hashIPv4(name)))
	if withAAAA {
		z.Add(rr("%s %d IN AAAA %s", name, ttl, hashIPv6(name)))
	}
}

// addWWW points www at a CDN (one or two CNAME hops) or gives it addresses.
func (l *Lab) addWWW(z *Zone, r *rand.Rand) {
	www := "www." + z.Name
	if z.HasAtOrBelow(www) {
		return // a popular host name already defines www
	}
	switch x := r.IntN(100); {
	case x < 30:
		z.Add(rr("%s %d IN CNAME %s", www, recordTTL(r), l.cdnOneHop(z.Name)))
	case x < 50:
		z.Add(rr("%s %d IN CNAME %s", www, recordTTL(r), l.cdnTwoHop(z.Name)))
	default:
		l.addAddresses(z, www, r, r.IntN(2) == 0)
	}
}

// addMail adds MX records: the zone's own mail hosts, a provider's mail
// host, or a null MX (RFC 7505).
func (l *Lab) addMail(z *Zone, r *rand.Rand) {
	switch x := r.IntN(100); {
	case x < 3:
		z.Add(rr("%s 3600 IN MX 0 .", z.Name))
	case x < 18:
		z.Add(rr("%s 3600 IN MX 10 mx1.%s", z.Name, pick(r, l.providers).Zone))
	case x < 85:
		mail := "mail." + z.Name
		l.addAddresses(z, mail, r, false)
		z.Add(rr("%s 3600 IN MX 10 %s", z.Name, mail))
		if r.IntN(3) == 0 {
			mail2 := "mail2." + z.Name
			l.addAddresses(z, mail2, r, false)
			z.Add(rr("%s 3600 IN MX 20 %s", z.Name, mail2))
		}
	}
}

// addTXT adds an SPF-like TXT record and sometimes a verification string
// and a DMARC record.
func (l *Lab) addTXT(z *Zone, r *rand.Rand) {
	if r.IntN(100) < 85 {
		a := z.RRs(z.Name, dns.TypeA)[0].(*dns.A).A.String()
		z.Add(rr(`%s 3600 IN TXT "v=spf1 ip4:%s -all"`, z.Name, a))
	}
	if r.IntN(100) < 40 {
		z.Add(rr(`%s 3600 IN TXT "lab-site-verification=%016x"`, z.Name, r.Uint64()))
	}
	if r.IntN(100) < pctDMARC && !z.HasAtOrBelow("_dmarc."+z.Name) {
		z.Add(rr(`_dmarc.%s 3600 IN TXT "v=DMARC1; p=none"`, z.Name))
	}
}

// addFeatures adds wildcards, empty non-terminals, SRV records and
// sub-delegations to a share of the zones.
func (l *Lab) addFeatures(z *Zone, r *rand.Rand) {
	if r.IntN(100) < pctApexWildcard {
		z.Add(rr("*.%s 300 IN A %s", z.Name, hashIPv4("*."+z.Name)))
	}
	sites := "sites." + z.Name
	if r.IntN(100) < pctSitesWildcard && !z.HasAtOrBelow(sites) {
		z.Add(rr("*.%s 300 IN A %s", sites, hashIPv4("*."+sites)))
	}
	static := "static." + z.Name
	if r.IntN(100) < pctENT && !z.HasAtOrBelow(static) {
		l.addAddresses(z, "img."+static, r, true)
	}
	tcp := "_tcp." + z.Name
	if r.IntN(100) < pctSRV && !z.HasAtOrBelow(tcp) {
		xmpp := "xmpp." + z.Name
		l.addAddresses(z, xmpp, r, false)
		z.Add(rr("_xmpp-server.%s 3600 IN SRV 5 0 5269 %s", tcp, xmpp))
	}
	corp := "corp." + z.Name
	if r.IntN(100) < pctSubDelegation && !z.HasAtOrBelow(corp) {
		l.subDelegate(corp, r)
	}
}

// subDelegate makes a child zone below a popular zone, served by a deep
// instance with in-bailiwick name servers and glue.
func (l *Lab) subDelegate(name string, r *rand.Rand) *Zone {
	in := l.byInst[pick(r, []string{knotDeep, nsdDeep})]
	z := l.addZone(newZone(name, "sub"))
	z.Instances = []string{in.Name}
	z.NS = []string{"ns1." + name, "ns2." + name}
	z.NSTTL = 3600
	l.addHost(z.NS[0], in.Addrs[0])
	l.addHost(z.NS[1], in.Addrs[1])

	z.SOA = newSOA(z, r)
	for _, host := range []string{name, "www." + name, "intranet." + name} {
		z.Add(rr("%s 600 IN A %s", host, hashIPv4(host)))
	}
	return z
}
