package pipeline

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"time"
	"unsafe"

	"github.com/miekg/dns"
)

// Denials is implemented by a Resolver that proves names absent from the
// validated NSEC and NSEC3 records it holds (RFC 8198), without a
// resolution and without allocating: see resolver.Resolver.AppendNXDomain.
type Denials interface {
	AppendNXDomain(dst []byte, name string, dnssecOK bool, now time.Time) (out []byte, records int, ok bool)
}

// denied answers q, a query that missed the answer cache, with NXDOMAIN
// when the resolver's validated NSEC or NSEC3 records prove its name
// absent, appending the response to out. It returns false when they do
// not, and for every query whose answer a list might change: so a flood of
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
	out, n, ok := p.denials.AppendNXDomain(out, s, q.DO, now)
	if !ok {
		return nil, false
	}
	binary.BigEndian.PutUint16(out[8:], uint16(n))
	binary.BigEndian.PutUint16(out[2:], binary.BigEndian.Uint16(out[2:])|flagAD)
	if !q.DO && q.Flags&flagAD == 0 {
		// AD only for clients that asked for it (RFC 6840 section 5.7).
		binary.BigEndian.PutUint16(out[2:], binary.BigEndian.Uint16(out[2:])&^flagAD)
	}
	return p.finish(out, nil, q, udp, now), true
}
