// Package nod keeps the registered domains that a resolver has seen, to
// report newly observed domains (NOD): names that appear for the first time
// in the resolver's traffic, as new phishing and malware domains do. The
// seen-set is a Bloom filter that survives restarts in a state file, and
// the domains first seen recently are kept with their time, from which
// RPZ zone content per age window is built. Serving that zone, and
// deciding what a new domain means, are left to others.
package nod

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Config sets the size and persistence of a Set.
type Config struct {
	// Path is the state file; "" keeps the set in memory only.
	Path string
	// Expected is the number of registered domains the filter is sized
	// for, and FalsePositiveRate the share of never-seen domains it
	// takes for seen once it holds that many.
	Expected          int
	FalsePositiveRate float64
	// WarmUp is the time after a fresh start, without a state file,
	// during which no domain is reported as new: every domain is new to
	// an empty filter.
	WarmUp time.Duration
	// Windows are the age windows of the recent domains, such as 10
	// minutes, 1 hour and 24 hours. The longest bounds how long a
	// domain stays in the recent list.
	Windows []time.Duration
	// MaxRecent bounds the recent list; past it the oldest entries are
	// dropped.
	MaxRecent int
}

// Entry is a registered domain and when it was first seen.
type Entry struct {
	Domain    string    `json:"domain"`
	FirstSeen time.Time `json:"first_seen"`
}

// Set is the seen-set of registered domains. It is safe for concurrent
// use.
type Set struct {
	mu      sync.Mutex
	cfg     Config
	bloom   *Bloom
	created time.Time // when the filter was made empty
	added   uint64    // domains the filter took as new
	recent  []Entry   // in order of FirstSeen
	dropped uint64    // recent entries dropped for MaxRecent
}

// ErrDiscarded wraps the reason a state file was not used: it is
// unreadable, corrupt or sized for another config. Open then returns an
// empty set, which warms up again.
var ErrDiscarded = errors.New("NOD state discarded")

// New returns an empty Set whose warm-up starts at now.
func New(cfg Config, now time.Time) (*Set, error) {
	b, err := NewBloom(cfg.Expected, cfg.FalsePositiveRate)
	if err != nil {
		return nil, err
	}
	cfg.Windows = slices.Clone(cfg.Windows)
	slices.Sort(cfg.Windows)
	return &Set{cfg: cfg, bloom: b, created: now}, nil
}

// Open returns the Set saved at cfg.Path, or a new one when there is no
// file. When the file cannot be used it returns a new Set and an error
// wrapping ErrDiscarded; other errors come with a nil Set.
func Open(cfg Config, now time.Time) (*Set, error) {
	s, err := New(cfg, now)
	if err != nil || cfg.Path == "" {
		return s, err
	}
	err = s.load()
	if err != nil {
		fresh, _ := New(cfg, now)
		return fresh, fmt.Errorf("%w: %w", ErrDiscarded, err)
	}
	return s, nil
}

// Observe adds the registered domain and reports whether the filter took
// it as never seen before, and whether it is reported as new: first seen,
// and outside the warm-up. A reported domain joins the recent list.
func (s *Set) Observe(domain string, now time.Time) (firstSeen, report bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.bloom.Add(domain) {
		return false, false
	}
	s.added++
	if s.warmingUp(now) {
		return true, false
	}
	s.recent = append(s.recent, Entry{Domain: domain, FirstSeen: now})
	s.trim(now)
	return true, true
}

// Seen reports whether domain may have been seen.
func (s *Set) Seen(domain string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bloom.Contains(domain)
}

// WarmingUp reports whether now is within the warm-up of a fresh set.
func (s *Set) WarmingUp(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.warmingUp(now)
}

func (s *Set) warmingUp(now time.Time) bool { return now.Before(s.created.Add(s.cfg.WarmUp)) }

// trim drops recent entries older than the longest window, and the
// oldest past MaxRecent.
func (s *Set) trim(now time.Time) {
	cut := 0
	if n := len(s.cfg.Windows); n > 0 {
		oldest := now.Add(-s.cfg.Windows[n-1])
		for cut < len(s.recent) && !s.recent[cut].FirstSeen.After(oldest) {
			cut++
		}
	}
	if over := len(s.recent) - cut - s.cfg.MaxRecent; s.cfg.MaxRecent > 0 && over > 0 {
		cut += over
		s.dropped += uint64(over)
	}
	if cut > 0 {
		s.recent = slices.Delete(s.recent, 0, cut)
	}
}

// Recent returns the domains first seen within window before now, oldest
// first, in a new slice.
func (s *Set) Recent(window time.Duration, now time.Time) []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trim(now)
	from := now.Add(-window)
	i, _ := slices.BinarySearchFunc(s.recent, from, func(e Entry, t time.Time) int {
		if e.FirstSeen.After(t) {
			return 1
		}
		return -1
	})
	return slices.Clone(s.recent[i:])
}

// Windows returns the configured age windows, shortest first.
func (s *Set) Windows() []time.Duration { return slices.Clone(s.cfg.Windows) }

// Records returns the RPZ records of the domains first seen within window
// before now, for a zone at origin (a fully qualified name): for each
// domain, a CNAME to the root, which is the NXDOMAIN action of RPZ, on the
// domain and on its wildcard, as a NOD zone blocks a domain with all its
// names. The records carry ttl in seconds. An empty result is an empty
// zone apart from its SOA and NS, which the zone server adds.
func (s *Set) Records(window time.Duration, origin string, ttl uint32, now time.Time) []dns.RR {
	recent := s.Recent(window, now)
	rrs := make([]dns.RR, 0, 2*len(recent))
	for _, e := range recent {
		owner := dns.Fqdn(e.Domain) + origin
		for _, name := range []string{owner, "*." + owner} {
			rrs = append(rrs, &dns.CNAME{
				Hdr:    dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: ttl},
				Target: ".",
			})
		}
	}
	return rrs
}

// Stats are the counters of a Set.
type Stats struct {
	// Domains is the number of domains the filter took as new since it
	// was made empty; false positives make it an underestimate.
	Domains uint64
	// Recent is the length of the recent list, and RecentDropped the
	// entries dropped from it for MaxRecent.
	Recent        int
	RecentDropped uint64
	// FillRatio is the share of the filter's bits set.
	FillRatio float64
}

// Stats returns the counters of s. FillRatio scans the filter, so call
// it no more than once per scrape.
func (s *Set) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Domains: s.added, Recent: len(s.recent), RecentDropped: s.dropped, FillRatio: s.bloom.FillRatio()}
}
