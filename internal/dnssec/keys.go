package dnssec

import (
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Trust is what authenticates a zone's DNSKEY RRset: the DS RRset from the
// parent, or trust anchors given as DS or DNSKEY records.
type Trust struct {
	DS      []*dns.DS
	DNSKEYs []*dns.DNSKEY
}

// Usable reports whether t names at least one key this package can check:
// a DNSKEY anchor or a DS record with a supported algorithm and digest. A
// zone whose Trust is not usable is insecure (RFC 4035 section 5.2). The
// error gives the Extended DNS Error for that case.
func (t Trust) Usable() (bool, *Error) {
	for _, k := range t.DNSKEYs {
		if SupportedAlgorithm(k.Algorithm) {
			return true, nil
		}
	}
	alg, digest := false, false
	for _, ds := range t.DS {
		a, d := SupportedAlgorithm(ds.Algorithm), SupportedDigest(ds.DigestType)
		if a && d {
			return true, nil
		}
		alg = alg || a
		digest = digest || d
	}
	if alg && !digest {
		return false, newError(EDEUnsupportedDigest, "no DS record with a supported digest type")
	}
	return false, newError(EDEUnsupportedAlgorithm, "no DS record or key with a supported algorithm")
}

// VerifyDNSKEYs authenticates keys, a zone's DNSKEY RRset, with trust: some
// key must match a trusted DS record or DNSKEY anchor, have the zone key
// bit, and sign the RRset (RFC 4035 section 5.2). It returns the keys
// usable for the zone's other RRsets. insecure is true when no trusted key
// can be checked, as for a zone whose only keys are RSA under 1024 bits.
func VerifyDNSKEYs(keys []*dns.DNSKEY, sigs []*dns.RRSIG, trust Trust, now time.Time, b *Budget) (usable []*dns.DNSKEY, insecure bool, err *Error) {
	if len(keys) == 0 {
		return nil, false, newError(EDEDNSKEYMissing, "no DNSKEY records")
	}
	zone := dns.CanonicalName(keys[0].Hdr.Name)
	var trusted []*dns.DNSKEY
	var noZoneBit, unusable int
	for _, k := range keys {
		if !trust.matches(k) {
			continue
		}
		if k.Flags&flagZone == 0 || k.Flags&flagRevoke != 0 || k.Protocol != 3 {
			noZoneBit++
			continue
		}
		if _, err := decodeKey(k); err != nil {
			unusable++
			continue
		}
		trusted = append(trusted, k)
	}
	if len(trusted) == 0 {
		switch {
		case unusable > 0:
			return nil, true, newError(EDEUnsupportedAlgorithm, "the trusted keys of %s cannot be used (RSA under 1024 bits or malformed)", zone)
		case noZoneBit > 0:
			return nil, false, newError(EDENoZoneKeyBitSet, "the keys of %s that match its DS records lack the zone key bit or are revoked", zone)
		}
		return nil, false, newError(EDEDNSKEYMissing, "no DNSKEY of %s matches its DS records or trust anchors", zone)
	}
	rrset := make([]dns.RR, len(keys))
	for i, k := range keys {
		rrset[i] = k
	}
	if _, err := VerifyRRset(rrset, sigsBy(sigs, zone), trusted, now, b); err != nil {
		e := AsError(err)
		if e.EDE == EDEBogus && strings.HasPrefix(e.Text, "no DNSKEY") {
			e = newError(EDEDNSKEYMissing, "DNSKEY RRset of %s is not signed by a key that matches its DS records", zone)
		}
		return nil, false, e
	}
	for _, k := range keys {
		if k.Flags&flagZone != 0 && k.Flags&flagRevoke == 0 && k.Protocol == 3 && SupportedAlgorithm(k.Algorithm) {
			usable = append(usable, k)
		}
	}
	return usable, false, nil
}

// matches reports whether k is named by a trusted DS record or anchor.
func (t Trust) matches(k *dns.DNSKEY) bool {
	for _, a := range t.DNSKEYs {
		if a.Algorithm == k.Algorithm && a.Flags&^flagRevoke == k.Flags&^flagRevoke && a.PublicKey == k.PublicKey && strings.EqualFold(a.Hdr.Name, k.Hdr.Name) {
			return true
		}
	}
	tag := k.KeyTag()
	for _, ds := range t.DS {
		if ds.KeyTag != tag || ds.Algorithm != k.Algorithm || !SupportedDigest(ds.DigestType) {
			continue
		}
		if got := k.ToDS(ds.DigestType); got != nil && strings.EqualFold(got.Digest, ds.Digest) && strings.EqualFold(ds.Hdr.Name, k.Hdr.Name) {
			return true
		}
	}
	return false
}

// sigsBy returns the signatures in sigs made by signer.
func sigsBy(sigs []*dns.RRSIG, signer string) []*dns.RRSIG {
	var out []*dns.RRSIG
	for _, s := range sigs {
		if strings.EqualFold(s.SignerName, signer) {
			out = append(out, s)
		}
	}
	return out
}
