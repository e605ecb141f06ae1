package gen

import (
	"fmt"
	"strings"

	"github.com/miekg/dns"

	"bulwark/lab/labspec"
)

// DNSSEC scenario zones are children of secZone, a signed zone below the
// signed net TLD, so each is chained from the lab root. secZone is loaded
// by nsd-sld; the cases alternate between knot-deep and nsd-deep, which
// do not load secZone.
const (
	secZone     = "lab-dnssec.net."
	secHostKnot = "ns-knot." + secZone // knot-deep
	secHostNSD  = "ns-nsd." + secZone  // nsd-deep
)

// Extended DNS Error codes of RFC 8914 that the DNSSEC cases expect.
const (
	edeUnsupportedAlgorithm = 1
	edeUnsupportedDigest    = 2
	edeBogus                = 6
	edeSignatureExpired     = 7
	edeSignatureNotYetValid = 8
	edeDNSKEYMissing        = 9
	edeRRSIGsMissing        = 10
	edeNoZoneKeyBit         = 11
	edeNSECMissing          = 12
	edeNSEC3Iterations      = 27
)

// KeyTrap case sizes: colliding DNSKEYs and RRSIGs over one wildcard A.
const (
	keyTrapKeys = 320
	keyTrapSigs = 220
)

// secCheck is one expected outcome of a DNSSEC case, asked with the DO
// bit set.
type secCheck struct {
	Label string // prepended to the case zone ("" for the apex)
	Type  uint16
	Rcode int
	AD    bool
	EDE   int // -1 for none
}

// secCase is one DNSSEC scenario zone below secZone.
type secCase struct {
	Name        string // also the zone's first label
	Description string
	Instance    string
	Signing     *Signing // nil for an unsigned zone
	Records     []string // extra records, owner relative to the zone, "@" for the apex
	Checks      []secCheck
}

func ok(label string, t uint16, ad bool) secCheck {
	return secCheck{label, t, dns.RcodeSuccess, ad, -1}
}

func nx(label string, ad bool) secCheck {
	return secCheck{label, dns.TypeA, dns.RcodeNameError, ad, -1}
}

func fail(label string, ede int) secCheck {
	return secCheck{label, dns.TypeA, dns.RcodeServerFailure, false, ede}
}

func insecure(label string, t uint16, rcode, ede int) secCheck {
	return secCheck{label, t, rcode, false, ede}
}

// secureChecks returns the rows of a zone that must validate: a positive
// reply, an NXDOMAIN and a NODATA, all with AD=1.
func secureChecks() []secCheck {
	return []secCheck{ok("www", dns.TypeA, true), nx("nx", true), ok("www", dns.TypeTXT, true)}
}

