// Package policy holds compiled blocklists: immutable sets of name and
// address triggers, built off the query path and matched on it.
//
// A Set stores 64-bit hashes of names in one sorted array, not a map of
// strings, so that ten million names take about 12 bytes each and a lookup
// is a few binary searches with no allocation. Two different names have the
// same hash with a probability of about 2^-64 per pair: with ten million
// entries, a lookup wrongly matches with a probability of about 10^-12,
// which is accepted.
package policy

import (
	"hash/maphash"
	"net/netip"
	"slices"
	"sort"
)

// Match is the set of names a rule applies to.
type Match uint8

const (
	// Exact matches the name itself.
	Exact Match = 1 << iota
	// Below matches every name strictly below the name.
	Below
)

// Rule is one trigger of a list, with the index of its verdict in the
// list's verdict table.
type Rule struct {
	// Name is a canonical name (lower case, fully qualified), for name
	// triggers.
	Name string
	// Match is Exact, Below or both.
	Match Match
	// Prefix is the trigger of an address rule; Name is then empty.
	Prefix netip.Prefix
	// Verdict indexes the verdicts of the Set.
	Verdict uint32
}

// Set is a compiled, immutable list. It is safe for concurrent use.
type Set struct {
	seed maphash.Seed
	// keys are the sorted hashes of "kind byte + name"; values[i] is the
	// verdict of keys[i].
	keys   []uint64
	values []uint32
	// v4 and v6 hold the address rules by prefix length, each sorted.
	v4, v6 prefixTable
	names  int
}

// key kinds: a rule that matches the name itself, or the names below it.
const (
	kindExact = 'E'
	kindBelow = 'B'
)

// chunkSize is the number of keys per chunk while building, so that a large
// list never needs a doubled array: the final arrays are allocated once at
// their exact size.
const chunkSize = 1 << 20

