package resolver

import (
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"time"

	"bulwark/internal/dnssec"

	"github.com/miekg/dns"
)

// NXDOMAIN answers for the fast path: the same proofs as nsecIndex.answer
// makes, written as wire data without building a message, and without
// allocating. A flood of random names under a signed zone is then answered
// at about the cost of a cached answer, on the goroutine that reads the
// socket. Only a name that the index proves absent is answered; every
// other outcome, such as NODATA, a wildcard that exists or a proof that
// needs a record not in the index, is left to the resolver, which decides
// it as before.

// Record flags of an entry, from its type bitmap and NSEC3 flags.
const (
	// entryDelegation: NS without SOA, a delegation to a child zone.
	entryDelegation = 1 << iota
	// entryDNAME: names below the owner are redirected.
	entryDNAME
	// entryOptOut: the NSEC3 span may hide unsigned delegations.
	entryOptOut
	// entryUnusable: an NSEC3 record with a hash other than SHA-1 or
	// owned other than directly below the zone (RFC 5155 section 8.1),
	// or an NSEC record whose owner or next name has an escape. The
	// canonical key of such a name keeps the escape's text, which may
	// sort elsewhere than the byte it stands for: "\200" sorts before
	// "a" and "\(" after "0", so the span would seem to cover names it
	// does not.
	entryUnusable
)

// entryWire is the wire form of a proofEntry: the record and its RRSIGs,
// packed without name compression, so they can be copied into any
// response. next is what the span ends at: the canonicalKey of an NSEC
// record's next name, or an NSEC3 record's next hash in upper case.
// packed is empty when the records could not be packed.
type entryWire struct {
	packed  []byte
	records int
	next    string
	flags   uint8
	types   []uint16
}

// newEntryWire packs rr, owned by owner in zone, with its RRSIGs.
func newEntryWire(zone, owner string, rr dns.RR, sigs []dns.RR) entryWire {
	var w entryWire
	switch rr := rr.(type) {
	case *dns.NSEC:
		w.next = canonicalKey(rr.NextDomain)
		w.flags = bitmapFlags(rr.TypeBitMap)
		w.types = rr.TypeBitMap
		if strings.IndexByte(owner, '\\') >= 0 || strings.IndexByte(rr.NextDomain, '\\') >= 0 {
			w.flags |= entryUnusable
		}
	case *dns.NSEC3:
		w.next = upper(rr.NextDomain)
		w.flags = bitmapFlags(rr.TypeBitMap)
		w.types = rr.TypeBitMap
		if rr.Flags&1 != 0 {
			w.flags |= entryOptOut
		}
		if rr.Hash != dns.SHA1 || parent(owner) != zone {
			w.flags |= entryUnusable
		}
	}
	w.packed, w.records = packRecords(append([]dns.RR{rr}, sigs...))
	return w
}

// bitmapFlags returns the entry flags that a type bitmap shows.
func bitmapFlags(bitmap []uint16) uint8 {
	var ns, soa, dname bool
	for _, t := range bitmap {
		switch t {
		case dns.TypeNS:
			ns = true
		case dns.TypeSOA:
			soa = true
		case dns.TypeDNAME:
			dname = true
		}
	}
	var f uint8
	if ns && !soa {
		f |= entryDelegation
	}
	if dname {
		f |= entryDNAME
	}
	return f
}

// zoneWire is the wire form of a zone's SOA, alone in soa[:soaLen] and
// with its RRSIGs after it, and the zone's canonicalKey. ttl is the
// negative TTL the SOA gives: the lower of its TTL and its minimum.
type zoneWire struct {
	soa     []byte
	soaLen  int
	records int
	ttl     uint32
	key     string
}

// newZoneWire packs the SOA of zone and its RRSIGs.
func newZoneWire(zone string, soa *dns.SOA, sigs []dns.RR) zoneWire {
	w := zoneWire{key: canonicalKey(zone), ttl: min(soa.Hdr.Ttl, soa.Minttl)}
	w.soa, _ = packRecords([]dns.RR{soa})
	w.soaLen = len(w.soa)
	if w.soaLen == 0 {
		return w
	}
	s, n := packRecords(sigs)
	if len(sigs) > 0 && n == 0 {
		w.soa = nil
		return w
	}
	w.soa = append(w.soa, s...)
	w.records = n
	return w
}

