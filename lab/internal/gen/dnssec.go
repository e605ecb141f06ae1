package gen

import (
	"github.com/miekg/dns"

	"bulwark/lab/labspec"
)

// Signers of a zone. Knot DNS signs its zones itself when it loads them,
// with keys that lab-up imports into its key database first. The other
// two write a signed zone file that the servers load as it is.
const (
	signerKnot = "knot"            // knotd automatic signing
	signerBind = "dnssec-signzone" // BIND 9
	signerLDNS = "ldns-signzone"   // ldns
)

// Validity windows of the signatures made by dnssec-signzone and
// ldns-signzone, relative to the time lab-up signs.
const (
	validityNormal  = ""        // from one day before to 40 days after
	validityExpired = "expired" // from 40 days before to 10 days before
	validityNotYet  = "notyet"  // from 10 days after to 40 days after
)

// Faults applied to a signed zone file after signing.
const (
	faultStripRRSIG   = "strip-rrsig"   // remove the RRSIGs over Owner/Type
	faultCorruptRRSIG = "corrupt-rrsig" // change one byte of the RRSIG over Owner/Type
	faultDropNSEC     = "drop-nsec"     // remove NSEC records at Owner, or all when Owner is ""
	faultClearZoneBit = "clear-zone-bit"
	faultKeyTrap      = "keytrap"
)

// KeySpec is one key to generate for a zone.
type KeySpec struct {
	Algorithm uint8 `json:"algorithm"`
	Bits      int   `json:"bits,omitempty"` // RSA modulus size; 0 for other algorithms
	KSK       bool  `json:"ksk"`            // flags 257 instead of 256
	// Unpublished keys are left out of the zone; only their DS is used.
	Unpublished bool `json:"unpublished,omitempty"`
	// NoZoneBit clears bit 7 of the flags after signing (flags 257 becomes
	// 1), so the key must not be used to verify signatures (RFC 4034
	// section 2.1.1).
	NoZoneBit bool `json:"no_zone_bit,omitempty"`
}

// DSSpec is one DS record for a zone, placed in its parent.
type DSSpec struct {
	Key    int   `json:"key"`    // index into Signing.Keys
	Digest uint8 `json:"digest"` // digest type: 1 SHA-1, 2 SHA-256, 3 GOST, 4 SHA-384
}

// Fault is one change to a signed zone file that breaks validation on
// purpose.
type Fault struct {
	Kind  string `json:"kind"`
	Owner string `json:"owner,omitempty"`
	Type  string `json:"type,omitempty"`
}

// KeyTrapSpec describes the colliding keys and signatures of a KeyTrap
// zone: extra DNSKEYs that share the key tag and algorithm of the zone's
// ZSK, and RRSIGs over Owner A that name that key tag and never verify.
type KeyTrapSpec struct {
	Keys  int    `json:"keys"`
	Sigs  int    `json:"sigs"`
	Owner string `json:"owner"`
}

// Signing is the DNSSEC setup of a zone: signer, keys, denial of
// existence, DS records in the parent and deliberate faults.
type Signing struct {
	Signer     string       `json:"signer"`
	NSEC3      bool         `json:"nsec3"`
	Iterations int          `json:"iterations,omitempty"`
	OptOut     bool         `json:"opt_out,omitempty"`
	Keys       []KeySpec    `json:"keys"`
	DS         []DSSpec     `json:"ds"`
	Validity   string       `json:"validity,omitempty"`
	Faults     []Fault      `json:"faults,omitempty"`
	KeyTrap    *KeyTrapSpec `json:"keytrap,omitempty"`
	// Secure is set when a validator proves the zone's data secure (AD=1)
	// once its parent is secure.
	Secure bool `json:"-"`
}

// kskZSK returns a KSK and a ZSK of one algorithm.
func kskZSK(alg uint8, bits int) []KeySpec {
	return []KeySpec{{Algorithm: alg, Bits: bits, KSK: true}, {Algorithm: alg, Bits: bits}}
}

// standardSigning returns a secure signing with a KSK and a ZSK of alg and
// one SHA-256 DS for the KSK.
func standardSigning(signer string, alg uint8, bits int, nsec3 bool) *Signing {
	return &Signing{Signer: signer, NSEC3: nsec3, Keys: kskZSK(alg, bits),
		DS: []DSSpec{{Key: 0, Digest: dns.SHA256}}, Secure: true}
}

// pctSignedPopular is the share of popular zones that are signed, in
// percent.
const pctSignedPopular = 12

// signInfrastructure signs the root and every TLD. The root is signed by
// Knot DNS on knot-root and, with the same keys, by dnssec-signzone for
// nsd-root; TLDs on Knot DNS are signed by Knot DNS and TLDs on NSD by
// dnssec-signzone (NSEC) or ldns-signzone (NSEC3), alternating.
func (l *Lab) signInfrastructure() {
	root := l.zones["."]
	root.Signing = standardSigning(signerKnot, dns.ECDSAP256SHA256, 0, false)
	i := 0
	for _, tld := range l.tlds {
		z := l.zones[tld]
		if z.Instances[0] == nsdTLD {
			if i%2 == 0 {
				z.Signing = standardSigning(signerBind, dns.ECDSAP256SHA256, 0, false)
			} else {
				z.Signing = standardSigning(signerLDNS, dns.ECDSAP256SHA256, 0, true)
			}
			i++
			continue
		}
		z.Signing = standardSigning(signerKnot, dns.ECDSAP256SHA256, 0, tld != "com." && len(tld)%2 == 0)
	}
}

// signPopular signs a share of the popular zones. Zones that only Knot DNS
// loads are signed by Knot DNS; the rest by dnssec-signzone or
// ldns-signzone. About half use NSEC3 with no extra iterations and an
// empty salt (RFC 9276).
func (l *Lab) signPopular(pz *popularZone) {
	z := pz.Zone
	r := rng("sign", z.Name)
	if r.IntN(100) >= pctSignedPopular {
		return
	}
	alg := pick(r, []uint8{dns.ECDSAP256SHA256, dns.ECDSAP256SHA256, dns.ECDSAP256SHA256, dns.ED25519, dns.ECDSAP384SHA384})
	nsec3 := r.IntN(2) == 0
	signer := pick(r, []string{signerBind, signerLDNS})
	if nsec3 {
		signer = signerLDNS
	}
	onlyKnot := true
	for _, name := range z.Instances {
		onlyKnot = onlyKnot && l.byInst[name].Program == labspec.ProgramKnot
	}
	if onlyKnot && r.IntN(2) == 0 {
		signer = signerKnot
	}
	if signer == signerBind {
		nsec3 = false
	}
	z.Signing = standardSigning(signer, alg, 0, nsec3)
}

// Secure reports whether a validator proves the zone's data secure: the
// zone and every zone above it are signed with a secure chain.
func (z *Zone) Secure() bool {
	for p := z; p != nil; p = p.parent {
		if p.Signing == nil || !p.Signing.Secure {
			return false
		}
	}
	return true
}
