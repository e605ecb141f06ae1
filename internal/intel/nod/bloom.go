package nod

import (
	"errors"
	"math"
)

// Bloom is a Bloom filter of strings with a fixed size. Its hash is FNV-1a,
// which does not depend on the process, so a saved filter stays valid
// after a restart. It is not safe for concurrent use.
type Bloom struct {
	bits []uint64
	m    uint64 // number of bits
	k    int    // hash functions per key
}

// Sizes accepted by NewBloom.
const (
	MinExpected = 1
	MaxExpected = 1 << 30
)

// NewBloom returns a filter sized for n keys at a false-positive rate of
// p once it holds them, by the standard Bloom filter sizing: m = −n·ln p /
// (ln 2)² bits and k = m/n·ln 2 hash functions.
func NewBloom(n int, p float64) (*Bloom, error) {
	if n < MinExpected || n > MaxExpected {
		return nil, errors.New("invalid number of keys: use 1 to 2^30")
	}
	if !(p > 0 && p < 1) {
		return nil, errors.New("invalid false-positive rate: use a number above 0 and below 1")
	}
	m := uint64(math.Ceil(-float64(n) * math.Log(p) / (math.Ln2 * math.Ln2)))
	m = (m + 63) &^ 63
	k := max(1, int(math.Round(float64(m)/float64(n)*math.Ln2)))
	return &Bloom{bits: make([]uint64, m/64), m: m, k: k}, nil
}

// Bits returns the size of the filter in bits.
func (b *Bloom) Bits() uint64 { return b.m }

// Hashes returns the number of hash functions.
func (b *Bloom) Hashes() int { return b.k }

// Add adds key and reports whether it was absent before. A key reported
// present may be absent: a false positive.
func (b *Bloom) Add(key string) (added bool) {
	h1, h2 := hashes(key)
	for i := range b.k {
		bit := (h1 + uint64(i)*h2) % b.m
		word, mask := bit/64, uint64(1)<<(bit%64)
		if b.bits[word]&mask == 0 {
			added = true
			b.bits[word] |= mask
		}
	}
	return added
}

// Contains reports whether key may have been added.
func (b *Bloom) Contains(key string) bool {
	h1, h2 := hashes(key)
	for i := range b.k {
		bit := (h1 + uint64(i)*h2) % b.m
		if b.bits[bit/64]&(uint64(1)<<(bit%64)) == 0 {
			return false
		}
	}
	return true
}

// FillRatio returns the share of bits set, from which the current
// false-positive rate is about FillRatio^k.
func (b *Bloom) FillRatio() float64 {
	set := 0
	for _, w := range b.bits {
		for ; w != 0; w &= w - 1 {
			set++
		}
	}
	return float64(set) / float64(b.m)
}

// hashes returns the two hashes whose combinations h1 + i·h2 stand in for
// k independent hashes: FNV-1a 64 of key, and a second one mixed from it,
// made odd.
func hashes(key string) (uint64, uint64) {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= prime
	}
	// The finaliser of SplitMix64 spreads h into an independent-looking
	// second hash.
	z := h + 0x9E3779B97F4A7C15
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	z ^= z >> 31
	return h, z | 1
}
