package guard

import (
	"hash/maphash"
	"sync/atomic"

	"github.com/miekg/dns"
)

// knownPerZone is the number of known names kept per slot of the zone
// table: the default table of 4096 zones keeps 65536 names, in 512 KiB.
const knownPerZone = 16

// knownNames remembers names that recently resolved to an answer or to
// NODATA, so that they exist. A protected zone still sends queries for
// them to its servers, and the in-flight cap keeps room for them: the
// names of a random-subdomain flood fail, so they never enter, and
// normal traffic to the zone keeps working during the flood.
//
// The set is a direct-mapped array of 64-bit keyed hashes of fixed size.
// A new name overwrites whatever shared its slot, so the set forgets the
// names seen least recently on average, and two names are confused only
// when their 64-bit hashes are equal. It is safe for concurrent use: each
// slot is one atomic word.
type knownNames struct {
	seed  maphash.Seed
	slots []atomic.Uint64
}

func newKnownNames(size int) *knownNames {
	return &knownNames{seed: maphash.MakeSeed(), slots: make([]atomic.Uint64, max(1, size))}
}

func (k *knownNames) hash(name string) uint64 {
	// 0 marks an empty slot.
	return max(1, maphash.String(k.seed, name))
}

// add records name and its ancestors up to the root: each ancestor of a
// name that exists exists too, at least as an empty non-terminal. They
// include the names sent to the servers of each zone on the way to name
// when queries are minimised (RFC 9156), and the name one label below each
// zone, which Suspect checks.
func (k *knownNames) add(name string) {
	for n := name; n != ""; n = parent(n) {
		h := k.hash(n)
		k.slots[h%uint64(len(k.slots))].Store(h)
	}
}

// parent returns the name one label above name, "." for a top-level
// name and "" for the root.
func parent(name string) string {
	if name == "." {
		return ""
	}
	i, end := dns.NextLabel(name, 0)
	if end {
		return "."
	}
	return name[i:]
}

// contains reports whether name was recorded and not overwritten since.
func (k *knownNames) contains(name string) bool {
	h := k.hash(name)
	return k.slots[h%uint64(len(k.slots))].Load() == h
}

// containsBytes is contains for a name in a byte slice. maphash hashes
// the same bytes alike whether they come as a string or a slice.
func (k *knownNames) containsBytes(name []byte) bool {
	h := max(1, maphash.Bytes(k.seed, name))
	return k.slots[h%uint64(len(k.slots))].Load() == h
}
