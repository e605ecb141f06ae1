package pipeline

import (
	"encoding/binary"
	"net/netip"

	"github.com/miekg/dns"
)

// NotifyHandler responds to NOTIFY messages (RFC 1996) for the zones that
// Bulwark keeps copies of.
type NotifyHandler interface {
	// Notify returns the packed response to req, whose wire form is wire,
	// from the client at from, or nil to send nothing.
	Notify(req *dns.Msg, wire []byte, from netip.Addr) []byte
}

// SetNotifyHandler routes NOTIFY messages to h; without a handler they get
// NOTIMP like other opcodes. Call it before the server starts.
func (p *Pipeline) SetNotifyHandler(h NotifyHandler) { p.notify = h }

// errorResponse answers a query that the fast parser did not accept: a
// malformed packet gets FORMERR, an unknown opcode NOTIMP, a bad EDNS version
// BADVERS, a zone transfer or a class other than IN REFUSED. A NOTIFY goes to
// the notify handler, with the client address from. It returns nil when
// nothing should be sent.
func (p *Pipeline) errorResponse(pkt []byte, from netip.Addr) []byte {
	if len(pkt) < 12 || pkt[2]&0x80 != 0 {
		return nil
	}
	m := new(dns.Msg)
	if err := m.Unpack(pkt); err != nil || !questionComplete(pkt) {
		return headerOnly(pkt, dns.RcodeFormatError)
	}
	if m.Opcode == dns.OpcodeNotify && p.notify != nil {
		return p.notify.Notify(m, pkt, from)
	}
	r := new(dns.Msg)
	r.Id, r.Opcode, r.Response = m.Id, m.Opcode, true
	r.RecursionDesired, r.CheckingDisabled = m.RecursionDesired, m.CheckingDisabled
	r.RecursionAvailable = true
	r.Question = m.Question
	r.Rcode = p.errorRcode(m)
	if opt := m.IsEdns0(); opt != nil && r.Rcode != dns.RcodeFormatError {
		r.SetEdns0(p.cfg.BufferSize, opt.Do())
		p.errorCookie(r, m, from)
	}
	wire, err := r.Pack()
	if err != nil {
		return headerOnly(pkt, dns.RcodeServerFailure)
	}
	return wire
}

// questionComplete reports whether the first question, if any, has a name,
// a type and a class. The message parser accepts a question cut short and
// fills in zeros.
func questionComplete(pkt []byte) bool {
	if binary.BigEndian.Uint16(pkt[4:]) == 0 {
		return true
	}
	end, ok := nameEnd(pkt, 12)
	return ok && end+4 <= len(pkt)
}

// errorRcode picks the rcode for a query the fast path did not accept.
func (p *Pipeline) errorRcode(m *dns.Msg) int {
	switch {
	case m.Opcode != dns.OpcodeQuery:
		return dns.RcodeNotImplemented // RFC 1035 section 4.1.1
	case len(m.Question) != 1:
		return dns.RcodeFormatError // RFC 9619
	case countOPT(m.Extra) > 1:
		return dns.RcodeFormatError // RFC 6891 section 6.1.1
	case m.IsEdns0() != nil && m.IsEdns0().Version() != 0:
		return dns.RcodeBadVers // RFC 6891 section 6.1.3
	case m.Question[0].Qclass != dns.ClassINET:
		return dns.RcodeRefused
	case m.Question[0].Qtype == dns.TypeAXFR || m.Question[0].Qtype == dns.TypeIXFR:
		return dns.RcodeRefused
	case isSpecialType(m.Question[0].Qtype):
		return dns.RcodeNotImplemented
	}
	return dns.RcodeFormatError
}

func countOPT(rrs []dns.RR) int {
	n := 0
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			n++
		}
	}
	return n
}

// headerOnly returns a response of just a header, keeping the query's ID and
// opcode, for packets that cannot be parsed further.
func headerOnly(pkt []byte, rcode int) []byte {
	out := make([]byte, 12)
	copy(out, pkt[:4])
	out[2] = out[2]&0x79 | 0x80 // QR set, opcode and RD kept, AA and TC cleared
	out[3] = 0x80 | byte(rcode&0x0f)
	return out
}