// packRecords packs rrs without name compression. It returns nil and 0
// when one does not pack.
func packRecords(rrs []dns.RR) ([]byte, int) {
	var out []byte
	for _, rr := range rrs {
		b := make([]byte, dns.Len(rr)+64)
		n, err := dns.PackRR(rr, b, 0, nil, false)
		if err != nil {
			return nil, 0
		}
		out = append(out, b[:n]...)
	}
	return out, len(rrs)
}

// appendRecords appends packed, records packed without name compression,
// to dst with the TTL of each set to ttl.
func appendRecords(dst, packed []byte, ttl uint32) []byte {
	off := len(dst)
	dst = append(dst, packed...)
	for off < len(dst) {
		for dst[off] != 0 {
			off += int(dst[off]) + 1
		}
		off++ // the root label
		binary.BigEndian.PutUint32(dst[off+4:], ttl)
		off += 10 + int(binary.BigEndian.Uint16(dst[off+8:]))
	}
	return dst
}

// hashParams are the NSEC3 hash parameters of a zone's index. ok is false
// for a hash other than SHA-1 or a salt that does not decode.
type hashParams struct {
	salt       []byte
	iterations uint16
	ok         bool
}

func newHashParams(n *dns.NSEC3) hashParams {
	p := hashParams{iterations: n.Iterations, ok: n.Hash == dns.SHA1}
	if n.Salt != "-" && n.Salt != "" {
		salt, err := hex.DecodeString(n.Salt)
		p.salt, p.ok = salt, p.ok && err == nil
	}
	return p
}

var base32Hex = base32.HexEncoding.WithPadding(base32.NoPadding)

// hashName sets dst to the NSEC3 hash of wire, a lower-case name in wire
// format, in upper-case base32hex (RFC 5155 section 5).
func (p *hashParams) hashName(dst *[32]byte, wire []byte) {
	var buf [255 + 255]byte
	sum := sha1.Sum(append(append(buf[:0], wire...), p.salt...))
	for range p.iterations {
		sum = sha1.Sum(append(append(buf[:0], sum[:]...), p.salt...))
	}
	base32Hex.Encode(dst[:], sum[:])
}

// AppendNXDomain appends to dst the authority section of an NXDOMAIN
// response for name, when the validated NSEC or NSEC3 records of earlier
// answers prove that name does not exist (RFC 8198): the zone's SOA and,
// when dnssecOK is set, its RRSIGs and the proof with its RRSIGs. Every
// record gets the TTL that the slow path would give it. name is in lower
// case presentation format with the final dot and no escapes; it is not
// kept. ok is false, and dst is returned as it was, when the records prove
// nothing about name, or something other than its absence.
//
// It neither allocates nor blocks other readers, so that it can run on
// the fast path for every query that misses the answer cache.
func (r *Resolver) AppendNXDomain(dst []byte, name string, dnssecOK bool, now time.Time) (out []byte, records int, ok bool) {
	if !r.cfg.Validation || !r.cfg.AggressiveNSEC || r.hasNegativeAnchors() || len(name) > 254 {
		return dst, 0, false
	}
	x := &r.nsec
	x.mu.RLock()
	defer x.mu.RUnlock()
	zone, z := x.deepest(name)
	if z == nil || z.soa == nil || len(z.wire.soa) == 0 || name == zone || !now.Before(z.soaExpires) {
		return dst, 0, false
	}

	var used [3]*proofEntry
	var n int
	if len(z.nsec3) > 0 {
		n, ok = z.proveNSEC3(name, zone, r.cfg.Limits, now, &used)
	} else {
		n, ok = z.proveNSEC(name, now, &used)
	}
	if !ok {
		return dst, 0, false
	}

	ttl := min(z.wire.ttl, uint32(z.soaExpires.Sub(now)/time.Second))
	for _, e := range used[:n] {
		if len(e.wire.packed) == 0 {
			return dst, 0, false
		}
		ttl = min(ttl, uint32(e.expires.Sub(now)/time.Second))
	}
	out = appendRecords(dst, z.wire.soa[:z.wire.soaLen], ttl)
	records = 1
	if dnssecOK {
		out = appendRecords(out, z.wire.soa[z.wire.soaLen:], ttl)
		records += z.wire.records
		for _, e := range used[:n] {
			out = appendRecords(out, e.wire.packed, ttl)
			records += e.wire.records
		}
	}
	return out, records, true
}

