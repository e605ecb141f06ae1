package dnssec

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/cloudflare/circl/sign/ed448"
	"github.com/miekg/dns"
)

// flagZone and flagRevoke are DNSKEY flag bits (RFC 4034 section 2.1.1, RFC
// 5011 section 3).
const (
	flagZone   = 0x0100
	flagRevoke = 0x0080
)

// SupportedAlgorithm reports whether signatures of alg can be verified.
func SupportedAlgorithm(alg uint8) bool {
	switch alg {
	case dns.RSASHA256, dns.RSASHA512, dns.ECDSAP256SHA256, dns.ECDSAP384SHA384, dns.ED25519, dns.ED448:
		return true
	}
	return false
}

// SupportedDigest reports whether DS records of digest type t can be
// checked.
func SupportedDigest(t uint8) bool {
	return t == dns.SHA256 || t == dns.SHA384
}

// publicKey is a DNSKEY's key decoded for verification.
type publicKey struct {
	rsa     *rsa.PublicKey
	ecdsa   *ecdsa.PublicKey
	ed25519 ed25519.PublicKey
	ed448   ed448.PublicKey
}

// decodeKey decodes the public key of k. It fails for unsupported
// algorithms and for RSA moduli under 1024 or over 4096 bits.
func decodeKey(k *dns.DNSKEY) (publicKey, error) {
	raw, err := base64.StdEncoding.DecodeString(k.PublicKey)
	if err != nil {
		return publicKey{}, fmt.Errorf("DNSKEY %d: public key is not base64", k.KeyTag())
	}
	switch k.Algorithm {
	case dns.RSASHA256, dns.RSASHA512:
		return decodeRSA(raw)
	case dns.ECDSAP256SHA256, dns.ECDSAP384SHA384:
		curve := elliptic.P256()
		if k.Algorithm == dns.ECDSAP384SHA384 {
			curve = elliptic.P384()
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, append([]byte{4}, raw...))
		if err != nil {
			return publicKey{}, fmt.Errorf("ECDSA key: %w", err)
		}
		return publicKey{ecdsa: pub}, nil
	case dns.ED25519:
		if len(raw) != ed25519.PublicKeySize {
			return publicKey{}, fmt.Errorf("Ed25519 key has %d bytes, want %d", len(raw), ed25519.PublicKeySize)
		}
		return publicKey{ed25519: ed25519.PublicKey(raw)}, nil
	case dns.ED448:
		if len(raw) != ed448.PublicKeySize {
			return publicKey{}, fmt.Errorf("Ed448 key has %d bytes, want %d", len(raw), ed448.PublicKeySize)
		}
		return publicKey{ed448: ed448.PublicKey(raw)}, nil
	}
	return publicKey{}, fmt.Errorf("algorithm %d is not supported", k.Algorithm)
}

// decodeRSA decodes an RSA public key in the format of RFC 3110 section 2.
func decodeRSA(raw []byte) (publicKey, error) {
	if len(raw) < 3 {
		return publicKey{}, fmt.Errorf("RSA key too short")
	}
	expLen, off := int(raw[0]), 1
	if expLen == 0 {
		expLen, off = int(binary.BigEndian.Uint16(raw[1:])), 3
	}
	if expLen == 0 || expLen > 8 || off+expLen >= len(raw) {
		return publicKey{}, fmt.Errorf("RSA key has an invalid exponent length %d", expLen)
	}
	var exp uint64
	for _, b := range raw[off : off+expLen] {
		exp = exp<<8 | uint64(b)
	}
	modulus := new(big.Int).SetBytes(raw[off+expLen:])
	bits := modulus.BitLen()
	if bits < 1024 || bits > 4096 {
		return publicKey{}, fmt.Errorf("RSA modulus of %d bits is outside 1024 to 4096", bits)
	}
	if exp < 3 || exp > 1<<31-1 {
		return publicKey{}, fmt.Errorf("RSA exponent %d is not supported", exp)
	}
	return publicKey{rsa: &rsa.PublicKey{N: modulus, E: int(exp)}}, nil
}

