package gen

import (
	"fmt"
	"math"
	"strings"

	"github.com/miekg/dns"

	"bulwark/lab/labspec"
)

// expectedRow is one line of expected.tsv.
type expectedRow struct {
	Name  string
	Type  uint16
	Rcode int
	AD    bool // a validating resolver sets the AD bit
	EDE   int  // -1 for none
	Value string
}

// query is one line of queries.txt.
type query struct {
	Name string
	Type uint16
}

// specialCheck is a question about a special case with the rcode the case
// is designed to produce; makeExpected fails when the zone data disagree.
type specialCheck struct {
	name  string
	qtype uint16
	rcode int
}

// makeExpected derives expected.tsv from the zone data: the special cases
// first, then a sample of ordinary names.
func (l *Lab) makeExpected() error {
	seen := map[string]bool{}
	for _, c := range l.specialChecks() {
		row := l.expect(c.name, c.qtype)
		if row.Rcode != c.rcode {
			return fmt.Errorf("special case %s %s: zone data give %s, want %s",
				c.name, dns.Type(c.qtype), dns.RcodeToString[row.Rcode], dns.RcodeToString[c.rcode])
		}
		l.addRow(row, seen)
	}
	secRows, err := l.secExpected()
	if err != nil {
		return err
	}
	for _, row := range secRows {
		l.addRow(row, seen)
	}

	before := len(l.expected)
	l.sampleOrdinary(seen)
	if n := len(l.expected) - before; n < 300 {
		return fmt.Errorf("ordinary sample has %d rows, want at least 300", n)
	}
	return nil
}

func (l *Lab) addRow(row expectedRow, seen map[string]bool) bool {
	key := row.Name + "|" + dns.Type(row.Type).String()
	if seen[key] {
		return false
	}
	seen[key] = true
	l.expected = append(l.expected, row)
	return true
}

// expect resolves (name, qtype) in the zone data and turns the outcome
// into a row.
func (l *Lab) expect(name string, qtype uint16) expectedRow {
	out := l.resolve(name, qtype)
	row := expectedRow{Name: strings.ToLower(dns.Fqdn(name)), Type: qtype, Rcode: out.Rcode, EDE: -1, Value: "-"}
	if out.Rcode == dns.RcodeServerFailure {
		row.EDE = labspec.EDENoReachableAuthority
	} else {
		row.AD = out.Secure
	}
	if len(out.Answer) > 0 {
		row.Value = labspec.ShortValue(out.Answer[0])
	}
	return row
}

// specialChecks lists the rows for every special case.
func (l *Lab) specialChecks() []specialCheck {
	const (
		ok = dns.RcodeSuccess
		nx = dns.RcodeNameError
		sf = dns.RcodeServerFailure
	)
	checks := []specialCheck{
		{".", dns.TypeNS, ok},
		{".", dns.TypeSOA, ok},
		{"com.", dns.TypeNS, ok},
		{"a.root-servers.net.", dns.TypeA, ok},
		{"a.gtld-servers.net.", dns.TypeA, ok},
		{"nonexistent-tld-lab.", dns.TypeA, nx},
		{"www." + lameZone, dns.TypeA, sf},
		{"www." + partLameZone, dns.TypeA, ok},
		{"www." + silentZone, dns.TypeA, sf},
		{"www." + tcZone, dns.TypeA, ok},
		{tcZone, dns.TypeTXT, ok},
		{"www." + entNXDOMAINENT, dns.TypeA, ok},
		{l.special.Cycle[0], dns.TypeA, sf},
		{l.special.Cycle[1], dns.TypeA, sf},
		{"www.sub." + noGlueZone, dns.TypeA, sf},
		{"www." + noGlueZone, dns.TypeA, ok},
		{l.special.NXNSAttack[0], dns.TypeA, sf},
		{"www." + nxnsZone, dns.TypeA, ok},
		{"www." + manyNSZone, dns.TypeA, ok},
		{"www." + v6OnlyZone, dns.TypeA, ok},
		{"www." + v6OnlyZone, dns.TypeAAAA, ok},
		{"nonexistent." + negTTLZone, dns.TypeA, nx},
		{"www." + negTTLZone, dns.TypeTXT, ok},
		{"big." + bigTXTZone, dns.TypeTXT, ok},
		{"www.old." + dnameZone, dns.TypeA, ok},
		{"mail.old." + dnameZone, dns.TypeA, ok},
		{"nothere.old." + dnameZone, dns.TypeA, nx},
		{"old." + dnameZone, dns.TypeDNAME, ok},
		{"www." + slowZone, dns.TypeA, ok},
		{"anything." + wildZone, dns.TypeA, ok},
		{"anything." + wildZone, dns.TypeTXT, ok},
		{"a.b." + wildZone, dns.TypeA, ok},
		{"static." + wildZone, dns.TypeA, ok},
		{"img.static." + wildZone, dns.TypeA, ok},
		{"foo.static." + wildZone, dns.TypeA, nx},
		{l.special.QminDeepName, dns.TypeA, ok},
		{"d2.d1." + deepZone, dns.TypeNS, ok},
		{"www." + nxnsVictimZone, dns.TypeA, ok},
	}
	if ent := l.publicSuffixENT(); ent != "" {
		checks = append(checks, specialCheck{ent, dns.TypeA, ok})
	}
	return checks
}