// proveNSEC finds the NSEC spans that prove name absent: one that covers
// name, and one that covers the wildcard at its closest encloser. It
// stores them in used and returns how many it stored.
func (z *zoneNSEC) proveNSEC(name string, now time.Time, used *[3]*proofEntry) (int, bool) {
	var kb, wb [256]byte
	k := appendKey(kb[:0], name)
	e, ok := z.coveringSpan(k, now)
	if !ok {
		return 0, false
	}
	// The closest encloser is the longer of name's common ancestors with
	// the span's ends, and never above the zone.
	ce := max(commonLabels(e.key, k), commonLabels(e.wire.next, k), len(z.wire.key))
	w := append(append(wb[:0], k[:ce]...), '*', 0)
	we, ok := z.coveringSpan(w, now)
	if !ok {
		return 0, false
	}
	used[0] = e
	if we == e {
		return 1, true
	}
	used[1] = we
	return 2, true
}

// coveringSpan returns the unexpired NSEC entry whose span holds the name
// with canonical key k strictly. It fails for an entry with an escape, and
// when the span starts at a delegation or DNAME above the name, whose
// names are not in the zone, or ends below the name, which then exists as
// an empty non-terminal.
func (z *zoneNSEC) coveringSpan(k []byte, now time.Time) (*proofEntry, bool) {
	if len(z.entries) == 0 {
		return nil, false
	}
	lo, hi := 0, len(z.entries)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if z.entries[m].key <= string(k) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	e := &z.entries[(lo-1+len(z.entries))%len(z.entries)]
	owner, next := e.key, e.wire.next
	var covered bool
	if owner < next {
		covered = owner < string(k) && string(k) < next
	} else {
		covered = owner < string(k) || string(k) < next
	}
	switch {
	case !covered, !now.Before(e.expires), e.wire.flags&entryUnusable != 0:
		return nil, false
	case e.wire.flags&(entryDelegation|entryDNAME) != 0 && hasKeyPrefix(k, owner):
		return nil, false
	case len(next) > len(k) && next[:len(k)] == string(k):
		return nil, false
	}
	return e, true
}

// nsec3Walk is what the NSEC3 records show about a name: the record
// matching its closest encloser, the one covering its next closer name,
// and the hash and wire form of the wildcard at the closest encloser.
type nsec3Walk struct {
	ce, cover *proofEntry
	wildHash  [32]byte
	wildBuf   [258]byte
	wildLen   int
}

// wildcard returns the wire form of the wildcard at the closest encloser.
func (w *nsec3Walk) wildcard() []byte { return w.wildBuf[:w.wildLen] }

// walkNSEC3 finds the closest encloser proof of name (RFC 5155 section
// 8.3) and hashes the wildcard at the closest encloser. It fails when name
// exists, and hashes no more names than limits.MaxNSEC3Hashes allows a
// proof on the slow path: the name, its ancestors up to the closest
// encloser and the wildcard. A name with many labels would otherwise cost
// a hash per label, each of up to MaxNSEC3Iterations iterations, on the
// goroutine that reads the socket.
func (z *zoneNSEC) walkNSEC3(name, zone string, limits dnssec.Limits, now time.Time, w *nsec3Walk) bool {
	p := &z.hash
	if !p.ok || int(p.iterations) > limits.MaxNSEC3Iterations {
		return false
	}
	maxHashes := limits.MaxNSEC3Hashes
	if maxHashes <= 0 {
		maxHashes = dnssec.DefaultLimits.MaxNSEC3Hashes
	}
	var wb [256]byte
	var starts [128]int
	wire, labels := appendWire(wb[:0], name, starts[:0])
	below := len(labels) - 1 - dns.CountLabel(zone) // labels of name below the zone
	if below < 1 {
		return false
	}
	// nextHash is the hash of the next closer name once the walk ends.
	var h, nextHash [32]byte
	p.hashName(&nextHash, wire)
	if _, found := z.findNSEC3(nextHash[:]); found {
		return false // name exists
	}

	// Walk up from the parent to the zone for the closest encloser. The
	// name, l ancestors and the wildcard make l+2 hashes.
	ceLabel := 0
	w.ce = nil
	for l := 1; l <= below; l++ {
		if l+2 > maxHashes {
			return false
		}
		p.hashName(&h, wire[labels[l]:])
		if i, found := z.findNSEC3(h[:]); found {
			w.ce, ceLabel = &z.nsec3[i], l
			break
		}
		nextHash = h
	}
	if w.ce == nil || w.ce.wire.flags&(entryDelegation|entryDNAME|entryUnusable) != 0 || !now.Before(w.ce.expires) {
		return false
	}
	var ok bool
	w.cover, ok = z.coveringNSEC3(nextHash[:], now)
	if !ok || w.cover.wire.flags&entryOptOut != 0 {
		// An opt-out span may hide an unsigned delegation (RFC 5155
		// section 9.2).
		return false
	}
	w.wildLen = len(append(append(w.wildBuf[:0], 1, '*'), wire[labels[ceLabel]:]...))
	p.hashName(&w.wildHash, w.wildcard())
	return true
}

