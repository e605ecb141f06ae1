package gen

import (
	"bufio"
	"crypto"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/big"
	"os"
	"strings"

	"github.com/miekg/dns"
)

// readZoneFile parses a signed zone file.
func readZoneFile(path, origin string) ([]dns.RR, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zp := dns.NewZoneParser(bufio.NewReader(f), origin, path)
	var out []dns.RR
	for r, ok := zp.Next(); ok; r, ok = zp.Next() {
		out = append(out, r)
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return out, nil
}

func writeZoneFile(path string, rrs []dns.RR) error {
	return writeFile(path, func(w *bufio.Writer) error {
		for _, r := range rrs {
			fmt.Fprintln(w, r.String())
		}
		return nil
	})
}

// applyFaults applies the zone's faults and KeyTrap spec to the signed
// zone file at path.
func (s *signer) applyFaults(z *SignZone, path string) error {
	rrs, err := readZoneFile(path, z.Name)
	if err != nil {
		return err
	}
	for _, f := range z.Faults {
		owner := z.Name
		if f.Owner != "" {
			owner = f.Owner + "." + z.Name
		}
		switch f.Kind {
		case faultStripRRSIG:
			rrs = dropRRs(rrs, func(r dns.RR) bool { return isRRSIGOver(r, owner, f.Type) })
		case faultCorruptRRSIG:
			if err := corruptRRSIG(rrs, owner, f.Type); err != nil {
				return err
			}
		case faultDropNSEC:
			all := f.Owner == ""
			rrs = dropRRs(rrs, func(r dns.RR) bool {
				at := all || strings.EqualFold(r.Header().Name, owner)
				return at && (r.Header().Rrtype == dns.TypeNSEC || isRRSIGOver(r, r.Header().Name, "NSEC"))
			})
		case faultClearZoneBit:
			if rrs, err = s.clearZoneBit(z, rrs); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unknown fault %q", f.Kind)
		}
	}
	if z.KeyTrap != nil {
		if rrs, err = s.addKeyTrap(z, rrs); err != nil {
			return err
		}
	}
	return writeZoneFile(path, rrs)
}

func dropRRs(rrs []dns.RR, drop func(dns.RR) bool) []dns.RR {
	out := rrs[:0]
	for _, r := range rrs {
		if !drop(r) {
			out = append(out, r)
		}
	}
	return out
}

// isRRSIGOver reports whether r is an RRSIG at owner covering the type
// named typ.
func isRRSIGOver(r dns.RR, owner, typ string) bool {
	sig, ok := r.(*dns.RRSIG)
	return ok && strings.EqualFold(sig.Hdr.Name, owner) && dns.Type(sig.TypeCovered).String() == typ
}

// corruptRRSIG flips every bit of one byte in the middle of the first
// RRSIG over owner/typ.
func corruptRRSIG(rrs []dns.RR, owner, typ string) error {
	for _, r := range rrs {
		if !isRRSIGOver(r, owner, typ) {
			continue
		}
		sig := r.(*dns.RRSIG)
		raw, err := base64.StdEncoding.DecodeString(sig.Signature)
		if err != nil {
			return fmt.Errorf("decode RRSIG over %s %s: %w", owner, typ, err)
		}
		raw[len(raw)/2] ^= 0xff
		sig.Signature = base64.StdEncoding.EncodeToString(raw)
		return nil
	}
	return fmt.Errorf("no RRSIG over %s %s to corrupt", owner, typ)
}

// resignDNSKEY replaces the RRSIGs over the apex DNSKEY RRset with one
// made by key, which must have a Go private key.
func (s *signer) resignDNSKEY(z *SignZone, rrs []dns.RR, key *dns.DNSKEY, priv crypto.PrivateKey) ([]dns.RR, error) {
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key %d has no private key to sign with", key.KeyTag())
	}
	rrs = dropRRs(rrs, func(r dns.RR) bool { return isRRSIGOver(r, z.Name, "DNSKEY") })
	var set []dns.RR
	for _, r := range rrs {
		if r.Header().Rrtype == dns.TypeDNSKEY {
			set = append(set, r)
		}
	}
	from, until := s.validity(z)
	sig := &dns.RRSIG{Hdr: dns.RR_Header{Name: z.Name, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: dnskeyTTL},
		Algorithm: key.Algorithm, KeyTag: key.KeyTag(), SignerName: z.Name,
		Inception: uint32(from.Unix()), Expiration: uint32(until.Unix())}
	if err := sig.Sign(signer, set); err != nil {
		return nil, fmt.Errorf("sign DNSKEY RRset: %w", err)
	}
	return append(rrs, sig), nil
}

