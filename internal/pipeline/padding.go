package pipeline

import "encoding/binary"

// PaddingBlock is the block length that responses on encrypted transports
// are padded to, the value RFC 8467 section 4.1 recommends.
const PaddingBlock = 468

// edns0Padding is the EDNS option code of Padding (RFC 7830).
const edns0Padding = 12

// Pad returns resp with an EDNS Padding option that makes its length a
// multiple of block, when query, the message resp answers, carries a
// Padding option itself (RFC 7830 section 4). Otherwise, or when either
// message cannot be walked, it returns resp unchanged. resp may be
// modified in place.
func Pad(resp, query []byte, block int) []byte {
	if block <= 0 {
		return resp
	}
	qOpt, ok := findOPT(query)
	if !ok || qOpt.start < 0 || !hasOption(query[qOpt.rdata:qOpt.end], edns0Padding) {
		return resp
	}
	opt, ok := findOPT(resp)
	if !ok || opt.start < 0 || hasOption(resp[opt.rdata:opt.end], edns0Padding) {
		return resp
	}
	pad := (block - (len(resp)+4)%block) % block
	if len(resp)+4+pad > 65535 {
		return resp
	}
	out := make([]byte, 0, len(resp)+4+pad)
	out = append(out, resp[:opt.end]...)
	out = binary.BigEndian.AppendUint16(out, edns0Padding)
	out = binary.BigEndian.AppendUint16(out, uint16(pad))
	out = append(out, make([]byte, pad)...)
	out = append(out, resp[opt.end:]...)
	rdlen := binary.BigEndian.Uint16(out[opt.rdata-2:])
	binary.BigEndian.PutUint16(out[opt.rdata-2:], rdlen+4+uint16(pad))
	return out
}

// optRecord locates the OPT record of a message: start is the offset of
// the record, -1 when there is none, and its rdata spans [rdata, end).
type optRecord struct {
	start, rdata, end int
}

// findOPT walks msg to its OPT record. ok is false for a message that is
// too short or malformed.
func findOPT(msg []byte) (optRecord, bool) {
	if len(msg) < 12 {
		return optRecord{}, false
	}
	qd := int(binary.BigEndian.Uint16(msg[4:]))
	rrs := int(binary.BigEndian.Uint16(msg[6:])) + int(binary.BigEndian.Uint16(msg[8:]))
	ar := int(binary.BigEndian.Uint16(msg[10:]))
	off := 12
	var ok bool
	for range qd {
		if off, ok = skipName(msg, off); !ok || off+4 > len(msg) {
			return optRecord{}, false
		}
		off += 4
	}
	for i := range rrs + ar {
		start := off
		if off, ok = skipName(msg, off); !ok || off+10 > len(msg) {
			return optRecord{}, false
		}
		rtype := binary.BigEndian.Uint16(msg[off:])
		rdata := off + 10
		end := rdata + int(binary.BigEndian.Uint16(msg[off+8:]))
		if end > len(msg) {
			return optRecord{}, false
		}
		if i >= rrs && rtype == 41 {
			return optRecord{start: start, rdata: rdata, end: end}, true
		}
		off = end
	}
	return optRecord{start: -1}, true
}

// skipName returns the offset after the name at off.
func skipName(msg []byte, off int) (int, bool) {
	for off < len(msg) {
		n := int(msg[off])
		switch {
		case n == 0:
			return off + 1, true
		case n&0xC0 == 0xC0:
			return off + 2, off+2 <= len(msg)
		case n&0xC0 != 0:
			return 0, false
		}
		off += 1 + n
	}
	return 0, false
}

// hasOption reports whether the OPT rdata holds an option with code.
func hasOption(rdata []byte, code uint16) bool {
	for len(rdata) >= 4 {
		n := 4 + int(binary.BigEndian.Uint16(rdata[2:]))
		if binary.BigEndian.Uint16(rdata) == code {
			return true
		}
		if n > len(rdata) {
			return false
		}
		rdata = rdata[n:]
	}
	return false
}

// MinTTL returns the lowest TTL of the answer and authority records of msg,
// for an HTTP cache lifetime (RFC 8484 section 5.1). ok is false when msg
// has no such record or cannot be walked.
func MinTTL(msg []byte) (ttl uint32, ok bool) {
	if len(msg) < 12 {
		return 0, false
	}
	qd := int(binary.BigEndian.Uint16(msg[4:]))
	rrs := int(binary.BigEndian.Uint16(msg[6:])) + int(binary.BigEndian.Uint16(msg[8:]))
	off := 12
	for range qd {
		if off, ok = skipName(msg, off); !ok || off+4 > len(msg) {
			return 0, false
		}
		off += 4
	}
	ttl = ^uint32(0)
	for range rrs {
		if off, ok = skipName(msg, off); !ok || off+10 > len(msg) {
			return 0, false
		}
		ttl = min(ttl, binary.BigEndian.Uint32(msg[off+4:]))
		off += 10 + int(binary.BigEndian.Uint16(msg[off+8:]))
		if off > len(msg) {
			return 0, false
		}
	}
	return ttl, rrs > 0
}
