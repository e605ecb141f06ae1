package resolver

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"bulwark/internal/dnssec"

	"github.com/miekg/dns"
)

// wildcardTypes are the types of the wildcards added to random zones.
var wildcardTypes = [][]uint16{{dns.TypeA}, {dns.TypeTXT}, {dns.TypeA, dns.TypeTXT}, {dns.TypeMX}, {dns.TypeA, dns.TypeMX}}

// addWildcards adds to z wildcards at random depths, nested ones such as
// *.a.*.apex, and names below and beside the wildcards' owners, then drops
// the names that a delegation or a DNAME hides.
func (z randomZone) addWildcards(rng *rand.Rand) {
	label := func() string { return probeLabels[rng.IntN(len(probeLabels))] }
	for range 1 + rng.IntN(5) {
		var rel string
		switch k := rng.IntN(6); {
		case k < 2:
			rel = "*"
		case k < 4:
			rel = "*." + label()
		case k < 5:
			rel = "*." + label() + "." + label()
		default:
			rel = "*." + label() + ".*"
		}
		name := below(rel, z.apex)
		if len(name) > 250 {
			continue
		}
		if _, ok := z.owners[name]; !ok {
			z.owners[name] = wildcardTypes[rng.IntN(len(wildcardTypes))]
		}
		if rng.IntN(2) == 0 {
			// A name below the wildcard's owner, which leaves the
			// wildcard in place.
			if n := below(label(), name); len(n) <= 250 {
				if _, ok := z.owners[n]; !ok {
					z.owners[n] = []uint16{dns.TypeA}
				}
			}
		}
	}
	for name := range z.owners {
		for a := parent(name); a != "" && name != z.apex && a != z.apex; a = parent(a) {
			t := z.owners[a]
			if slices.Contains(t, dns.TypeDNAME) || slices.Contains(t, dns.TypeNS) {
				delete(z.owners, name)
				break
			}
		}
	}
}

// exists reports whether name is an owner of z or an empty non-terminal
// above one.
func (z randomZone) exists(name string) bool {
	for o := range z.owners {
		if dns.IsSubDomain(name, o) {
			return true
		}
	}
	return false
}

// hidden reports whether name lies below a delegation or a DNAME of z,
// and so outside its data.
func (z randomZone) hidden(name string) bool {
	for a := parent(name); a != "" && a != z.apex; a = parent(a) {
		if t := z.owners[a]; slices.Contains(t, dns.TypeDNAME) || slices.Contains(t, dns.TypeNS) {
			return true
		}
		if a == "." {
			break
		}
	}
	return false
}

// expansion returns the wildcard of z that an authoritative server would
// expand for name (RFC 4592 section 3.3.1): the one at name's closest
// encloser, when name does not exist, is in the zone and that wildcard
// exists. It returns "" otherwise.
func (z randomZone) expansion(name string) string {
	if !dns.IsSubDomain(z.apex, name) || name == z.apex || z.exists(name) || z.hidden(name) {
		return ""
	}
	ce := parent(name)
	for !z.exists(ce) {
		ce = parent(ce)
	}
	w := below("*", ce)
	if _, ok := z.owners[w]; !ok {
		return ""
	}
	return w
}

// optOutChain returns the NSEC3 chain of z as nsec3Chain does. With
// optOut, the chain leaves out the unsigned delegations, whose spans get
// the opt-out flag, as some other spans do (RFC 5155 section 7.1).
func (z randomZone) optOutChain(salt string, iterations uint16, optOut bool, rng *rand.Rand, ttl func() uint32) []dns.RR {
	if !optOut {
		return z.nsec3Chain(salt, iterations, func() bool { return false }, ttl)
	}
	signed := randomZone{apex: z.apex, owners: map[string][]uint16{}}
	var unsigned []string
	for o, t := range z.owners {
		if o != z.apex && slices.Contains(t, dns.TypeNS) && !slices.Contains(t, dns.TypeDS) {
			unsigned = append(unsigned, o)
			continue
		}
		signed.owners[o] = t
	}
	chain := signed.nsec3Chain(salt, iterations, func() bool { return rng.IntN(3) == 0 }, ttl)
	for _, o := range unsigned {
		// The names from the delegation up to the first one in the
		// chain are left out: each lies in an opt-out span.
		for n := o; n != z.apex; n = parent(n) {
			h := dns.HashName(n, dns.SHA1, iterations, salt)
			found := false
			for i := 0; i < len(chain); i += 2 {
				rr := chain[i].(*dns.NSEC3)
				owner := strings.ToUpper(firstLabel(rr.Hdr.Name))
				if owner == h {
					found = true
					break
				}
				next := rr.NextDomain
				if owner < next && owner < h && h < next || owner >= next && (h > owner || h < next) {
					rr.Flags = 1
				}
			}
			if found {
				break
			}
		}
	}
	return chain
}

