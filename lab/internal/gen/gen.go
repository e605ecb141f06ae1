// Package gen builds the lab internet: a root zone, real TLDs, zones for
// popular names, hosting-provider and CDN zones and a set of deliberately
// broken delegations. It also writes the configs of the Knot DNS, NSD and
// labstub processes that serve them, and the expected answers, which it
// derives from the generated zone data.
//
// Generation is deterministic: every random choice comes from a PRNG seeded
// with a fixed seed and the name it concerns, and all output is written in
// sorted order, so the same inputs give byte-identical files.
package gen

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"

	"github.com/miekg/dns"

	"bulwark/lab/labspec"
)

// seed is the fixed PRNG seed of the generator. Changing it changes every
// generated address, timer and record choice.
const seed = "bulwark-lab-1"

// Options are the inputs of one generation.
type Options struct {
	DataDir    string // directory with popular.csv and tlds.txt
	OutDir     string // lab directory; made absolute by Generate
	PortOffset int    // added to port 53 and port 5300
	// PopularZones is how many registered domains are taken from the
	// popular names, in rank order; 0 means DefaultPopularZones.
	PopularZones int
	// ExtraTLDs is how many TLDs are added beyond those the popular names
	// use.
	ExtraTLDs int
}

// Default values of Options.
const (
	DefaultPopularZones = 2500
	DefaultExtraTLDs    = 40
)

// Lab is the whole generated lab in memory.
type Lab struct {
	opts Options
	// policy names the cases of the protective flavour.
	policy    labspec.Policy
	zones     map[string]*Zone
	instances []*instance
	byInst    map[string]*instance
	stubs     []*stubListener
	providers []provider
	// hosts maps a name server host name to its addresses.
	hosts map[string][]string

	popular  []*popularZone
	tlds     []string
	special  specialNames
	secCases []secCase
	expected []expectedRow
	queries  []query
}

// popularZone is a registered domain taken from the popular names.
type popularZone struct {
	Zone  *Zone
	Rank  int           // best rank of any name in the zone
	Names []popularName // popular names at or below the apex
}

// Generate builds the lab in memory and checks its invariants; Write then
// stores it in opts.OutDir.
func Generate(opts Options) (*Lab, error) {
	if opts.PopularZones <= 0 {
		opts.PopularZones = DefaultPopularZones
	}
	if opts.ExtraTLDs < 0 {
		return nil, fmt.Errorf("invalid extra TLD count %d: want 0 or more", opts.ExtraTLDs)
	}
	out, err := filepath.Abs(opts.OutDir)
	if err != nil {
		return nil, fmt.Errorf("resolve lab directory %q: %w", opts.OutDir, err)
	}
	opts.OutDir = out

	l := &Lab{opts: opts, zones: map[string]*Zone{}, hosts: map[string][]string{}}
	if err := l.build(); err != nil {
		return nil, err
	}
	if err := l.check(); err != nil {
		return nil, fmt.Errorf("generated lab is inconsistent: %w", err)
	}
	if err := l.makeExpected(); err != nil {
		return nil, err
	}
	l.makeQueries()
	return l, nil
}

func (l *Lab) build() error {
	l.instances = newInstances()
	l.byInst = map[string]*instance{}
	for _, in := range l.instances {
		l.byInst[in.Name] = in
	}
	l.addRoot2018Instances()
	l.providers = newProviders()

	popularNames, err := readPopular(l.opts.DataDir)
	if err != nil {
		return err
	}
	tldSet, tldList, err := readTLDs(l.opts.DataDir)
	if err != nil {
		return err
	}
	if err := l.choosePopular(popularNames, tldSet); err != nil {
		return err
	}
	l.chooseTLDs(tldSet, tldList)

	l.stubs = newStubListeners(entNXDOMAINENT, "qmin")
	l.buildRoot()
	l.buildTLDs()
	l.buildProviders()
	l.buildCDNs()
	if err := l.buildSpecial(); err != nil {
		return err
	}
	l.buildDNSSEC()
	for _, pz := range l.popular {
		l.buildPopular(pz)
		l.signPopular(pz)
	}
	l.signInfrastructure()
	return l.link()
}

// addZone registers z; a second zone with the same name is a generator bug.
func (l *Lab) addZone(z *Zone) *Zone {
	if _, ok := l.zones[z.Name]; ok {
		panic(fmt.Sprintf("zone %s generated twice", z.Name))
	}
	l.zones[z.Name] = z
	return z
}

// addHost records the addresses of a name server host.
func (l *Lab) addHost(name string, addrs ...string) {
	name = strings.ToLower(name)
	for _, a := range addrs {
		if !containsString(l.hosts[name], a) {
			l.hosts[name] = append(l.hosts[name], a)
		}
	}
}

// findZone returns the deepest zone at or above name.
func (l *Lab) findZone(name string) *Zone {
	for n := strings.ToLower(name); ; n = parentName(n) {
		if z, ok := l.zones[n]; ok {
			return z
		}
		if n == "." {
			return nil
		}
	}
}

// sortedZones returns every zone in canonical name order.
func (l *Lab) sortedZones() []*Zone {
	out := make([]*Zone, 0, len(l.zones))
	for _, z := range l.zones {
		out = append(out, z)
	}
	sort.Slice(out, func(i, j int) bool { return canonicalLess(out[i].Name, out[j].Name) })
	return out
}

// rng returns a PRNG for one decision about one name, independent of the
// order in which names are processed.
func rng(purpose, name string) *rand.Rand {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s|%s|%s", seed, purpose, name)
	s := h.Sum64()
	return rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15))
}

func pick[T any](r *rand.Rand, options []T) T {
	return options[r.IntN(len(options))]
}

// hashIPv4 returns an address in 198.18.0.0/15 (RFC 2544 benchmarking
// space) chosen by name.
func hashIPv4(name string) string {
	r := rng("ipv4", name)
	n := r.IntN(1 << 17)
	host := n%254 + 1 // avoid .0 and .255 so no address looks like a network or broadcast
	return fmt.Sprintf("198.%d.%d.%d", 18+(n>>16), (n>>8)&0xff, host)
}

// hashIPv6 returns an address in 2001:db8::/32 (RFC 3849 documentation
// space) chosen by name.
func hashIPv6(name string) string {
	r := rng("ipv6", name)
	return fmt.Sprintf("2001:db8:%x:%x::%x", r.IntN(0x10000), r.IntN(0x10000), r.IntN(0xfff)+1)
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// newSOA builds a SOA record with timers chosen by name. The primary is the
// first NS name.
func newSOA(z *Zone, r *rand.Rand) *dns.SOA {
	ttl := pick(r, []uint32{3600, 7200, 21600, 86400})
	refresh := pick(r, []uint32{3600, 7200, 10800, 14400, 43200})
	retry := pick(r, []uint32{600, 900, 1800, 3600})
	expire := pick(r, []uint32{604800, 1209600, 2419200})
	minimum := pick(r, []uint32{300, 600, 900, 1800, 3600})
	serial := 2026080100 + r.IntN(60)
	rname := "hostmaster." + z.Name
	if z.Name == "." {
		rname = "hostmaster.root-servers.net."
	}
	return rr("%s %d IN SOA %s %s %d %d %d %d %d",
		z.Name, ttl, z.NS[0], rname, serial, refresh, retry, expire, minimum).(*dns.SOA)
}
