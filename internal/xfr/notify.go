package xfr

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"bulwark/internal/logging"

	"github.com/miekg/dns"
)

// Reasons a NOTIFY is refused, the keys of NotifyStats.Refused.
const (
	RefusedMalformed = "malformed"
	RefusedZone      = "unknown_zone"
	RefusedAddress   = "address"
	RefusedTSIG      = "tsig"
)

var refusalReasons = []string{RefusedMalformed, RefusedZone, RefusedAddress, RefusedTSIG}

// refusalLogInterval is the least time between two log lines for refused
// NOTIFY messages of one reason; the lines in between are counted.
const refusalLogInterval = 10 * time.Second

// NotifyHandler responds to NOTIFY messages (RFC 1996) for the zones of
// its secondaries and starts their refresh. It is safe for concurrent use.
type NotifyHandler struct {
	zones    map[string]*Secondary
	log      *slog.Logger
	now      func() time.Time
	accepted atomic.Uint64
	refused  map[string]*atomic.Uint64

	mu sync.Mutex
	// lastLog and suppressed rate-limit the log lines of refusals.
	lastLog    map[string]time.Time
	suppressed map[string]int
}

// NotifyStats counts NOTIFY messages since the start.
type NotifyStats struct {
	Accepted uint64 `json:"accepted"`
	// Refused counts refusals by reason: malformed, unknown_zone,
	// address (not a primary of the zone) and tsig.
	Refused map[string]uint64 `json:"refused"`
}

// NewNotifyHandler returns a handler for the zones of secondaries. now may
// be nil for time.Now.
func NewNotifyHandler(secondaries []*Secondary, log *slog.Logger, now func() time.Time) *NotifyHandler {
	if now == nil {
		now = time.Now
	}
	h := &NotifyHandler{
		zones: map[string]*Secondary{}, log: log, now: now, refused: map[string]*atomic.Uint64{},
		lastLog: map[string]time.Time{}, suppressed: map[string]int{},
	}
	for _, s := range secondaries {
		h.zones[s.Zone()] = s
	}
	for _, r := range refusalReasons {
		h.refused[r] = new(atomic.Uint64)
	}
	return h
}

// Stats returns the NOTIFY counters.
func (h *NotifyHandler) Stats() NotifyStats {
	st := NotifyStats{Accepted: h.accepted.Load(), Refused: map[string]uint64{}}
	for r, n := range h.refused {
		st.Refused[r] = n.Load()
	}
	return st
}

// Notify responds to the NOTIFY message req, whose wire form is wire, from a
// client at from. A NOTIFY for a configured zone from one of its primaries
// or allow_notify prefixes, signed with the zone's key when it has one, gets
// NOERROR and starts a refresh. Others get FORMERR for a malformed message,
// NOTAUTH for a zone Bulwark has no copy of or a bad TSIG record (RFC 8945
// section 5.2), and REFUSED for an address that is not allowed or a
// missing signature. It returns the packed response, or nil to send none.
func (h *NotifyHandler) Notify(req *dns.Msg, wire []byte, from netip.Addr) []byte {
	if req.Response {
		return nil
	}
	if len(req.Question) != 1 || req.Question[0].Qclass != dns.ClassINET || req.Question[0].Qtype != dns.TypeSOA {
		// RFC 1996 section 3.7: a NOTIFY for a zone has QTYPE SOA.
		return h.refuse(req, dns.RcodeFormatError, RefusedMalformed, "", from, nil)
	}
	zone := dns.CanonicalName(req.Question[0].Name)
	sec := h.zones[zone]
	if sec == nil {
		return h.refuse(req, dns.RcodeNotAuth, RefusedZone, zone, from, nil)
	}
	if !sec.allowNotify(from) {
		sec.countNotify(false)
		return h.refuse(req, dns.RcodeRefused, RefusedAddress, zone, from, nil)
	}
	reply, rcode := checkTSIG(req, wire, sec.cfg.Key)
	if rcode != dns.RcodeSuccess {
		sec.countNotify(false)
		return h.refuse(req, rcode, RefusedTSIG, zone, from, reply)
	}
	sec.countNotify(true)
	h.accepted.Add(1)
	sec.log.Info("NOTIFY received; refreshing the zone", "primary", from.String())
	sec.Notify()
	return h.respond(req, dns.RcodeSuccess, reply)
}

