package indicator

import (
	"sort"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// Set is a set of indicators by name that produces an RPZ zone: each name
// and its subdomains answer NXDOMAIN (CNAME to the root). It implements
// the Source interface of internal/xfr and is safe for concurrent use.
type Set struct {
	zone string
	ttl  uint32

	mu      sync.RWMutex
	version uint64
	byName  map[string]Indicator
}

// NewSet returns an empty set publishing under zone with record TTL ttl
// in seconds.
func NewSet(zone string, ttl uint32) *Set {
	return &Set{zone: dns.CanonicalName(zone), ttl: ttl, byName: map[string]Indicator{}}
}

// Replace makes ins the whole content of the set. A later indicator of a
// name replaces an earlier one.
func (s *Set) Replace(ins []Indicator) {
	next := make(map[string]Indicator, len(ins))
	for _, in := range ins {
		next[in.Name] = in
	}
	s.mu.Lock()
	s.byName = next
	s.version++
	s.mu.Unlock()
}

// Put adds or replaces one indicator.
func (s *Set) Put(in Indicator) {
	s.mu.Lock()
	s.byName[in.Name] = in
	s.version++
	s.mu.Unlock()
}

// Remove removes the indicator of name, fully qualified.
func (s *Set) Remove(name string) {
	s.mu.Lock()
	delete(s.byName, name)
	s.version++
	s.mu.Unlock()
}

// List returns the indicators sorted by name.
func (s *Set) List() []Indicator {
	s.mu.RLock()
	out := make([]Indicator, 0, len(s.byName))
	for _, in := range s.byName {
		out = append(out, in)
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Version returns a counter that changes on every change of the set.
func (s *Set) Version() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.version
}

// Records returns the RPZ records of the set: "name.zone CNAME ." and
// "*.name.zone CNAME ." for each indicator, the RPZ action NXDOMAIN.
func (s *Set) Records() []dns.RR {
	list := s.List()
	out := make([]dns.RR, 0, 2*len(list))
	for _, in := range list {
		owner := strings.TrimSuffix(in.Name, ".") + "." + s.zone
		for _, name := range []string{owner, "*." + owner} {
			out = append(out, &dns.CNAME{
				Hdr:    dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: s.ttl},
				Target: ".",
			})
		}
	}
	return out
}
