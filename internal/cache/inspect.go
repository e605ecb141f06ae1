package cache

import (
	"bytes"
	"encoding/binary"
	"sort"
	"strings"
	"time"

	"bulwark/internal/dnssec"

	"github.com/miekg/dns"
)

// Entry is one RRset or negative answer cached for a name, as Inspect
// returns it: unexpired, or expired and still within the stale age.
type Entry struct {
	// Type is the type of the RRset or of the NODATA answer; 0 for
	// NXDOMAIN, which covers every type.
	Type uint16
	// Negative is set for NXDOMAIN and NODATA answers, NXDomain for the
	// former.
	Negative, NXDomain bool
	Rank               Rank
	// TTL is the seconds left; 0 for a stale entry.
	TTL uint32
	// Stale is set for an entry that has expired but may still be served
	// stale, and StaleAge is how long ago it expired.
	Stale    bool
	StaleAge time.Duration
	// Security is the validation state, and Reason why it is bogus or
	// insecure, when known.
	Security dnssec.Security
	Reason   *dnssec.Error
	// RRs are the records of an RRset, or the SOA of a negative answer,
	// with TTLs counted down. Sigs are the RRSIGs of the RRset.
	RRs  []dns.RR
	Sigs []dns.RR
}

// AnswerEntry is one packed response cached for a name, unexpired or
// within the stale age. Several
// may exist for one type, one per variant of the question: the DO and CD
// bits, and the flavour and policy version of the client.
type AnswerEntry struct {
	Type uint16
	// Flags are the key flags after the type: the DO and CD bits, as the
	// pipeline sets them.
	Flags byte
	// Variant is the rest of the key, which the pipeline fills with the
	// flavour and policy version.
	Variant []byte
	// TTL is the seconds left before the response expires; 0 for a stale
	// response.
	TTL uint32
	// Stale is set for an expired response that may still be served
	// stale, and for a stale copy being served in its place.
	Stale bool
	Rcode int
	// AD is the AD bit of the response.
	AD bool
	// Records counts the records of the answer and authority sections.
	Records int
	Bytes   int
}

// Inspect returns what the cache holds for name exactly: RRsets and
// negative answers sorted by type, and packed responses. It scans the
// cache one shard at a time, as Flush does, so its cost grows with the
// number of entries.
func (c *Cache) Inspect(name string) ([]Entry, []AnswerEntry) {
	name = strings.ToLower(dns.CanonicalName(name))
	now := c.now()
	var entries []Entry
	c.records.each(func(key string, e *entry) {
		if key[3:] != name {
			return
		}
		ttl, fresh := remaining(now, e.expires)
		age, stale := c.staleAge(now, e.expires)
		if !fresh && !stale {
			return
		}
		out := Entry{
			Type: binary.BigEndian.Uint16([]byte(key[1:3])), Negative: e.negative, NXDomain: e.nxdomain,
			Rank: e.rank, TTL: ttl, Security: e.security, Reason: e.reason,
			RRs: countedDown(e.rrs, ttl), Sigs: countedDown(e.sigs, ttl),
		}
		if !fresh {
			out.Stale, out.StaleAge = true, age
		}
		if e.soa != nil {
			out.RRs = countedDown([]dns.RR{e.soa}, ttl)
		}
		entries = append(entries, out)
	})
	sort.Slice(entries, func(i, j int) bool { return entries[i].Type < entries[j].Type })
	return entries, c.inspectAnswers(name, now)
}

func (c *Cache) inspectAnswers(name string, now time.Time) []AnswerEntry {
	wire := wireName(name)
	if wire == nil {
		return nil
	}
	var answers []AnswerEntry
	c.answers.each(func(key string, p *Packed) {
		rest, ok := bytes.CutPrefix([]byte(key), wire)
		if !ok || len(rest) < 3 {
			return
		}
		ttl, fresh := remaining(now, p.expires)
		stale := p.stale || !fresh && c.cfg.StaleMaxAge > 0 && p.staleOK && now.Before(p.staleUntil)
		if !fresh && !stale {
			return
		}
		if p.stale {
			ttl = 0
		}
		h := p.wire
		answers = append(answers, AnswerEntry{
			Type: binary.BigEndian.Uint16(rest), Flags: rest[2], Variant: rest[3:],
			TTL: ttl, Stale: stale, Rcode: int(h[3] & 0x0f), AD: h[3]&0x20 != 0,
			Records: int(binary.BigEndian.Uint16(h[6:])) + int(binary.BigEndian.Uint16(h[8:])),
			Bytes:   len(h),
		})
	})
	sort.Slice(answers, func(i, j int) bool {
		a, b := answers[i], answers[j]
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		return string(append([]byte{a.Flags}, a.Variant...)) < string(append([]byte{b.Flags}, b.Variant...))
	})
	return answers
}

// FlushName removes every RRset, negative answer and packed response for
// name exactly, of every type, and returns how many entries it removed.
// Names below it stay.
func (c *Cache) FlushName(name string) int {
	name = strings.ToLower(dns.CanonicalName(name))
	n := c.records.deleteIf(func(key string) bool { return key[3:] == name })
	wire := wireName(name)
	if wire == nil {
		return n
	}
	n += c.answers.deleteIf(func(key string) bool {
		rest, ok := bytes.CutPrefix([]byte(key), wire)
		return ok && len(rest) >= 3
	})
	return n
}

// wireName returns name in uncompressed wire format, as answer keys hold
// it, or nil when it is not a valid name.
func wireName(name string) []byte {
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(name, buf, 0, nil, false)
	if err != nil {
		return nil
	}
	return buf[:n]
}

// each calls fn for every entry, locking one shard at a time; fn must not
// call back into the lru.
func (c *lru[V]) each(fn func(key string, val V)) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for key, n := range s.items {
			fn(key, n.val)
		}
		s.mu.Unlock()
	}
}
