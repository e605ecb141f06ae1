package pipeline

import (
	"net/netip"
	"time"

	"bulwark/internal/cache"
	"bulwark/internal/dnssec"
	"bulwark/internal/resolver"

	"github.com/miekg/dns"
)

// Extended DNS Error codes of stale responses (RFC 8914 sections 4.4 and
// 4.20).
const (
	edeStaleAnswer   = 3
	edeStaleNXDomain = 19
)

// resolveOrStale resolves q as the slow path does. An expired response
// under key may be served stale when the resolution takes longer than
// StaleClientTimeout (RFC 8767 section 5, the client response timer).
// Then it returns a stale copy, and the resolution goes on in the
// background to refresh the cache.
func (p *Pipeline) resolveOrStale(q *Query, key []byte, flavour uint8, client netip.Addr, exempt, udp bool) *cache.Packed {
	resolve := func() *cache.Packed { return p.resolve(q, key, flavour, client, exempt, udp) }
	stale, ok := p.cache.StaleAnswer(key, p.now())
	if !ok || p.cfg.StaleClientTimeout <= 0 {
		return p.flights.do(string(key), resolve)
	}

	// The resolution outlives this call, so it gets its own copy of the
	// query, whose name points into the client's packet.
	own := q.clone()
	ownKey := append([]byte(nil), key...)
	// NOTE: the resolution holds no resolution slot once this call
	// returns. ClientTimeout bounds it, and one runs per question.
	fl := p.flights.start(string(key), func() *cache.Packed {
		return p.resolve(&own, ownKey, flavour, client, exempt, udp)
	})
	timer := time.NewTimer(p.cfg.StaleClientTimeout)
	defer timer.Stop()
	select {
	case <-fl.done:
		return fl.pk
	case <-timer.C:
		return p.staleCopy(stale, p.now(), 0)
	}
}

// NOTE: stale data comes only from packed responses. The resolver keeps
// expired RRsets but does not answer from them, so a question whose packed
// response was evicted gets SERVFAIL while its servers fail.

// staleFallback returns a stale copy of the expired response under key
// for a resolution that failed. It also stores the copy, so that the
// queries of the next FailureTTL get it from the cache without querying
// the servers again (RFC 8767 section 4, the failure recheck timer). A fresh response
// stored meanwhile, as by another resolution, is returned as it is. ok is
// false when the key holds neither.
func (p *Pipeline) staleFallback(key []byte, now time.Time) (*cache.Packed, bool) {
	if pk, ok := p.cache.Answer(key, now); ok && !pk.Stale() {
		return pk, true
	}
	stale, ok := p.cache.StaleAnswer(key, now)
	if !ok {
		return nil, false
	}
	pk := p.staleCopy(stale, now, p.cfg.FailureTTL)
	if p.cfg.FailureTTL > 0 {
		p.cache.StoreAnswer(key, pk)
	}
	return pk, true
}

// staleCopy returns a copy of pk to serve stale for hold, with the stale
// TTL and an EDE: Stale NXDOMAIN Answer for NXDOMAIN, Stale Answer
// otherwise.
func (p *Pipeline) staleCopy(pk *cache.Packed, now time.Time, hold time.Duration) *cache.Packed {
	ede := &resolver.EDE{Code: edeStaleAnswer, Text: "serving expired data: resolution failed or is slow"}
	if pk.Rcode() == dns.RcodeNameError {
		ede = &resolver.EDE{Code: edeStaleNXDomain, Text: "serving an expired NXDOMAIN: resolution failed or is slow"}
	}
	ttl := uint32(p.cfg.StaleAnswerTTL / time.Second)
	return pk.StaleCopy(now, ttl, hold, edeOption(ede))
}

// servableStale reports whether a resolver result may be served stale once
// it expires: a NOERROR or NXDOMAIN answer that is not bogus, which no
// policy rewrote.
func servableStale(res resolver.Result, verdict verdict) bool {
	if verdict != verdictNone || res.Security == dnssec.Bogus {
		return false
	}
	return res.Rcode == dns.RcodeSuccess || res.Rcode == dns.RcodeNameError
}

// failedResolution reports whether res is a failure that stale data may
// answer in place of: a SERVFAIL for unreachable, slow or failing servers
// or a spent work budget, but not a validation failure.
func failedResolution(res resolver.Result, verdict verdict) bool {
	return verdict == verdictNone && res.Rcode == dns.RcodeServerFailure && res.Security != dnssec.Bogus
}
