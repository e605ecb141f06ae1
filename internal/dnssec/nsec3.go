package dnssec

import (
	"strings"

	"github.com/miekg/dns"
)

// nsec3Params are the hash parameters shared by a zone's NSEC3 records.
type nsec3Params struct {
	iterations uint16
	salt       string
}

// hashCache avoids hashing one name twice for one proof.
type hashCache map[string]string

// nsec3Params returns the parameters of the usable NSEC3 records: SHA-1
// ones (RFC 5155 section 8.1 ignores others) owned directly below the zone.
// It fails with Insecure's reason when none is usable or the iteration count
// is above the limit (RFC 9276 section 3.2).
func (d *Denial) nsec3Params() (nsec3Params, *Error) {
	var usable []*dns.NSEC3
	for _, n := range d.NSEC3 {
		if n.Hash == dns.SHA1 && strings.EqualFold(parentName(dns.CanonicalName(n.Hdr.Name)), d.Zone) {
			usable = append(usable, n)
		}
	}
	if len(usable) == 0 {
		return nsec3Params{}, newError(EDENSECMissing, "no NSEC3 record of %s with a supported hash", d.Zone)
	}
	d.NSEC3 = usable
	p := nsec3Params{iterations: usable[0].Iterations, salt: usable[0].Salt}
	return p, nil
}

// checkIterations returns the Insecure reason for parameters whose
// iteration count is above the limit.
func checkIterations(p nsec3Params, zone string, b *Budget) *Error {
	if int(p.iterations) > b.maxIterations() {
		return newError(EDEUnsupportedIterations, "NSEC3 of %s uses %d iterations, more than %d", zone, p.iterations, b.maxIterations())
	}
	return nil
}

// hashCache returns the hashes of the checks run so far on d, so that a
// NODATA check followed by an NXDOMAIN check on the same name charges the
// budget once for each name. The parameters of d's records do not change
// between checks.
func (d *Denial) hashCache() hashCache {
	if d.hashes == nil {
		d.hashes = hashCache{}
	}
	return d.hashes
}

// hash returns the NSEC3 hash of name in base32hex, charging the budget.
func (d *Denial) hash(name string, p nsec3Params, b *Budget, cache hashCache) (string, *Error) {
	if h, ok := cache[name]; ok {
		return h, nil
	}
	if err := b.spendHash(); err != nil {
		return "", AsError(err)
	}
	h := dns.HashName(name, dns.SHA1, p.iterations, p.salt)
	cache[name] = h
	return h, nil
}

// matchingNSEC3 returns the NSEC3 record whose owner hash is name's, or nil.
func (d *Denial) matchingNSEC3(name string, p nsec3Params, b *Budget, cache hashCache) (*dns.NSEC3, *Error) {
	h, err := d.hash(name, p, b, cache)
	if err != nil {
		return nil, err
	}
	for _, n := range d.NSEC3 {
		if strings.EqualFold(firstLabel(n.Hdr.Name), h) {
			d.use(n)
			return n, nil
		}
	}
	return nil, nil
}

// coveringNSEC3 returns the NSEC3 record whose hash span holds name's hash
// strictly, or nil.
func (d *Denial) coveringNSEC3(name string, p nsec3Params, b *Budget) (*dns.NSEC3, *Error) {
	return d.covering(name, p, b, d.hashCache())
}

func (d *Denial) covering(name string, p nsec3Params, b *Budget, cache hashCache) (*dns.NSEC3, *Error) {
	h, err := d.hash(name, p, b, cache)
	if err != nil {
		return nil, err
	}
	for _, n := range d.NSEC3 {
		owner := strings.ToUpper(firstLabel(n.Hdr.Name))
		next := strings.ToUpper(n.NextDomain)
		if owner < next && owner < h && h < next || owner >= next && (h > owner || h < next) {
			d.use(n)
			return n, nil
		}
	}
	return nil, nil
}