// Builder collects rules for a Set. Names are hashed as they are added, so
// a list of ten million names is never held as strings. It is not safe for
// concurrent use.
type Builder struct {
	set    *Set
	keys   [][]uint64
	values [][]uint32
	n      int
	v4, v6 []prefixEntry
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder {
	return &Builder{set: &Set{seed: maphash.MakeSeed()}}
}

// Add adds one rule.
func (b *Builder) Add(r Rule) {
	if r.Prefix.IsValid() {
		p := r.Prefix.Masked()
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			// Answers hold IPv4 addresses as such: match them.
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		pe := prefixEntry{prefix: p, value: r.Verdict}
		if p.Addr().Is4() {
			b.v4 = append(b.v4, pe)
		} else {
			b.v6 = append(b.v6, pe)
		}
		return
	}
	b.set.names++
	if r.Match&Exact != 0 {
		b.push(b.set.hashName(kindExact, r.Name), r.Verdict)
	}
	if r.Match&Below != 0 {
		b.push(b.set.hashName(kindBelow, r.Name), r.Verdict)
	}
}

func (b *Builder) push(key uint64, value uint32) {
	if b.n%chunkSize == 0 {
		b.keys = append(b.keys, make([]uint64, 0, chunkSize))
		b.values = append(b.values, make([]uint32, 0, chunkSize))
	}
	last := len(b.keys) - 1
	b.keys[last] = append(b.keys[last], key)
	b.values[last] = append(b.values[last], value)
	b.n++
}

// Build returns the Set. The Builder must not be used afterwards. Of two
// rules with the same trigger, one is kept: lists hold one verdict per
// trigger, so which is kept is not specified.
func (b *Builder) Build() *Set {
	s := b.set
	s.keys = make([]uint64, 0, b.n)
	s.values = make([]uint32, 0, b.n)
	for i := range b.keys {
		s.keys = append(s.keys, b.keys[i]...)
		s.values = append(s.values, b.values[i]...)
		b.keys[i], b.values[i] = nil, nil // free each chunk once copied
	}
	sort.Sort(byKey{s.keys, s.values})
	n := 0
	for i := range s.keys {
		if i > 0 && s.keys[i] == s.keys[n-1] {
			continue
		}
		s.keys[n], s.values[n] = s.keys[i], s.values[i]
		n++
	}
	s.keys, s.values = s.keys[:n:n], s.values[:n:n]
	s.v4 = newPrefixTable(b.v4)
	s.v6 = newPrefixTable(b.v6)
	b.set = nil
	return s
}

// byKey sorts keys and their values together.
type byKey struct {
	keys   []uint64
	values []uint32
}

func (k byKey) Len() int           { return len(k.keys) }
func (k byKey) Less(i, j int) bool { return k.keys[i] < k.keys[j] }
func (k byKey) Swap(i, j int) {
	k.keys[i], k.keys[j] = k.keys[j], k.keys[i]
	k.values[i], k.values[j] = k.values[j], k.values[i]
}

// Compile builds a Set from rules.
func Compile(rules []Rule) *Set {
	b := NewBuilder()
	for _, r := range rules {
		b.Add(r)
	}
	return b.Build()
}

// hashName hashes kind and name, lowering ASCII letters on the way, without
// allocating.
func (s *Set) hashName(kind byte, name string) uint64 {
	var h maphash.Hash
	h.SetSeed(s.seed)
	h.WriteByte(kind)
	var buf [64]byte
	for len(name) > 0 {
		n := copy(buf[:], name)
		for i := 0; i < n; i++ {
			if c := buf[i]; 'A' <= c && c <= 'Z' {
				buf[i] = c + 'a' - 'A'
			}
		}
		h.Write(buf[:n])
		name = name[n:]
	}
	return h.Sum64()
}

func (s *Set) find(key uint64) (uint32, bool) {
	i, ok := slices.BinarySearch(s.keys, key)
	if !ok {
		return 0, false
	}
	return s.values[i], true
}

// MatchName returns the verdict of the most specific rule that matches name,
// a fully qualified name in any letter case. A rule for the name itself
// wins, then rules for the names below each ancestor, the closest first
// (the order of RPZ QNAME triggers). matched is the rule's name.
func (s *Set) MatchName(name string) (verdict uint32, matched string, ok bool) {
	if len(s.keys) == 0 {
		return 0, "", false
	}
	if v, ok := s.find(s.hashName(kindExact, name)); ok {
		return v, name, true
	}
	for i := 0; i < len(name); i++ {
		if name[i] != '.' || i+1 >= len(name) {
			continue
		}
		if i > 0 && name[i-1] == '\\' {
			continue // an escaped dot inside a label
		}
		anc := name[i+1:]
		if v, ok := s.find(s.hashName(kindBelow, anc)); ok {
			return v, anc, true
		}
	}
	if name != "." {
		if v, ok := s.find(s.hashName(kindBelow, ".")); ok {
			return v, ".", true
		}
	}
	return 0, "", false
}

// MatchAddr returns the verdict of the longest prefix rule that holds addr.
func (s *Set) MatchAddr(addr netip.Addr) (verdict uint32, matched netip.Prefix, ok bool) {
	addr = addr.Unmap()
	if addr.Is4() {
		return s.v4.match(addr)
	}
	return s.v6.match(addr)
}

// Names returns the number of name rules compiled.
func (s *Set) Names() int { return s.names }

// Len returns the number of keys and address rules.
func (s *Set) Len() int { return len(s.keys) + s.v4.len() + s.v6.len() }

// MemoryBytes estimates the memory the Set holds.
func (s *Set) MemoryBytes() int64 {
	return int64(cap(s.keys))*8 + int64(cap(s.values))*4 + s.v4.bytes() + s.v6.bytes()
}

// prefixEntry is one address rule during compilation.
type prefixEntry struct {
	prefix netip.Prefix
	value  uint32
}

// prefixTable contains address rules grouped by prefix length, longest
// first. Each group is sorted by masked address, so a lookup is one binary
// search per length in use.
type prefixTable struct {
	groups []prefixGroup
}

type prefixGroup struct {
	bits   int
	addrs  []netip.Addr
	values []uint32
}

func newPrefixTable(entries []prefixEntry) prefixTable {
	byBits := map[int][]prefixEntry{}
	for _, e := range entries {
		byBits[e.prefix.Bits()] = append(byBits[e.prefix.Bits()], e)
	}
	var t prefixTable
	for bits, list := range byBits {
		slices.SortStableFunc(list, func(a, b prefixEntry) int { return a.prefix.Addr().Compare(b.prefix.Addr()) })
		list = slices.CompactFunc(list, func(a, b prefixEntry) bool { return a.prefix == b.prefix })
		g := prefixGroup{bits: bits, addrs: make([]netip.Addr, len(list)), values: make([]uint32, len(list))}
		for i, e := range list {
			g.addrs[i], g.values[i] = e.prefix.Addr(), e.value
		}
		t.groups = append(t.groups, g)
	}
	slices.SortFunc(t.groups, func(a, b prefixGroup) int { return b.bits - a.bits })
	return t
}

func (t prefixTable) match(addr netip.Addr) (uint32, netip.Prefix, bool) {
	for _, g := range t.groups {
		p, err := addr.Prefix(g.bits)
		if err != nil {
			continue
		}
		i, ok := slices.BinarySearchFunc(g.addrs, p.Addr(), netip.Addr.Compare)
		if ok {
			return g.values[i], p, true
		}
	}
	return 0, netip.Prefix{}, false
}

func (t prefixTable) len() int {
	n := 0
	for _, g := range t.groups {
		n += len(g.addrs)
	}
	return n
}

func (t prefixTable) bytes() int64 {
	var n int64
	for _, g := range t.groups {
		n += int64(cap(g.addrs))*24 + int64(cap(g.values))*4
	}
	return n
}
