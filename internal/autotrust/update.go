package autotrust

import (
	"slices"
	"time"

	"github.com/miekg/dns"
)

// Update applies one response for the DNSKEY RRset of a trust point to the
// state, at time now. rrset holds the DNSKEY records, all with the same owner
// name (records of other names are ignored), and the RRSIG records that cover
// them. secure reports that the caller validated the RRset with the current
// trust anchors of the zone. An RRset that is not secure changes nothing.
//
// Only keys with the SEP and zone key bits (flags 257, or 385 when revoked)
// take part. The transitions are those of RFC 5011 section 4:
//
//   - a new key enters AddPend, and becomes Valid when it is seen after the
//     add hold-down: AddHoldDown or the original TTL of the RRset, whichever
//     is longer, since it was first seen;
//   - an AddPend key missing from the RRset is dropped (back to Start);
//   - a Valid key missing from the RRset becomes Missing, and a Missing key
//     that is seen again becomes Valid;
//   - an AddPend, Valid or Missing key that appears with the REVOKE bit and
//     signs the RRset becomes Revoked. A revoked key without a valid
//     signature of its own over the RRset is ignored;
//   - a Revoked key becomes Removed when it has not been seen for
//     RemoveHoldDown.
//
// An RRset of a zone without tracked keys, which is not a trust point, changes
// nothing. A seeded DS anchor becomes the DNSKEY it matches. Update returns
// whether a key was added, dropped, or changed state or record. It also
// refreshes LastSeen, which Save writes but which does not count as a change.
func (s *State) Update(rrset []dns.RR, secure bool, now time.Time) bool {
	if !secure {
		return false
	}
	zone, keys, sigs := splitRRset(rrset)
	if zone == "" {
		return false
	}
	keySet := make([]dns.RR, len(keys))
	for i, k := range keys {
		keySet[i] = k
	}
	holdDown := max(AddHoldDown, originalTTL(keys, sigs))

	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.tracks(zone) {
		return false
	}
	changed := s.matchSeededDS(zone, keys)
	seen := map[*Key]bool{}
	for _, key := range keys {
		if key.Flags&dns.SEP == 0 || key.Flags&dns.ZONE == 0 {
			continue
		}
		k := s.findKey(zone, key)
		if key.Flags&dns.REVOKE != 0 {
			// RFC 5011 has no transition from Start on a revoked key,
			// so an unknown revoked key is not tracked.
			if k == nil || !selfSigned(key, keySet, sigs, now) {
				continue
			}
			seen[k] = true
			k.LastSeen = now
			if k.State == AddPend || k.State == Valid || k.State == Missing {
				k.Record = canonicalCopy(key)
				k.setState(Revoked, now)
				changed = true
			}
			continue
		}
		if k == nil {
			s.keys = append(s.keys, &Key{Record: canonicalCopy(key), State: AddPend, FirstSeen: now, LastSeen: now, LastChange: now})
			seen[s.keys[len(s.keys)-1]] = true
			changed = true
			continue
		}
		seen[k] = true
		k.LastSeen = now
		if k.FirstSeen.IsZero() {
			k.FirstSeen = now
		}
		switch {
		case k.State == AddPend && now.Sub(k.FirstSeen) >= holdDown:
			k.setState(Valid, now)
			changed = true
		case k.State == Missing:
			k.setState(Valid, now)
			changed = true
		}
	}
	if s.markUnseen(zone, seen, now) {
		changed = true
	}
	return changed
}

// tracks reports whether zone is a trust point: whether it has a key in the
// state.
func (s *State) tracks(zone string) bool {
	for _, k := range s.keys {
		if k.Record.Header().Name == zone {
			return true
		}
	}
	return false
}

