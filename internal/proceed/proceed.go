// Package proceed keeps the exemptions that "proceed anyway" grants. A
// client shown the block page may choose to resolve the blocked name for a
// while, as if the lists that blocked it did not match. Lawful lists still
// apply, and so do a tenant's deny lists unless the tenant allows it.
//
// Exemptions live in memory only. They are keyed by client address, which
// this package never writes to disk or to a log. The block page grants
// exemptions and the pipeline looks them up; this package leaves serving and
// answering to them.
package proceed

import (
	"container/list"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"bulwark/internal/policy"

	"github.com/miekg/dns"
)

const (
	// MaxDuration is the longest exemption a flavour may grant.
	MaxDuration = 24 * time.Hour
	// DefaultMaxEntries bounds the exemptions held at once. Past it the
	// oldest is dropped. An entry takes about 200 bytes (an estimate from
	// the sizes of its structures), so the default uses about 20 MB.
	DefaultMaxEntries = 100_000
	// MaxPerClient bounds the exemptions of one client address, so that a
	// single client cannot push out those of the others. Clients behind one
	// NAT address share it.
	MaxPerClient = 256
	// sweepInterval is how often Add removes every expired exemption.
	sweepInterval = time.Minute
	// dropLogInterval spaces the warnings about exemptions dropped at the
	// bound.
	dropLogInterval = time.Minute
)

// Rule is the proceed anyway setting of one flavour.
type Rule struct {
	// Duration is how long an exemption lasts; 0 turns proceed anyway off.
	Duration time.Duration
	// Enforced names the lists that an exemption never skips besides
	// lawful lists, such as a tenant's deny lists.
	Enforced []string
}

// On reports whether the flavour lets clients proceed at all.
func (r Rule) On() bool { return r.Duration > 0 }

// Skips reports whether an exemption under r skips list l. Lawful lists,
// allowlists and the lists in Enforced are never skipped.
func (r Rule) Skips(l *policy.List) bool {
	if !r.On() || l == nil || l.Category == policy.CategoryLawful || slices.Contains(r.Enforced, l.Name) {
		return false
	}
	return len(l.Verdicts) == 0 || l.Verdicts[0].Action != policy.Allow
}

// Allows reports whether a client under r may proceed past decision d: d
// blocks, and its list is one that an exemption skips.
func (r Rule) Allows(d policy.Decision) bool { return d.Blocked() && r.Skips(d.List) }

// Exempt returns f without the lists that r skips: the flavour applied to
// the queries of exempt clients. It returns nil when r is off or f is nil.
func (r Rule) Exempt(f *policy.Flavour) *policy.Flavour {
	if !r.On() || f == nil {
		return nil
	}
	var kept []*policy.List
	for _, l := range f.Lists() {
		if !r.Skips(l) {
			kept = append(kept, l)
		}
	}
	exempt := policy.NewFlavour(f.Name, kept)
	exempt.NoValidation = f.NoValidation
	return exempt
}

// ErrInvalid is returned by Add for a client address or name that cannot
// be exempted.
var ErrInvalid = errors.New("invalid exemption")

// Exemptions is the table of exemptions, bounded in count. It is safe for
// concurrent use.
type Exemptions struct {
	maxEntries int
	log        *slog.Logger
	// until is the latest expiry of any exemption added, in Unix
	// nanoseconds. Queries after it skip the lookup, and so take no lock.
	until atomic.Int64

	mu      sync.RWMutex
	clients map[netip.Addr][]*entry
	order   list.List // of *entry, oldest first
	// dropped counts entries dropped at the bound since the last warning.
	dropped   int
	lastLog   time.Time
	lastSweep time.Time
}

type entry struct {
	client netip.Addr
	// name is in wire format and lower case, so that query names match
	// without a conversion.
	name    []byte
	expires time.Time
	elem    *list.Element
}

// NewExemptions returns an empty table holding at most maxEntries
// exemptions; maxEntries <= 0 means DefaultMaxEntries.
func NewExemptions(maxEntries int, log *slog.Logger) *Exemptions {
	if maxEntries <= 0 {
		maxEntries = DefaultMaxEntries
	}
	return &Exemptions{
		maxEntries: maxEntries,
		log:        log.With("component", "proceed"),
		clients:    map[netip.Addr][]*entry{},
	}
}

