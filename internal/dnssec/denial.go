package dnssec

import (
	"strings"

	"github.com/miekg/dns"
)

// Denial holds the NSEC or NSEC3 records of one zone from a response, each
// already verified against the zone's keys by the caller. Its methods check
// what the records prove (RFC 4035 section 5.4, RFC 5155 section 8).
//
// A method returns Secure when the records prove the claim, Insecure when
// they prove only that the claim concerns an unsigned part of the zone
// (NSEC3 opt-out) or use more NSEC3 iterations than the limit, and Bogus
// with the reason otherwise.
type Denial struct {
	// Zone is the zone that signed the records.
	Zone  string
	NSEC  []*dns.NSEC
	NSEC3 []*dns.NSEC3

	// used collects the records that matched or covered a name, for Used.
	used []dns.RR
	// hashes holds the NSEC3 hashes computed so far.
	hashes hashCache
}

// Add appends the NSEC and NSEC3 records among rrs to d and leaves out the
// others.
func (d *Denial) Add(rrs ...dns.RR) {
	for _, rr := range rrs {
		switch rr := rr.(type) {
		case *dns.NSEC:
			d.NSEC = append(d.NSEC, rr)
		case *dns.NSEC3:
			d.NSEC3 = append(d.NSEC3, rr)
		}
	}
}

// Used returns the NSEC and NSEC3 records that matched or covered a name
// in the checks run so far, each once: the proof to send with an answer
// synthesised from them.
func (d *Denial) Used() []dns.RR { return d.used }

func (d *Denial) use(rr dns.RR) {
	for _, u := range d.used {
		if u == rr {
			return
		}
	}
	d.used = append(d.used, rr)
}

// NXDomain checks a proof that qname does not exist: no such name and no
// wildcard that could have produced it.
func (d *Denial) NXDomain(qname string, b *Budget) (Security, *Error) {
	if len(d.NSEC3) > 0 {
		return d.nsec3NXDomain(qname, b)
	}
	n := d.coveringNSEC(qname)
	if n == nil {
		return Bogus, newError(EDENSECMissing, "no NSEC proves that %s does not exist", qname)
	}
	ce := d.closestEncloser(qname, n)
	if w := d.coveringNSEC(WildcardName(ce)); w == nil {
		return Bogus, newError(EDENSECMissing, "no NSEC proves that the wildcard *.%s does not exist", ce)
	}
	return Secure, nil
}

// NoData checks a proof that qname exists without qtype: a record at the
// name without the type, an empty non-terminal, or a wildcard without the
// type. For DS it also accepts an NSEC3 opt-out span, as Insecure.
func (d *Denial) NoData(qname string, qtype uint16, b *Budget) (Security, *Error) {
	if len(d.NSEC3) > 0 {
		return d.nsec3NoData(qname, qtype, b)
	}
	for _, n := range d.NSEC {
		if !strings.EqualFold(n.Hdr.Name, qname) {
			continue
		}
		if err := checkNoDataBitmap(n.TypeBitMap, qname, qtype); err != nil {
			return Bogus, err
		}
		d.use(n)
		return Secure, nil
	}
	n := d.coveringNSEC(qname)
	if n == nil {
		return Bogus, newError(EDENSECMissing, "no NSEC proves that %s has no %s records", qname, dns.Type(qtype))
	}
	// An empty non-terminal sorts just before its descendants, so the
	// NSEC covering it ends at one of them (RFC 4035 section 3.1.3.2).
	next := dns.CanonicalName(n.NextDomain)
	if next != qname && isAncestor(qname, next) {
		return Secure, nil
	}
	ce := d.closestEncloser(qname, n)
	for _, w := range d.NSEC {
		if !strings.EqualFold(w.Hdr.Name, WildcardName(ce)) {
			continue
		}
		if err := checkNoDataBitmap(w.TypeBitMap, w.Hdr.Name, qtype); err != nil {
			return Bogus, err
		}
		d.use(w)
		return Secure, nil
	}
	return Bogus, newError(EDENSECMissing, "no NSEC proves that %s has no %s records", qname, dns.Type(qtype))
}

// Wildcard checks that an RRset at owner, expanded from a wildcard whose
// RRSIG gave labels labels, could not have come from a closer name (RFC 4035
// section 5.3.4, RFC 5155 section 8.8).
func (d *Denial) Wildcard(owner string, labels int, b *Budget) (Security, *Error) {
	off, _ := dns.PrevLabel(owner, labels)
	ce := dns.CanonicalName(owner[off:])
	if labels == 0 {
		ce = "."
	}
	if len(d.NSEC3) > 0 {
		p, err := d.nsec3Params()
		if err != nil {
			return Bogus, err
		}
		if err := checkIterations(p, d.Zone, b); err != nil {
			return Insecure, err
		}
		nc := childToward(ce, owner)
		cover, err := d.coveringNSEC3(nc, p, b)
		if err != nil {
			return Bogus, err
		}
		if cover == nil {
			return Bogus, newError(EDENSECMissing, "no NSEC3 proves that %s is not closer than the wildcard", nc)
		}
		return Secure, nil
	}
	n := d.coveringNSEC(owner)
	if n == nil || d.closestEncloser(owner, n) != ce {
		return Bogus, newError(EDENSECMissing, "no NSEC proves that %s was expanded from the wildcard *.%s", owner, ce)
	}
	return Secure, nil
}

