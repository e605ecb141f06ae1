// Package cache stores what the resolver learns: RRsets with their trust
// rank, negative answers (RFC 2308) and whole responses packed for the hot
// path. All three share one memory budget counted in bytes, and every TTL is
// clamped by the configured minimum and maximum and counts down from the time
// of storing. Names are compared without regard to case (RFC 4343).
//
// The cache does not decide what is trustworthy: the resolver checks
// bailiwick before storing and passes a rank.
package cache

import (
	"strings"
	"time"

	"bulwark/internal/dnssec"

	"github.com/miekg/dns"
)

// Rank orders data by trust as RFC 2181 section 5.4.1 does: a stored RRset is
// only replaced by one of equal or higher rank, unless it has expired.
type Rank uint8

const (
	// RankGlue is an address from the additional section of a referral.
	RankGlue Rank = iota + 1
	// RankReferral is an NS RRset from the authority section of a referral.
	RankReferral
	// RankAnswer is data from the answer section of an authoritative answer.
	RankAnswer
)

// Config sets the budget and TTL bounds of a Cache.
type Config struct {
	// MaxBytes bounds the memory of the cache, estimated per entry.
	MaxBytes int64
	// MinTTL and MaxTTL clamp every positive TTL.
	MinTTL, MaxTTL time.Duration
	// MaxNegativeTTL caps the TTL of negative answers; 0 means they are
	// not cached.
	MaxNegativeTTL time.Duration
	// StaleMaxAge is how long past its expiry an entry may still be served
	// stale (RFC 8767); 0 turns serve-stale off.
	StaleMaxAge time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Cache is the shared cache of one resolver. It is safe for concurrent use.
type Cache struct {
	cfg     Config
	records *lru[*entry]
	answers *lru[*Packed]
	now     func() time.Time
}

// entry is a positive RRset or a negative answer.
type entry struct {
	rrs   []dns.RR // TTLs hold the clamped TTL at storing time
	sigs  []dns.RR
	proof []dns.RR
	rank  Rank
	// security is the DNSSEC validation state of the data.
	security dnssec.Security
	reason   *dnssec.Error
	stored   time.Time
	expires  time.Time
	// For negative entries: nxdomain tells NXDOMAIN from NODATA, soa is the
	// SOA to return in the authority section.
	negative bool
	nxdomain bool
	soa      *dns.SOA
}

// Key kinds keep RRsets and negative answers for one name apart.
const (
	kindRRset    = 'R'
	kindNoData   = 'D'
	kindNXDomain = 'X'
)

// New returns an empty cache. Half of MaxBytes goes to RRsets and negative
// answers, half to packed responses.
func New(cfg Config) *Cache {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Cache{
		cfg:     cfg,
		records: newLRU[*entry](cfg.MaxBytes / 2),
		answers: newLRU[*Packed](cfg.MaxBytes / 2),
		now:     now,
	}
}

func recordKey(kind byte, name string, qtype uint16) string {
	var b strings.Builder
	b.Grow(len(name) + 3)
	b.WriteByte(kind)
	b.WriteByte(byte(qtype >> 8))
	b.WriteByte(byte(qtype))
	b.WriteString(strings.ToLower(name))
	return b.String()
}

// ClampTTL bounds a TTL in seconds by the configured minimum and maximum.
func (c *Cache) ClampTTL(ttl uint32) uint32 {
	minTTL := uint32(c.cfg.MinTTL / time.Second)
	maxTTL := uint32(c.cfg.MaxTTL / time.Second)
	if ttl < minTTL {
		ttl = minTTL
	}
	if maxTTL > 0 && ttl > maxTTL {
		ttl = maxTTL
	}
	return ttl
}

// remaining returns the whole seconds left before expires, or false when the
// entry has expired.
func remaining(now, expires time.Time) (uint32, bool) {
	d := expires.Sub(now)
	if d <= 0 {
		return 0, false
	}
	return uint32(d / time.Second), true
}

// Stats returns the number of cached RRsets and negative answers, of packed
// responses, and the estimated bytes of both.
func (c *Cache) Stats() (records, answers int, bytes int64) {
	records, rb := c.records.stats()
	answers, ab := c.answers.stats()
	return records, answers, rb + ab
}

// Usage is the size of a Cache at one moment, for metrics.
type Usage struct {
	// RRsets counts cached RRsets and negative answers, and RRsetBytes is
	// their estimated size in bytes.
	RRsets     int
	RRsetBytes int64
	// Answers counts packed responses, and AnswerBytes is their estimated
	// size in bytes.
	Answers     int
	AnswerBytes int64
	// MaxBytes is the budget of both together.
	MaxBytes int64
}

// Usage returns the entries and estimated bytes of the RRset and answer
// caches. It takes the lock of each shard in turn, so the numbers of one
// call are not one atomic snapshot.
func (c *Cache) Usage() Usage {
	u := Usage{MaxBytes: c.cfg.MaxBytes}
	u.RRsets, u.RRsetBytes = c.records.stats()
	u.Answers, u.AnswerBytes = c.answers.stats()
	return u
}

// Flush removes every RRset, negative answer and packed response for zone
// and the names below it, and returns how many entries it removed.
func (c *Cache) Flush(zone string) int {
	zone = dns.CanonicalName(zone)
	n := c.records.deleteIf(func(key string) bool {
		return dns.IsSubDomain(zone, key[3:])
	})
	n += c.answers.deleteIf(func(key string) bool {
		if len(key) < 3 {
			return false
		}
		name, _, err := dns.UnpackDomainName([]byte(key[:len(key)-3]), 0)
		return err == nil && dns.IsSubDomain(zone, name)
	})
	return n
}
