package traffic

import (
	"hash/maphash"
	"net/netip"
	"strings"

	"bulwark/internal/intel/events"
)

// DNS qtypes and rcodes that the counts single out.
const (
	qtypeNULL     = 10
	qtypeTXT      = 16
	rcodeNXDomain = 3
)

// maxSetSize bounds the exact address and network sets of a domain per
// window; past it they stop growing, which is enough to cross any
// threshold the detectors use.
const maxSetSize = 64

// DomainWindow is the traffic of one registered domain in one window.
type DomainWindow struct {
	Domain string
	// Queries counts the queries, NXDomain those answered NXDOMAIN,
	// RandomNX those among them whose first label looks random, and
	// TXTNull those of type TXT or NULL.
	Queries, NXDomain, RandomNX, TXTNull int
	// Bytes is the size of the queries and responses.
	Bytes int64
	// subdomains and clients estimate the distinct query names and the
	// distinct client pseudonyms.
	subdomains, clients sketch
	// addrs and networks are the distinct answer addresses and their
	// networks (IPv4 /24, IPv6 /48), up to maxSetSize each.
	addrs    map[netip.Addr]struct{}
	networks map[netip.Prefix]struct{}
	// minTTL is the lowest TTL of an answer address in seconds; valid
	// when addrs is not empty.
	minTTL uint32
}

// Subdomains returns the estimated number of distinct query names.
func (w *DomainWindow) Subdomains() int { return w.subdomains.count() }

// Clients returns the estimated number of distinct clients.
func (w *DomainWindow) Clients() int { return w.clients.count() }

// Addrs returns the number of distinct answer addresses, at most 64.
func (w *DomainWindow) Addrs() int { return len(w.addrs) }

// Networks returns the number of distinct networks of the answer
// addresses, at most 64.
func (w *DomainWindow) Networks() int { return len(w.networks) }

// NXShare returns the share of queries answered NXDOMAIN.
func (w *DomainWindow) NXShare() float64 { return share(w.NXDomain, w.Queries) }

func share(part, whole int) float64 {
	if whole == 0 {
		return 0
	}
	return float64(part) / float64(whole)
}

// window is the traffic of every counted domain in one window.
type window struct {
	domains map[string]*DomainWindow
	max     int
	dropped uint64
	seed    maphash.Seed
}

func newWindow(max int, seed maphash.Seed) *window {
	return &window{domains: make(map[string]*DomainWindow), max: max, seed: seed}
}

// add counts ev against domain. randomNX is set when ev is an NXDOMAIN
// answer with a random-looking first label. It returns nil when the
// window is full and the domain new to it.
func (w *window) add(domain, qname string, ev *events.Event, randomNX bool) *DomainWindow {
	d := w.domains[domain]
	if d == nil {
		if len(w.domains) >= w.max {
			w.dropped++
			return nil
		}
		// Clone, so that the map does not keep the whole query name.
		d = &DomainWindow{Domain: strings.Clone(domain)}
		w.domains[domain] = d
	}
	d.Queries++
	d.Bytes += int64(ev.QuerySize) + int64(ev.ResponseSize)
	d.subdomains.add(maphash.String(w.seed, qname))
	if ev.Client != 0 {
		d.clients.add(mix(ev.Client))
	}
	if ev.QType == qtypeTXT || ev.QType == qtypeNULL {
		d.TXTNull++
	}
	if ev.Answered && ev.Rcode == rcodeNXDomain {
		d.NXDomain++
		if randomNX {
			d.RandomNX++
		}
	}
	d.addAddrs(ev)
	return d
}

func (d *DomainWindow) addAddrs(ev *events.Event) {
	for i := range int(ev.NAddrs) {
		if d.addrs == nil {
			d.addrs = make(map[netip.Addr]struct{})
			d.networks = make(map[netip.Prefix]struct{})
			d.minTTL = ev.TTLs[i]
		}
		d.minTTL = min(d.minTTL, ev.TTLs[i])
		if len(d.addrs) < maxSetSize {
			d.addrs[ev.Addrs[i]] = struct{}{}
		}
		if len(d.networks) < maxSetSize {
			d.networks[network(ev.Addrs[i])] = struct{}{}
		}
	}
}

// network returns the /24 of an IPv4 address and the /48 of an IPv6 one,
// the usual smallest blocks routed on their own.
func network(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, _ := a.Prefix(bits)
	return p
}

// mix spreads a pseudonym's bits; pseudonyms are already keyed hashes, but
// the sketch takes its register from the low bits.
func mix(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	return x
}