// tsigReply is the TSIG record of a response: signed with key over the
// request's MAC, or, for the errors BADKEY and BADSIG, unsigned (RFC 8945
// section 5.3.2).
type tsigReply struct {
	key        *Key
	requestMAC string
	err        uint16
}

// checkTSIG checks the TSIG record of a NOTIFY against the zone's key. It
// returns the TSIG record of the response (nil for an unsigned one) and
// NOERROR when the message is acceptable, or the rcode to refuse it with.
func checkTSIG(req *dns.Msg, wire []byte, key *Key) (*tsigReply, int) {
	t := req.IsTsig()
	switch {
	case key == nil && t == nil:
		return nil, dns.RcodeSuccess
	case t == nil:
		// The zone has a key and the message is not signed.
		return nil, dns.RcodeRefused
	case key == nil || !key.matches(t):
		// A key that Bulwark does not have for this zone: the error
		// names the request's key.
		unknown := &Key{Name: t.Hdr.Name, Algorithm: dns.CanonicalName(t.Algorithm)}
		return &tsigReply{key: unknown, err: dns.RcodeBadKey}, dns.RcodeNotAuth
	}
	err := dns.TsigVerifyWithProvider(wire, key, "", false)
	switch {
	case err == nil:
		return &tsigReply{key: key, requestMAC: t.MAC}, dns.RcodeSuccess
	case errors.Is(err, dns.ErrTime):
		return &tsigReply{key: key, requestMAC: t.MAC, err: dns.RcodeBadTime}, dns.RcodeNotAuth
	}
	return &tsigReply{key: key, err: dns.RcodeBadSig}, dns.RcodeNotAuth
}

// refuse counts and logs a refused NOTIFY and returns the response.
func (h *NotifyHandler) refuse(req *dns.Msg, rcode int, reason, zone string, from netip.Addr, reply *tsigReply) []byte {
	h.refused[reason].Add(1)
	h.logRefusal(reason, zone, rcode, from)
	return h.respond(req, rcode, reply)
}

// logRefusal logs a refused NOTIFY, at most once per refusalLogInterval
// for each reason, with the count of refusals not logged since.
//
// The source's network (its /24 or /56) is logged only at debug level:
// NOTIFY reaches the client listeners, so the source may be a client, and
// client addresses stay out of the log.
func (h *NotifyHandler) logRefusal(reason, zone string, rcode int, from netip.Addr) {
	now := h.now()
	h.mu.Lock()
	if last, ok := h.lastLog[reason]; ok && now.Sub(last) < refusalLogInterval {
		h.suppressed[reason]++
		h.mu.Unlock()
		return
	}
	suppressed := h.suppressed[reason]
	h.lastLog[reason], h.suppressed[reason] = now, 0
	h.mu.Unlock()
	attrs := []any{"reason", reason, "zone", zone, "rcode", rcodeName(rcode), "not_logged_since", suppressed}
	if h.log.Enabled(context.Background(), slog.LevelDebug) {
		attrs = append(attrs, "source_network", logging.ClientNetwork(from))
	}
	h.log.Warn("NOTIFY refused", attrs...)
}

// respond packs the response to req with rcode, and with reply's TSIG
// record unless reply is nil. It returns nil when the response cannot be
// packed.
func (h *NotifyHandler) respond(req *dns.Msg, rcode int, reply *tsigReply) []byte {
	m := new(dns.Msg)
	m.SetRcode(req, rcode)
	m.Authoritative = rcode == dns.RcodeSuccess
	if reply == nil {
		wire, err := m.Pack()
		if err != nil {
			return nil
		}
		return wire
	}
	m.SetTsig(reply.key.Name, reply.key.Algorithm, fudge, h.now().Unix())
	m.Extra[len(m.Extra)-1].(*dns.TSIG).Error = reply.err
	wire, _, err := dns.TsigGenerateWithProvider(m, reply.key, reply.requestMAC, false)
	if err != nil {
		return nil
	}
	return wire
}
