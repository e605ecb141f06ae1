package pipeline

import (
	"strings"

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

// shedSuspect returns the SERVFAIL for pkt, a query for a suspect name
// shed because the suspect pool was full, with Extended DNS Error 0 when
// the query has EDNS, and counts it in Stats.Busy.
func (p *Pipeline) shedSuspect(pkt []byte) []byte {
	m := new(dns.Msg)
	if err := m.Unpack(pkt); err != nil || len(m.Question) != 1 {
		return nil
	}
	r := new(dns.Msg)
	r.SetRcode(m, dns.RcodeServerFailure)
	r.RecursionAvailable = true
	if opt := m.IsEdns0(); opt != nil {
		r.SetEdns0(p.cfg.BufferSize, opt.Do())
		r.IsEdns0().Option = append(r.IsEdns0().Option, &dns.EDNS0_EDE{
			InfoCode:  dns.ExtendedErrorCodeOther,
			ExtraText: "resolver busy with a random-subdomain flood under this zone",
		})
	}
	p.stats.Busy.Add(1)
	wire, _ := r.Pack()
	return wire
}
