package dnssec

import (
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// The test zone example. holds a.example (A), b.c.example (A), so that
// c.example is an empty non-terminal, and the wildcard *.w.example (A).
var testNames = map[string][]uint16{
	"example.":     {dns.TypeSOA, dns.TypeNS, dns.TypeDNSKEY},
	"a.example.":   {dns.TypeA},
	"b.c.example.": {dns.TypeA},
	"*.w.example.": {dns.TypeA},
}

func nsecChain() []*dns.NSEC {
	var names []string
	for n := range testNames {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return Compare(names[i], names[j]) < 0 })
	var out []*dns.NSEC
	for i, n := range names {
		next := names[(i+1)%len(names)]
		types := append([]uint16{dns.TypeNSEC, dns.TypeRRSIG}, testNames[n]...)
		sort.Slice(types, func(a, b int) bool { return types[a] < types[b] })
		out = append(out, &dns.NSEC{
			Hdr:        dns.RR_Header{Name: n, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: 300},
			NextDomain: next, TypeBitMap: types,
		})
	}
	return out
}

func nsecFor(chain []*dns.NSEC, owners ...string) []*dns.NSEC {
	var out []*dns.NSEC
	for _, n := range chain {
		for _, o := range owners {
			if n.Hdr.Name == o {
				out = append(out, n)
			}
		}
	}
	return out
}

func TestCompareCanonicalOrder(t *testing.T) {
	// The order of RFC 4034 section 6.1.
	ordered := []string{"example.", "a.example.", "yljkjljk.a.example.", "Z.a.example.",
		"zABC.a.EXAMPLE.", "z.example.", "\\001.z.example.", "*.z.example.", "\\200.z.example."}
	for i := 0; i+1 < len(ordered); i++ {
		if Compare(ordered[i], ordered[i+1]) >= 0 {
			t.Errorf("Compare(%q, %q) >= 0, want < 0", ordered[i], ordered[i+1])
		}
	}
}

func TestNSECProofs(t *testing.T) {
	chain := nsecChain()
	all := &Denial{Zone: "example.", NSEC: chain}
	for _, tt := range []struct {
		name  string
		check func(*Denial) (Security, *Error)
		d     *Denial
		want  Security
		ede   uint16
	}{
		{"NXDOMAIN", func(d *Denial) (Security, *Error) { return d.NXDomain("d.example.", nil) }, all, Secure, 0},
		{"NXDOMAIN without wildcard proof", func(d *Denial) (Security, *Error) { return d.NXDomain("d.example.", nil) },
			&Denial{Zone: "example.", NSEC: nsecFor(chain, "b.c.example.")}, Bogus, EDENSECMissing},
		{"NXDOMAIN for existing name", func(d *Denial) (Security, *Error) { return d.NXDomain("a.example.", nil) }, all, Bogus, EDENSECMissing},
		{"NODATA", func(d *Denial) (Security, *Error) { return d.NoData("a.example.", dns.TypeAAAA, nil) }, all, Secure, 0},
		{"NODATA for existing type", func(d *Denial) (Security, *Error) { return d.NoData("a.example.", dns.TypeA, nil) }, all, Bogus, EDEBogus},
		{"NODATA for ANY", func(d *Denial) (Security, *Error) { return d.NoData("a.example.", dns.TypeANY, nil) }, all, Bogus, EDEBogus},
		{"empty non-terminal", func(d *Denial) (Security, *Error) { return d.NoData("c.example.", dns.TypeA, nil) }, all, Secure, 0},
		{"wildcard NODATA", func(d *Denial) (Security, *Error) { return d.NoData("x.w.example.", dns.TypeMX, nil) }, all, Secure, 0},
		{"wildcard NODATA for wildcard type", func(d *Denial) (Security, *Error) { return d.NoData("x.w.example.", dns.TypeA, nil) }, all, Bogus, EDEBogus},
		{"wildcard answer", func(d *Denial) (Security, *Error) { return d.Wildcard("x.w.example.", 2, nil) }, all, Secure, 0},
		{"wildcard answer from wrong level", func(d *Denial) (Security, *Error) { return d.Wildcard("x.w.example.", 1, nil) }, all, Bogus, EDENSECMissing},
		{"wildcard answer without proof", func(d *Denial) (Security, *Error) { return d.Wildcard("x.w.example.", 2, nil) },
			&Denial{Zone: "example."}, Bogus, EDENSECMissing},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.check(tt.d)
			if got != tt.want {
				t.Fatalf("got %v (%v), want %v", got, err, tt.want)
			}
			if tt.want != Secure && (err == nil || err.EDE != tt.ede) {
				t.Errorf("error %v, want EDE %d", err, tt.ede)
			}
		})
	}
}

