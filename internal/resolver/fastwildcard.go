package resolver

import (
	"encoding/binary"
	"strings"
	"time"

	"bulwark/internal/dnssec"

	"github.com/miekg/dns"
)

// Answers expanded from wildcards for the fast path (RFC 8198 section
// 5.4): the validated RRset of a wildcard, learned from an earlier
// expansion, answers another name below the same closest encloser once
// the NSEC or NSEC3 records prove that the name does not exist. A random
// subdomain flood against a zone with a wildcard is then answered without
// asking its servers, as one against a zone without is.

// maxWildcardsPerZone bounds the wildcard RRsets kept for one zone.
const maxWildcardsPerZone = 64

// wildcardSet is the validated RRset of a wildcard and its RRSIGs, each
// record packed without its owner name, from its type to the end of its
// data, so that a response can give it the query name.
type wildcardSet struct {
	records, sigs   []byte
	nrecords, nsigs int
	expires         time.Time
}

// appendWildcardKey appends the key of the RRset of type qtype at the
// wildcard whose lower-case wire form is wire.
func appendWildcardKey(dst, wire []byte, qtype uint16) []byte {
	return binary.BigEndian.AppendUint16(append(dst, wire...), qtype)
}

// learnWildcard stores the RRset of type qtype that answered name in c, a
// secure answer from zone expanded from a wildcard, and the NSEC or NSEC3
// records that proved the expansion. An answer with more than that one
// RRset, such as a CNAME chain, is not stored.
func (x *nsecIndex) learnWildcard(zone string, c outcome, name string, qtype uint16, now time.Time) {
	if len(c.rrs) == 0 {
		return
	}
	for _, rr := range c.rrs {
		if h := rr.Header(); h.Rrtype != qtype || !strings.EqualFold(h.Name, name) {
			return
		}
	}
	sigs := sigsFor(c.sigs, name, qtype)
	if len(sigs) == 0 {
		return
	}
	labels := int(sigs[0].Labels)
	for _, s := range sigs {
		if int(s.Labels) != labels || !strings.EqualFold(s.SignerName, sigs[0].SignerName) {
			return
		}
	}
	if signer := dns.CanonicalName(sigs[0].SignerName); signer != zone && dns.IsSubDomain(zone, signer) {
		// A child zone on the same servers signed the answer: its records
		// belong to its own index.
		zone = signer
	}
	if labels >= dnssec.LabelCount(name) {
		return
	}
	ce := "."
	if labels > 0 {
		off, _ := dns.PrevLabel(name, labels)
		ce = dns.CanonicalName(name[off:])
	}
	wildcard := dnssec.WildcardName(ce)
	if !dns.IsSubDomain(zone, wildcard) {
		return
	}
	var wb [256]byte
	wire, _ := appendWire(wb[:0], wildcard, nil)

	// The RRset lives no longer than its TTL, its RRSIGs' original TTL
	// and their expiration, as in the cache (RFC 4035 section 5.3.3).
	ttl := minTTL(c.rrs)
	for _, s := range sigs {
		ttl = min(ttl, s.OrigTtl)
	}
	set := &wildcardSet{expires: sigsExpire(rrsOf(sigs), now, now.Add(time.Duration(ttl)*time.Second))}
	var ok bool
	if set.records, set.nrecords, ok = packWithoutOwners(c.rrs); !ok {
		return
	}
	if set.sigs, set.nsigs, ok = packWithoutOwners(rrsOf(sigs)); !ok {
		return
	}
	var proofs []dns.RR
	for _, rr := range c.auth {
		switch rr.(type) {
		case *dns.NSEC, *dns.NSEC3:
			proofs = append(proofs, rr)
		}
	}

	x.mu.Lock()
	defer x.mu.Unlock()
	z := x.zone(zone)
	if z.wildcards == nil {
		z.wildcards = map[string]*wildcardSet{}
	}
	key := string(appendWildcardKey(nil, wire, qtype))
	if _, found := z.wildcards[key]; !found && len(z.wildcards) >= maxWildcardsPerZone {
		return
	}
	z.wildcards[key] = set
	maxTTL := uint32(1<<31 - 1)
	if z.soa != nil {
		maxTTL = z.wire.ttl
	}
	z.addProofs(zone, proofs, c.auth, maxTTL, now)
}

// minTTL returns the lowest TTL of rrs.
func minTTL(rrs []dns.RR) uint32 {
	ttl := ^uint32(0)
	for _, rr := range rrs {
		ttl = min(ttl, rr.Header().Ttl)
	}
	return ttl
}

// packWithoutOwners packs rrs without name compression and drops each
// owner name.
func packWithoutOwners(rrs []dns.RR) ([]byte, int, bool) {
	var out []byte
	for _, rr := range rrs {
		b := make([]byte, dns.Len(rr)+64)
		n, err := dns.PackRR(rr, b, 0, nil, false)
		if err != nil {
			return nil, 0, false
		}
		off := 0
		for b[off] != 0 {
			off += int(b[off]) + 1
		}
		out = append(out, b[off+1:n]...)
	}
	return out, len(rrs), true
}