// secCases returns every DNSSEC scenario. Key sizes of RSA keys are in
// bits; 0 means the algorithm's fixed size.
func secCases() []secCase {
	std := standardSigning
	withDS := func(s *Signing, ds ...DSSpec) *Signing { s.DS = ds; return s }
	withFaults := func(s *Signing, f ...Fault) *Signing { s.Faults = f; s.Secure = false; return s }
	insecureSigning := func(s *Signing) *Signing { s.Secure = false; return s }

	cases := []secCase{
		{Name: "alg8", Description: "RSASHA256, 2048-bit KSK and ZSK, NSEC", Signing: std(signerLDNS, dns.RSASHA256, 2048, false), Checks: secureChecks()},
		{Name: "alg10", Description: "RSASHA512, 2048-bit KSK and ZSK, NSEC", Signing: std(signerBind, dns.RSASHA512, 2048, false), Checks: secureChecks()},
		{Name: "alg13", Description: "ECDSAP256SHA256 KSK and ZSK, NSEC", Signing: std(signerBind, dns.ECDSAP256SHA256, 0, false), Checks: secureChecks()},
		{Name: "alg14", Description: "ECDSAP384SHA384 KSK and ZSK, NSEC", Signing: std(signerLDNS, dns.ECDSAP384SHA384, 0, false), Checks: secureChecks()},
		{Name: "alg15", Description: "ED25519 KSK and ZSK, NSEC", Signing: std(signerLDNS, dns.ED25519, 0, false), Checks: secureChecks()},
		{Name: "alg16", Description: "ED448 KSK and ZSK, NSEC", Signing: std(signerBind, dns.ED448, 0, false), Checks: secureChecks()},
		{
			Name: "nsec3", Description: "NSEC3, 0 iterations, empty salt; wildcard below w, empty non-terminal ent",
			Signing: std(signerLDNS, dns.ECDSAP256SHA256, 0, true),
			Records: []string{"*.w 300 IN A 198.18.7.1", "host.ent 300 IN A 198.18.7.2"},
			Checks: []secCheck{ok("www", dns.TypeA, true), nx("nx", true), ok("www", dns.TypeTXT, true),
				ok("foo.w", dns.TypeA, true), ok("foo.w", dns.TypeTXT, true), ok("ent", dns.TypeA, true)},
		},
		{
			Name: "nsec", Description: "NSEC with a wildcard at the apex and an empty non-terminal ent",
			Signing: std(signerBind, dns.ECDSAP256SHA256, 0, false),
			Records: []string{"* 300 IN A 198.18.7.3", "host.ent 300 IN A 198.18.7.4"},
			Checks: []secCheck{ok("www", dns.TypeA, true), ok("anything", dns.TypeA, true),
				ok("anything", dns.TypeTXT, true), ok("ent", dns.TypeA, true), ok("app", dns.TypeA, true)},
		},
		{
			Name: "optout", Description: "NSEC3 opt-out with the unsigned delegation insecure",
			Signing: func() *Signing { s := std(signerBind, dns.ECDSAP256SHA256, 0, true); s.OptOut = true; return s }(),
			Checks: []secCheck{ok("www", dns.TypeA, true), ok("www.insecure", dns.TypeA, false),
				ok("insecure", dns.TypeDS, false), nx("nx", false)},
		},
		{
			Name: "nsec3-iter200", Description: "NSEC3 with 200 iterations, above the limit of 50: proofs are insecure",
			Signing: func() *Signing { s := std(signerLDNS, dns.ECDSAP256SHA256, 0, true); s.Iterations = 200; return s }(),
			Checks: []secCheck{ok("www", dns.TypeA, true),
				insecure("www", dns.TypeTXT, dns.RcodeSuccess, edeNSEC3Iterations),
				insecure("nx", dns.TypeA, dns.RcodeNameError, edeNSEC3Iterations)},
		},
		{
			Name: "rsasha1", Description: "signed only with RSASHA1 (algorithm 5)",
			Signing: insecureSigning(std(signerBind, dns.RSASHA1, 2048, false)),
			Checks:  []secCheck{insecure("www", dns.TypeA, dns.RcodeSuccess, edeUnsupportedAlgorithm)},
		},
		{
			Name: "rsasha1-nsec3", Description: "signed only with RSASHA1-NSEC3-SHA1 (algorithm 7), NSEC3",
			Signing: insecureSigning(std(signerLDNS, dns.RSASHA1NSEC3SHA1, 2048, true)),
			Checks:  []secCheck{insecure("www", dns.TypeA, dns.RcodeSuccess, edeUnsupportedAlgorithm)},
		},
		{
			Name: "rsa512", Description: "only key is a 512-bit RSASHA256 key",
			Signing: insecureSigning(&Signing{Signer: signerLDNS, Keys: []KeySpec{{Algorithm: dns.RSASHA256, Bits: 512, KSK: true}},
				DS: []DSSpec{{Key: 0, Digest: dns.SHA256}}}),
			Checks: []secCheck{insecure("www", dns.TypeA, dns.RcodeSuccess, edeUnsupportedAlgorithm)},
		},
		{
			Name: "ds-sha1", Description: "only DS uses digest type 1 (SHA-1)",
			Signing: insecureSigning(withDS(std(signerBind, dns.ECDSAP256SHA256, 0, false), DSSpec{Key: 0, Digest: dns.SHA1})),
			Checks:  []secCheck{insecure("www", dns.TypeA, dns.RcodeSuccess, edeUnsupportedDigest)},
		},
		{
			Name: "ds-gost", Description: "only DS uses digest type 3 (GOST R 34.11-94)",
			Signing: insecureSigning(withDS(std(signerBind, dns.ECDSAP256SHA256, 0, false), DSSpec{Key: 0, Digest: dns.GOST94})),
			Checks:  []secCheck{insecure("www", dns.TypeA, dns.RcodeSuccess, edeUnsupportedDigest)},
		},
		{
			Name: "mixed-alg", Description: "DS and keys for algorithms 13 and 5, every RRset signed by both",
			Signing: &Signing{Signer: signerBind, Secure: true,
				Keys: append(kskZSK(dns.ECDSAP256SHA256, 0), kskZSK(dns.RSASHA1, 2048)...),
				DS:   []DSSpec{{Key: 0, Digest: dns.SHA256}, {Key: 2, Digest: dns.SHA256}}},
			Checks: secureChecks(),
		},
		{
			Name: "rollover-old-ds", Description: "algorithm rollover from 8 to 13: both key pairs sign, DS only for algorithm 8",
			Signing: &Signing{Signer: signerBind, Secure: true,
				Keys: append(kskZSK(dns.RSASHA256, 2048), kskZSK(dns.ECDSAP256SHA256, 0)...),
				DS:   []DSSpec{{Key: 0, Digest: dns.SHA256}}},
			Checks: secureChecks(),
		},
		{
			Name: "rollover-both-ds", Description: "algorithm rollover from 8 to 13: both key pairs sign, DS for both",
			Signing: &Signing{Signer: signerBind, Secure: true,
				Keys: append(kskZSK(dns.RSASHA256, 2048), kskZSK(dns.ECDSAP256SHA256, 0)...),
				DS:   []DSSpec{{Key: 0, Digest: dns.SHA256}, {Key: 2, Digest: dns.SHA256}}},
			Checks: secureChecks(),
		},
		{
			Name: "expired", Description: "every signature expired 10 days before lab-up",
			Signing: func() *Signing {
				s := std(signerBind, dns.ECDSAP256SHA256, 0, false)
				s.Validity = validityExpired
				s.Secure = false
				return s
			}(),
			Checks: []secCheck{fail("www", edeSignatureExpired)},
		},
		{
			Name: "notyet", Description: "every signature becomes valid 10 days after lab-up",
			Signing: func() *Signing {
				s := std(signerBind, dns.ECDSAP256SHA256, 0, false)
				s.Validity = validityNotYet
				s.Secure = false
				return s
			}(),
			Checks: []secCheck{fail("www", edeSignatureNotYetValid)},
		},
		{
			Name: "rrsig-missing", Description: "www A has no RRSIG in a signed zone",
			Signing: withFaults(std(signerBind, dns.ECDSAP256SHA256, 0, false), Fault{Kind: faultStripRRSIG, Owner: "www", Type: "A"}),
			Checks:  []secCheck{fail("www", edeRRSIGsMissing)},
		},
		{
			Name: "dnskey-missing", Description: "the only DS matches a key that is not in the DNSKEY RRset",
			Signing: withFaults(&Signing{Signer: signerBind,
				Keys: append(kskZSK(dns.ECDSAP256SHA256, 0), KeySpec{Algorithm: dns.ECDSAP256SHA256, KSK: true, Unpublished: true}),
				DS:   []DSSpec{{Key: 2, Digest: dns.SHA256}}}),
			Checks: []secCheck{fail("www", edeDNSKEYMissing)},
		},
		{
			Name: "no-zone-bit", Description: "the key that matches the DS has flags 1: SEP set, zone key bit clear",
			Signing: withFaults(&Signing{Signer: signerBind,
				Keys: []KeySpec{{Algorithm: dns.ECDSAP256SHA256, KSK: true, NoZoneBit: true}, {Algorithm: dns.ECDSAP256SHA256}},
				DS:   []DSSpec{{Key: 0, Digest: dns.SHA256}}}, Fault{Kind: faultClearZoneBit}),
			Checks: []secCheck{fail("www", edeNoZoneKeyBit)},
		},
		{
			Name: "nsec-missing", Description: "every NSEC record removed: NXDOMAIN without proof",
			Signing: withFaults(std(signerBind, dns.ECDSAP256SHA256, 0, false), Fault{Kind: faultDropNSEC}),
			Checks:  []secCheck{ok("www", dns.TypeA, true), insecure("nx", dns.TypeA, dns.RcodeServerFailure, edeNSECMissing)},
		},
		{
			Name: "nsec-gap", Description: "the NSEC that covers nx is removed, so the proof has a gap",
			Signing: withFaults(std(signerBind, dns.ECDSAP256SHA256, 0, false), Fault{Kind: faultDropNSEC, Owner: "mail"}),
			Checks:  []secCheck{ok("www", dns.TypeA, true), insecure("nx", dns.TypeA, dns.RcodeServerFailure, edeNSECMissing)},
		},
		{
			Name: "bad-sig", Description: "one byte changed in the RRSIG over www A",
			Signing: withFaults(std(signerBind, dns.ECDSAP256SHA256, 0, false), Fault{Kind: faultCorruptRRSIG, Owner: "www", Type: "A"}),
			Checks:  []secCheck{fail("www", edeBogus)},
		},
		{
			Name: "keytrap", Description: fmt.Sprintf("%d DNSKEYs share the ZSK's key tag; *.keytrap A carries %d RRSIGs with that tag, none valid", keyTrapKeys, keyTrapSigs),
			Signing: func() *Signing {
				s := std(signerBind, dns.RSASHA256, 2048, false)
				s.Secure = false
				s.KeyTrap = &KeyTrapSpec{Keys: keyTrapKeys, Sigs: keyTrapSigs, Owner: "*"}
				return s
			}(),
			Records: []string{"* 300 IN A 198.18.7.5"},
			Checks:  []secCheck{fail("r1", edeBogus)},
		},
		{
			Name: "cname-unsigned", Description: "unsigned zone whose www is a CNAME to app.nsec, answered by the signed wildcard",
			Records: []string{"www 300 IN CNAME app.nsec." + secZone},
			Checks:  []secCheck{ok("www", dns.TypeA, false), ok("", dns.TypeDS, true)},
		},
		{
			Name: "cname-signed", Description: "signed zone whose www is a CNAME to app.nsec, answered by the signed wildcard",
			Signing: std(signerLDNS, dns.ECDSAP256SHA256, 0, true),
			Records: []string{"www 300 IN CNAME app.nsec." + secZone},
			Checks:  []secCheck{ok("www", dns.TypeA, true)},
		},
	}
	for i := range cases {
		c := &cases[i]
		// Cases alternate between the two deep instances, so Knot DNS
		// and NSD each serve secure and broken zones.
		c.Instance = []string{knotDeep, nsdDeep}[i%2]
	}
	return cases
}

