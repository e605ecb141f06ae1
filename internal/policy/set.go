// Package policy holds compiled blocklists: immutable sets of name and
// address triggers, built off the query path and matched on it.
//
// A Set stores one 64-bit hash per name, with its verdict, in arrays sorted
// by hash, not a map of strings, so that ten million names take about 13
// bytes each and a lookup reads a bucket index and a few neighbouring keys,
// with no allocation. Two different names have the same hash with a
// probability of about 2^-64 per pair: with ten million entries, a lookup
// wrongly matches with a probability of about 10^-12, which is accepted.
package policy

import (
	"hash/maphash"
	"math/bits"
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
	// Verdict indexes the verdicts of the Set. It must not exceed
	// MaxVerdict.
	Verdict uint32
}

// Each stored value is a verdict index with the Match of its rule in the
// two top bits.
const (
	flagExact = 1 << 31
	flagBelow = 1 << 30
	// MaxVerdict is the largest verdict index a Rule may carry.
	MaxVerdict = flagBelow - 1
)

// Keys and values are stored in chunks of chunkLen entries, so that a list
// of unknown length grows without ever copying the entries stored so far:
// a single array would need a copy at twice the size when it grows, and a
// copy into an exact-size array when it is done.
const (
	chunkBits = 20
	chunkLen  = 1 << chunkBits
	chunkMask = chunkLen - 1
)

// maxBucketBits caps the bucket index at 16 Mi buckets (64 MiB).
const maxBucketBits = 24

// Set is a compiled, immutable list. It is safe for concurrent use.
type Set struct {
	seed maphash.Seed
	// keys holds the hashes of the names, sorted, in chunks; values[c][i]
	// is the value of keys[c][i]. A name has one entry, or two when its
	// Exact and Below rules have different verdicts.
	keys   [][]uint64
	values [][]uint32
	n      int
	// index[b] is the position of the first key whose top bits are b, and
	// index[len(index)-1] is n. shift is 64 minus the number of top bits.
	index []uint32
	shift uint
	// v4 and v6 hold the address rules by prefix length, each sorted.
	v4, v6 prefixTable

	names, duplicates, conflicts int
}