func TestNSECDelegationProof(t *testing.T) {
	// The parent's NSEC at an unsigned delegation: NS without DS or SOA.
	d := &Denial{Zone: "example.", NSEC: []*dns.NSEC{{
		Hdr:        dns.RR_Header{Name: "sub.example.", Rrtype: dns.TypeNSEC, Class: dns.ClassINET},
		NextDomain: "z.example.", TypeBitMap: []uint16{dns.TypeNS, dns.TypeRRSIG, dns.TypeNSEC},
	}}}
	if got, err := d.NoData("sub.example.", dns.TypeDS, nil); got != Secure {
		t.Errorf("DS at unsigned delegation: %v (%v), want secure", got, err)
	}
	if got, _ := d.NoData("sub.example.", dns.TypeA, nil); got != Bogus {
		t.Errorf("A at delegation from the parent: %v, want bogus", got)
	}
	if got, _ := d.NXDomain("www.sub.example.", nil); got != Bogus {
		t.Errorf("NXDOMAIN below a delegation: %v, want bogus", got)
	}
}

// nsec3Chain hashes the test names and their empty non-terminals.
func nsec3Chain(iterations uint16, optOut bool) []*dns.NSEC3 {
	names := map[string][]uint16{"c.example.": nil, "w.example.": nil}
	for n, types := range testNames {
		names[n] = types
	}
	type hashed struct {
		hash  string
		types []uint16
	}
	var list []hashed
	for n, types := range names {
		list = append(list, hashed{dns.HashName(n, dns.SHA1, iterations, "ab"), types})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].hash < list[j].hash })
	var out []*dns.NSEC3
	for i, h := range list {
		n := &dns.NSEC3{
			Hdr:  dns.RR_Header{Name: strings.ToLower(h.hash) + ".example.", Rrtype: dns.TypeNSEC3, Class: dns.ClassINET, Ttl: 300},
			Hash: dns.SHA1, Iterations: iterations, Salt: "ab", SaltLength: 1,
			NextDomain: list[(i+1)%len(list)].hash, HashLength: 20, TypeBitMap: h.types,
		}
		if optOut {
			n.Flags = 1
		}
		out = append(out, n)
	}
	return out
}

func TestNSEC3Proofs(t *testing.T) {
	plain := &Denial{Zone: "example.", NSEC3: nsec3Chain(0, false)}
	optOut := &Denial{Zone: "example.", NSEC3: nsec3Chain(0, true)}
	tooMany := &Denial{Zone: "example.", NSEC3: nsec3Chain(200, false)}
	for _, tt := range []struct {
		name  string
		check func(*Denial) (Security, *Error)
		d     *Denial
		want  Security
		ede   uint16
	}{
		{"NXDOMAIN", func(d *Denial) (Security, *Error) { return d.NXDomain("d.example.", nil) }, plain, Secure, 0},
		{"NXDOMAIN deep", func(d *Denial) (Security, *Error) { return d.NXDomain("x.y.a.example.", nil) }, plain, Secure, 0},
		{"NXDOMAIN opt-out", func(d *Denial) (Security, *Error) { return d.NXDomain("d.example.", nil) }, optOut, Insecure, 0},
		{"NXDOMAIN for existing name", func(d *Denial) (Security, *Error) { return d.NXDomain("a.example.", nil) }, plain, Bogus, EDEBogus},
		{"NODATA", func(d *Denial) (Security, *Error) { return d.NoData("a.example.", dns.TypeAAAA, nil) }, plain, Secure, 0},
		{"NODATA for existing type", func(d *Denial) (Security, *Error) { return d.NoData("a.example.", dns.TypeA, nil) }, plain, Bogus, EDEBogus},
		{"NODATA for ANY", func(d *Denial) (Security, *Error) { return d.NoData("a.example.", dns.TypeANY, nil) }, plain, Bogus, EDEBogus},
		{"empty non-terminal", func(d *Denial) (Security, *Error) { return d.NoData("c.example.", dns.TypeA, nil) }, plain, Secure, 0},
		{"wildcard NODATA", func(d *Denial) (Security, *Error) { return d.NoData("x.w.example.", dns.TypeMX, nil) }, plain, Secure, 0},
		{"DS in opt-out span", func(d *Denial) (Security, *Error) { return d.NoData("u.example.", dns.TypeDS, nil) }, optOut, Insecure, 0},
		{"DS without opt-out", func(d *Denial) (Security, *Error) { return d.NoData("u.example.", dns.TypeDS, nil) }, plain, Bogus, EDENSECMissing},
		{"wildcard answer", func(d *Denial) (Security, *Error) { return d.Wildcard("x.w.example.", 2, nil) }, plain, Secure, 0},
		{"too many iterations", func(d *Denial) (Security, *Error) { return d.NXDomain("d.example.", nil) }, tooMany, Insecure, EDEUnsupportedIterations},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.check(tt.d)
			if got != tt.want {
				t.Fatalf("got %v (%v), want %v", got, err, tt.want)
			}
			if tt.ede != 0 && (err == nil || err.EDE != tt.ede) {
				t.Errorf("error %v, want EDE %d", err, tt.ede)
			}
		})
	}
}