// verify checks sig, made with algorithm alg over data, against the key.
func (p publicKey) verify(alg uint8, data, sig []byte) bool {
	switch alg {
	case dns.RSASHA256:
		h := sha256.Sum256(data)
		return rsa.VerifyPKCS1v15(p.rsa, crypto.SHA256, h[:], sig) == nil
	case dns.RSASHA512:
		h := sha512.Sum512(data)
		return rsa.VerifyPKCS1v15(p.rsa, crypto.SHA512, h[:], sig) == nil
	case dns.ECDSAP256SHA256:
		h := sha256.Sum256(data)
		return verifyECDSA(p.ecdsa, h[:], sig, 32)
	case dns.ECDSAP384SHA384:
		h := sha512.Sum384(data)
		return verifyECDSA(p.ecdsa, h[:], sig, 48)
	case dns.ED25519:
		return ed25519.Verify(p.ed25519, data, sig)
	case dns.ED448:
		return ed448.Verify(p.ed448, data, sig, "")
	}
	return false
}

// verifyECDSA checks a signature made of r and s, each size bytes (RFC 6605
// section 4).
func verifyECDSA(pub *ecdsa.PublicKey, hash, sig []byte, size int) bool {
	if len(sig) != 2*size {
		return false
	}
	r := new(big.Int).SetBytes(sig[:size])
	s := new(big.Int).SetBytes(sig[size:])
	return ecdsa.Verify(pub, hash, r, s)
}