// closestEncloserProof finds the closest encloser of qname among the
// hashed names and the NSEC3 covering the next closer name (RFC 5155
// section 8.3). ce is "" when qname itself matches.
func (d *Denial) closestEncloserProof(qname string, p nsec3Params, b *Budget, cache hashCache) (ce string, cover *dns.NSEC3, err *Error) {
	zone := dns.CanonicalName(d.Zone)
	if !isAncestor(zone, qname) {
		return "", nil, newError(EDEBogus, "%s is not in the zone %s of the NSEC3 records", qname, zone)
	}
	next := qname
	for n := qname; ; n = parentName(n) {
		m, err := d.matchingNSEC3(n, p, b, cache)
		if err != nil {
			return "", nil, err
		}
		if m != nil {
			if n == qname {
				return "", nil, nil
			}
			if hasType(m.TypeBitMap, dns.TypeDNAME) || hasType(m.TypeBitMap, dns.TypeNS) && !hasType(m.TypeBitMap, dns.TypeSOA) {
				return "", nil, newError(EDEBogus, "the closest encloser %s of %s is a delegation or DNAME", n, qname)
			}
			cover, err := d.covering(next, p, b, cache)
			if err != nil {
				return "", nil, err
			}
			if cover == nil {
				return "", nil, newError(EDENSECMissing, "no NSEC3 covers the next closer name %s", next)
			}
			return n, cover, nil
		}
		if n == zone {
			return "", nil, newError(EDENSECMissing, "no NSEC3 matches an ancestor of %s", qname)
		}
		next = n
	}
}

func (d *Denial) nsec3NXDomain(qname string, b *Budget) (Security, *Error) {
	p, err := d.nsec3Params()
	if err != nil {
		return Bogus, err
	}
	if err := checkIterations(p, d.Zone, b); err != nil {
		return Insecure, err
	}
	cache := d.hashCache()
	ce, cover, err := d.closestEncloserProof(qname, p, b, cache)
	if err != nil {
		return Bogus, err
	}
	if ce == "" {
		return Bogus, newError(EDEBogus, "an NSEC3 record shows that %s exists", qname)
	}
	w, err := d.covering(WildcardName(ce), p, b, cache)
	if err != nil {
		return Bogus, err
	}
	if w == nil {
		return Bogus, newError(EDENSECMissing, "no NSEC3 proves that the wildcard *.%s does not exist", ce)
	}
	if cover.Flags&1 != 0 {
		// An opt-out span may hide an unsigned delegation, so the name's
		// absence is not proven (RFC 5155 section 9.2).
		return Insecure, nil
	}
	return Secure, nil
}

func (d *Denial) nsec3NoData(qname string, qtype uint16, b *Budget) (Security, *Error) {
	p, err := d.nsec3Params()
	if err != nil {
		return Bogus, err
	}
	if err := checkIterations(p, d.Zone, b); err != nil {
		return Insecure, err
	}
	cache := d.hashCache()
	m, err := d.matchingNSEC3(qname, p, b, cache)
	if err != nil {
		return Bogus, err
	}
	if m != nil {
		if err := checkNoDataBitmap(m.TypeBitMap, qname, qtype); err != nil {
			return Bogus, err
		}
		return Secure, nil
	}
	ce, cover, err := d.closestEncloserProof(qname, p, b, cache)
	if err != nil {
		return Bogus, err
	}
	if qtype == dns.TypeDS && cover.Flags&1 != 0 {
		// An unsigned delegation inside an opt-out span (RFC 5155 section
		// 8.6).
		return Insecure, nil
	}
	w, err := d.matchingNSEC3(WildcardName(ce), p, b, cache)
	if err != nil {
		return Bogus, err
	}
	if w == nil {
		return Bogus, newError(EDENSECMissing, "no NSEC3 proves that %s has no %s records", qname, dns.Type(qtype))
	}
	if err := checkNoDataBitmap(w.TypeBitMap, WildcardName(ce), qtype); err != nil {
		return Bogus, err
	}
	return Secure, nil
}

func firstLabel(name string) string {
	if i := strings.IndexByte(name, '.'); i >= 0 {
		return name[:i]
	}
	return name
}
