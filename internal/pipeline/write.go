package pipeline

import (
	"encoding/binary"
	"time"

	"bulwark/internal/cache"
)

// minUDPSize is the largest UDP response to a client without EDNS, and the
// floor for clients that advertise less (RFC 6891 section 6.2.5).
const minUDPSize = 512

// write appends pk, patched for q, to out and returns it. The patches are the
// client's ID, RD and CD bits and question case, and an OPT record when the
// client used EDNS. AD stays set only for clients that set AD or DO (RFC
// 6840 section 5.7). A response too big for the client's UDP size is cut to
// its header and question with TC set, since RFC 2181 section 9 forbids
// partial RRsets.
func (p *Pipeline) write(out []byte, pk *cache.Packed, q *Query, udp bool, now time.Time) []byte {
	out = pk.AppendTo(out, now)
	binary.BigEndian.PutUint16(out, q.ID)
	flags := binary.BigEndian.Uint16(out[2:])
	flags = flags&^(flagRD|flagCD) | q.Flags&(flagRD|flagCD)
	if !q.DO && q.Flags&flagAD == 0 {
		flags &^= flagAD
	}
	binary.BigEndian.PutUint16(out[2:], flags)
	// NOTE: names compressed against the question, such as answer owners
	// and names in record data that end like it, take the client's letter
	// case too. Names compare without case (RFC 4343), and pointing at
	// the question keeps responses small.
	copy(out[12:], q.QName)
	return p.finish(out, pk.Options(), q, udp, now)
}

// finish completes out, a response to q whose header and question are
// written. Over UDP, a response too big for the client is cut to its
// header and question with TC set. A client that used EDNS gets an OPT
// record carrying options.
func (p *Pipeline) finish(out, options []byte, q *Query, udp bool, now time.Time) []byte {
	if udp {
		limit := minUDPSize
		if q.EDNS {
			limit = max(minUDPSize, min(int(q.UDPSize), int(p.cfg.BufferSize)))
		}
		if len(out)+p.optLen(options, q) > limit {
			out = truncate(out, len(q.QName))
			if len(out)+11+len(options)+p.cookieLen(q) > limit {
				// Even the options do not fit: the retry over TCP
				// gets them.
				options = nil
			}
		}
	}
	if q.EDNS {
		out = p.appendOPT(out, options, q, now)
	}
	return out
}

// truncate cuts a response to its header and question and sets TC.
func truncate(out []byte, qnameLen int) []byte {
	out = out[:12+qnameLen+4]
	out[2] |= byte(flagTC >> 8)
	for i := 6; i < 12; i++ {
		out[i] = 0
	}
	return out
}

func (p *Pipeline) optLen(options []byte, q *Query) int {
	if !q.EDNS {
		return 0
	}
	return 11 + len(options) + p.cookieLen(q)
}

// appendOPT appends an OPT record with Bulwark's buffer size, the DO bit
// of q echoed (RFC 3225 section 3), options and, when q had a client
// cookie, a COOKIE option with a fresh server cookie. It counts the record
// in ARCOUNT.
func (p *Pipeline) appendOPT(out, options []byte, q *Query, now time.Time) []byte {
	var ttl uint32
	if q.DO {
		ttl = 1 << 15
	}
	out = append(out, 0, 0, 41)
	out = binary.BigEndian.AppendUint16(out, p.cfg.BufferSize)
	out = binary.BigEndian.AppendUint32(out, ttl)
	out = binary.BigEndian.AppendUint16(out, uint16(len(options)+p.cookieLen(q)))
	out = append(out, options...)
	if p.cookieLen(q) > 0 {
		out = p.appendCookie(out, q, now)
	}
	binary.BigEndian.PutUint16(out[10:], binary.BigEndian.Uint16(out[10:])+1)
	return out
}
