// Package autotrust keeps DNSSEC trust anchors up to date with the automated
// updates of RFC 5011. A new key signing key (KSK) is trusted once it has been
// seen in every validated DNSKEY RRset of its zone for the add hold-down time.
// A key that signs the RRset with its REVOKE bit set is never trusted again.
//
// Each key of a trust point is in one of the states of RFC 5011 section 4:
// Start (not tracked), AddPend, Valid, Missing, Revoked and Removed. Valid
// and Missing keys are trust anchors.
//
// # State file
//
// The state is saved in a text file that Save rewrites atomically. Every line
// that is not empty and does not start with ';' holds one key as a record in
// zone-file syntax, followed by a comment with its state and three RFC 3339
// times:
//
//	. 172800 IN DNSKEY 257 3 8 AwEAAa...= ; state=valid first_seen=2026-01-02T03:04:05Z last_seen=2026-03-01T00:00:00Z last_change=2026-02-01T03:04:05Z
//
// state is addpend, valid, missing, revoked or removed. first_seen is when
// the key was first tracked, last_seen when a validated DNSKEY RRset last
// contained it, and last_change when it last changed state. A trust anchor
// seeded as a DS record is kept as a DS line, in state valid or missing, until
// a validated DNSKEY RRset contains the key it matches. A file that does not
// follow this format is an error that names the file and the line; Load never
// replaces it.
package autotrust

import (
	"encoding/base64"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// KeyState is the RFC 5011 state of one key of a trust point.
type KeyState int

// The states of RFC 5011 section 4. Start is never stored: a key in Start is
// simply not tracked.
const (
	Start KeyState = iota
	AddPend
	Valid
	Missing
	Revoked
	Removed
)

var stateNames = []string{"start", "addpend", "valid", "missing", "revoked", "removed"}

// String returns the name of the state as written in the state file.
func (s KeyState) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return "unknown"
	}
	return stateNames[s]
}

// Hold-down times of RFC 5011 section 2.4.
const (
	// AddHoldDown is the minimum time a new key must be seen before it is
	// trusted. The add hold-down is the greater of this and the original
	// TTL of the DNSKEY RRset.
	AddHoldDown = 30 * 24 * time.Hour
	// RemoveHoldDown is how long a revoked key stays in state Revoked after
	// it was last seen, before it becomes Removed.
	RemoveHoldDown = 30 * 24 * time.Hour
)

// Key is one tracked key of a trust point.
type Key struct {
	// Record is the key as a *dns.DNSKEY, as last seen (with the REVOKE bit
	// when revoked), or a *dns.DS for a seeded anchor whose key has not been
	// seen yet.
	Record dns.RR
	State  KeyState
	// FirstSeen is when a validated RRset first contained the key; zero
	// for a seeded anchor.
	FirstSeen time.Time
	// LastSeen is when a validated RRset last contained the key; zero
	// until one does.
	LastSeen time.Time
	// LastChange is when the key last changed state; zero for a seeded
	// anchor that has not changed since.
	LastChange time.Time
}

// State is the RFC 5011 state of every trust point. It is safe for
// concurrent use.
type State struct {
	path string

	mu   sync.Mutex
	keys []*Key
}

// New returns an empty state that Save writes to path.
func New(path string) *State {
	return &State{path: path}
}

// Path returns the path of the state file.
func (s *State) Path() string { return s.path }

// Keys returns a copy of every tracked key, in file order.
func (s *State) Keys() []Key {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Key, len(s.keys))
	for i, k := range s.keys {
		out[i] = *k
		out[i].Record = dns.Copy(k.Record)
	}
	return out
}

// Seed adds anchors, DS or DNSKEY records, in state Valid for every zone that
// has no tracked key yet. A zone that has keys in the state keeps them, so
// that a configured anchor cannot bring back a key that was revoked. Seeded
// keys have zero FirstSeen and LastChange times. Seed returns whether a key
// was added.
func (s *State) Seed(anchors []dns.RR) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	known := map[string]bool{}
	for _, k := range s.keys {
		known[k.Record.Header().Name] = true
	}
	changed := false
	for _, rr := range anchors {
		switch rr.(type) {
		case *dns.DS, *dns.DNSKEY:
		default:
			continue
		}
		rr = dns.Copy(rr)
		rr.Header().Name = dns.CanonicalName(rr.Header().Name)
		if known[rr.Header().Name] || s.findRecord(rr) != nil {
			continue
		}
		s.keys = append(s.keys, &Key{Record: rr, State: Valid})
		changed = true
	}
	return changed
}

// findRecord returns the key whose record duplicates rr, or nil.
func (s *State) findRecord(rr dns.RR) *Key {
	for _, k := range s.keys {
		if dns.IsDuplicate(k.Record, rr) {
			return k
		}
	}
	return nil
}

// TrustAnchors returns the records of the keys in state Valid or Missing:
// DNSKEY records, and DS records for seeded anchors whose key has not been
// seen yet.
func (s *State) TrustAnchors() []dns.RR {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []dns.RR
	for _, k := range s.keys {
		if k.State == Valid || k.State == Missing {
			out = append(out, dns.Copy(k.Record))
		}
	}
	return out
}

// NextProbe returns the time until the next query for a trust point's DNSKEY
// RRset after a successful one (RFC 5011 section 2.3). It is half the original
// TTL of the RRset or half the time until its earliest signature expires,
// whichever is shorter, but at least 1 hour and at most 15 days.
func NextProbe(ttl, sigExpiry time.Duration) time.Duration {
	return max(time.Hour, min(15*24*time.Hour, ttl/2, sigExpiry/2))
}

// RetryProbe returns the time until the next query after a failed one (RFC
// 5011 section 2.3). It is a tenth of the original TTL or of the time until
// the earliest signature expires, whichever is shorter, but at least 1 hour
// and at most 1 day.
func RetryProbe(ttl, sigExpiry time.Duration) time.Duration {
	return max(time.Hour, min(24*time.Hour, ttl/10, sigExpiry/10))
}

// sameKey reports whether a and b are the same key, ignoring the REVOKE bit.
func sameKey(a, b *dns.DNSKEY) bool {
	if a.Algorithm != b.Algorithm || a.Protocol != b.Protocol || a.Flags&^dns.REVOKE != b.Flags&^dns.REVOKE {
		return false
	}
	if a.PublicKey == b.PublicKey {
		return true
	}
	ka, errA := base64.StdEncoding.DecodeString(a.PublicKey)
	kb, errB := base64.StdEncoding.DecodeString(b.PublicKey)
	return errA == nil && errB == nil && string(ka) == string(kb)
}

// matchesDS reports whether ds is the digest of key without its REVOKE bit.
func matchesDS(ds *dns.DS, key *dns.DNSKEY) bool {
	plain := *key
	plain.Flags &^= dns.REVOKE
	computed := plain.ToDS(ds.DigestType)
	return computed != nil && ds.KeyTag == computed.KeyTag && ds.Algorithm == key.Algorithm &&
		strings.EqualFold(computed.Digest, ds.Digest)
}
