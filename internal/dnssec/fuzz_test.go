package dnssec

import (
	"testing"

	"github.com/miekg/dns"
)

// fuzzSeed packs a message for the fuzz corpus.
func fuzzSeed(f *testing.F, qname string, qtype uint16, rrs ...dns.RR) {
	m := new(dns.Msg)
	m.SetQuestion(qname, qtype)
	m.Ns = rrs
	wire, err := m.Pack()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(wire)
}

// FuzzDenial feeds arbitrary NSEC and NSEC3 records to the proof checks,
// which must return a state, never panic or loop.
func FuzzDenial(f *testing.F) {
	var seed []dns.RR
	for _, n := range nsecChain() {
		seed = append(seed, n)
	}
	fuzzSeed(f, "d.example.", dns.TypeA, seed...)
	seed = seed[:0]
	for _, n := range nsec3Chain(0, true) {
		seed = append(seed, n)
	}
	fuzzSeed(f, "x.w.example.", dns.TypeMX, seed...)
	f.Fuzz(func(t *testing.T, wire []byte) {
		m := new(dns.Msg)
		if m.Unpack(wire) != nil || len(m.Question) != 1 {
			return
		}
		qname := dns.CanonicalName(m.Question[0].Name)
		d := &Denial{Zone: "example."}
		d.Add(m.Ns...)
		b := NewBudget(DefaultLimits)
		d.NXDomain(qname, b)
		d.NoData(qname, m.Question[0].Qtype, b)
		for labels := 0; labels <= dns.CountLabel(qname); labels++ {
			d.Wildcard(qname, labels, b)
		}
	})
}

// FuzzVerify feeds arbitrary RRsets, RRSIGs, DNSKEYs and DS records to the
// signature checks.
func FuzzVerify(f *testing.F) {
	fuzzSeed(f, "www.example.", dns.TypeA,
		rrsOf(f, "www.example. 300 IN A 192.0.2.1",
			"www.example. 300 IN RRSIG A 13 2 300 20270101000000 20260101000000 12345 example. AAAA",
			"example. 300 IN DNSKEY 257 3 13 AAAA",
			"example. 300 IN DS 12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")...)
	f.Fuzz(func(t *testing.T, wire []byte) {
		m := new(dns.Msg)
		if m.Unpack(wire) != nil {
			return
		}
		var rrset []dns.RR
		var sigs []*dns.RRSIG
		var keys []*dns.DNSKEY
		var trust Trust
		for _, rr := range m.Ns {
			switch rr := rr.(type) {
			case *dns.RRSIG:
				sigs = append(sigs, rr)
			case *dns.DNSKEY:
				keys = append(keys, rr)
			case *dns.DS:
				trust.DS = append(trust.DS, rr)
			default:
				if len(rrset) == 0 || rr.Header().Rrtype == rrset[0].Header().Rrtype {
					rrset = append(rrset, rr)
				}
			}
		}
		b := NewBudget(DefaultLimits)
		if len(rrset) > 0 {
			VerifyRRset(rrset, sigs, keys, testNow, b)
		}
		trust.Usable()
		VerifyDNSKEYs(keys, sigs, trust, testNow, b)
	})
}

func rrsOf(f *testing.F, lines ...string) []dns.RR {
	var out []dns.RR
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil {
			f.Fatalf("parse %q: %v", l, err)
		}
		out = append(out, rr)
	}
	return out
}
