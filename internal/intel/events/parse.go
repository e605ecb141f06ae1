package events

import (
	"encoding/binary"
	"net/netip"
)

// DNS constants of RFC 1035 section 4.1 that Parse needs.
const (
	headerLen   = 12
	typeA       = 1
	typeAAAA    = 28
	pointerMask = 0xC0
	maxWireSize = 0xFFFF
)

// Parse fills ev from a query message and its response (nil when none was
// sent): the first question's name, lowercased, and type, the size of both
// messages, and the rcode and the A and AAAA records of the response's
// answer section. It returns false when the query has no valid question.
// A response that cannot be parsed past its header keeps its rcode and
// size but no addresses. Parse does not allocate.
func Parse(query, response []byte, ev *Event) bool {
	if len(query) < headerLen || binary.BigEndian.Uint16(query[4:]) == 0 {
		return false
	}
	off, ok := readQName(query, headerLen, ev)
	if !ok || off+4 > len(query) {
		return false
	}
	ev.QType = binary.BigEndian.Uint16(query[off:])
	ev.QuerySize = uint16(min(len(query), maxWireSize))
	if len(response) < headerLen {
		return true
	}
	ev.Answered = true
	ev.Rcode = response[3] & 0x0F
	ev.ResponseSize = uint16(min(len(response), maxWireSize))
	parseAnswers(response, ev)
	return true
}

// readQName copies the uncompressed name at off into ev in lowercase,
// without the final dot, and returns the offset after it. A query's
// question carries no compression pointer (RFC 1035 section 4.1.4 allows
// them only for earlier names), so one is rejected.
func readQName(msg []byte, off int, ev *Event) (int, bool) {
	n := 0
	for {
		if off >= len(msg) {
			return 0, false
		}
		l := int(msg[off])
		off++
		if l == 0 {
			break
		}
		if l&pointerMask != 0 || off+l > len(msg) || n+l+1 > len(ev.qname) {
			return 0, false
		}
		if n > 0 {
			ev.qname[n] = '.'
			n++
		}
		for _, c := range msg[off : off+l] {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			ev.qname[n] = c
			n++
		}
		off += l
	}
	ev.qnameLen = uint8(n)
	return off, true
}

// skipName returns the offset after the possibly compressed name at off.
func skipName(msg []byte, off int) (int, bool) {
	for off < len(msg) {
		l := int(msg[off])
		switch {
		case l == 0:
			return off + 1, true
		case l&pointerMask == pointerMask:
			return off + 2, off+2 <= len(msg)
		case l&pointerMask != 0:
			return 0, false
		}
		off += 1 + l
	}
	return 0, false
}

// parseAnswers adds the A and AAAA records of the answer section of msg.
func parseAnswers(msg []byte, ev *Event) {
	qdcount := int(binary.BigEndian.Uint16(msg[4:]))
	ancount := int(binary.BigEndian.Uint16(msg[6:]))
	off := headerLen
	var ok bool
	for range qdcount {
		if off, ok = skipName(msg, off); !ok || off+4 > len(msg) {
			return
		}
		off += 4
	}
	for range ancount {
		if off, ok = skipName(msg, off); !ok || off+10 > len(msg) {
			return
		}
		rrtype := binary.BigEndian.Uint16(msg[off:])
		ttl := binary.BigEndian.Uint32(msg[off+4:])
		rdlen := int(binary.BigEndian.Uint16(msg[off+8:]))
		off += 10
		if off+rdlen > len(msg) {
			return
		}
		switch {
		case rrtype == typeA && rdlen == 4:
			ev.AddAddr(netip.AddrFrom4([4]byte(msg[off:off+4])), ttl)
		case rrtype == typeAAAA && rdlen == 16:
			ev.AddAddr(netip.AddrFrom16([16]byte(msg[off:off+16])), ttl)
		}
		off += rdlen
	}
}
