// Package pipeline turns one client query into one response. The fast path
// parses the packet and answers from the packed answer cache; it neither
// allocates nor blocks. The slow path resolves the question, then packs,
// caches and serves the response the same way. Identical questions being
// resolved at once share one resolution.
//
// Listeners and sockets are left to the server package.
package pipeline

import (
	"context"
	"encoding/binary"
	"log/slog"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"bulwark/internal/cache"
	"bulwark/internal/cookie"
	"bulwark/internal/dnssec"
	"bulwark/internal/proceed"
	"bulwark/internal/resolver"

	"github.com/miekg/dns"
)

// Config sets up a Pipeline.
type Config struct {
	// BufferSize is the EDNS UDP payload size Bulwark advertises and the
	// largest UDP response it sends, in bytes.
	BufferSize uint16
	// ClientTimeout bounds one resolution.
	ClientTimeout time.Duration
	// FailureTTL is how long a SERVFAIL response is served from the cache,
	// and how long a stale response is served without asking the servers
	// again after a failed resolution.
	FailureTTL time.Duration
	// StaleAnswerTTL is the TTL of the records of a stale response.
	StaleAnswerTTL time.Duration
	// StaleClientTimeout is how long a query with stale data waits for its
	// resolution before the stale data is sent; 0 waits until it ends.
	StaleClientTimeout time.Duration
	// Prefetch refreshes responses that are served close to their expiry.
	Prefetch bool
	// MaxResolutions caps resolutions in progress.
	MaxResolutions int
	// SuspectRate caps the resolutions of suspect names (see
	// ZoneObserver) started per second.
	SuspectRate int
	// Exemptions holds the proceed anyway exemptions of clients; nil
	// turns exemptions off.
	Exemptions *proceed.Exemptions
	// Proceed holds the proceed anyway setting of each flavour that turns
	// it on, by flavour name.
	Proceed map[string]proceed.Rule
	// Recursion limits recursion to some clients; nil serves everyone.
	Recursion *Access
	// Cookies makes the server cookies of responses to queries with a
	// COOKIE option; nil leaves cookies out.
	Cookies *cookie.Server
}

// Resolver is the part of the resolver that the pipeline calls.
type Resolver interface {
	Resolve(ctx context.Context, name string, qtype uint16) resolver.Result
}

// Pipeline answers client queries. It is safe for concurrent use.
type Pipeline struct {
	cfg   Config
	cache *cache.Cache
	res   Resolver
	log   *slog.Logger
	now   func() time.Time
	slots chan struct{}
	// suspects holds the slots of resolutions of suspect names (see
	// ZoneObserver), taken inside a slot of slots.
	suspects    chan struct{}
	suspectRate rateWindow
	flights     flights
	// policy is the current version of the flavours, and blockCfg the
	// data that blocked answers carry.
	policy   atomic.Pointer[policyState]
	blockCfg atomic.Pointer[BlockConfig]
	stats    Stats
	// notify responds to NOTIFY messages; without it they get NOTIMP.
	notify NotifyHandler
	// zones learns in which zone each resolution ended; nil when no
	// guard runs.
	zones ZoneObserver
	// denials proves names absent on the fast path, and wildcards
	// expands wildcards there; each is nil when the resolver cannot.
	denials   Denials
	wildcards Wildcards
}

// ZoneObserver learns how the resolution of each qname that missed the
// answer cache ended, and in which zone (see resolver.Result.Zone).
// Suspect reports whether a name about to be resolved, in lower case
// with the final dot, looks like part of a random-subdomain flood; it is
// called on the fast path and must not allocate.
type ZoneObserver interface {
	Observe(qname string, res resolver.Result)
	Suspect(qname []byte) bool
}

// SetZoneObserver reports every resolution to o. Call it before the
// server starts.
func (p *Pipeline) SetZoneObserver(o ZoneObserver) { p.zones = o }

