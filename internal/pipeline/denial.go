package pipeline

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"time"
	"unsafe"

	"bulwark/internal/policy"

	"github.com/miekg/dns"
)

// Denials is implemented by a Resolver that proves names absent from the
// validated NSEC and NSEC3 records it holds (RFC 8198), without a
// resolution and without allocating: see resolver.Resolver.AppendNXDomain.
type Denials interface {
	AppendNXDomain(dst []byte, name string, dnssecOK bool, now time.Time) (out []byte, records int, ok bool)
}

// Wildcards is implemented by a Resolver that answers names below a
// wildcard from the validated records it holds (RFC 8198 section 5.4),
// without a resolution and without allocating: see
// resolver.Resolver.AppendWildcard.
type Wildcards interface {
	AppendWildcard(dst []byte, name string, qtype uint16, dnssecOK bool, now time.Time) (out []byte, answers, authority int, ok bool)
}

// denied answers q, a query that missed the answer cache, with NXDOMAIN
// when the resolver's validated NSEC or NSEC3 records prove its name
// absent, or with a cached wildcard's RRset when they prove the name
// absent below that wildcard, appending the response to out. It returns
// false when they do not, and for every query whose answer a list might change: so a flood of
// random names under a signed zone is answered on the fast path, and a
// name that a list matches still gets the list's answer from the slow
// path. The response is not cached, as it would push useful answers out.
func (p *Pipeline) denied(out, pkt []byte, q *Query, flavour uint8, client netip.Addr, exempt, udp bool, now time.Time) ([]byte, bool) {
	if p.denials == nil || exempt || p.validationOff(flavour) {
		return nil, false
	}
	f := p.flavour(flavour, false)
	if f.HasServerRules() {
		return nil, false
	}
	if _, _, hit := f.ClientRule(client); hit {
		return nil, false
	}

	buf := nameBuffers.Get().(*[256]byte)
	defer nameBuffers.Put(buf)
	name, ok := appendLowerName(buf[:0], q.QName)
	if !ok || bytes.IndexByte(name, '*') >= 0 {
		// A '*' label is a name of its own, but matches wildcards in
		// lists: the slow path decides it.
		return nil, false
	}
	// The string is not kept past this call: the lists only read it, and
	// their decision is dropped.
	s := unsafe.String(unsafe.SliceData(name), len(name))
	if _, hit := f.CheckName(s); hit {
		return nil, false
	}

	out = appendHeader(out, pkt, q, dns.RcodeNameError, true)
	if resp, n, ok := p.denials.AppendNXDomain(out, s, q.DO, now); ok {
		out = resp
		binary.BigEndian.PutUint16(out[8:], uint16(n))
	} else if out, ok = p.expanded(out, s, q, f, now); !ok {
		return nil, false
	}
	binary.BigEndian.PutUint16(out[2:], binary.BigEndian.Uint16(out[2:])|flagAD)
	if !q.DO && q.Flags&flagAD == 0 {
		// AD only for clients that asked for it (RFC 6840 section 5.7).
		binary.BigEndian.PutUint16(out[2:], binary.BigEndian.Uint16(out[2:])&^flagAD)
	}
	return p.finish(out, nil, q, udp, now), true
}

// expanded appends to out, a NXDOMAIN header and q's question, the
// answer to q expanded from a cached wildcard, and makes the header's
// rcode NOERROR. name is q's name as for Denials. It fails when the
// resolver cannot expand one, or when an address of the answer matches a
// list of f, whose answer the slow path then gives. The answer's TTLs are
// bounded as the cache bounds those of resolved answers.
func (p *Pipeline) expanded(out []byte, name string, q *Query, f *policy.Flavour, now time.Time) ([]byte, bool) {
	if p.wildcards == nil {
		return nil, false
	}
	resp, answers, authority, ok := p.wildcards.AppendWildcard(out, name, q.QType, q.DO, now)
	if !ok {
		return nil, false
	}
	off := len(out)
	for range answers {
		// Each record: a pointer to the question's name, type, class,
		// TTL, data length and data.
		t := binary.BigEndian.Uint16(resp[off+2:])
		binary.BigEndian.PutUint32(resp[off+6:], p.cache.ClampTTL(binary.BigEndian.Uint32(resp[off+6:])))
		rdlen := int(binary.BigEndian.Uint16(resp[off+10:]))
		data := resp[off+12 : off+12+rdlen]
		var addr netip.Addr
		switch {
		case t == dns.TypeA && rdlen == 4:
			addr = netip.AddrFrom4([4]byte(data))
		case t == dns.TypeAAAA && rdlen == 16:
			addr = netip.AddrFrom16([16]byte(data))
		}
		if addr.IsValid() {
			if _, hit := f.CheckAddr(addr); hit {
				return nil, false
			}
		}
		off += 12 + rdlen
	}
	resp[3] &^= 0x0F
	binary.BigEndian.PutUint16(resp[6:], uint16(answers))
	binary.BigEndian.PutUint16(resp[8:], uint16(authority))
	return resp, true
}