// Add exempts client from the skippable lists for name and the names below
// it until now plus d. Adding an exemption that exists extends it. It
// returns ErrInvalid, wrapped with the reason, for an invalid client
// address, name or duration.
func (t *Exemptions) Add(client netip.Addr, name string, d time.Duration, now time.Time) error {
	client = client.Unmap()
	if !client.IsValid() {
		return fmt.Errorf("%w: no client address", ErrInvalid)
	}
	if d <= 0 || d > MaxDuration {
		return fmt.Errorf("%w: duration %s must be positive and at most %s", ErrInvalid, d, MaxDuration)
	}
	wire, err := wireName(name)
	if err != nil {
		return fmt.Errorf("%w: name %q: %v", ErrInvalid, name, err)
	}
	expires := now.Add(d)

	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Sub(t.lastSweep) >= sweepInterval {
		t.sweep(now)
		t.lastSweep = now
	}
	if e := t.find(client, wire); e != nil {
		// Extended: it becomes the newest, for both bounds.
		e.expires = expires
		t.order.MoveToBack(e.elem)
		own := slices.DeleteFunc(t.clients[client], func(x *entry) bool { return x == e })
		t.clients[client] = append(own, e)
	} else {
		if len(t.clients[client]) >= MaxPerClient {
			t.remove(t.clients[client][0])
		}
		e := &entry{client: client, name: wire, expires: expires}
		e.elem = t.order.PushBack(e)
		t.clients[client] = append(t.clients[client], e)
		for t.order.Len() > t.maxEntries {
			t.remove(t.order.Front().Value.(*entry))
			t.dropped++
		}
	}
	if n := expires.UnixNano(); n > t.until.Load() {
		t.until.Store(n)
	}
	t.logDropped(now)
	return nil
}

// Active reports whether any exemption may still hold at now. It takes no
// lock, so that queries pay for the lookup only while exemptions exist.
func (t *Exemptions) Active(now time.Time) bool {
	return t != nil && now.UnixNano() < t.until.Load()
}

// Holds reports whether client has an exemption at now for qname, a name
// in wire format in any letter case, or for an ancestor of it. It does not
// allocate.
func (t *Exemptions) Holds(client netip.Addr, qname []byte, now time.Time) bool {
	if !t.Active(now) {
		return false
	}
	client = client.Unmap()
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, e := range t.clients[client] {
		if e.expires.After(now) && hasWireSuffix(qname, e.name) {
			return true
		}
	}
	return false
}

// Len returns the number of exemptions held, expired ones not yet removed
// included.
func (t *Exemptions) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.order.Len()
}

func (t *Exemptions) find(client netip.Addr, wire []byte) *entry {
	for _, e := range t.clients[client] {
		if string(e.name) == string(wire) {
			return e
		}
	}
	return nil
}

// remove deletes e from the order and from its client's entries.
func (t *Exemptions) remove(e *entry) {
	t.order.Remove(e.elem)
	rest := slices.DeleteFunc(t.clients[e.client], func(x *entry) bool { return x == e })
	if len(rest) == 0 {
		delete(t.clients, e.client)
		return
	}
	t.clients[e.client] = rest
}

// sweep removes every expired exemption.
func (t *Exemptions) sweep(now time.Time) {
	for el := t.order.Front(); el != nil; {
		next := el.Next()
		if e := el.Value.(*entry); !e.expires.After(now) {
			t.remove(e)
		}
		el = next
	}
}

// logDropped warns about exemptions dropped at the bound, at most once per
// dropLogInterval, with their count since the last warning.
func (t *Exemptions) logDropped(now time.Time) {
	if t.dropped == 0 || now.Sub(t.lastLog) < dropLogInterval {
		return
	}
	t.log.Warn("proceed anyway exemptions dropped at the limit; the oldest go first",
		"dropped", t.dropped, "limit", t.maxEntries)
	t.dropped, t.lastLog = 0, now
}

// wireName packs name in wire format, lower case.
func wireName(name string) ([]byte, error) {
	if _, ok := dns.IsDomainName(name); !ok || name == "" {
		return nil, errors.New("not a domain name")
	}
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(dns.Fqdn(name), buf, 0, nil, false)
	if err != nil {
		return nil, err
	}
	buf = buf[:n]
	lowerASCII(buf)
	return buf, nil
}

func lowerASCII(b []byte) {
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
}

// hasWireSuffix reports whether suffix, a wire-format name in lower case,
// equals name or one of its ancestors. It walks the labels of name, so a
// match always starts at a label boundary.
func hasWireSuffix(name, suffix []byte) bool {
	for off := 0; off < len(name); {
		if len(name)-off == len(suffix) && equalFoldASCII(name[off:], suffix) {
			return true
		}
		l := int(name[off])
		if l == 0 || l > 63 {
			return false
		}
		off += l + 1
	}
	return false
}

// equalFoldASCII reports whether a equals lower, which is in lower case,
// folding only the ASCII letters of a. Label bytes outside ASCII compare as
// they are (RFC 4343 section 3).
func equalFoldASCII(a, lower []byte) bool {
	if len(a) != len(lower) {
		return false
	}
	for i, c := range a {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