// New returns a Pipeline. now may be nil for time.Now.
func New(cfg Config, c *cache.Cache, res Resolver, log *slog.Logger, now func() time.Time) *Pipeline {
	if now == nil {
		now = time.Now
	}
	denials, _ := res.(Denials)
	wildcards, _ := res.(Wildcards)
	return &Pipeline{
		cfg: cfg, cache: c, res: res, now: now, denials: denials, wildcards: wildcards,
		log:      log.With("component", "pipeline"),
		slots:    make(chan struct{}, cfg.MaxResolutions),
		suspects: make(chan struct{}, suspectSlots(cfg.MaxResolutions)),
		flights:  flights{m: map[string]*flight{}},
	}
}

// Outcome tells the server what to do after HandleFast.
type Outcome int

const (
	// Answered means the response is ready to send.
	Answered Outcome = iota
	// Dropped means nothing is sent, as for a packet that is a response.
	Dropped
	// Slow means the query needs HandleSlow, on another goroutine.
	Slow
)

// HandleFast answers pkt from the answer cache, appending the response to
// out[:0]. udp selects the UDP size limits, flavour the policy of the
// client (see FlavourID), and client its address, which picks out clients
// with a proceed anyway exemption or a client-IP trigger. Responses are
// cached per flavour and policy version, so a cached one has had its
// policy applied already. tag names the list that decided the response
// (see PolicyOf), 0 when none did.
func (p *Pipeline) HandleFast(pkt, out []byte, udp bool, flavour uint8, client netip.Addr) (resp []byte, outcome Outcome, tag uint32) {
	q, ok := parseFast(pkt)
	if !ok {
		if len(pkt) < 12 || pkt[2]&0x80 != 0 {
			p.stats.Dropped.Add(1)
			return nil, Dropped, 0 // too short to answer, or a response
		}
		return nil, Slow, 0
	}
	q.client = client
	var keyBuf [300]byte
	now := p.now()
	if !p.recursionAllowed(flavour, client) {
		resp = p.refuse(out[:0], pkt, &q, now)
		p.stats.count(resp)
		return resp, Answered, 0
	}
	exempt := p.exempt(flavour, client, q.QName, now)
	key := p.appendPolicyKey(q.key(keyBuf[:0]), flavour, exempt)
	pk, ok := p.cache.Answer(p.appendClientKey(key, flavour, client, exempt), now)
	if !ok {
		if resp, ok = p.denied(out[:0], pkt, &q, flavour, client, exempt, udp, now); ok {
			p.stats.NSECAnswers.Add(1)
			p.stats.count(resp)
			return resp, Answered, 0
		}
		if p.shedFast(&q, now) {
			resp = p.shedSuspect(out[:0], pkt, &q, now)
			p.stats.count(resp)
			return resp, Answered, 0
		}
		return nil, Slow, 0
	}
	resp = p.write(out[:0], pk, &q, udp, now)
	p.stats.CacheHits.Add(1)
	if pk.Stale() {
		p.stats.Stale.Add(1)
	} else if p.cfg.Prefetch && pk.ClaimPrefetch(now) {
		p.prefetch(pk, key, &q, flavour, client, exempt, udp)
	}
	p.stats.count(resp)
	p.stats.actions.count(pk.Tag())
	return resp, Answered, pk.Tag()
}

