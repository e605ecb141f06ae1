package pipeline

import (
	"context"
	"net/netip"

	"bulwark/internal/cache"
	"bulwark/internal/resolver"
)

// prefetch refreshes pk, just served for q from the answer cache under
// key, on a goroutine of its own. It takes a resolution slot, so that
// prefetches never take more than MaxResolutions together with client
// resolutions; when none is free the refresh is left to a later hit. It
// copies key and q, which point into the caller's buffers.
func (p *Pipeline) prefetch(pk *cache.Packed, key []byte, q *Query, flavour uint8, client netip.Addr, exempt, udp bool) {
	if !p.TryAcquire() {
		pk.ReleasePrefetch()
		return
	}
	p.stats.Prefetches.Add(1)
	own := q.clone()
	ownKey := append([]byte(nil), key...)
	go func() {
		defer p.Release()
		defer pk.ReleasePrefetch()
		p.flights.do(string(ownKey), func() *cache.Packed {
			// The resolver's RRsets for the name expire with pk, so
			// the refresh asks the servers instead.
			ctx := resolver.WithRefresh(context.Background())
			return p.resolveFrom(ctx, &own, ownKey, flavour, client, exempt, udp)
		})
	}()
}

// clone returns a copy of q whose name has memory of its own. It copies
// field by field, so that q's name does not escape to the heap.
func (q *Query) clone() Query {
	return Query{
		ID: q.ID, Flags: q.Flags, QName: append([]byte(nil), q.QName...),
		QType: q.QType, QClass: q.QClass, EDNS: q.EDNS, UDPSize: q.UDPSize, DO: q.DO,
		suspect: q.suspect,
	}
}