// Builder collects rules for a Set. Names are hashed as they are added, so
// a list of ten million names is never held as strings. It is not safe for
// concurrent use.
type Builder struct {
	set    *Set
	v4, v6 []prefixEntry
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder {
	return &Builder{set: &Set{seed: maphash.MakeSeed()}}
}

// Add adds one rule. It panics if r.Verdict exceeds MaxVerdict.
func (b *Builder) Add(r Rule) {
	if r.Verdict > MaxVerdict {
		panic("policy: verdict index out of range")
	}
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
	value := r.Verdict
	if r.Match&Exact != 0 {
		value |= flagExact
	}
	if r.Match&Below != 0 {
		value |= flagBelow
	}
	if value == r.Verdict {
		return // matches nothing
	}
	b.set.names++
	b.push(b.set.hashName(r.Name), value)
}

// push appends one entry. The first chunk grows by appending, so small
// lists stay small; later chunks are allocated whole.
func (b *Builder) push(key uint64, value uint32) {
	s := b.set
	c := s.n >> chunkBits
	if c == len(s.keys) {
		size := 0
		if c > 0 {
			size = chunkLen
		}
		s.keys = append(s.keys, make([]uint64, 0, size))
		s.values = append(s.values, make([]uint32, 0, size))
	}
	s.keys[c] = append(s.keys[c], key)
	s.values[c] = append(s.values[c], value)
	s.n++
}

// Build returns the Set. The Builder must not be used afterwards. Rules
// that repeat a trigger and verdict are dropped and counted by
// Set.Duplicates. Of rules for one name and Match with different verdicts,
// the one with the lowest verdict index is kept and the others are counted
// by Set.Conflicts.
func (b *Builder) Build() *Set {
	s := b.set
	b.set = nil
	bucketBits := max(bits.Len(uint(s.n))-3, 0)
	bucketBits = min(bucketBits, maxBucketBits)
	s.shift = uint(64 - bucketBits)
	buckets := 1 << bucketBits
	s.index = make([]uint32, buckets+1)
	for c := range s.keys {
		for _, k := range s.keys[c] {
			s.index[s.bucket(k)+1]++
		}
	}
	for i := 1; i <= buckets; i++ {
		s.index[i] += s.index[i-1]
	}
	s.partition(buckets)
	for i := range buckets {
		s.sortRange(int(s.index[i]), int(s.index[i+1]))
	}
	s.compact(buckets)
	s.v4 = newPrefixTable(b.v4)
	s.v6 = newPrefixTable(b.v6)
	return s
}

func (s *Set) bucket(key uint64) uint64 { return key >> s.shift }

func (s *Set) key(i int) uint64   { return s.keys[i>>chunkBits][i&chunkMask] }
func (s *Set) value(i int) uint32 { return s.values[i>>chunkBits][i&chunkMask] }

func (s *Set) set(i int, key uint64, value uint32) {
	s.keys[i>>chunkBits][i&chunkMask] = key
	s.values[i>>chunkBits][i&chunkMask] = value
}

func (s *Set) swap(i, j int) {
	ki, vi := s.key(i), s.value(i)
	s.set(i, s.key(j), s.value(j))
	s.set(j, ki, vi)
}

// partition moves every entry into its bucket in place (an American flag
// sort on the top bits of the keys), so that sorting needs no second copy
// of the entries.
func (s *Set) partition(buckets int) {
	next := slices.Clone(s.index[:buckets])
	for b := range buckets {
		end := s.index[b+1]
		for next[b] < end {
			i := int(next[b])
			target := s.bucket(s.key(i))
			if target == uint64(b) {
				next[b]++
				continue
			}
			s.swap(i, int(next[target]))
			next[target]++
		}
	}
}

// sortRange sorts the entries in [lo, hi) by key, then value. Keys are
// seeded hashes, so a bucket holds four to eight entries on average and
// insertion sort suits it; larger ranges fall back to sort.Sort.
func (s *Set) sortRange(lo, hi int) {
	if hi-lo > 32 {
		sort.Sort(entryRange{s, lo, hi - lo})
		return
	}
	for i := lo + 1; i < hi; i++ {
		for j := i; j > lo && s.less(j, j-1); j-- {
			s.swap(j, j-1)
		}
	}
}

func (s *Set) less(i, j int) bool {
	ki, kj := s.key(i), s.key(j)
	return ki < kj || ki == kj && s.value(i)&MaxVerdict < s.value(j)&MaxVerdict
}

// entryRange sorts n entries of a Set from lo.
type entryRange struct {
	s     *Set
	lo, n int
}

func (r entryRange) Len() int           { return r.n }
func (r entryRange) Less(i, j int) bool { return r.s.less(r.lo+i, r.lo+j) }
func (r entryRange) Swap(i, j int)      { r.s.swap(r.lo+i, r.lo+j) }

// compact merges the entries of each name, which are adjacent once sorted,
// and rebuilds the index for the new positions.
func (s *Set) compact(buckets int) {
	w := 0
	for b := range buckets {
		lo, hi := int(s.index[b]), int(s.index[b+1])
		s.index[b] = uint32(w)
		for i := lo; i < hi; {
			j := i + 1
			for j < hi && s.key(j) == s.key(i) {
				j++
			}
			w = s.merge(i, j, w)
			i = j
		}
	}
	s.index[buckets] = uint32(w)
	s.n = w
	s.trim()
}

// merge writes the entries of one key, found in [lo, hi) in verdict order,
// from position w and returns the position after them.
func (s *Set) merge(lo, hi, w int) int {
	key := s.key(lo)
	if hi-lo == 1 {
		s.set(w, key, s.value(lo))
		return w + 1
	}
	var exact, below uint32
	hasExact, hasBelow := false, false
	for i := lo; i < hi; i++ {
		v := s.value(i)
		verdict := v & MaxVerdict
		duplicate, conflict := true, false
		if v&flagExact != 0 {
			switch {
			case !hasExact:
				exact, hasExact, duplicate = verdict, true, false
			case exact != verdict:
				conflict = true
			}
		}
		if v&flagBelow != 0 {
			switch {
			case !hasBelow:
				below, hasBelow, duplicate = verdict, true, false
			case below != verdict:
				conflict = true
			}
		}
		switch {
		case conflict:
			s.conflicts++
		case duplicate:
			s.duplicates++
		}
	}
	switch {
	case hasExact && hasBelow && exact == below:
		s.set(w, key, exact|flagExact|flagBelow)
		return w + 1
	case hasExact && hasBelow:
		s.set(w, key, exact|flagExact)
		s.set(w+1, key, below|flagBelow)
		return w + 2
	case hasExact:
		s.set(w, key, exact|flagExact)
	default:
		s.set(w, key, below|flagBelow)
	}
	return w + 1
}

// trim drops the chunks that compact emptied and shrinks the last one to
// its length when it is mostly unused.
func (s *Set) trim() {
	chunks := (s.n + chunkMask) >> chunkBits
	clear(s.keys[chunks:])
	clear(s.values[chunks:])
	s.keys, s.values = s.keys[:chunks], s.values[:chunks]
	if chunks == 0 {
		return
	}
	last := chunks - 1
	n := s.n - last<<chunkBits
	s.keys[last] = s.keys[last][:n]
	s.values[last] = s.values[last][:n]
	if cap(s.keys[last]) > 2*n {
		s.keys[last] = slices.Clone(s.keys[last])
		s.values[last] = slices.Clone(s.values[last])
	}
}

// Compile builds a Set from rules.
func Compile(rules []Rule) *Set {
	b := NewBuilder()
	for _, r := range rules {
		b.Add(r)
	}
	return b.Build()
}

// hashName hashes name, lowering ASCII letters on the way, without
// allocating.
func (s *Set) hashName(name string) uint64 {
	var h maphash.Hash
	h.SetSeed(s.seed)
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

// find returns the verdict of the entry for key whose Match includes flag.
func (s *Set) find(key uint64, flag uint32) (uint32, bool) {
	b := s.bucket(key)
	lo, hi := int(s.index[b]), int(s.index[b+1])
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if s.key(mid) < key {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	for i := lo; i < s.n && s.key(i) == key; i++ {
		if v := s.value(i); v&flag != 0 {
			return v & MaxVerdict, true
		}
	}
	return 0, false
}

// MatchName returns the verdict of the most specific rule that matches name,
// a fully qualified name in any letter case. A rule for the name itself
// wins, then rules for the names below each ancestor, the closest first
// (the order of RPZ QNAME triggers). matched is the rule's name.
func (s *Set) MatchName(name string) (verdict uint32, matched string, ok bool) {
	if s.n == 0 {
		return 0, "", false
	}
	if v, ok := s.find(s.hashName(name), flagExact); ok {
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
		if v, ok := s.find(s.hashName(anc), flagBelow); ok {
			return v, anc, true
		}
	}
	if name != "." {
		if v, ok := s.find(s.hashName("."), flagBelow); ok {
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

// Duplicates returns the number of name rules dropped because an earlier
// rule had the same name, Match and verdict.
func (s *Set) Duplicates() int { return s.duplicates }

// Conflicts returns the number of name rules dropped because another rule
// for the same name and Match had a lower verdict index.
func (s *Set) Conflicts() int { return s.conflicts }

// Len returns the number of stored name entries and address rules.
func (s *Set) Len() int { return s.n + s.v4.len() + s.v6.len() }

// MemoryBytes estimates the memory the Set holds.
func (s *Set) MemoryBytes() int64 {
	var n int64
	for c := range s.keys {
		n += int64(cap(s.keys[c]))*8 + int64(cap(s.values[c]))*4
	}
	return n + int64(cap(s.index))*4 + s.v4.bytes() + s.v6.bytes()
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
