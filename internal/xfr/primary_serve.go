package xfr

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/miekg/dns"
)

// primaryCounters count what a Primary did since the start.
type primaryCounters struct {
	serials, soa, axfr, ixfr, ixfrFallback, refused atomic.Uint64
	axfrFailed, ixfrFailed, ixfrFallbackFailed      atomic.Uint64
	notifyAcked, notifyFailed                       atomic.Uint64
	refusedBy                                       [refusalReasonCount]atomic.Uint64
}

// RefusalReasons name why a request was refused or rejected, and are the
// keys of PrimaryStats.RefusedBy. They are: an opcode, class or question
// count the primary does not serve (unsupported), a zone it does not
// serve (zone), a client outside allow_transfer (address), a missing or
// bad TSIG signature (tsig), an AXFR over UDP (transport), an IXFR
// without the client's SOA (format), another query type (qtype), and a
// zone without a serial yet (unloaded), answered SERVFAIL.
var RefusalReasons = []string{"unsupported", "zone", "address", "tsig", "transport", "format", "qtype", "unloaded"}

// Indexes of RefusalReasons.
const (
	refusedUnsupported = iota
	refusedZone
	refusedAddress
	refusedTSIG
	refusedTransport
	refusedFormat
	refusedQtype
	refusedUnloaded
	refusalReasonCount
)

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
	// AXFRFailed, IXFRFailed and IXFRFallbackFailed count the transfers
	// among those that broke off because a message could not be written,
	// such as when the client closed the connection.
	AXFRFailed         uint64 `json:"axfr_failed"`
	IXFRFailed         uint64 `json:"ixfr_failed"`
	IXFRFallbackFailed uint64 `json:"ixfr_fallback_failed"`
	// Refused counts requests refused or rejected: by address, TSIG,
	// unknown zone, query type or transport. RefusedBy splits it by the
	// reasons of RefusalReasons.
	Refused   uint64            `json:"refused"`
	RefusedBy map[string]uint64 `json:"refused_by"`
	// NotifyAcked and NotifyFailed count NOTIFY messages acknowledged by
	// a secondary and those that got no NOERROR after every retry.
	NotifyAcked  uint64 `json:"notify_acked"`
	NotifyFailed uint64 `json:"notify_failed"`
}

// Stats returns the counters.
func (p *Primary) Stats() PrimaryStats {
	c := &p.stats
	// The failures are read first: a transfer is counted before it can
	// fail, so no kind shows more failures than transfers.
	st := PrimaryStats{
		AXFRFailed: c.axfrFailed.Load(), IXFRFailed: c.ixfrFailed.Load(),
		IXFRFallbackFailed: c.ixfrFallbackFailed.Load(),
	}
	st.Serials, st.SOA, st.AXFR, st.IXFR = c.serials.Load(), c.soa.Load(), c.axfr.Load(), c.ixfr.Load()
	st.IXFRFallback, st.Refused = c.ixfrFallback.Load(), c.refused.Load()
	st.NotifyAcked, st.NotifyFailed = c.notifyAcked.Load(), c.notifyFailed.Load()
	st.RefusedBy = make(map[string]uint64, len(RefusalReasons))
	for i, reason := range RefusalReasons {
		st.RefusedBy[reason] = c.refusedBy[i].Load()
	}
	return st
}

// ZoneStats is the state of one published zone.
type ZoneStats struct {
	Name   string `json:"name"`
	Serial uint32 `json:"serial"`
	// Records counts the zone's records without the SOA and NS.
	Records int `json:"records"`
}

// Zones returns the state of each published zone, sorted by name.
func (p *Primary) Zones() []ZoneStats {
	out := make([]ZoneStats, 0, len(p.zones))
	for _, z := range p.zones {
		serial, records, _, _ := z.snapshot(0)
		out = append(out, ZoneStats{Name: z.name, Serial: serial, Records: len(records)})
	}
	slices.SortFunc(out, func(a, b ZoneStats) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// handle responds to one request: SOA, AXFR or IXFR for a served zone, from
// an allowed address, signed when TSIG is required.
func (p *Primary) handle(w dns.ResponseWriter, req *dns.Msg) {
	if req.Opcode != dns.OpcodeQuery || len(req.Question) != 1 || req.Question[0].Qclass != dns.ClassINET {
		p.reject(w, req, dns.RcodeNotImplemented, refusedUnsupported)
		return
	}
	if rcode, reason := p.check(w, req); rcode != dns.RcodeSuccess {
		p.reject(w, req, rcode, reason)
		return
	}
	z := p.zones[dns.CanonicalName(req.Question[0].Name)]
	if !z.isLoaded() {
		// No serial yet, because the serial file could not be written.
		p.reject(w, req, dns.RcodeServerFailure, refusedUnloaded)
		return
	}
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
			p.reject(w, req, dns.RcodeFormatError, refusedTransport)
			return
		}
		p.stats.axfr.Add(1)
		p.log.Info("zone transferred", "zone", z.name, "type", "AXFR", "serial", z.currentSerial())
		if !p.transfer(w, req, z, axfrRecords(z)) {
			p.stats.axfrFailed.Add(1)
		}
	default:
		p.reject(w, req, dns.RcodeRefused, refusedQtype)
	}
}

// check returns NOERROR for a request Bulwark serves. Otherwise it
// returns the rcode to reject it with and the index of the reason in
// RefusalReasons: REFUSED for an unknown zone, an address outside
// AllowTransfer or a missing signature, and NOTAUTH for a bad signature
// (RFC 8945 section 5.2).
func (p *Primary) check(w dns.ResponseWriter, req *dns.Msg) (rcode, reason int) {
	if p.zones[dns.CanonicalName(req.Question[0].Name)] == nil {
		return dns.RcodeRefused, refusedZone
	}
	if !p.allowed(w.RemoteAddr()) {
		return dns.RcodeRefused, refusedAddress
	}
	t := req.IsTsig()
	switch {
	case t != nil && w.TsigStatus() != nil:
		return dns.RcodeNotAuth, refusedTSIG
	case t == nil && p.cfg.RequireTSIG:
		return dns.RcodeRefused, refusedTSIG
	}
	return dns.RcodeSuccess, 0
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

func (p *Primary) reject(w dns.ResponseWriter, req *dns.Msg, rcode, reason int) {
	p.stats.refused.Add(1)
	p.stats.refusedBy[reason].Add(1)
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
		p.reject(w, req, dns.RcodeFormatError, refusedFormat)
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
		if !p.transfer(w, req, z, ixfrRecords(z, serial, diffs)) {
			p.stats.ixfrFailed.Add(1)
		}
	default:
		p.stats.ixfrFallback.Add(1)
		p.log.Info("zone transferred", "zone", z.name, "type", "AXFR", "from_serial", client.Serial, "serial", serial, "reason", "journal does not reach back")
		if !p.transfer(w, req, z, axfrRecords(z)) {
			p.stats.ixfrFallbackFailed.Add(1)
		}
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
// (RFC 8945 section 5.3.1). It reports whether every message was written.
func (p *Primary) transfer(w dns.ResponseWriter, req *dns.Msg, z *servedZone, records []dns.RR) bool {
	for start := 0; start < len(records); start += recordsPerMessage {
		end := min(start+recordsPerMessage, len(records))
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		m.Compress = true
		m.Answer = records[start:end]
		if err := p.writeSigned(w, req, m); err != nil {
			p.log.Warn("zone transfer failed", "zone", z.name, "err", err)
			return false
		}
		w.TsigTimersOnly(true)
	}
	return true
}
