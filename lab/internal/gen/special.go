package gen

import (
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// Zones of the special cases. The "lab-" prefix keeps them apart from the
// popular names; choosePopular fails on a collision.
const (
	infraZone      = "lab-infra.net." // host names of the labstub listeners
	lameZone       = "lab-lame.com."
	partLameZone   = "lab-partlame.com."
	silentZone     = "lab-silent.net."
	tcZone         = "lab-tcponly.org."
	entZone        = "lab-entfail.net."
	entNXDOMAINENT = "x1.cdn." + entZone
	cycleZoneA     = "lab-cycle-a.com."
	cycleZoneB     = "lab-cycle-b.net."
	noGlueZone     = "lab-noglue.org."
	nxnsZone       = "lab-nxns.com."
	nxnsVictimZone = "lab-nxnsvictim.net."
	manyNSZone     = "lab-manyns.org."
	nsFarmZone     = "lab-nsfarm.net."
	v6OnlyZone     = "lab-v6only.net."
	negTTLZone     = "lab-negttl.org."
	bigTXTZone     = "lab-bigtxt.com."
	dnameZone      = "lab-dname.net."
	slowZone       = "lab-slow.net."
	wildZone       = "lab-wild.com."
	deepZone       = "lab-deep.io."
)

// Sizes of the special cases.
const (
	nxnsChildren   = 8  // delegated children of the NXNS attacker zone
	nxnsNSPerChild = 20 // glueless NS names per child
	manyNSTotal    = 8  // NS names of the partly broken delegation
	manyNSGood     = 2  // of which resolve to a working server
	bigTXTStrings  = 40
	bigTXTLength   = 70
	negativeTTL    = 60
)

// Reasons recorded in Zone.Broken.
const (
	brokenLame   = "only name server replies REFUSED (lame delegation)"
	brokenSilent = "only name server never replies"
	brokenCycle  = "glueless NS names form a cycle between two zones"
	brokenNoGlue = "in-bailiwick NS name without glue"
	brokenNXNS   = "every NS name is NXDOMAIN"
)

// specialNames are the names lab.json and expected.tsv use for the special
// cases.
type specialNames struct {
	QminDeepName  string
	NXNSAttack    []string
	Cycle         []string
	DeepChainCuts int
}

// reservedZones returns every lab-made zone name, which popular names must
// not use.
func reservedZones() map[string]bool {
	set := map[string]bool{rootServersZone: true, cdnZone: true, cdnFrontZone: true, edgeZone: true}
	for _, p := range newProviders() {
		set[p.Zone] = true
	}
	for _, z := range []string{infraZone, lameZone, partLameZone, silentZone, tcZone, entZone,
		cycleZoneA, cycleZoneB, noGlueZone, nxnsZone, nxnsVictimZone, manyNSZone, nsFarmZone,
		v6OnlyZone, negTTLZone, bigTXTZone, dnameZone, slowZone, wildZone, deepZone, secZone, policyZone} {
		set[z] = true
	}
	return set
}

// specialZone registers a special zone with a SOA, an apex A and www A.
func (l *Lab) specialZone(name string) *Zone {
	z := l.addZone(newZone(name, "special"))
	z.Special = true
	z.NSTTL = 3600
	return z
}

// fill adds the SOA and a few address records to a special zone whose
// hosting is already set.
func fill(z *Zone) {
	z.SOA = newSOA(z, rng("special", z.Name))
	for _, host := range []string{z.Name, "www." + z.Name} {
		z.Add(rr("%s 300 IN A %s", host, hashIPv4(host)))
	}
}

// brokenZone registers a zone that no process loads; names below its cut
// must fail with SERVFAIL.
func (l *Lab) brokenZone(name, reason string, ns ...string) *Zone {
	z := l.specialZone(name)
	z.Broken = reason
	z.NS = ns
	return z
}

func (l *Lab) buildSpecial() error {
	l.buildInfra()
	l.buildLame()
	l.buildStubbed()
	l.buildCycle()
	l.buildNoGlue()
	l.buildNXNS()
	l.buildManyNS()
	l.buildRecordCases()
	if err := l.buildPolicy(); err != nil {
		return err
	}
	return l.buildDeepChain()
}

// buildInfra makes lab-infra.net, which names every labstub listener.
func (l *Lab) buildInfra() {
	z := l.specialZone(infraZone)
	z.Instances = []string{knotSLD}
	z.NS = []string{"ns1." + infraZone}
	l.addHost(z.NS[0], l.byInst[knotSLD].Addrs[0])
	fill(z)
	for _, s := range l.stubs {
		l.addHost(s.Name+"."+infraZone, s.Addr)
	}
}

func infraHost(stubName string) string { return stubName + "." + infraZone }

// buildLame makes a fully lame delegation and a partly lame one.
func (l *Lab) buildLame() {
	l.brokenZone(lameZone, brokenLame, infraHost(stubRefuser))

	z := l.specialZone(partLameZone)
	z.LameOK = true
	z.NS = []string{infraHost(stubRefuser)}
	l.hostAtProvider(z, l.providers[0], 1)
	fill(z)
}

// buildStubbed makes the zones reached through labstub listeners: silent,
// truncating, ENT-to-NXDOMAIN rewriting, slow and the NXNS victim.
func (l *Lab) buildStubbed() {
	l.brokenZone(silentZone, brokenSilent, infraHost(stubSilent))

	stubbed := []struct{ zone, stub, instance string }{
		{tcZone, stubTC, knotBack},
		{entZone, stubENTFail, nsdBack},
		{slowZone, stubSlow, nsdBack},
		{nxnsVictimZone, stubNXNSVictim, nsdBack},
	}
	for _, s := range stubbed {
		z := l.specialZone(s.zone)
		z.Instances = []string{s.instance}
		z.ViaStub = true
		z.NS = []string{infraHost(s.stub)}
		fill(z)
	}

	l.zones[tcZone].Add(rr(`%s 300 IN TXT "v=spf1 -all"`, tcZone))
	ent := l.zones[entZone]
	ent.Add(rr("www.%s 300 IN A %s", entNXDOMAINENT, hashIPv4("www."+entNXDOMAINENT)))
}

// buildCycle makes two zones whose only NS names lie in each other.
func (l *Lab) buildCycle() {
	l.brokenZone(cycleZoneA, brokenCycle, "ns."+cycleZoneB)
	l.brokenZone(cycleZoneB, brokenCycle, "ns."+cycleZoneA)
	l.special.Cycle = []string{"www." + cycleZoneA, "www." + cycleZoneB}
}

// buildNoGlue makes a zone with a child delegated to a name inside the
// child, with no glue in the parent.
func (l *Lab) buildNoGlue() {
	z := l.specialZone(noGlueZone)
	l.hostAtProvider(z, l.providers[2], 2)
	fill(z)

	child := l.brokenZone("sub."+noGlueZone, brokenNoGlue, "ns1.sub."+noGlueZone)
	child.NoGlue = true
}

// buildNXNS makes the attacker zone, whose children are each delegated to
// 20 glueless names in the victim zone that do not exist.
func (l *Lab) buildNXNS() {
	z := l.specialZone(nxnsZone)
	l.hostAtProvider(z, l.providers[3], 2)
	fill(z)

	for c := 0; c < nxnsChildren; c++ {
		var ns []string
		for n := 0; n < nxnsNSPerChild; n++ {
			ns = append(ns, fmt.Sprintf("n%d-%02d.%s", c, n, nxnsVictimZone))
		}
		child := l.brokenZone(fmt.Sprintf("d%d.%s", c, nxnsZone), brokenNXNS, ns...)
		l.special.NXNSAttack = append(l.special.NXNSAttack, "www."+child.Name)
	}
}

// buildManyNS makes a delegation with eight glueless NS names of which six
// are NXDOMAIN and two resolve to the NSD instance that loads the zone.
func (l *Lab) buildManyNS() {
	farm := l.specialZone(nsFarmZone)
	l.hostAtProvider(farm, l.providers[0], 2)
	fill(farm)

	z := l.specialZone(manyNSZone)
	z.Instances = []string{nsdSLD}
	z.LameOK = true
	addrs := l.byInst[nsdSLD].Addrs
	for i := 1; i <= manyNSTotal; i++ {
		host := fmt.Sprintf("ns%d.%s", i, nsFarmZone)
		z.NS = append(z.NS, host)
		if i > manyNSTotal-manyNSGood {
			l.addHost(host, addrs[2+i%2])
		}
	}
	fill(z)
}

// buildRecordCases makes the zones of the record-level cases: IPv6-only
// delegation, negative TTL, big TXT, DNAME and wildcard with an ENT.
func (l *Lab) buildRecordCases() {
	v6 := l.specialZone(v6OnlyZone)
	v6.Instances = []string{nsdSLD}
	v6.NS = []string{"ns1." + v6OnlyZone}
	l.addHost(v6.NS[0], "::1")
	fill(v6)
	v6.Add(rr("www.%s 300 IN AAAA %s", v6OnlyZone, hashIPv6("www."+v6OnlyZone)))

	neg := l.specialZone(negTTLZone)
	l.hostAtProvider(neg, l.providers[4], 2)
	fill(neg)
	neg.SOA = rr("%s 86400 IN SOA %s hostmaster.%s 2026080101 7200 900 1209600 %d",
		negTTLZone, neg.NS[0], negTTLZone, negativeTTL).(*dns.SOA)

	big := l.specialZone(bigTXTZone)
	l.hostAtProvider(big, l.providers[5], 2)
	fill(big)
	big.Add(bigTXT("big." + bigTXTZone))

	dn := l.specialZone(dnameZone)
	l.hostAtProvider(dn, l.providers[1], 2)
	fill(dn)
	dn.Add(rr("old.%s 3600 IN DNAME new.%s", dnameZone, dnameZone))
	for _, host := range []string{"new.", "www.new.", "mail.new."} {
		dn.Add(rr("%s%s 300 IN A %s", host, dnameZone, hashIPv4(host+dnameZone)))
	}
	dn.Add(rr(`new.%s 300 IN TXT "new target of the DNAME"`, dnameZone))

	wild := l.specialZone(wildZone)
	l.hostAtProvider(wild, l.providers[0], 2)
	fill(wild)
	wild.Add(rr("*.%s 300 IN A %s", wildZone, hashIPv4("*."+wildZone)))
	wild.Add(rr(`*.%s 300 IN TXT "wildcard"`, wildZone))
	wild.Add(rr("img.static.%s 300 IN A %s", wildZone, hashIPv4("img.static."+wildZone)))
}

// bigTXT returns a TXT RRset of one record with 40 strings of 70 bytes,
// about 2.9 KB of RDATA, so a reply cannot fit a 1232-byte UDP payload.
func bigTXT(owner string) dns.RR {
	txt := &dns.TXT{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300}}
	for i := 0; i < bigTXTStrings; i++ {
		prefix := fmt.Sprintf("part-%02d-", i)
		txt.Txt = append(txt.Txt, prefix+strings.Repeat(string(rune('a'+i%26)), bigTXTLength-len(prefix)))
	}
	return txt
}

// buildDeepChain makes four zone cuts below the qmin TLD, each child on a
// different process from its parent: lab-deep.io (Knot DNS SLD instance),
// d1 (NSD deep), d2 (Knot DNS deep), d3 (NSD SLD).
func (l *Lab) buildDeepChain() error {
	chain := []struct {
		label    string
		instance string
		addr     int // index into the instance's addresses
	}{
		{"lab-deep", knotSLD, 4},
		{"d1", nsdDeep, 0},
		{"d2", knotDeep, 0},
		{"d3", nsdSLD, 5},
	}

	name := qminTLD
	for _, c := range chain {
		name = c.label + "." + name
		z := l.specialZone(name)
		z.Instances = []string{c.instance}
		z.NS = []string{"ns1." + name}
		l.addHost(z.NS[0], l.byInst[c.instance].Addrs[c.addr])
		fill(z)
	}
	deepest := l.zones[name]
	host := "host." + name
	deepest.Add(rr("%s 300 IN A %s", host, hashIPv4(host)))
	l.special.QminDeepName = host
	l.special.DeepChainCuts = len(chain)
	if !strings.HasSuffix(name, deepZone) {
		return fmt.Errorf("deep chain %s is not below %s", name, deepZone)
	}
	return nil
}