// buildDNSSEC makes secZone and one child zone per DNSSEC case, plus the
// unsigned child of the opt-out case.
func (l *Lab) buildDNSSEC() {
	parent := l.specialZone(secZone)
	parent.Instances = []string{nsdSLD}
	parent.NS = []string{"ns1." + secZone}
	l.addHost(parent.NS[0], l.byInst[nsdSLD].Addrs[0])
	l.addHost(secHostKnot, l.byInst[knotDeep].Addrs[0])
	l.addHost(secHostNSD, l.byInst[nsdDeep].Addrs[0])
	fill(parent)
	parent.Signing = standardSigning(signerBind, dns.ECDSAP256SHA256, 0, false)

	for _, c := range secCases() {
		name := c.Name + "." + secZone
		z := l.specialZone(name)
		z.Instances = []string{c.Instance}
		z.NS = []string{hostOf(c.Instance)}
		z.SOA = newSOA(z, rng("special", z.Name))
		hosts := []string{name, "mail." + name}
		if !ownsWWW(c) {
			hosts = append(hosts, "www."+name)
		}
		for _, host := range hosts {
			z.Add(rr("%s 300 IN A %s", host, hashIPv4(host)))
		}
		for _, r := range c.Records {
			z.Add(relativeRR(r, name))
		}
		z.Signing = c.Signing
		l.secCases = append(l.secCases, c)
	}

	// The opt-out zone delegates insecure to knot-deep when the opt-out
	// zone is on nsd-deep, and the other way round.
	optout := l.zones["optout."+secZone]
	child := l.specialZone("insecure.optout." + secZone)
	child.Instances = []string{otherDeep(optout.Instances[0])}
	child.NS = []string{hostOf(child.Instances[0])}
	fill(child)
}