// appendOwned appends records packed by packWithoutOwners to dst, each
// owned by the name at offset 12 of the message, the question's, and with
// its TTL set to ttl.
func appendOwned(dst, records []byte, ttl uint32) []byte {
	for off := 0; off < len(records); {
		rdlen := int(binary.BigEndian.Uint16(records[off+8:]))
		dst = append(dst, 0xC0, 12)
		start := len(dst)
		dst = append(dst, records[off:off+10+rdlen]...)
		binary.BigEndian.PutUint32(dst[start+4:], ttl)
		off += 10 + rdlen
	}
	return dst
}

// AppendWildcard appends to dst the answer and authority sections of a
// response to name and qtype expanded from a cached wildcard (RFC 8198
// section 5.4). It does so when the validated NSEC or NSEC3 records of
// earlier responses prove that name does not exist, and a wildcard with
// an RRset of qtype exists at its closest encloser.
//
// The answer section contains the wildcard's RRset, owned by the question
// at offset 12 of the message, and with dnssecOK its RRSIGs. With
// dnssecOK, the authority section contains the record that proves name
// absent, with its RRSIGs. name is as for AppendNXDomain and is not kept.
// ok is false, and dst is returned unchanged, when the records prove no
// such answer.
func (r *Resolver) AppendWildcard(dst []byte, name string, qtype uint16, dnssecOK bool, now time.Time) (out []byte, answers, authority int, ok bool) {
	if !r.cfg.Validation || !r.cfg.AggressiveNSEC || r.hasNegativeAnchors() || len(name) > 254 ||
		qtype == dns.TypeCNAME || qtype == dns.TypeDS || qtype == dns.TypeANY ||
		qtype == dns.TypeRRSIG || qtype == dns.TypeNSEC || qtype == dns.TypeNSEC3 {
		return dst, 0, 0, false
	}
	x := &r.nsec
	x.mu.RLock()
	defer x.mu.RUnlock()
	zone, z := x.deepest(name)
	if z == nil || len(z.wildcards) == 0 || name == zone {
		return dst, 0, 0, false
	}

	var set *wildcardSet
	var proof *proofEntry
	if len(z.nsec3) > 0 {
		if int(z.hash.iterations) > r.cfg.Limits.MaxNSEC3Iterations {
			return dst, 0, 0, false
		}
		set, proof = z.wildcardNSEC3(name, zone, qtype, now)
	} else {
		set, proof = z.wildcardNSEC(name, qtype, now)
	}
	if set == nil || !now.Before(set.expires) || len(proof.wire.packed) == 0 {
		return dst, 0, 0, false
	}

	ttl := uint32(set.expires.Sub(now) / time.Second)
	ttl = min(ttl, uint32(proof.expires.Sub(now)/time.Second))
	out = appendOwned(dst, set.records, ttl)
	answers = set.nrecords
	if dnssecOK {
		out = appendOwned(out, set.sigs, ttl)
		answers += set.nsigs
		out = appendRecords(out, proof.wire.packed, ttl)
		authority = proof.wire.records
	}
	return out, answers, authority, true
}

// wildcardNSEC3 returns the wildcard RRset of type qtype for name, and the
// NSEC3 record that proves the expansion (RFC 5155 section 8.8). The
// deepest ancestor of name with such an RRset is the closest encloser
// when a span without opt-out covers the next closer name, one label
// below that ancestor on the way to name. The wildcard's RRSIGs show that
// the wildcard exists, and the span shows that no closer name does.
func (z *zoneNSEC) wildcardNSEC3(name, zone string, qtype uint16, now time.Time) (*wildcardSet, *proofEntry) {
	p := &z.hash
	if !p.ok {
		return nil, nil
	}
	var wb [256]byte
	var starts [128]int
	wire, labels := appendWire(wb[:0], name, starts[:0])
	below := len(labels) - 1 - dns.CountLabel(zone)
	var kb [260]byte
	for l := 1; l <= below; l++ {
		kb[0], kb[1] = 1, '*'
		key := appendWildcardKey(append(kb[:2], wire[labels[l]:]...), nil, qtype)
		set := z.wildcards[string(key)]
		if set == nil {
			continue
		}
		var h [32]byte
		p.hashName(&h, wire[labels[l-1]:])
		cover, ok := z.coveringNSEC3(h[:], now)
		if !ok || cover.wire.flags&entryOptOut != 0 {
			return nil, nil
		}
		return set, cover
	}
	return nil, nil
}

// wildcardNSEC returns the wildcard RRset of type qtype that answers
// name, and the NSEC record that proves the expansion (RFC 4035 section
// 5.3.4). The span covering name shows its closest encloser; the wildcard
// there must be one whose RRset is stored.
func (z *zoneNSEC) wildcardNSEC(name string, qtype uint16, now time.Time) (*wildcardSet, *proofEntry) {
	var pb [256]byte
	k := appendKey(pb[:0], name)
	e, ok := z.coveringSpan(k, now)
	if !ok {
		return nil, nil
	}
	ce := max(commonLabels(e.key, k), commonLabels(e.wire.next, k), len(z.wire.key))
	if ce > len(k) {
		return nil, nil
	}
	// The closest encloser has as many labels as its key has zero bytes.
	n := 0
	for _, c := range k[:ce] {
		if c == 0 {
			n++
		}
	}
	var nb [256]byte
	var starts [128]int
	wire, labels := appendWire(nb[:0], name, starts[:0])
	var kb [260]byte
	kb[0], kb[1] = 1, '*'
	key := appendWildcardKey(append(kb[:2], wire[labels[len(labels)-1-n]:]...), nil, qtype)
	return z.wildcards[string(key)], e
}