// TryAcquire takes a resolution slot; it returns false when all
// MaxResolutions are in use. Release gives the slot back.
func (p *Pipeline) TryAcquire() bool {
	select {
	case p.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

// Release gives back a slot taken by TryAcquire.
func (p *Pipeline) Release() { <-p.slots }

// HandleSlow answers pkt in full: errors for malformed or unsupported
// queries, and resolution for the rest. flavour and client are as for
// HandleFast; a NOTIFY is checked against the primaries of its zone by
// client. It returns nil when nothing should be sent, and the tag of the
// list that decided the response as HandleFast does. pkt is not kept after
// the call.
func (p *Pipeline) HandleSlow(pkt []byte, udp bool, flavour uint8, client netip.Addr) (resp []byte, tag uint32) {
	resp, tag = p.handleSlow(pkt, udp, flavour, client)
	p.stats.Resolved.Add(1)
	p.stats.count(resp)
	return resp, tag
}

func (p *Pipeline) handleSlow(pkt []byte, udp bool, flavour uint8, client netip.Addr) ([]byte, uint32) {
	q, ok := parseFast(pkt)
	if !ok {
		return p.errorResponse(pkt, client), 0
	}
	q.client = client
	var keyBuf [300]byte
	now := p.now()
	if !p.recursionAllowed(flavour, client) {
		return p.refuse(nil, pkt, &q, now), 0
	}
	exempt := p.exempt(flavour, client, q.QName, now)
	key := p.appendPolicyKey(q.key(keyBuf[:0]), flavour, exempt)
	key = p.appendClientKey(key, flavour, client, exempt)
	pk, ok := p.cache.Answer(key, now)
	if !ok {
		var admitted bool
		q.suspect, admitted = p.admitSuspect(&q, now)
		if !admitted {
			return p.shedSuspect(nil, pkt, &q, now), 0
		}
		pk = p.resolveOrStale(&q, key, flavour, client, exempt, udp)
		if q.suspect {
			<-p.suspects
		}
		now = p.now()
	}
	if pk == nil {
		return p.servfail(pkt), 0 // the response could not be built
	}
	if pk.Stale() {
		p.stats.Stale.Add(1)
	}
	p.stats.actions.count(pk.Tag())
	if isDropped(pk) {
		return nil, pk.Tag()
	}
	return p.write(nil, pk, &q, udp, now), pk.Tag()
}

// Busy returns a SERVFAIL for pkt, for use when no resolution slot is
// free, and counts it in Stats.Busy.
func (p *Pipeline) Busy(pkt []byte) []byte {
	resp := p.servfail(pkt)
	p.stats.Busy.Add(1)
	p.stats.count(resp)
	return resp
}

// servfail returns a SERVFAIL for pkt, or nil when pkt is not a query.
func (p *Pipeline) servfail(pkt []byte) []byte {
	m := new(dns.Msg)
	if err := m.Unpack(pkt); err != nil || len(m.Question) != 1 {
		return nil
	}
	r := new(dns.Msg)
	r.SetRcode(m, dns.RcodeServerFailure)
	r.RecursionAvailable = true
	wire, _ := r.Pack()
	return wire
}

// resolve resolves q for client under the policy of flavour, or its exempt
// form when exempt is set, packs the response and caches it.
func (p *Pipeline) resolve(q *Query, key []byte, flavour uint8, client netip.Addr, exempt, udp bool) *cache.Packed {
	return p.resolveFrom(context.Background(), q, key, flavour, client, exempt, udp)
}

// resolveFrom is resolve with a base context, which may carry options for
// the resolver such as resolver.WithRefresh.
func (p *Pipeline) resolveFrom(base context.Context, q *Query, key []byte, flavour uint8, client netip.Addr, exempt, udp bool) *cache.Packed {
	name, _, err := dns.UnpackDomainName(q.QName, 0)
	if err != nil {
		return nil
	}
	name = strings.ToLower(name)
	ctx, cancel := context.WithTimeout(base, p.cfg.ClientTimeout)
	defer cancel()
	res, verdict, decision := p.resolvePolicy(ctx, name, q.QType, flavour, client, exempt, udp)
	if res.Synthesised {
		p.stats.NSECAnswers.Add(1)
	}
	if p.zones != nil {
		p.zones.Observe(name, res)
	}
	tag := p.stats.actions.tag(decision)
	if verdict == verdictDrop {
		return droppedAnswer(tag)
	}
	if verdict == verdictNone || verdict == verdictNoCache {
		// The result is the resolver's, validated or not.
		p.stats.countValidation(res.Security)
	}
	if ctx.Err() != nil && res.Rcode == dns.RcodeServerFailure {
		res.EDE = &resolver.EDE{Code: resolver.EDENoReachableAuthority, Text: "resolution timed out"}
	}
	noValidation := p.validationOff(flavour)
	if noValidation {
		// The flavour turns validation off: answers are served as to a
		// client that set CD, without AD.
		res.Security = dnssec.Indeterminate
	}
	checkingDisabled := q.Flags&flagCD != 0 || noValidation
	if res.Security == dnssec.Bogus && !checkingDisabled {
		// Bogus data is withheld unless the client asked to check it
		// itself (RFC 4035 section 3.2.2).
		res = resolver.Result{Rcode: dns.RcodeServerFailure, EDE: res.EDE, Security: dnssec.Bogus}
	}
	if !q.DO {
		res.Answer = withoutDNSSEC(res.Answer, q.QType)
		res.Authority = withoutDNSSEC(res.Authority, q.QType)
	}

	ttl := p.responseTTL(res)
	if res.Limited {
		// Names of a flooded zone are mostly random: caching their
		// SERVFAIL would only push useful answers out.
		ttl = 0
	}
	switch verdict {
	case verdictBlocked:
		ttl = BlockTTL
	case verdictNoCache, verdictTruncate:
		ttl = 0
	}
	m := new(dns.Msg)
	m.Question = []dns.Question{{Name: name, Qtype: q.QType, Qclass: dns.ClassINET}}
	m.Response, m.RecursionAvailable, m.Rcode = true, true, res.Rcode
	m.Truncated = verdict == verdictTruncate
	m.AuthenticatedData = res.Security == dnssec.Secure
	// Fresh answers carry the servers' TTLs: clamp them as the cache does.
	for _, rr := range res.Answer {
		rr.Header().Ttl = p.cache.ClampTTL(rr.Header().Ttl)
	}
	m.Answer, m.Ns = res.Answer, res.Authority

	now := p.now()
	pk, err := cache.Pack(m, ttl, now, edeOption(res.EDE))
	if err != nil {
		p.log.Error("cannot pack response", "qname", name, "error", err)
		return nil
	}
	pk.SetTag(tag)
	if failedResolution(res, verdict) {
		if stale, ok := p.staleFallback(key, now); ok {
			return stale
		}
	}
	if servableStale(res, verdict) {
		pk.AllowStale()
	}
	if ttl > 0 && !q.suspect {
		// A flood's random names would push useful answers out.
		p.cache.StoreAnswer(key, pk)
	}
	return pk
}

// withoutDNSSEC drops the RRSIG, NSEC and NSEC3 records that a client
// without DO did not request (RFC 4035 section 3.2.1). Records of the type
// requested stay.
func withoutDNSSEC(rrs []dns.RR, qtype uint16) []dns.RR {
	out := rrs[:0:0]
	for _, rr := range rrs {
		switch t := rr.Header().Rrtype; t {
		case dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3:
			if t != qtype {
				continue
			}
		}
		out = append(out, rr)
	}
	return out
}

// responseTTL is how long a response may be served from the cache: the
// lowest TTL of its records, or the failure TTL for SERVFAIL.
func (p *Pipeline) responseTTL(res resolver.Result) uint32 {
	if res.Rcode == dns.RcodeServerFailure {
		return uint32(p.cfg.FailureTTL / time.Second)
	}
	if res.Security == dnssec.Bogus {
		// Bogus data served to a client that set CD is not kept.
		return 0
	}
	if len(res.Answer)+len(res.Authority) == 0 {
		return 0
	}
	ttl := ^uint32(0)
	for _, rr := range res.Answer {
		ttl = min(ttl, rr.Header().Ttl)
	}
	for _, rr := range res.Authority {
		ttl = min(ttl, rr.Header().Ttl)
	}
	return ttl
}

// edeOption packs an EDE as an EDNS option (RFC 8914 section 2).
func edeOption(e *resolver.EDE) []byte {
	if e == nil {
		return nil
	}
	b := make([]byte, 6, 6+len(e.Text))
	binary.BigEndian.PutUint16(b, dns.EDNS0EDE)
	binary.BigEndian.PutUint16(b[2:], uint16(2+len(e.Text)))
	binary.BigEndian.PutUint16(b[4:], e.Code)
	return append(b, e.Text...)
}