// ownsWWW reports whether the case's own records define www, which then
// gets no A record.
func ownsWWW(c secCase) bool {
	for _, r := range c.Records {
		if strings.HasPrefix(r, "www ") {
			return true
		}
	}
	return false
}

func hostOf(instance string) string {
	if instance == knotDeep {
		return secHostKnot
	}
	return secHostNSD
}

func otherDeep(instance string) string {
	if instance == knotDeep {
		return nsdDeep
	}
	return knotDeep
}

// relativeRR parses a record whose owner is relative to zone.
func relativeRR(text, zone string) dns.RR {
	zp := dns.NewZoneParser(strings.NewReader(text), zone, "")
	r, _ := zp.Next()
	if err := zp.Err(); err != nil || r == nil {
		panic(fmt.Sprintf("generator built invalid record %q in %s: %v", text, zone, err))
	}
	return r
}

// secExpected returns the expected rows of the DNSSEC cases and checks
// every row that is not SERVFAIL against the zone data.
func (l *Lab) secExpected() ([]expectedRow, error) {
	var rows []expectedRow
	for _, c := range l.secCases {
		zone := c.Name + "." + secZone
		for _, chk := range c.Checks {
			name := zone
			if chk.Label != "" {
				name = chk.Label + "." + zone
			}
			row := expectedRow{Name: name, Type: chk.Type, Rcode: chk.Rcode, AD: chk.AD, EDE: chk.EDE, Value: "-"}
			if chk.Rcode != dns.RcodeServerFailure {
				out := l.resolve(name, chk.Type)
				if out.Rcode != chk.Rcode {
					return nil, fmt.Errorf("DNSSEC case %s: %s %s: zone data give %s, want %s", c.Name, name,
						dns.Type(chk.Type), dns.RcodeToString[out.Rcode], dns.RcodeToString[chk.Rcode])
				}
				if len(out.Answer) > 0 {
					row.Value = labspec.ShortValue(out.Answer[0])
				}
			}
			rows = append(rows, row)
		}
	}
	return rows, nil
}

// secCaseInfo returns the DNSSEC cases for lab.json.
func (l *Lab) secCaseInfo() []labspec.DNSSECCase {
	var out []labspec.DNSSECCase
	for _, c := range l.secCases {
		zone := c.Name + "." + secZone
		info := labspec.DNSSECCase{Name: c.Name, Zone: zone, Description: c.Description, Signed: c.Signing != nil}
		if c.Signing != nil {
			info.Signer = c.Signing.Signer
		}
		for _, chk := range c.Checks {
			name := zone
			if chk.Label != "" {
				name = chk.Label + "." + zone
			}
			q := labspec.DNSSECQuery{Name: name, Type: dns.Type(chk.Type).String(),
				Rcode: dns.RcodeToString[chk.Rcode], AD: chk.AD, EDE: chk.EDE}
			info.Queries = append(info.Queries, q)
		}
		out = append(out, info)
	}
	return out
}
