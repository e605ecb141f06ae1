package xfr

import (
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/miekg/dns"
)

// primaryCounters count what a Primary did since the start.
type primaryCounters struct {
	serials, soa, axfr, ixfr, ixfrFallback, refused atomic.Uint64
	notifyAcked, notifyFailed                       atomic.Uint64
}

// PrimaryStats counts what a Primary did since the start.
type PrimaryStats struct {
	// Serials counts new serials over all zones.
	Serials uint64 `json:"serials"`
	// SOA, AXFR and IXFR count the requests answered; IXFRFallback the
	// IXFR requests answered with the whole zone because the journal did
	// not reach back to the client's serial.
	SOA          uint64 `json:"soa"`
	AXFR         uint64 `json:"axfr"`
	IXFR         uint64 `json:"ixfr"`
	IXFRFallback uint64 `json:"ixfr_fallback"`
	// Refused counts requests refused or rejected: by address, TSIG,
	// unknown zone, query type or transport.
	Refused uint64 `json:"refused"`
	// NotifyAcked and NotifyFailed count NOTIFY messages acknowledged by
	// a secondary and those that got no NOERROR after every retry.
	NotifyAcked  uint64 `json:"notify_acked"`
	NotifyFailed uint64 `json:"notify_failed"`
}

// Stats returns the counters.
func (p *Primary) Stats() PrimaryStats {
	c := &p.stats
	return PrimaryStats{
		Serials: c.serials.Load(), SOA: c.soa.Load(), AXFR: c.axfr.Load(), IXFR: c.ixfr.Load(),
		IXFRFallback: c.ixfrFallback.Load(), Refused: c.refused.Load(),
		NotifyAcked: c.notifyAcked.Load(), NotifyFailed: c.notifyFailed.Load(),
	}
}

// handle responds to one request: SOA, AXFR or IXFR for a served zone, from
// an allowed address, signed when TSIG is required.
func (p *Primary) handle(w dns.ResponseWriter, req *dns.Msg) {
	if req.Opcode != dns.OpcodeQuery || len(req.Question) != 1 || req.Question[0].Qclass != dns.ClassINET {
		p.reject(w, req, dns.RcodeNotImplemented)
		return
	}
	if rcode := p.check(w, req); rcode != dns.RcodeSuccess {
		p.reject(w, req, rcode)
		return
	}
	z := p.zones[dns.CanonicalName(req.Question[0].Name)]
	_, udp := w.RemoteAddr().(*net.UDPAddr)
	switch req.Question[0].Qtype {
	case dns.TypeSOA:
		p.stats.soa.Add(1)
		p.answerSOA(w, req, z)
	case dns.TypeIXFR:
		p.ixfr(w, req, z, udp)
	case dns.TypeAXFR:
		if udp {
			// RFC 5936 section 4.2: AXFR runs over TCP only.
			p.reject(w, req, dns.RcodeFormatError)
			return
		}
		p.stats.axfr.Add(1)
		p.log.Info("zone transferred", "zone", z.name, "type", "AXFR", "serial", z.currentSerial())
		p.transfer(w, req, z, axfrRecords(z))
	default:
		p.reject(w, req, dns.RcodeRefused)
	}
}

// check returns NOERROR for a request Bulwark serves, or the rcode to
// reject it with: REFUSED for an unknown zone, an address outside
// AllowTransfer or a missing signature, NOTAUTH for a bad signature
// (RFC 8945 section 5.2).
func (p *Primary) check(w dns.ResponseWriter, req *dns.Msg) int {
	if p.zones[dns.CanonicalName(req.Question[0].Name)] == nil {
		return dns.RcodeRefused
	}
	if !p.allowed(w.RemoteAddr()) {
		return dns.RcodeRefused
	}
	t := req.IsTsig()
	switch {
	case t != nil && w.TsigStatus() != nil:
		return dns.RcodeNotAuth
	case t == nil && p.cfg.RequireTSIG:
		return dns.RcodeRefused
	}
	return dns.RcodeSuccess
}

