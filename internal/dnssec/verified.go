package dnssec

import (
	"crypto/sha256"
	"sync"
)

// verifiedCache remembers signatures that verified, so that the same
// signature over the same data with the same key is not checked again. A
// random-subdomain flood against a signed zone brings the same NSEC3
// records, the same SOA and the same wildcard signature with every answer;
// each would otherwise cost a public-key operation.
//
// An entry is the SHA-256 of the algorithm, the key, the signature and the
// signed data, which holds the RRSIG fields and the whole canonical RRset,
// so a hit stands for the exact check that succeeded before. Validity
// times are checked on every use, outside this cache. Only successes are
// kept: a failure costs the attacker a signature of its own each time.
type verifiedCache struct {
	mu sync.Mutex
	// current and previous are two generations: when current is full it
	// becomes previous and a new current starts, so the least recently
	// added entries go first.
	current, previous map[[sha256.Size]byte]struct{}
	max               int
}

// verifiedEntries is the size of one generation of the verified cache:
// 16,384 entries, about 1 MB each generation.
const verifiedEntries = 16384

var verified = &verifiedCache{max: verifiedEntries}

// verifiedKey returns the cache key of a check of sig over data with the
// key whose base64 text is key.
func verifiedKey(alg uint8, key string, sig, data []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte{alg})
	h.Write([]byte(key))
	h.Write([]byte{0})
	h.Write(sig)
	h.Write(data)
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// contains reports whether the check with key k succeeded before, and
// moves a hit of the previous generation into the current one.
func (c *verifiedCache) contains(k [sha256.Size]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.current[k]; ok {
		return true
	}
	if _, ok := c.previous[k]; ok {
		c.addLocked(k)
		return true
	}
	return false
}

// add records a check that succeeded.
func (c *verifiedCache) add(k [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addLocked(k)
}

func (c *verifiedCache) addLocked(k [sha256.Size]byte) {
	if c.current == nil || len(c.current) >= c.max {
		c.previous, c.current = c.current, make(map[[sha256.Size]byte]struct{}, c.max)
	}
	c.current[k] = struct{}{}
}
