// Package privacy turns client addresses into the forms that Bulwark may
// write to its query log, dnstap output and aggregates. No mode writes a
// whole client address.
//
//   - truncate keeps the network prefix: /24 of an IPv4 address and /56 of
//     an IPv6 address unless configured shorter.
//   - hash replaces the address by a keyed hash: SipHash-2-4 in text form,
//     HMAC-SHA-256 where the output must look like an address. The key is
//     made at random when the process starts and again at each UTC
//     midnight. It is held in memory only and never written. So a
//     pseudonym stays the same within one day, and once the day is over it
//     cannot be linked to the address or to the next day's pseudonym.
//   - omit leaves the address out.
package privacy

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"bulwark/internal/siphash"
)

// Mode is the anonymisation method for client addresses.
type Mode string

// Modes.
const (
	Truncate Mode = "truncate"
	Hash     Mode = "hash"
	Omit     Mode = "omit"
)

// Default prefix lengths kept by Truncate, and the longest allowed.
const (
	DefaultIPv4Prefix = 24
	DefaultIPv6Prefix = 56
)

// Config sets up an Anonymiser.
type Config struct {
	Mode Mode
	// IPv4Prefix and IPv6Prefix are the prefix lengths kept by Truncate;
	// zero means the default, and longer ones are rejected by Validate.
	IPv4Prefix, IPv6Prefix int
}

// Validate checks c and returns an error naming the bad value.
func (c Config) Validate() error {
	switch c.Mode {
	case Truncate, Hash, Omit:
	default:
		return fmt.Errorf("invalid anonymisation mode %q: use truncate, hash or omit", c.Mode)
	}
	if c.IPv4Prefix < 0 || c.IPv4Prefix > DefaultIPv4Prefix {
		return fmt.Errorf("invalid IPv4 prefix length %d: use 0 to %d", c.IPv4Prefix, DefaultIPv4Prefix)
	}
	if c.IPv6Prefix < 0 || c.IPv6Prefix > DefaultIPv6Prefix {
		return fmt.Errorf("invalid IPv6 prefix length %d: use 0 to %d", c.IPv6Prefix, DefaultIPv6Prefix)
	}
	return nil
}

// Anonymiser anonymises client addresses in one mode. It is safe for
// concurrent use.
type Anonymiser struct {
	cfg Config
	now func() time.Time

	mu  sync.Mutex
	key [32]byte
	day int64 // days since the Unix epoch, UTC, that key belongs to
}

// New returns an Anonymiser for a valid cfg. now may be nil for time.Now.
func New(cfg Config, now func() time.Time) *Anonymiser {
	if now == nil {
		now = time.Now
	}
	if cfg.IPv4Prefix == 0 {
		cfg.IPv4Prefix = DefaultIPv4Prefix
	}
	if cfg.IPv6Prefix == 0 {
		cfg.IPv6Prefix = DefaultIPv6Prefix
	}
	return &Anonymiser{cfg: cfg, now: now, day: -1}
}

// Mode returns the mode of a.
func (a *Anonymiser) Mode() Mode { return a.cfg.Mode }

// String returns the text form of addr to write: a prefix such as
// "192.0.2.0/24" for truncate, "h:" and 16 hexadecimal digits for hash, and
// "" for omit or an invalid address.
func (a *Anonymiser) String(addr netip.Addr) string {
	if !addr.IsValid() {
		return ""
	}
	switch a.cfg.Mode {
	case Truncate:
		return a.prefix(addr).String()
	case Hash:
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], a.Pseudonym(addr))
		return "h:" + hex.EncodeToString(buf[:])
	}
	return ""
}

// Addr returns an address of the same family to write in place of addr, for
// formats with an address field such as dnstap. For truncate it is the
// network address of the prefix. For hash it is made of the keyed hash and
// only looks like an address. ok is false for omit.
func (a *Anonymiser) Addr(addr netip.Addr) (out netip.Addr, ok bool) {
	if !addr.IsValid() {
		return netip.Addr{}, false
	}
	switch a.cfg.Mode {
	case Truncate:
		return a.prefix(addr).Addr(), true
	case Hash:
		sum := a.sum(addr)
		if addr.Unmap().Is4() {
			return netip.AddrFrom4([4]byte(sum[:4])), true
		}
		return netip.AddrFrom16([16]byte(sum[:16])), true
	}
	return netip.Addr{}, false
}

// Pseudonym returns the keyed hash of addr under the current day's key, for
// counting distinct clients without keeping their addresses. It does so in
// every mode. The hash is SipHash-2-4 under the first 16 bytes of the key:
// a pseudorandom function like the HMAC of Addr, and cheap enough to run
// for every query without allocating.
func (a *Anonymiser) Pseudonym(addr netip.Addr) uint64 {
	key := a.dayKey()
	b := addr.Unmap().As16()
	return siphash.Sum64(binary.LittleEndian.Uint64(key[:8]), binary.LittleEndian.Uint64(key[8:16]), b[:])
}

func (a *Anonymiser) prefix(addr netip.Addr) netip.Prefix {
	addr = addr.Unmap()
	bits := a.cfg.IPv6Prefix
	if addr.Is4() {
		bits = a.cfg.IPv4Prefix
	}
	p, _ := addr.Prefix(bits)
	return p
}

// sum returns HMAC-SHA-256 of addr's 16-byte form under the day's key.
func (a *Anonymiser) sum(addr netip.Addr) [sha256.Size]byte {
	key := a.dayKey()
	mac := hmac.New(sha256.New, key[:])
	b := addr.Unmap().As16()
	mac.Write(b[:])
	var out [sha256.Size]byte
	mac.Sum(out[:0])
	return out
}

// dayKey returns the key of the current UTC day, making a new one when the
// day has changed. The old key is overwritten, not kept.
func (a *Anonymiser) dayKey() [32]byte {
	day := a.now().UTC().Unix() / 86400
	a.mu.Lock()
	defer a.mu.Unlock()
	if day != a.day {
		if _, err := rand.Read(a.key[:]); err != nil {
			// crypto/rand does not fail on supported systems (Go 1.24
			// and later crash the program instead of returning).
			panic(fmt.Sprintf("privacy: no random key: %v", err))
		}
		a.day = day
	}
	return a.key
}
