package pipeline

import (
	"sync"
	"sync/atomic"
	"time"

	"bulwark/internal/resolver"

	"github.com/miekg/dns"
)

// suspectSlots returns how many resolutions of suspect names may run at
// once: a hundredth of maxResolutions, 100 by default, and at least 1.
//
// A flood of random names under one zone costs CPU even when no server is
// asked, as when cached NSEC records answer it (RFC 8198). Past what the
// cores can answer, resolutions queue, and every goroutine waiting
// delays the normal queries scheduled behind it and holds its stack.
// Holding the flood's names to a small pool, and to SuspectRate a second,
// keeps the runnable resolutions few; the names past either get SERVFAIL
// at once.
func suspectSlots(maxResolutions int) int {
	return max(1, maxResolutions/100)
}

// rateWindow counts events per second of the clock, without a lock. Two
// goroutines that see a new second at once may both reset the count, so
// the limit is approximate.
type rateWindow struct {
	second, count atomic.Int64
}

// spent reports whether rate events happened in the second of now.
func (w *rateWindow) spent(now time.Time, rate int) bool {
	return w.second.Load() == now.Unix() && w.count.Load() >= int64(rate)
}

// take counts one event and reports whether it is within rate.
func (w *rateWindow) take(now time.Time, rate int) bool {
	if s := now.Unix(); w.second.Load() != s {
		w.second.Store(s)
		w.count.Store(0)
	}
	return w.count.Add(1) <= int64(rate)
}

// appendLowerName appends the name in wire format wire to dst in lower
// case presentation format, with the final dot. ok is false for a name
// with a byte other than a letter, digit, '-', '_' or '*', because such a
// byte would need an escape. Such names are never found suspect.
func appendLowerName(dst, wire []byte) (out []byte, ok bool) {
	for i := 0; i < len(wire) && wire[i] != 0; {
		n := int(wire[i])
		if n > 63 || i+1+n > len(wire) {
			return dst, false
		}
		for _, c := range wire[i+1 : i+1+n] {
			switch {
			case 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '*':
			default:
				return dst, false
			}
			dst = append(dst, c)
		}
		dst = append(dst, '.')
		i += 1 + n
	}
	if len(dst) == 0 {
		dst = append(dst, '.')
	}
	return dst, true
}

// nameBuffers holds buffers for names passed to ZoneObserver.Suspect: a
// buffer on the stack would escape to the heap through the interface.
var nameBuffers = sync.Pool{New: func() any { return new([256]byte) }}

// suspect reports whether the zone observer finds q's name suspect. It
// does not allocate once nameBuffers holds a buffer per goroutine.
func (p *Pipeline) suspect(q *Query) bool {
	if p.zones == nil {
		return false
	}
	buf := nameBuffers.Get().(*[256]byte)
	defer nameBuffers.Put(buf)
	name, ok := appendLowerName(buf[:0], q.QName)
	return ok && p.zones.Suspect(name)
}

// shedFast reports whether q, a cache miss, is a suspect name that the
// slow path would shed because the suspect pool is full or the second's
// SuspectRate is spent. Shedding it on the fast path spares the flood's
// names a goroutine each.
func (p *Pipeline) shedFast(q *Query, now time.Time) bool {
	full := len(p.suspects) == cap(p.suspects) || p.suspectRate.spent(now, p.cfg.SuspectRate)
	return full && p.suspect(q)
}

// admitSuspect decides whether q may be resolved. A suspect name needs a
// slot of the suspect pool, taken here, and a share of SuspectRate:
// suspect is set when the caller must give the slot back once the
// resolution ends. admitted is false when either is spent.
func (p *Pipeline) admitSuspect(q *Query, now time.Time) (suspect, admitted bool) {
	if !p.suspect(q) {
		return false, true
	}
	if !p.suspectRate.take(now, p.cfg.SuspectRate) {
		return false, false
	}
	select {
	case p.suspects <- struct{}{}:
		return true, true
	default:
		return false, false
	}
}

// edeFlood is the EDE option of the SERVFAIL sent for a shed suspect name.
var edeFlood = edeOption(&resolver.EDE{Code: resolver.EDEOther,
	Text: "resolver busy with a random-subdomain flood under this zone"})

// shedSuspect appends to out the SERVFAIL for q, read from pkt, a query
// for a suspect name that was shed, and counts it in Stats.Busy. It copies
// the question from pkt, which costs far less than building a message,
// since a flood may send many such names a second.
func (p *Pipeline) shedSuspect(out, pkt []byte, q *Query, now time.Time) []byte {
	out = appendHeader(out, pkt, q, dns.RcodeServerFailure, true)
	if q.EDNS {
		out = p.appendOPT(out, edeFlood, q, now)
	}
	p.stats.Busy.Add(1)
	return out
}