// publicSuffixENT returns the first multi-label public suffix (such as
// co.uk) that has popular zones below it, or "" when none has.
func (l *Lab) publicSuffixENT() string {
	for _, pz := range l.popular {
		suffix := parentName(pz.Zone.Name)
		if dns.CountLabel(suffix) > 1 {
			return suffix
		}
	}
	return ""
}

// Sample sizes of the ordinary rows, by kind.
const (
	sampleHostA     = 120
	sampleAAAA      = 40
	sampleMX        = 40
	sampleTXT       = 30
	sampleNXDomain  = 40
	sampleNoData    = 30
	sampleChain     = 40
	sampleCNAMEType = 10
	sampleWildcard  = 20
	sampleENT       = 20
	sampleNS        = 20
	sampleSOA       = 5
	sampleSub       = 10
	sampleSRV       = 5
	sampleDMARC     = 5
)

// sampleOrdinary adds rows for popular zones, taken in a shuffled but
// fixed order, until each kind has its share.
func (l *Lab) sampleOrdinary(seen map[string]bool) {
	zones := append([]*popularZone(nil), l.popular...)
	r := rng("sample", "zones")
	r.Shuffle(len(zones), func(i, j int) { zones[i], zones[j] = zones[j], zones[i] })

	counts := map[string]int{}
	take := func(kind string, limit int, name string, qtype uint16) {
		if counts[kind] >= limit {
			return
		}
		if l.addRow(l.expect(name, qtype), seen) {
			counts[kind]++
		}
	}

	for _, pz := range zones {
		z := pz.Zone
		for _, p := range pz.Names {
			take("host", sampleHostA, p.Name, dns.TypeA)
		}
		take("aaaa", sampleAAAA, z.Name, dns.TypeAAAA)
		take("mx", sampleMX, z.Name, dns.TypeMX)
		take("txt", sampleTXT, z.Name, dns.TypeTXT)
		take("nx", sampleNXDomain, fmt.Sprintf("nx-%x.%s", rng("nx", z.Name).Uint32(), z.Name), dns.TypeA)
		take("ns", sampleNS, z.Name, dns.TypeNS)
		take("soa", sampleSOA, z.Name, dns.TypeSOA)
		l.sampleShape(z, take)
	}
}

// sampleShape adds rows that depend on what the zone contains.
func (l *Lab) sampleShape(z *Zone, take func(string, int, string, uint16)) {
	www := "www." + z.Name
	if len(z.RRs(www, dns.TypeCNAME)) > 0 {
		take("chain", sampleChain, www, dns.TypeA)
		take("cname", sampleCNAMEType, www, dns.TypeCNAME)
	}
	if mail := "mail." + z.Name; z.HasOwner(mail) {
		take("nodata", sampleNoData, mail, dns.TypeMX)
	}
	if z.HasOwner("*." + z.Name) {
		take("wild", sampleWildcard, fmt.Sprintf("w%x.%s", rng("wild", z.Name).Uint32(), z.Name), dns.TypeA)
	}
	if z.HasOwner("*.sites." + z.Name) {
		take("wild", sampleWildcard, "blog.sites."+z.Name, dns.TypeA)
	}
	if z.IsENT("static." + z.Name) {
		take("ent", sampleENT, "static."+z.Name, dns.TypeA)
	}
	if corp := "corp." + z.Name; l.zones[corp] != nil {
		take("sub", sampleSub, "www."+corp, dns.TypeA)
	}
	if srv := "_xmpp-server._tcp." + z.Name; z.HasOwner(srv) {
		take("srv", sampleSRV, srv, dns.TypeSRV)
		take("ent", sampleENT, "_tcp."+z.Name, dns.TypeTXT)
	}
	if dmarc := "_dmarc." + z.Name; z.HasOwner(dmarc) {
		take("dmarc", sampleDMARC, dmarc, dns.TypeTXT)
	}
}

// Shape of queries.txt: a name of popularity index k (1 for the most
// popular) appears round(queryScale / k^queryExponent) times, at least
// once, which approximates the Zipf-like skew of real resolver traffic.
const (
	queryScale    = 400.0
	queryExponent = 0.8
	minQueries    = 10000
)

// makeQueries builds queries.txt from the popular names, weighted by
// rank, plus AAAA, MX and NXDOMAIN questions. Only names that resolve to
// NOERROR or NXDOMAIN without touching a special case or a stub are kept.
func (l *Lab) makeQueries() {
	var out []query
	k := 0
	for _, pz := range l.popular {
		for _, p := range pz.Names {
			k++
			w := weight(k)
			out = l.appendQuery(out, p.Name, dns.TypeA, w)
			out = l.appendQuery(out, p.Name, dns.TypeAAAA, w/3)
		}
		z := pz.Zone.Name
		out = l.appendQuery(out, z, dns.TypeMX, weight(k)/6)
		if k%10 == 0 {
			out = l.appendQuery(out, fmt.Sprintf("nx%d.%s", k, z), dns.TypeA, 1)
		}
	}

	r := rng("queries", "order")
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	l.queries = out
}

func weight(k int) int {
	return int(math.Round(queryScale / math.Pow(float64(k), queryExponent)))
}

func (l *Lab) appendQuery(out []query, name string, qtype uint16, count int) []query {
	if count < 1 {
		count = 1
	}
	o := l.resolve(name, qtype)
	if o.ViaStub || o.Special {
		return out
	}
	if o.Rcode != dns.RcodeSuccess && o.Rcode != dns.RcodeNameError {
		return out
	}
	for i := 0; i < count; i++ {
		out = append(out, query{Name: name, Type: qtype})
	}
	return out
}
