package store

import (
	"context"
	"encoding/binary"
	"hash/fnv"
	"strings"
	"time"

	"bulwark/internal/intel/nod"

	"github.com/miekg/dns"
)

// RPZ is the zone content of the store's blocking entries, for the RPZ
// primary: it implements the Source interface of internal/xfr.
type RPZ struct {
	store  *Store
	origin string
	ttl    uint32
}

// RPZ returns the blocking entries as RPZ records under origin, with
// record TTL ttl in seconds: "name.origin CNAME ." and "*.name.origin
// CNAME .", the NXDOMAIN action on the name and every name below it.
func (s *Store) RPZ(origin string, ttl uint32) *RPZ {
	return &RPZ{store: s, origin: dns.CanonicalName(origin), ttl: ttl}
}

// Version returns the store's version.
func (z *RPZ) Version() uint64 { return z.store.Version() }

// Records returns the zone's records, without SOA and NS.
func (z *RPZ) Records() []dns.RR {
	blocks := z.store.Blocking()
	out := make([]dns.RR, 0, 2*len(blocks))
	for _, b := range blocks {
		owner := strings.TrimSuffix(b.Name, ".") + "." + z.origin
		for _, name := range []string{owner, "*." + owner} {
			out = append(out, &dns.CNAME{
				Hdr:    dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: z.ttl},
				Target: ".",
			})
		}
	}
	return out
}

// Run removes expired entries every interval and saves the state every
// saveInterval, until ctx ends; then it saves once more.
func (s *Store) Run(ctx context.Context, interval, saveInterval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	lastSave := time.Now()
	for {
		select {
		case <-ctx.Done():
			s.saveLogged()
			return
		case <-t.C:
			s.Expire()
			if time.Since(lastSave) >= saveInterval {
				lastSave = time.Now()
				s.saveLogged()
			}
		}
	}
}

func (s *Store) saveLogged() {
	if err := s.Save(); err != nil {
		s.log.Error("intel store not saved; the previous file stays", "error", err)
	}
}

// NODZone is the RPZ content of one window of newly observed domains,
// for the RPZ primary: it implements the Source interface of
// internal/xfr.
type NODZone struct {
	set    *nod.Set
	window time.Duration
	origin string
	ttl    uint32
	now    func() time.Time
}

// NewNODZone returns the zone of the domains that set first saw within
// window, under origin with record TTL ttl in seconds. now may be nil for
// time.Now.
func NewNODZone(set *nod.Set, window time.Duration, origin string, ttl uint32, now func() time.Time) *NODZone {
	if now == nil {
		now = time.Now
	}
	return &NODZone{set: set, window: window, origin: dns.CanonicalName(origin), ttl: ttl, now: now}
}

// Version returns a hash of the window's domains and first-seen times,
// which changes when a domain enters or leaves the window. It reads the
// window's entries, about 50 bytes each, once per call.
func (z *NODZone) Version() uint64 {
	h := fnv.New64a()
	var buf [8]byte
	for _, e := range z.set.Recent(z.window, z.now()) {
		h.Write([]byte(e.Domain))
		binary.LittleEndian.PutUint64(buf[:], uint64(e.FirstSeen.UnixNano()))
		h.Write(buf[:])
	}
	return h.Sum64()
}

// Records returns the window's RPZ records.
func (z *NODZone) Records() []dns.RR {
	return z.set.Records(z.window, z.origin, z.ttl, z.now())
}