// VerifyRRset checks that rrset, one RRset, is signed by one of sigs with
// one of keys, at time now. keys must be authenticated already, and belong
// to the zone that holds rrset. It returns the RRSIG that verified, or an
// error naming the reason none did: no signature, expired or not yet valid
// signatures, no matching key, or signatures that do not verify.
func VerifyRRset(rrset []dns.RR, sigs []*dns.RRSIG, keys []*dns.DNSKEY, now time.Time, b *Budget) (*dns.RRSIG, error) {
	if len(rrset) == 0 {
		return nil, newError(EDEBogus, "empty RRset")
	}
	h := rrset[0].Header()
	owner := dns.CanonicalName(h.Name)
	if len(sigs) == 0 {
		return nil, newError(EDERRSIGsMissing, "no RRSIG for %s %s", owner, dns.Type(h.Rrtype))
	}
	var reasons failures
	for _, sig := range sigs {
		if !SupportedAlgorithm(sig.Algorithm) {
			reasons.add(newError(EDEUnsupportedAlgorithm, "RRSIG for %s %s uses unsupported algorithm %d", owner, dns.Type(h.Rrtype), sig.Algorithm))
			continue
		}
		if err := checkSigFields(sig, owner, h.Rrtype, now); err != nil {
			reasons.add(err)
			continue
		}
		data, err := signedData(sig, rrset)
		if err != nil {
			reasons.add(newError(EDEBogus, "RRSIG for %s %s: %v", owner, dns.Type(h.Rrtype), err))
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(sig.Signature)
		if err != nil {
			reasons.add(newError(EDEBogus, "RRSIG for %s %s: signature is not base64", owner, dns.Type(h.Rrtype)))
			continue
		}
		tried := 0
		for _, k := range keys {
			if k.Algorithm != sig.Algorithm || k.KeyTag() != sig.KeyTag || !strings.EqualFold(k.Hdr.Name, sig.SignerName) {
				continue
			}
			if k.Flags&flagZone == 0 || k.Flags&flagRevoke != 0 || k.Protocol != 3 {
				continue
			}
			if tried >= b.keyTagCollisions() {
				e := newError(EDEBogus, "validation work limit reached: more than %d keys with tag %d for the RRSIG over %s %s", tried, sig.KeyTag, owner, dns.Type(h.Rrtype))
				e.limit = true
				reasons.add(e)
				break
			}
			tried++
			cacheKey := verifiedKey(sig.Algorithm, k.PublicKey, raw, data)
			if verified.contains(cacheKey) {
				return sig, nil
			}
			pub, err := decodeKey(k)
			if err != nil {
				reasons.add(newError(EDEBogus, "DNSKEY %d of %s: %v", sig.KeyTag, sig.SignerName, err))
				continue
			}
			if err := b.spendSignature(); err != nil {
				return nil, err
			}
			if pub.verify(sig.Algorithm, data, raw) {
				verified.add(cacheKey)
				return sig, nil
			}
			reasons.add(newError(EDEBogus, "RRSIG for %s %s by key %d does not verify", owner, dns.Type(h.Rrtype), sig.KeyTag))
		}
		if tried == 0 {
			reasons.add(newError(EDEBogus, "no DNSKEY %d of %s for the RRSIG over %s %s", sig.KeyTag, sig.SignerName, owner, dns.Type(h.Rrtype)))
		}
	}
	return nil, reasons.worst()
}

// checkSigFields checks the RRSIG fields that RFC 4035 section 5.3.1 lists,
// except the signer name, which the caller matches to the zone.
func checkSigFields(sig *dns.RRSIG, owner string, rrtype uint16, now time.Time) *Error {
	if sig.TypeCovered != rrtype {
		return newError(EDEBogus, "RRSIG covers %s, not %s", dns.Type(sig.TypeCovered), dns.Type(rrtype))
	}
	if !strings.EqualFold(sig.Hdr.Name, owner) {
		return newError(EDEBogus, "RRSIG owner %s differs from %s", sig.Hdr.Name, owner)
	}
	if !dns.IsSubDomain(dns.CanonicalName(sig.SignerName), owner) {
		return newError(EDEBogus, "RRSIG signer %s is not an ancestor of %s", sig.SignerName, owner)
	}
	if int(sig.Labels) > LabelCount(owner) {
		return newError(EDEBogus, "RRSIG label count %d exceeds that of %s", sig.Labels, owner)
	}
	// Serial number arithmetic (RFC 4034 section 3.1.5).
	t := uint32(now.Unix())
	if int32(t-sig.Inception) < 0 {
		return newError(EDESignatureNotYetValid, "RRSIG for %s %s is not valid before %s", owner, dns.Type(rrtype), dns.TimeToString(sig.Inception))
	}
	if int32(sig.Expiration-t) < 0 {
		return newError(EDESignatureExpired, "RRSIG for %s %s expired at %s", owner, dns.Type(rrtype), dns.TimeToString(sig.Expiration))
	}
	return nil
}

// failures collects the reasons signatures failed and reports the most
// telling one.
type failures struct{ errs []*Error }

func (f *failures) add(e *Error) { f.errs = append(f.errs, e) }

// worst returns the reason to report: a work limit wins over a signature
// that does not verify, which wins over a time window, which wins over an
// unsupported algorithm.
func (f *failures) worst() *Error {
	rank := map[uint16]int{EDEBogus: 4, EDESignatureExpired: 3, EDESignatureNotYetValid: 3, EDEUnsupportedAlgorithm: 1}
	score := func(e *Error) int {
		if e.limit {
			return 5
		}
		return rank[e.EDE]
	}
	var best *Error
	for _, e := range f.errs {
		if best == nil || score(e) > score(best) {
			best = e
		}
	}
	if best == nil {
		return newError(EDEBogus, "no usable RRSIG")
	}
	return best
}

// LabelCount returns the number of labels of a name that an RRSIG counts:
// all but the root and a leading wildcard label (RFC 4034 section 3.1.3).
func LabelCount(name string) int {
	n := dns.CountLabel(name)
	if strings.HasPrefix(name, "*.") {
		n--
	}
	return n
}

// signedData builds the data an RRSIG signs (RFC 4034 section 3.1.8.1): the
// RRSIG RDATA without the signature, then the RRset in canonical form and
// order (section 6).
func signedData(sig *dns.RRSIG, rrset []dns.RR) ([]byte, error) {
	var buf bytes.Buffer
	var head [18]byte
	binary.BigEndian.PutUint16(head[0:], sig.TypeCovered)
	head[2] = sig.Algorithm
	head[3] = sig.Labels
	binary.BigEndian.PutUint32(head[4:], sig.OrigTtl)
	binary.BigEndian.PutUint32(head[8:], sig.Expiration)
	binary.BigEndian.PutUint32(head[12:], sig.Inception)
	binary.BigEndian.PutUint16(head[16:], sig.KeyTag)
	buf.Write(head[:])
	signer, err := canonicalWire(sig.SignerName)
	if err != nil {
		return nil, err
	}
	buf.Write(signer)

	owner, err := signedOwner(rrset[0].Header().Name, int(sig.Labels))
	if err != nil {
		return nil, err
	}
	rdatas := make([][]byte, 0, len(rrset))
	for _, rr := range rrset {
		rd, err := canonicalRdata(rr)
		if err != nil {
			return nil, err
		}
		rdatas = append(rdatas, rd)
	}
	slices.SortFunc(rdatas, bytes.Compare)
	rdatas = slices.CompactFunc(rdatas, bytes.Equal)
	h := rrset[0].Header()
	var fixed [10]byte
	binary.BigEndian.PutUint16(fixed[0:], h.Rrtype)
	binary.BigEndian.PutUint16(fixed[2:], h.Class)
	binary.BigEndian.PutUint32(fixed[4:], sig.OrigTtl)
	for _, rd := range rdatas {
		buf.Write(owner)
		binary.BigEndian.PutUint16(fixed[8:], uint16(len(rd)))
		buf.Write(fixed[:])
		buf.Write(rd)
	}
	return buf.Bytes(), nil
}

// signedOwner returns the owner name as signed: lower case, and for a
// wildcard expansion the wildcard name "*." plus the last labels labels
// (RFC 4035 section 5.3.2).
func signedOwner(name string, labels int) ([]byte, error) {
	name = dns.CanonicalName(name)
	if n := LabelCount(name); labels < n {
		off, _ := dns.PrevLabel(name, labels)
		name = "*." + name[off:]
		if labels == 0 {
			name = "*."
		}
	}
	return canonicalWire(name)
}

// canonicalWire packs name in lower case without compression.
func canonicalWire(name string) ([]byte, error) {
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(dns.CanonicalName(name), buf, 0, nil, false)
	if err != nil {
		return nil, fmt.Errorf("name %q: %w", name, err)
	}
	return buf[:n], nil
}

// canonicalRdata returns the RDATA of rr in canonical form: domain names in
// the RDATA of the types RFC 4034 section 6.2 lists (as amended by RFC 6840
// section 5.1) are in lower case.
func canonicalRdata(rr dns.RR) ([]byte, error) {
	c := dns.Copy(rr)
	lowerRdataNames(c)
	c.Header().Name = "."
	buf := make([]byte, dns.Len(c)+64)
	n, err := dns.PackRR(c, buf, 0, nil, false)
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", dns.Type(rr.Header().Rrtype), err)
	}
	// The packed record is the root name (1 byte), type, class, TTL and
	// RDLENGTH (10 bytes), then the RDATA.
	return buf[11:n], nil
}