func TestNSEC3HashBudget(t *testing.T) {
	d := &Denial{Zone: "example.", NSEC3: nsec3Chain(0, false)}
	b := NewBudget(Limits{MaxKeyTagCollisions: 4, MaxSignatureValidations: 8, MaxNSEC3Hashes: 3, MaxNSEC3Iterations: 50})
	got, err := d.NXDomain("a.b.c.d.e.f.example.", b)
	if got != Bogus || !b.Spent {
		t.Errorf("deep name with 3 hashes: %v (%v), spent %v; want bogus at the limit", got, err, b.Spent)
	}
}

// rootNSEC3 returns the NSEC3 chain of a root zone holding the apex, "a."
// and the wildcard "*.".
func rootNSEC3() []*dns.NSEC3 {
	var hashes []string
	for _, n := range []string{".", "a.", "*."} {
		hashes = append(hashes, dns.HashName(n, dns.SHA1, 0, "ab"))
	}
	slices.Sort(hashes)
	var out []*dns.NSEC3
	for i, h := range hashes {
		out = append(out, &dns.NSEC3{
			Hdr:  dns.RR_Header{Name: strings.ToLower(h) + ".", Rrtype: dns.TypeNSEC3, Class: dns.ClassINET, Ttl: 300},
			Hash: dns.SHA1, Salt: "ab", SaltLength: 1, HashLength: 20,
			NextDomain: hashes[(i+1)%len(hashes)], TypeBitMap: []uint16{dns.TypeA},
		})
	}
	return out
}

// TestNSEC3RootWildcard checks that the wildcard of the root zone is "*.":
// a name below the root is not proven absent while "*." exists.
func TestNSEC3RootWildcard(t *testing.T) {
	d := &Denial{Zone: ".", NSEC3: rootNSEC3()}
	if got, err := d.NXDomain("b.", nil); got == Secure {
		t.Errorf("NXDOMAIN for b. with the wildcard *. in the zone: %v (%v), want not secure", got, err)
	}
	d = &Denial{Zone: ".", NSEC3: rootNSEC3()}
	if got, err := d.NoData("b.", dns.TypeMX, nil); got != Secure {
		t.Errorf("NODATA for MX at b., from the wildcard *.: %v (%v), want secure", got, err)
	}
}

// TestNSEC3HashesCharged checks that a NODATA check and then an NXDOMAIN
// check on one Denial charge each name's hash once: x.y.a.example. needs
// four, for itself, y.a.example., a.example. and *.a.example.
func TestNSEC3HashesCharged(t *testing.T) {
	d := &Denial{Zone: "example.", NSEC3: nsec3Chain(0, false)}
	b := NewBudget(Limits{MaxKeyTagCollisions: 4, MaxSignatureValidations: 8, MaxNSEC3Hashes: 4, MaxNSEC3Iterations: 50})
	if got, _ := d.NoData("x.y.a.example.", dns.TypeA, b); got == Secure {
		t.Fatal("NODATA for x.y.a.example. is secure, want a failed proof")
	}
	if got, err := d.NXDomain("x.y.a.example.", b); got != Secure {
		t.Errorf("NXDOMAIN for x.y.a.example. with 4 hashes after the NODATA check: %v (%v), want secure", got, err)
	}
}

func TestDenialAddKeepsProofRecords(t *testing.T) {
	nsec := &dns.NSEC{Hdr: dns.RR_Header{Name: "a.example.", Rrtype: dns.TypeNSEC}, NextDomain: "c.example."}
	nsec3 := &dns.NSEC3{Hdr: dns.RR_Header{Name: "abc.example.", Rrtype: dns.TypeNSEC3}}
	soa := &dns.SOA{Hdr: dns.RR_Header{Name: "example.", Rrtype: dns.TypeSOA}}
	sig := &dns.RRSIG{Hdr: dns.RR_Header{Name: "a.example.", Rrtype: dns.TypeRRSIG}, TypeCovered: dns.TypeNSEC}
	d := &Denial{Zone: "example."}
	d.Add(soa, nsec, sig, nsec3)
	if len(d.NSEC) != 1 || d.NSEC[0] != nsec {
		t.Errorf("NSEC = %v, want only %v", d.NSEC, nsec)
	}
	if len(d.NSEC3) != 1 || d.NSEC3[0] != nsec3 {
		t.Errorf("NSEC3 = %v, want only %v", d.NSEC3, nsec3)
	}
}