func (p *Primary) allowed(addr net.Addr) bool {
	var a netip.Addr
	switch x := addr.(type) {
	case *net.UDPAddr:
		a = x.AddrPort().Addr().Unmap()
	case *net.TCPAddr:
		a = x.AddrPort().Addr().Unmap()
	default:
		return false
	}
	for _, pfx := range p.cfg.AllowTransfer {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

func (p *Primary) reject(w dns.ResponseWriter, req *dns.Msg, rcode int) {
	p.stats.refused.Add(1)
	m := new(dns.Msg)
	m.SetRcode(req, rcode)
	// An unverified request gets an unsigned response (RFC 8945 section
	// 5.3.2 allows that for BADKEY and BADSIG).
	w.WriteMsg(m)
}

func (p *Primary) answerSOA(w dns.ResponseWriter, req *dns.Msg, z *servedZone) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	m.Answer = []dns.RR{z.soa(z.currentSerial())}
	p.writeSigned(w, req, m)
}

// writeSigned writes m, with a TSIG record when req had a valid one; the
// server computes the MAC over the request's.
func (p *Primary) writeSigned(w dns.ResponseWriter, req *dns.Msg, m *dns.Msg) error {
	if t := req.IsTsig(); t != nil && w.TsigStatus() == nil {
		m.SetTsig(t.Hdr.Name, t.Algorithm, fudge, p.now().Unix())
	}
	return w.WriteMsg(m)
}

// axfrRecords returns the whole zone in AXFR order: SOA, the records, SOA
// (RFC 5936 section 2.2).
func axfrRecords(z *servedZone) []dns.RR {
	serial, records, _, _ := z.snapshot(0)
	soa := z.soa(serial)
	out := make([]dns.RR, 0, len(records)+3)
	out = append(out, soa, z.apexNS())
	out = append(out, records...)
	return append(out, soa)
}

// ixfr responds to an IXFR request (RFC 1995 section 4): one SOA when the
// client is current or asks over UDP, the diffs since its serial when the
// journal reaches back, and the whole zone otherwise.
func (p *Primary) ixfr(w dns.ResponseWriter, req *dns.Msg, z *servedZone, udp bool) {
	var client *dns.SOA
	if len(req.Ns) == 1 {
		client, _ = req.Ns[0].(*dns.SOA)
	}
	if client == nil {
		// RFC 1995 section 3: the authority section holds the client's SOA.
		p.reject(w, req, dns.RcodeFormatError)
		return
	}
	serial, _, diffs, ok := z.snapshot(client.Serial)
	switch {
	case udp || !SerialLess(client.Serial, serial):
		// Current or newer, or UDP, where the client retries over TCP
		// when the single SOA is newer than its own (RFC 1995 section 2).
		p.stats.ixfr.Add(1)
		p.answerSOA(w, req, z)
	case ok:
		p.stats.ixfr.Add(1)
		p.log.Info("zone transferred", "zone", z.name, "type", "IXFR", "from_serial", client.Serial, "serial", serial)
		p.transfer(w, req, z, ixfrRecords(z, serial, diffs))
	default:
		p.stats.ixfrFallback.Add(1)
		p.log.Info("zone transferred", "zone", z.name, "type", "AXFR", "from_serial", client.Serial, "serial", serial, "reason", "journal does not reach back")
		p.transfer(w, req, z, axfrRecords(z))
	}
}

// ixfrRecords returns the incremental transfer from diffs, which end at
// serial: the new SOA, then for each diff the old SOA, the deleted records,
// the new SOA and the added records, and the new SOA again.
func ixfrRecords(z *servedZone, serial uint32, diffs []journalEntry) []dns.RR {
	out := []dns.RR{z.soa(serial)}
	for _, d := range diffs {
		out = append(out, z.soa(d.From))
		out = append(out, d.Deleted...)
		out = append(out, z.soa(d.To))
		out = append(out, d.Added...)
	}
	return append(out, z.soa(serial))
}

// transfer writes records in messages of at most recordsPerMessage
// records, each signed when the request was: the server chains the MACs
// (RFC 8945 section 5.3.1).
func (p *Primary) transfer(w dns.ResponseWriter, req *dns.Msg, z *servedZone, records []dns.RR) {
	for start := 0; start < len(records); start += recordsPerMessage {
		end := min(start+recordsPerMessage, len(records))
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		m.Compress = true
		m.Answer = records[start:end]
		if err := p.writeSigned(w, req, m); err != nil {
			p.log.Warn("zone transfer failed", "zone", z.name, "err", err)
			return
		}
		w.TsigTimersOnly(true)
	}
}
