package pipeline

import (
	"encoding/binary"
	"net/netip"

	"bulwark/internal/cache"
	"bulwark/internal/cookie"

	"github.com/miekg/dns"
)

// Query is a client question read by the fast parser. QName points into the
// packet it was read from.
type Query struct {
	ID     uint16
	Flags  uint16 // the second 16 bits of the header
	QName  []byte // wire format, as the client sent it
	QType  uint16
	QClass uint16
	// EDNS is true when the query had an OPT record (RFC 6891); UDPSize and
	// DO come from it.
	EDNS    bool
	UDPSize uint16
	DO      bool
	// Cookie is the data of the COOKIE option (RFC 7873), nil when the
	// query had none. It points into the packet and has a valid length.
	Cookie []byte

	// client is the client's address, for the server cookie of the
	// response.
	client netip.Addr
	// suspect is set when the name looks like part of a random-subdomain
	// flood (see ZoneObserver); its response is not cached.
	suspect bool
}

// Header flag bits, in the 16-bit flags word.
const (
	flagQR = 1 << 15
	flagTC = 1 << 9
	flagRD = 1 << 8
	flagAD = 1 << 5
	flagCD = 1 << 4
)

// Key flag bits: parts of a query that change the response.
const (
	keyDO = 1 << 0
	keyCD = 1 << 1
)

// parseFast reads the common shape of a query: opcode QUERY, one question of
// class IN, no answer or authority records, and at most one OPT record of
// EDNS version 0. ok is false for anything else, which the slow path parses
// fully and answers with the right error.
func parseFast(pkt []byte) (q Query, ok bool) {
	if len(pkt) < 12 {
		return q, false
	}
	q.ID = binary.BigEndian.Uint16(pkt)
	q.Flags = binary.BigEndian.Uint16(pkt[2:])
	if q.Flags&flagQR != 0 || q.Flags&0x7800 != 0 { // response, or opcode not QUERY
		return q, false
	}
	qd, an, ns, ar := binary.BigEndian.Uint16(pkt[4:]), binary.BigEndian.Uint16(pkt[6:]),
		binary.BigEndian.Uint16(pkt[8:]), binary.BigEndian.Uint16(pkt[10:])
	if qd != 1 || an != 0 || ns != 0 || ar > 1 {
		return q, false
	}
	end, ok := nameEnd(pkt, 12)
	if !ok || end+4 > len(pkt) {
		return q, false
	}
	q.QName = pkt[12:end]
	q.QType = binary.BigEndian.Uint16(pkt[end:])
	q.QClass = binary.BigEndian.Uint16(pkt[end+2:])
	if q.QClass != dns.ClassINET || isSpecialType(q.QType) {
		return q, false
	}
	off := end + 4
	if ar == 0 {
		return q, off == len(pkt)
	}
	return parseOPT(pkt, off, q)
}

// parseOPT reads the OPT record at off, which must end the packet.
func parseOPT(pkt []byte, off int, q Query) (Query, bool) {
	if off+11 > len(pkt) || pkt[off] != 0 || binary.BigEndian.Uint16(pkt[off+1:]) != dns.TypeOPT {
		return q, false
	}
	// The extended RCODE byte (pkt[off+5]) means nothing in a query and is
	// ignored.
	version := pkt[off+6]
	rdlen := int(binary.BigEndian.Uint16(pkt[off+9:]))
	if version != 0 || off+11+rdlen != len(pkt) || !readOptions(pkt[off+11:], &q) {
		return q, false
	}
	q.EDNS = true
	q.UDPSize = binary.BigEndian.Uint16(pkt[off+3:])
	q.DO = pkt[off+7]&0x80 != 0
	return q, true
}

// readOptions reports whether rdata is a sequence of whole EDNS options:
// each a code, a length and that many bytes (RFC 6891 section 6.1.2). It
// sets q.Cookie to the data of a COOKIE option. A COOKIE of a length RFC
// 7873 section 5.2.2 does not allow, or a second COOKIE, makes the query
// malformed, for the slow path to answer FORMERR.
func readOptions(rdata []byte, q *Query) bool {
	for len(rdata) > 0 {
		if len(rdata) < 4 {
			return false
		}
		code := binary.BigEndian.Uint16(rdata)
		n := 4 + int(binary.BigEndian.Uint16(rdata[2:]))
		if n > len(rdata) {
			return false
		}
		if code == cookie.OptionCode {
			if _, _, err := cookie.Split(rdata[4:n]); err != nil || q.Cookie != nil {
				return false
			}
			q.Cookie = rdata[4:n:n]
		}
		rdata = rdata[n:]
	}
	return true
}

// nameEnd returns the offset past an uncompressed name at off, checking
// label and name lengths (RFC 1035 section 2.3.4).
func nameEnd(pkt []byte, off int) (int, bool) {
	start := off
	for off < len(pkt) {
		l := int(pkt[off])
		if l == 0 {
			return off + 1, off+1-start <= 255
		}
		if l > 63 {
			return 0, false
		}
		off += l + 1
	}
	return 0, false
}

// isSpecialType reports query types that are not plain lookups: zone
// transfers, meta types and obsolete mail queries.
func isSpecialType(t uint16) bool {
	switch t {
	case dns.TypeAXFR, dns.TypeIXFR, dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY,
		dns.TypeMAILA, dns.TypeMAILB, dns.TypeNone:
		return true
	}
	return false
}

// key appends the answer cache key of q to dst.
func (q *Query) key(dst []byte) []byte {
	var flags byte
	if q.DO {
		flags |= keyDO
	}
	if q.Flags&flagCD != 0 {
		flags |= keyCD
	}
	return cache.AnswerKey(dst, q.QName, q.QType, flags)
}
