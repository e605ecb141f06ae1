// Package rrl limits the rate of UDP responses per client network prefix
// (response rate limiting), so that Bulwark cannot be used to flood a victim
// whose address an attacker puts in spoofed queries. Each prefix has a token
// bucket in a fixed-size table of atomic words: a check costs a hash and a
// compare-and-swap, allocates nothing and takes no lock.
//
// What to send in place of a limited response, and which clients are exempt
// for other reasons (such as a valid DNS cookie), is left to the server.
package rrl

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"time"
)

// Action is what the server does with a response.
type Action uint8

const (
	// Send means the response goes out.
	Send Action = iota
	// Slip means a truncated empty response goes out in its place, so
	// that a real client retries over TCP, which cannot be spoofed.
	Slip
	// Drop means nothing is sent.
	Drop
)

// Config sets up a Limiter.
type Config struct {
	// Rate is the responses per second allowed to one prefix, at least 1.
	Rate int
	// Burst is the bucket size: the responses a quiet prefix may get at
	// once. 1 to MaxBurst.
	Burst int
	// Slip makes every Slip-th limited response a truncated one; the
	// others are dropped. 0 drops them all, 1 truncates them all. At most
	// MaxSlip.
	Slip int
	// IPv4Prefix and IPv6Prefix are the prefix lengths that group client
	// addresses, 1 to 32 and 1 to 64.
	IPv4Prefix, IPv6Prefix int
	// TableSize is the number of buckets, a power of two. Prefixes whose
	// hashes collide share a bucket or take it from each other.
	TableSize int
	// Exempt lists the networks never limited.
	Exempt []netip.Prefix
}

// Bounds of Config fields, set by the layout of a bucket word.
const (
	MaxBurst = 1<<16 - 1
	MaxSlip  = 15
)

// A bucket is one uint64: a 12-bit tag of the prefix hash, whose top bit
// is always set so that a used bucket is never 0, a 4-bit count
// of limited responses for Slip, 16 bits of tokens, and the time of the
// last refill in milliseconds, wrapping every 49 days.
const (
	tagShift   = 52
	slipShift  = 48
	tokenShift = 32
)

// Limiter holds the token buckets. It is safe for concurrent use.
type Limiter struct {
	cfg     Config
	buckets []atomic.Uint64
	mask    uint64
	seed    uint64
	v4Mask  uint32
	v6Mask  uint64
	start   time.Time

	slipped, dropped atomic.Uint64
}

// New returns a Limiter for cfg, which must be valid.
func New(cfg Config) *Limiter {
	return &Limiter{
		cfg:     cfg,
		buckets: make([]atomic.Uint64, cfg.TableSize),
		mask:    uint64(cfg.TableSize - 1),
		seed:    rand.Uint64(),
		v4Mask:  ^uint32(0) << (32 - cfg.IPv4Prefix),
		v6Mask:  ^uint64(0) << (64 - cfg.IPv6Prefix),
		start:   time.Now(),
	}
}

// Now returns the time in the Limiter's unit, milliseconds since New, as
// Check takes it. Callers may read it once for a batch of packets.
func (l *Limiter) Now() uint32 {
	return uint32(time.Since(l.start).Milliseconds())
}

// Check takes a token from the bucket of client's prefix at now (see Now)
// and returns Send, or, when the bucket is empty, Slip or Drop. It does not
// look at Exempt, which callers check only for limited responses.
func (l *Limiter) Check(client netip.Addr, now uint32) Action {
	h := l.hash(client)
	b := &l.buckets[h&l.mask]
	tag := h>>(tagShift+1) | 1<<11
	for {
		old := b.Load()
		next, action := l.take(old, tag, now)
		if b.CompareAndSwap(old, next) {
			return action
		}
	}
}

// take returns the bucket word after one response at now, and the action.
func (l *Limiter) take(word, tag uint64, now uint32) (uint64, Action) {
	tokens, last, slip := uint64(l.cfg.Burst), now, uint64(0)
	if word != 0 && word>>tagShift == tag {
		tokens = word >> tokenShift & 0xffff
		slip = word >> slipShift & 0xf
		last = uint32(word)
		tokens, last = l.refill(tokens, last, now)
	}
	action := Send
	switch {
	case tokens > 0:
		tokens--
	case l.cfg.Slip == 0:
		action = Drop
	default:
		slip = (slip + 1) % uint64(l.cfg.Slip)
		action = Drop
		if slip == 0 {
			action = Slip
		}
	}
	return tag<<tagShift | slip<<slipShift | tokens<<tokenShift | uint64(last), action
}

// refill adds the tokens earned since last. The refill time advances only
// by the time those whole tokens took, so that at low rates the fractions
// add up instead of being lost.
func (l *Limiter) refill(tokens uint64, last, now uint32) (uint64, uint32) {
	elapsed := uint64(now - last)
	rate := uint64(l.cfg.Rate)
	add := elapsed * rate / 1000
	if add == 0 {
		return tokens, last
	}
	burst := uint64(l.cfg.Burst)
	if tokens+add >= burst {
		return burst, now
	}
	return tokens + add, last + uint32(add*1000/rate)
}

// hash returns a keyed hash of client's prefix. The key is random per
// process, so that clients cannot choose prefixes that share a bucket.
func (l *Limiter) hash(client netip.Addr) uint64 {
	client = client.Unmap()
	var v uint64
	if client.Is4() {
		a := client.As4()
		v = uint64(binary.BigEndian.Uint32(a[:])&l.v4Mask) | 1<<40
	} else {
		a := client.As16()
		v = binary.BigEndian.Uint64(a[:8])&l.v6Mask ^ 0x5bd1e9955bd1e995
	}
	v ^= l.seed
	v *= 0x9e3779b97f4a7c15
	v ^= v >> 29
	v *= 0xbf58476d1ce4e5b9
	return v ^ v>>32
}

// Exempt reports whether client is in one of the exempt networks.
func (l *Limiter) Exempt(client netip.Addr) bool {
	client = client.Unmap()
	for _, p := range l.cfg.Exempt {
		if p.Contains(client) {
			return true
		}
	}
	return false
}

// Record counts a limited response that was slipped or dropped.
func (l *Limiter) Record(a Action) {
	switch a {
	case Slip:
		l.slipped.Add(1)
	case Drop:
		l.dropped.Add(1)
	}
}

// Limited returns the counts of slipped and dropped responses.
func (l *Limiter) Limited() (slipped, dropped uint64) {
	return l.slipped.Load(), l.dropped.Load()
}
