package resolver

import (
	"context"
	"time"

	"bulwark/internal/autotrust"
	"bulwark/internal/dnssec"

	"github.com/miekg/dns"
)

// ProbeTrustAnchors asks the servers of every trust point in st for its
// DNSKEY RRset, bypassing the cache, validates it with the current anchors
// and applies it to st (RFC 5011). When the state changes it is saved and
// the resolver's anchors are replaced by st's. It returns when the next
// probe is due: the earliest over the trust points.
func (r *Resolver) ProbeTrustAnchors(ctx context.Context, st *autotrust.State) time.Duration {
	next := 15 * 24 * time.Hour
	zones := map[string]bool{}
	for _, rr := range st.TrustAnchors() {
		zones[dns.CanonicalName(rr.Header().Name)] = true
	}
	changed := false
	for zone := range zones {
		req := r.newRequest(ctx)
		out := r.iterate(req, zone, dns.TypeDNSKEY)
		ttl, sigExpiry := probeTimes(out, r.validationTime())
		if out.kind != kindAnswer || out.sec != dnssec.Secure {
			reason := "no DNSKEY RRset"
			if out.secErr != nil {
				reason = out.secErr.Text
			} else if out.kind == kindFailed {
				reason = out.ede.Text
			}
			r.log.Warn("trust anchor probe failed", "zone", zone, "reason", reason)
			next = min(next, autotrust.RetryProbe(ttl, sigExpiry))
			continue
		}
		rrset := append(append([]dns.RR{}, out.rrs...), out.sigs...)
		if st.Update(rrset, true, r.validationTime()) {
			changed = true
		}
		next = min(next, autotrust.NextProbe(ttl, sigExpiry))
	}
	if changed {
		if err := st.Save(); err != nil {
			r.log.Error("cannot save the trust anchor state", "file", st.Path(), "error", err)
		}
		anchors := st.TrustAnchors()
		if lost := zonesWithout(zones, anchors); len(lost) > 0 {
			// RFC 5011 section 5 would delete the trust point and leave
			// its zone insecure; keeping the last anchors fails safe.
			r.log.Error("trust anchor update would leave zones without an anchor; keeping the current anchors",
				"zones", lost, "file", st.Path())
			return next
		}
		r.SetTrustAnchors(anchors)
		r.log.Info("trust anchors updated", "file", st.Path(), "anchors", len(anchors))
	}
	return next
}

// zonesWithout returns the zones that have no record in anchors.
func zonesWithout(zones map[string]bool, anchors []dns.RR) []string {
	has := map[string]bool{}
	for _, rr := range anchors {
		has[dns.CanonicalName(rr.Header().Name)] = true
	}
	var out []string
	for z := range zones {
		if !has[z] {
			out = append(out, z)
		}
	}
	return out
}

// probeTimes returns the original TTL of a DNSKEY RRset and the time until
// its earliest signature expires, with defaults of one day when unknown.
func probeTimes(out outcome, now time.Time) (ttl, sigExpiry time.Duration) {
	ttl, sigExpiry = 24*time.Hour, 24*time.Hour
	first := true
	for _, rr := range out.sigs {
		s, ok := rr.(*dns.RRSIG)
		if !ok || s.TypeCovered != dns.TypeDNSKEY {
			continue
		}
		left := time.Duration(int32(s.Expiration-uint32(now.Unix()))) * time.Second
		if first || left < sigExpiry {
			sigExpiry = max(left, 0)
		}
		if first || time.Duration(s.OrigTtl)*time.Second < ttl {
			ttl = time.Duration(s.OrigTtl) * time.Second
		}
		first = false
	}
	return ttl, sigExpiry
}

// RunTrustAnchorUpdates probes the trust points of st after first, then
// at the interval that ProbeTrustAnchors returns, until ctx ends.
func (r *Resolver) RunTrustAnchorUpdates(ctx context.Context, st *autotrust.State, first time.Duration) {
	timer := time.NewTimer(first)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		probeCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		next := r.ProbeTrustAnchors(probeCtx, st)
		cancel()
		r.log.Debug("next trust anchor probe", "in_seconds", next.Seconds())
		timer.Reset(next)
	}
}