// proveNSEC3 finds the NSEC3 records that prove name absent (RFC 5155
// section 8.4): the one matching its closest encloser, the one covering
// the next closer name and the one covering the wildcard at the closest
// encloser. It stores them in used, without repeats, and returns how many
// it stored.
func (z *zoneNSEC) proveNSEC3(name, zone string, limits dnssec.Limits, now time.Time, used *[3]*proofEntry) (int, bool) {
	var w nsec3Walk
	if !z.walkNSEC3(name, zone, limits, now, &w) {
		return 0, false
	}
	wild, ok := z.coveringNSEC3(w.wildHash[:], now)
	if !ok {
		return 0, false
	}
	n := 0
	for _, e := range [3]*proofEntry{w.ce, w.cover, wild} {
		if n == 0 || used[0] != e && (n == 1 || used[1] != e) {
			used[n] = e
			n++
		}
	}
	return n, true
}

// findNSEC3 returns the index of the first NSEC3 entry whose owner hash is
// h or sorts after it, and whether it is h.
func (z *zoneNSEC) findNSEC3(h []byte) (int, bool) {
	lo, hi := 0, len(z.nsec3Hashes)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if z.nsec3Hashes[m] < string(h) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(z.nsec3Hashes) && z.nsec3Hashes[lo] == string(h)
}

// coveringNSEC3 returns the unexpired, usable NSEC3 entry whose span holds
// the hash h strictly.
func (z *zoneNSEC) coveringNSEC3(h []byte, now time.Time) (*proofEntry, bool) {
	i, found := z.findNSEC3(h)
	if found || len(z.nsec3) == 0 {
		return nil, false
	}
	i = (i - 1 + len(z.nsec3)) % len(z.nsec3)
	e := &z.nsec3[i]
	owner, next := z.nsec3Hashes[i], e.wire.next
	var covered bool
	if owner < next {
		covered = owner < string(h) && string(h) < next
	} else {
		covered = owner < string(h) || string(h) < next
	}
	if !covered || e.wire.flags&entryUnusable != 0 || !now.Before(e.expires) {
		return nil, false
	}
	return e, true
}

// appendKey appends the canonicalKey of name, which has no escapes and is
// in lower case, to dst.
func appendKey(dst []byte, name string) []byte {
	end := len(name) - 1 // the final dot
	for end > 0 {
		start := end - 1
		for start >= 0 && name[start] != '.' {
			start--
		}
		dst = append(dst, name[start+1:end]...)
		dst = append(dst, 0)
		end = start
	}
	return dst
}

// appendWire appends name, which has no escapes, in wire format to dst,
// and the offset in the result of each label to starts, the root label's
// last.
func appendWire(dst []byte, name string, starts []int) ([]byte, []int) {
	for i := 0; i < len(name)-1; {
		j := i
		for j < len(name) && name[j] != '.' {
			j++
		}
		starts = append(starts, len(dst))
		dst = append(dst, byte(j-i))
		dst = append(dst, name[i:j]...)
		i = j + 1
	}
	starts = append(starts, len(dst))
	return append(dst, 0), starts
}

// commonLabels returns the length of the longest run of whole labels that
// the canonical keys a and k start with.
func commonLabels(a string, k []byte) int {
	n := 0
	for i := 0; i < len(a) && i < len(k) && a[i] == k[i]; i++ {
		if a[i] == 0 {
			n = i + 1
		}
	}
	return n
}

// hasKeyPrefix reports whether the canonical key k starts with the key
// prefix, that is whether prefix's name is k's or an ancestor of it.
func hasKeyPrefix(k []byte, prefix string) bool {
	return len(k) >= len(prefix) && string(k[:len(prefix)]) == prefix
}

// upper returns s with ASCII letters in upper case.
func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
	}
	return string(b)
}