// clearZoneBit clears the zone key bit of the NoZoneBit keys in the
// signed zone and signs the DNSKEY RRset again with the changed key, so
// the RRSIG names the key tag that the DS matches.
func (s *signer) clearZoneBit(z *SignZone, rrs []dns.RR) ([]dns.RR, error) {
	for _, k := range s.zoneKeys(z.Name) {
		if !k.Spec.NoZoneBit {
			continue
		}
		for _, r := range rrs {
			if key, ok := r.(*dns.DNSKEY); ok && key.PublicKey == k.DNSKEY.PublicKey {
				key.Flags &^= dns.ZONE
			}
		}
		var err error
		if rrs, err = s.resignDNSKEY(z, rrs, k.published(), k.Private); err != nil {
			return nil, err
		}
	}
	return rrs, nil
}

// addKeyTrap adds the KeyTrap DNSKEYs and RRSIGs. The extra keys are
// 1024-bit RSASHA256 keys with random moduli, whose last two bytes are
// chosen so that the key tag equals the ZSK's. The RRSIGs over the
// owner's A RRset replace the real one, name that key tag and contain
// random bytes.
func (s *signer) addKeyTrap(z *SignZone, rrs []dns.RR) ([]dns.RR, error) {
	spec := z.KeyTrap
	keys := s.zoneKeys(z.Name)
	var ksk, zsk *zoneKey
	for _, k := range keys {
		if k.Spec.KSK {
			ksk = k
		} else {
			zsk = k
		}
	}
	if ksk == nil || zsk == nil || zsk.DNSKEY.Algorithm != dns.RSASHA256 {
		return nil, fmt.Errorf("KeyTrap zone needs a KSK and an RSASHA256 ZSK")
	}
	tag := zsk.DNSKEY.KeyTag()
	r := rng("keytrap", z.Name)

	for i := 0; i < spec.Keys; i++ {
		modulus := make([]byte, 128)
		for j := range modulus {
			modulus[j] = byte(r.IntN(256))
		}
		modulus[0] |= 0x80
		key := &dns.DNSKEY{Hdr: dns.RR_Header{Name: z.Name, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: dnskeyTTL},
			Flags: dns.ZONE, Protocol: 3, Algorithm: dns.RSASHA256}
		if err := forceKeyTag(key, modulus, tag); err != nil {
			return nil, err
		}
		rrs = append(rrs, key)
	}
	var err error
	if rrs, err = s.resignDNSKEY(z, rrs, ksk.DNSKEY, ksk.Private); err != nil {
		return nil, err
	}

	owner := spec.Owner + "." + z.Name
	var template *dns.RRSIG
	for _, rec := range rrs {
		if isRRSIGOver(rec, owner, "A") {
			template = rec.(*dns.RRSIG)
			break
		}
	}
	if template == nil {
		return nil, fmt.Errorf("no RRSIG over %s A to replace", owner)
	}
	rrs = dropRRs(rrs, func(rec dns.RR) bool { return isRRSIGOver(rec, owner, "A") })
	for i := 0; i < spec.Sigs; i++ {
		sig := dns.Copy(template).(*dns.RRSIG)
		sig.KeyTag = tag
		raw := make([]byte, 128)
		for j := range raw {
			raw[j] = byte(r.IntN(256))
		}
		raw[0] &= 0x7f // below every modulus, so each verification runs in full
		sig.Signature = base64.StdEncoding.EncodeToString(raw)
		rrs = append(rrs, sig)
	}
	return rrs, nil
}

// forceKeyTag sets key's public key to exponent 65537 and modulus, with
// the last two modulus bytes chosen so that the key tag (RFC 4034
// appendix B: the RDATA summed as 16-bit words, with the carry added back)
// is tag. The modulus must keep the RDATA length even.
func forceKeyTag(key *dns.DNSKEY, modulus []byte, tag uint16) error {
	exponent := big.NewInt(65537).Bytes()
	pub := append([]byte{byte(len(exponent))}, exponent...)
	pub = append(pub, modulus...)
	n := len(pub)
	pub[n-2], pub[n-1] = 0, 0

	rdata := make([]byte, 4, 4+n)
	binary.BigEndian.PutUint16(rdata, key.Flags)
	rdata[2], rdata[3] = key.Protocol, key.Algorithm
	rdata = append(rdata, pub...)
	if len(rdata)%2 != 0 {
		return fmt.Errorf("DNSKEY RDATA of %d bytes: want an even length", len(rdata))
	}
	var sum uint32
	for i := 0; i < len(rdata); i += 2 {
		sum += uint32(rdata[i])<<8 | uint32(rdata[i+1])
	}
	// The last word w adds to sum; pick the w that makes the folded sum
	// equal tag.
	for w := uint32(0); w < 1<<16; w++ {
		total := sum + w
		if uint16(total+(total>>16)) == tag {
			pub[n-2], pub[n-1] = byte(w>>8), byte(w)
			break
		}
	}
	key.PublicKey = base64.StdEncoding.EncodeToString(pub)
	if got := key.KeyTag(); got != tag {
		return fmt.Errorf("forced key tag %d, want %d", got, tag)
	}
	return nil
}