// checkNoDataBitmap checks the type bitmap of a record matching name in a
// NODATA proof for qtype.
func checkNoDataBitmap(bitmap []uint16, name string, qtype uint16) *Error {
	if qtype == dns.TypeANY {
		// A name with any record has data for ANY: only a name without
		// records, whose bitmap lists no more than the proof's own types,
		// has none.
		for _, t := range bitmap {
			if t != dns.TypeNSEC && t != dns.TypeNSEC3 && t != dns.TypeRRSIG {
				return newError(EDEBogus, "the proof for %s lists type %s, so ANY has data", name, dns.Type(t))
			}
		}
	}
	if hasType(bitmap, qtype) {
		return newError(EDEBogus, "the proof for %s lists the type %s it should deny", name, dns.Type(qtype))
	}
	if hasType(bitmap, dns.TypeCNAME) && qtype != dns.TypeCNAME {
		return newError(EDEBogus, "the proof for %s shows a CNAME instead of NODATA", name)
	}
	delegation := hasType(bitmap, dns.TypeNS) && !hasType(bitmap, dns.TypeSOA)
	if qtype == dns.TypeDS && hasType(bitmap, dns.TypeSOA) && name != "." {
		return newError(EDEBogus, "the DS proof for %s comes from the child zone", name)
	}
	if qtype != dns.TypeDS && delegation {
		return newError(EDEBogus, "the proof for %s comes from the parent side of a delegation", name)
	}
	return nil
}

// coveringNSEC returns the NSEC record whose span holds name strictly, or
// nil. Spans that start at a delegation or DNAME above name are skipped:
// names below those are not in the zone.
func (d *Denial) coveringNSEC(name string) *dns.NSEC {
	for _, n := range d.NSEC {
		owner := dns.CanonicalName(n.Hdr.Name)
		if owner != name && isAncestor(owner, name) {
			if hasType(n.TypeBitMap, dns.TypeDNAME) || hasType(n.TypeBitMap, dns.TypeNS) && !hasType(n.TypeBitMap, dns.TypeSOA) {
				continue
			}
		}
		if Covers(owner, dns.CanonicalName(n.NextDomain), name) {
			d.use(n)
			return n
		}
	}
	return nil
}

// Covers reports whether name lies strictly between owner and next in
// canonical order, the span of an NSEC record. The last NSEC of a zone
// wraps around to the apex.
func Covers(owner, next, name string) bool {
	afterOwner := Compare(owner, name) < 0
	beforeNext := Compare(name, next) < 0
	if Compare(owner, next) < 0 {
		return afterOwner && beforeNext
	}
	return afterOwner || beforeNext
}

// SpanEncloser returns the closest encloser of name that the span of the
// NSEC record n shows: the longer of name's common ancestors with n's owner
// and next name.
func SpanEncloser(name string, n *dns.NSEC) string {
	a := commonAncestor(name, dns.CanonicalName(n.Hdr.Name))
	b := commonAncestor(name, dns.CanonicalName(n.NextDomain))
	if dns.CountLabel(b) > dns.CountLabel(a) {
		return b
	}
	return a
}

// closestEncloser returns the deepest existing ancestor of name that the
// covering NSEC n shows: the longer of its common ancestors with n's owner
// and next name, and never above the zone.
func (d *Denial) closestEncloser(name string, n *dns.NSEC) string {
	ce := SpanEncloser(name, n)
	if zone := dns.CanonicalName(d.Zone); !isAncestor(zone, ce) {
		ce = zone
	}
	return ce
}

// DelegationProven reports whether the NSEC or NSEC3 records in rrs show
// name as a delegation: its type bitmap has NS and no SOA. NSEC3 records
// with more than maxIterations iterations are not hashed, and only the
// parameters of the first one hashed are used.
func DelegationProven(rrs []dns.RR, name string, maxIterations int) bool {
	hashed := ""
	for _, rr := range rrs {
		switch rr := rr.(type) {
		case *dns.NSEC:
			if dns.CanonicalName(rr.Hdr.Name) == name {
				return hasType(rr.TypeBitMap, dns.TypeNS) && !hasType(rr.TypeBitMap, dns.TypeSOA)
			}
		case *dns.NSEC3:
			if rr.Hash != dns.SHA1 || int(rr.Iterations) > maxIterations || !isAncestor(parentName(dns.CanonicalName(rr.Hdr.Name)), name) {
				continue
			}
			if hashed == "" {
				hashed = dns.HashName(name, dns.SHA1, rr.Iterations, rr.Salt)
			}
			if strings.EqualFold(firstLabel(rr.Hdr.Name), hashed) {
				return hasType(rr.TypeBitMap, dns.TypeNS) && !hasType(rr.TypeBitMap, dns.TypeSOA)
			}
		}
	}
	return false
}