// wildcardRRset returns the RRset of type t at the wildcard w, owned by
// name, with data that differs from one wildcard to the next.
func wildcardRRset(w, name string, t uint16, ttl uint32) []dns.RR {
	h := fnv.New32a()
	h.Write([]byte(w))
	sum := h.Sum32()
	hdr := dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
	switch t {
	case dns.TypeA:
		return []dns.RR{
			&dns.A{Hdr: hdr, A: net.IPv4(192, 0, 2, byte(sum))},
			&dns.A{Hdr: hdr, A: net.IPv4(198, 51, 100, byte(sum>>8))},
		}
	case dns.TypeTXT:
		return []dns.RR{&dns.TXT{Hdr: hdr, Txt: []string{w}}}
	case dns.TypeMX:
		return []dns.RR{&dns.MX{Hdr: hdr, Preference: uint16(sum), Mx: w}}
	}
	panic(fmt.Sprintf("no RRset of type %d", t))
}

// TestAppendWildcardRandomZones learns real wildcard expansions of random
// zones and checks every probe name and several types against what an
// authoritative server would answer: the fast path may decline, but an
// answer must hold the RRset of the wildcard at the name's closest
// encloser, for a name that does not exist and lies in the zone, with a
// proof that dnssec.Denial accepts.
func TestAppendWildcardRandomZones(t *testing.T) {
	start := time.Unix(1800000000, 0)
	apexes := []string{"example.", ".", "a.b-c.d.example.", "x_y.example."}
	ttls := []uint32{5, 60, 600, 3600}
	qtypes := []uint16{dns.TypeA, dns.TypeTXT, dns.TypeMX, dns.TypeAAAA}
	answered, expected, checked := 0, 0, 0
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 11))
		apex := apexes[rng.IntN(len(apexes))]
		z := newRandomZone(rng, apex, 3+rng.IntN(20))
		z.addWildcards(rng)
		ttl := func() uint32 { return ttls[rng.IntN(len(ttls))] }
		nsec3 := rng.IntN(2) == 0
		var chain []dns.RR
		desc := "NSEC"
		if nsec3 {
			salt := make([]byte, rng.IntN(3)*4)
			for i := range salt {
				salt[i] = byte(rng.IntN(256))
			}
			iterations := []uint16{0, 0, 1, 10}[rng.IntN(4)]
			optOut := rng.IntN(4) == 0
			chain = z.optOutChain(hex.EncodeToString(salt), iterations, optOut, rng, ttl)
			desc = fmt.Sprintf("NSEC3 salt %x iterations %d", salt, iterations)
		} else {
			chain = z.nsecChain(ttl)
		}
		full := &dnssec.Denial{Zone: apex}
		sigOf := map[dns.RR]dns.RR{}
		for i := 0; i < len(chain); i += 2 {
			sigOf[chain[i]] = chain[i+1]
			full.Add(chain[i])
		}

		r := &Resolver{cfg: Config{Validation: true, AggressiveNSEC: true, Limits: dnssec.DefaultLimits}}
		soa := &dns.SOA{Hdr: dns.RR_Header{Name: apex, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 3600},
			Ns: "ns.example.", Mbox: "host.example.", Serial: 1, Refresh: 1, Retry: 1, Expire: 1, Minttl: 3600}
		learnNegative := func() {
			auth := []dns.RR{soa, fakeSig(apex, apex, dns.TypeSOA, soa.Hdr.Ttl)}
			keep := rng.Float64()
			for i := 0; i < len(chain); i += 2 {
				if rng.Float64() < keep {
					auth = append(auth, chain[i], chain[i+1])
				}
			}
			r.nsec.learn(apex, outcome{soa: soa, auth: auth}, start)
		}
		negativeFirst := rng.IntN(2) == 0
		if negativeFirst {
			learnNegative()
		}

		// learned holds the wildcard RRsets learned, by wildcard and type.
		learned := map[string]map[uint16]bool{}
		setTTL := map[string]uint32{}
		for w, types := range z.owners {
			if !strings.HasPrefix(w, "*.") || z.hidden(w) {
				continue
			}
			ce := strings.TrimPrefix(w, "*.")
			if w == "*." {
				ce = "."
			}
			for _, t := range types {
				if rng.IntN(5) == 0 {
					continue
				}
				var name string
				for range 5 {
					n := below(probeLabels[rng.IntN(len(probeLabels))], ce)
					if z.expansion(n) == w {
						name = n
						break
					}
				}
				if name == "" {
					continue
				}
				labels := dns.CountLabel(w) - 1
				d := &dnssec.Denial{Zone: apex, NSEC: full.NSEC, NSEC3: full.NSEC3}
				if sec, _ := d.Wildcard(name, labels, dnssec.NewBudget(dnssec.DefaultLimits)); sec != dnssec.Secure {
					continue // the validator would not have accepted it
				}
				var auth []dns.RR
				for _, rr := range d.Used() {
					auth = append(auth, rr, sigOf[rr])
				}
				for i := 0; i < len(chain); i += 2 {
					if rng.IntN(8) == 0 {
						auth = append(auth, chain[i], chain[i+1])
					}
				}
				ttl := ttl()
				rrs := wildcardRRset(w, name, t, ttl)
				sig := fakeSig(apex, w, t, ttl)
				sig.Header().Name = name
				c := outcome{kind: kindAnswer, rrs: rrs, sigs: []dns.RR{sig}, auth: auth, sec: dnssec.Secure, wildcard: true}
				r.nsec.learnWildcard(apex, c, name, t, start)
				if learned[w] == nil {
					learned[w] = map[uint16]bool{}
				}
				learned[w][t] = true
				setTTL[w+dns.TypeToString[t]] = ttl
			}
		}
		if !negativeFirst {
			learnNegative()
		}

		now := start.Add([]time.Duration{0, time.Second, 4 * time.Second}[rng.IntN(3)])
		probes := z.probes(rng, 200)
		for w := range learned {
			// Names right below each wildcard's closest encloser, the
			// ones a flood of random names would use.
			ce := strings.TrimPrefix(w, "*.")
			if w == "*." {
				ce = "."
			}
			for range 10 {
				probes = append(probes, below(probeLabels[rng.IntN(len(probeLabels))]+"q", ce))
			}
		}
		for _, name := range probes {
			if strings.Contains(name, "\\") || len(name) > 254 {
				continue
			}
			want := z.expansion(name)
			for _, qtype := range qtypes {
				checked++
				wantAnswer := want != "" && learned[want][qtype]
				if wantAnswer {
					expected++
				}
				do := rng.IntN(2) == 0
				msg := make([]byte, 12, 512)
				msg, _ = appendWire(msg, name, nil)
				msg = binary.BigEndian.AppendUint16(msg, qtype)
				msg = binary.BigEndian.AppendUint16(msg, dns.ClassINET)
				qlen := len(msg)
				out, an, ns, got := r.AppendWildcard(msg, name, qtype, do, now)
				where := fmt.Sprintf("random zone %d at %s, %s: %s %s (DO %v)", seed, apex, desc, name, dns.TypeToString[qtype], do)
				if !got {
					if len(out) != qlen {
						t.Errorf("%s: declined but wrote %d bytes, want none", where, len(out)-qlen)
					}
					continue
				}
				if !wantAnswer {
					t.Errorf("%s: expanded, want no expansion (the server's wildcard is %q)", where, want)
					continue
				}
				answered++
				m := unpackWildcardAnswer(t, out, an, ns, where)
				var gotRRs, wantRRs []string
				for _, rr := range m.Answer {
					if rr.Header().Name != name {
						t.Errorf("%s: record %v owned by %s, want the question's name", where, rr, rr.Header().Name)
					}
					if rr.Header().Ttl > setTTL[want+dns.TypeToString[qtype]] {
						t.Errorf("%s: TTL %d above the RRset's %d", where, rr.Header().Ttl, setTTL[want+dns.TypeToString[qtype]])
					}
					if s, ok := rr.(*dns.RRSIG); ok {
						if int(s.Labels) != dns.CountLabel(want)-1 {
							t.Errorf("%s: RRSIG labels %d, want %d", where, s.Labels, dns.CountLabel(want)-1)
						}
						continue
					}
					c := dns.Copy(rr)
					c.Header().Ttl = 0
					gotRRs = append(gotRRs, c.String())
				}
				for _, rr := range wildcardRRset(want, name, qtype, 0) {
					wantRRs = append(wantRRs, rr.String())
				}
				slices.Sort(gotRRs)
				slices.Sort(wantRRs)
				if !slices.Equal(gotRRs, wantRRs) {
					t.Errorf("%s: answer\n%s\nwant the RRset of %s\n%s", where, strings.Join(gotRRs, "\n"), want, strings.Join(wantRRs, "\n"))
				}
				if !do {
					if len(m.Ns) != 0 {
						t.Errorf("%s: %d authority records without DO, want none", where, len(m.Ns))
					}
					continue
				}
				d := &dnssec.Denial{Zone: apex}
				d.Add(m.Ns...)
				if sec, err := d.Wildcard(name, dns.CountLabel(want)-1, dnssec.NewBudget(dnssec.DefaultLimits)); sec != dnssec.Secure {
					t.Errorf("%s: the proof %v does not show the expansion: %v (%v)", where, m.Ns, sec, err)
				}
			}
		}
	}
	t.Logf("%d questions checked, %d expansions expected, %d answered", checked, expected, answered)
	if answered < expected/4 {
		t.Errorf("the fast path answered %d of %d expansions, want more for the test to mean something", answered, expected)
	}
}