func lowerRdataNames(rr dns.RR) {
	l := strings.ToLower
	switch r := rr.(type) {
	case *dns.NS:
		r.Ns = l(r.Ns)
	case *dns.MD:
		r.Md = l(r.Md)
	case *dns.MF:
		r.Mf = l(r.Mf)
	case *dns.CNAME:
		r.Target = l(r.Target)
	case *dns.SOA:
		r.Ns, r.Mbox = l(r.Ns), l(r.Mbox)
	case *dns.MB:
		r.Mb = l(r.Mb)
	case *dns.MG:
		r.Mg = l(r.Mg)
	case *dns.MR:
		r.Mr = l(r.Mr)
	case *dns.PTR:
		r.Ptr = l(r.Ptr)
	case *dns.MINFO:
		r.Rmail, r.Email = l(r.Rmail), l(r.Email)
	case *dns.MX:
		r.Mx = l(r.Mx)
	case *dns.RP:
		r.Mbox, r.Txt = l(r.Mbox), l(r.Txt)
	case *dns.AFSDB:
		r.Hostname = l(r.Hostname)
	case *dns.RT:
		r.Host = l(r.Host)
	case *dns.SIG:
		r.SignerName = l(r.SignerName)
	case *dns.PX:
		r.Map822, r.Mapx400 = l(r.Map822), l(r.Mapx400)
	case *dns.NAPTR:
		r.Replacement = l(r.Replacement)
	case *dns.KX:
		r.Exchanger = l(r.Exchanger)
	case *dns.SRV:
		r.Target = l(r.Target)
	case *dns.DNAME:
		r.Target = l(r.Target)
	case *dns.RRSIG:
		r.SignerName = l(r.SignerName)
	}
}
