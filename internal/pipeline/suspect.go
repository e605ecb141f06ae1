package pipeline

import (
	"strings"

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
// Holding the flood's names to a small pool keeps the runnable
// resolutions few; the names past the pool get SERVFAIL at once.
func suspectSlots(maxResolutions int) int {
	return max(1, maxResolutions/100)
}

// admitSuspect decides whether q may be resolved. A name that the zone
// observer finds suspect needs a slot of the suspect pool, taken here:
// suspect is set when the caller must give it back once the resolution
// ends. admitted is false when the pool is full.
func (p *Pipeline) admitSuspect(q *Query) (suspect, admitted bool) {
	if p.zones == nil {
		return false, true
	}
	name, _, err := dns.UnpackDomainName(q.QName, 0)
	if err != nil || !p.zones.Suspect(strings.ToLower(name)) {
		return false, true
	}
	select {
	case p.suspects <- struct{}{}:
		return true, true
	default:
		return false, false
	}
}

// edeFlood is the EDE option of the SERVFAIL sent for a suspect name shed
// because the suspect pool was full.
var edeFlood = edeOption(&resolver.EDE{Code: resolver.EDEOther,
	Text: "resolver busy with a random-subdomain flood under this zone"})

// shedSuspect returns the SERVFAIL for q, read from pkt, a query for a
// suspect name shed because the suspect pool was full, and counts it in
// Stats.Busy. It copies the question from pkt, which costs far less than
// building a message, since a flood may send many such names a second.
func (p *Pipeline) shedSuspect(pkt []byte, q *Query) []byte {
	out := appendHeader(nil, pkt, q, dns.RcodeServerFailure, true)
	if q.EDNS {
		out = p.appendOPT(out, edeFlood, q, p.now())
	}
	p.stats.Busy.Add(1)
	return out
}
