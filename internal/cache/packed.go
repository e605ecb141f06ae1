package cache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Packed is a response packed once and served many times: a cache hit copies
// the bytes and patches the ID, the question's case, the flags and each TTL,
// with no parsing and no allocation.
type Packed struct {
	wire    []byte   // header with ID 0, one question, no OPT record
	ttlOffs []uint16 // offsets of the TTL fields in wire
	ttls    []uint32 // TTL values at storing time
	options []byte   // EDNS options (such as EDE) for the OPT record
	stored  time.Time
	expires time.Time
	// staleUntil is the end of the time p may be served stale; StoreAnswer
	// sets it when it is zero. stale marks a stale copy made by StaleCopy,
	// staleOK a response that may be served stale at all.
	staleUntil time.Time
	stale      bool
	staleOK    bool
	// refreshing is set while a prefetch of p is in progress.
	refreshing atomic.Bool
	// tag is a number the caller attaches (see SetTag); the cache does not
	// read it.
	tag uint32
}

// ErrBadPacked is returned by Pack for a message it cannot walk.
var ErrBadPacked = errors.New("packed response is malformed")

// Pack packs msg, which must have one question and no OPT record, for
// serving until ttl seconds from now. Records keep their own TTLs, counted
// down on every use. options are EDNS options in wire format, sent in the OPT
// record to clients that use EDNS.
func Pack(msg *dns.Msg, ttl uint32, now time.Time, options []byte) (*Packed, error) {
	m := msg.Copy()
	m.Id = 0
	m.Compress = true
	wire, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("pack response for %s: %w", msg.Question[0].Name, err)
	}
	offs, err := ttlOffsets(wire)
	if err != nil {
		return nil, err
	}
	ttls := make([]uint32, len(offs))
	for i, off := range offs {
		ttls[i] = binary.BigEndian.Uint32(wire[off:])
	}
	return &Packed{
		wire: wire, ttlOffs: offs, ttls: ttls, options: options,
		stored: now, expires: now.Add(time.Duration(ttl) * time.Second),
	}, nil
}

// Options returns the EDNS options in wire format; the caller must not
// modify them.
func (p *Packed) Options() []byte { return p.options }

// SetTag attaches tag to p, for the caller to read back with Tag each
// time p is served: the pipeline marks answers that a policy list decided.
// It must be called before p is stored or shared with other goroutines.
func (p *Packed) SetTag(tag uint32) { p.tag = tag }

// Tag returns the number set by SetTag, or 0.
func (p *Packed) Tag() uint32 { return p.tag }

// Len returns the size of the packed response in bytes.
func (p *Packed) Len() int { return len(p.wire) }

// Expired reports whether the response may no longer be served at now.
func (p *Packed) Expired(now time.Time) bool { return !now.Before(p.expires) }

// AppendTo appends the response to dst with every TTL counted down to now,
// and returns the extended slice. The ID is 0 and the question is as stored:
// the caller patches both.
func (p *Packed) AppendTo(dst []byte, now time.Time) []byte {
	start := len(dst)
	dst = append(dst, p.wire...)
	elapsed := uint32(now.Sub(p.stored) / time.Second)
	for i, off := range p.ttlOffs {
		ttl := p.ttls[i]
		if ttl > elapsed {
			ttl -= elapsed
		} else {
			ttl = 0
		}
		binary.BigEndian.PutUint32(dst[start+int(off):], ttl)
	}
	return dst
}

// StoreAnswer caches p under key, as made by AnswerKey.
func (c *Cache) StoreAnswer(key []byte, p *Packed) {
	if p.staleUntil.IsZero() {
		p.staleUntil = p.expires.Add(c.cfg.StaleMaxAge)
	}
	c.answers.set(string(key), p, int64(len(p.wire)+len(p.ttlOffs)*6+len(p.options))+entryOverhead)
}

// Answer returns the unexpired packed response under key. The lookup does
// not allocate.
func (c *Cache) Answer(key []byte, now time.Time) (*Packed, bool) {
	p, ok := c.answers.getBytes(key)
	if !ok || p.Expired(now) {
		return nil, false
	}
	return p, true
}

// AnswerKey appends to dst the cache key of a question: the query name in
// wire format in lower case, the type, and flags that change the response
// (such as CD and DO). qname is in wire format, as in a packet.
func AnswerKey(dst []byte, qname []byte, qtype uint16, flags byte) []byte {
	for _, b := range qname {
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		dst = append(dst, b)
	}
	return append(dst, byte(qtype>>8), byte(qtype), flags)
}

// ttlOffsets walks a packed message and returns the offset of the TTL field
// of every record except OPT.
func ttlOffsets(wire []byte) ([]uint16, error) {
	if len(wire) < 12 {
		return nil, ErrBadPacked
	}
	qd := int(binary.BigEndian.Uint16(wire[4:]))
	rrs := int(binary.BigEndian.Uint16(wire[6:])) + int(binary.BigEndian.Uint16(wire[8:])) +
		int(binary.BigEndian.Uint16(wire[10:]))
	off := 12
	var err error
	for range qd {
		if off, err = skipName(wire, off); err != nil {
			return nil, err
		}
		off += 4
	}
	offs := make([]uint16, 0, rrs)
	for range rrs {
		if off, err = skipName(wire, off); err != nil {
			return nil, err
		}
		if off+10 > len(wire) {
			return nil, ErrBadPacked
		}
		if binary.BigEndian.Uint16(wire[off:]) != dns.TypeOPT {
			offs = append(offs, uint16(off+4))
		}
		off += 10 + int(binary.BigEndian.Uint16(wire[off+8:]))
	}
	if off > len(wire) {
		return nil, ErrBadPacked
	}
	return offs, nil
}

// skipName returns the offset just past the name at off.
func skipName(wire []byte, off int) (int, error) {
	for off < len(wire) {
		l := int(wire[off])
		switch {
		case l == 0:
			return off + 1, nil
		case l&0xC0 == 0xC0:
			return off + 2, nil
		case l&0xC0 != 0:
			return 0, ErrBadPacked
		}
		off += l + 1
	}
	return 0, ErrBadPacked
}