// markUnseen applies the transitions for the keys of zone that the RRset did
// not contain.
func (s *State) markUnseen(zone string, seen map[*Key]bool, now time.Time) bool {
	changed := false
	s.keys = slices.DeleteFunc(s.keys, func(k *Key) bool {
		if k.Record.Header().Name != zone || seen[k] {
			return false
		}
		switch k.State {
		case AddPend:
			changed = true
			return true
		case Valid:
			k.setState(Missing, now)
			changed = true
		case Revoked:
			if now.Sub(k.LastSeen) >= RemoveHoldDown {
				k.setState(Removed, now)
				changed = true
			}
		}
		return false
	})
	return changed
}

// matchSeededDS replaces each seeded DS anchor of zone by the DNSKEY it
// matches, without the REVOKE bit, keeping its state.
func (s *State) matchSeededDS(zone string, keys []*dns.DNSKEY) bool {
	changed := false
	for _, k := range s.keys {
		ds, ok := k.Record.(*dns.DS)
		if !ok || ds.Hdr.Name != zone {
			continue
		}
		for _, key := range keys {
			if key.Flags&dns.SEP != 0 && matchesDS(ds, key) {
				plain := canonicalCopy(key)
				plain.Flags &^= dns.REVOKE
				k.Record = plain
				changed = true
				break
			}
		}
	}
	return changed
}

// findKey returns the tracked DNSKEY of zone that is key, ignoring the REVOKE
// bit, or nil.
func (s *State) findKey(zone string, key *dns.DNSKEY) *Key {
	for _, k := range s.keys {
		tracked, ok := k.Record.(*dns.DNSKEY)
		if ok && tracked.Hdr.Name == zone && sameKey(tracked, key) {
			return k
		}
	}
	return nil
}

func (k *Key) setState(state KeyState, now time.Time) {
	k.State = state
	k.LastChange = now
}

// splitRRset returns the canonical owner name of the first DNSKEY in rrset,
// the DNSKEYs with that name and the RRSIGs over them that the zone signed.
func splitRRset(rrset []dns.RR) (string, []*dns.DNSKEY, []*dns.RRSIG) {
	zone := ""
	var keys []*dns.DNSKEY
	for _, rr := range rrset {
		key, ok := rr.(*dns.DNSKEY)
		if !ok {
			continue
		}
		name := dns.CanonicalName(key.Hdr.Name)
		if zone == "" {
			zone = name
		}
		if name == zone {
			keys = append(keys, key)
		}
	}
	var sigs []*dns.RRSIG
	for _, rr := range rrset {
		sig, ok := rr.(*dns.RRSIG)
		if ok && sig.TypeCovered == dns.TypeDNSKEY && dns.CanonicalName(sig.Hdr.Name) == zone && dns.CanonicalName(sig.SignerName) == zone {
			sigs = append(sigs, sig)
		}
	}
	return zone, keys, sigs
}

// originalTTL returns the original TTL of the RRset: the largest Original TTL
// field of its signatures, or the largest TTL of its records when there is no
// signature.
func originalTTL(keys []*dns.DNSKEY, sigs []*dns.RRSIG) time.Duration {
	var ttl uint32
	for _, sig := range sigs {
		ttl = max(ttl, sig.OrigTtl)
	}
	if len(sigs) == 0 {
		for _, key := range keys {
			ttl = max(ttl, key.Hdr.Ttl)
		}
	}
	return time.Duration(ttl) * time.Second
}

// selfSigned reports whether a signature made by key over keySet is valid at
// now.
func selfSigned(key *dns.DNSKEY, keySet []dns.RR, sigs []*dns.RRSIG, now time.Time) bool {
	tag := key.KeyTag()
	for _, sig := range sigs {
		if sig.KeyTag == tag && sig.Algorithm == key.Algorithm && sig.ValidityPeriod(now) && sig.Verify(key, keySet) == nil {
			return true
		}
	}
	return false
}

// canonicalCopy returns a copy of key with a canonical owner name.
func canonicalCopy(key *dns.DNSKEY) *dns.DNSKEY {
	c := dns.Copy(key).(*dns.DNSKEY)
	c.Hdr.Name = dns.CanonicalName(c.Hdr.Name)
	return c
}
