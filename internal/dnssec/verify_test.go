package dnssec

import (
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/circl/sign/ed448"
	"github.com/miekg/dns"
)

var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// testKey is a DNSKEY with its private key.
type testKey struct {
	key  *dns.DNSKEY
	priv crypto.PrivateKey
}

func newKey(t *testing.T, zone string, alg uint8, bits int, flags uint16) testKey {
	t.Helper()
	k := &dns.DNSKEY{
		Hdr:   dns.RR_Header{Name: zone, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags: flags, Protocol: 3, Algorithm: alg,
	}
	if alg == dns.ED448 {
		pub, priv, err := ed448.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k.PublicKey = base64.StdEncoding.EncodeToString(pub)
		return testKey{key: k, priv: priv}
	}
	priv, err := k.Generate(bits)
	if err != nil {
		t.Fatalf("generate algorithm %d key: %v", alg, err)
	}
	return testKey{key: k, priv: priv}
}

// sign signs rrset with k, valid around testNow.
func (k testKey) sign(t *testing.T, rrset []dns.RR) *dns.RRSIG {
	t.Helper()
	return k.signAt(t, rrset, testNow.Add(-24*time.Hour), testNow.Add(24*time.Hour))
}

func (k testKey) signAt(t *testing.T, rrset []dns.RR, inception, expiration time.Time) *dns.RRSIG {
	t.Helper()
	h := rrset[0].Header()
	sig := &dns.RRSIG{
		Hdr:        dns.RR_Header{Name: h.Name, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: h.Ttl},
		KeyTag:     k.key.KeyTag(),
		SignerName: k.key.Hdr.Name,
		Algorithm:  k.key.Algorithm,
		Inception:  uint32(inception.Unix()),
		Expiration: uint32(expiration.Unix()),
	}
	if k.key.Algorithm == dns.ED448 {
		// miekg/dns cannot sign Ed448: sign the data built here, which
		// the other algorithms check against miekg/dns's own signing.
		sig.TypeCovered, sig.OrigTtl = h.Rrtype, h.Ttl
		sig.Labels = uint8(LabelCount(dns.CanonicalName(h.Name)))
		data, err := signedData(sig, rrset)
		if err != nil {
			t.Fatal(err)
		}
		raw := ed448.Sign(k.priv.(ed448.PrivateKey), data, "")
		sig.Signature = base64.StdEncoding.EncodeToString(raw)
		return sig
	}
	if err := sig.Sign(k.priv.(crypto.Signer), rrset); err != nil {
		t.Fatalf("sign: %v", err)
	}
	return sig
}

func rrs(t *testing.T, lines ...string) []dns.RR {
	t.Helper()
	var out []dns.RR
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil {
			t.Fatalf("parse %q: %v", l, err)
		}
		out = append(out, rr)
	}
	return out
}

func TestVerifyRRsetAlgorithms(t *testing.T) {
	rrset := rrs(t, "www.example. 300 IN A 192.0.2.1", "WWW.example. 300 IN A 192.0.2.2")
	for _, tt := range []struct {
		alg  uint8
		bits int
	}{
		{dns.RSASHA256, 2048}, {dns.RSASHA512, 1024}, {dns.ECDSAP256SHA256, 256},
		{dns.ECDSAP384SHA384, 384}, {dns.ED25519, 256}, {dns.ED448, 456},
	} {
		t.Run(dns.AlgorithmToString[tt.alg], func(t *testing.T) {
			k := newKey(t, "example.", tt.alg, tt.bits, 257)
			sig := k.sign(t, rrset)
			got, err := VerifyRRset(rrset, []*dns.RRSIG{sig}, []*dns.DNSKEY{k.key}, testNow, nil)
			if err != nil || got != sig {
				t.Fatalf("VerifyRRset = %v, %v; want the signature", got, err)
			}
			// Reordered records and a counted-down TTL still verify.
			moved := []dns.RR{dns.Copy(rrset[1]), dns.Copy(rrset[0])}
			moved[0].Header().Ttl, moved[1].Header().Ttl = 17, 17
			if _, err := VerifyRRset(moved, []*dns.RRSIG{sig}, []*dns.DNSKEY{k.key}, testNow, nil); err != nil {
				t.Errorf("reordered RRset: %v", err)
			}
			changed := rrs(t, "www.example. 300 IN A 192.0.2.1", "www.example. 300 IN A 192.0.2.3")
			if _, err := VerifyRRset(changed, []*dns.RRSIG{sig}, []*dns.DNSKEY{k.key}, testNow, nil); err == nil || AsError(err).EDE != EDEBogus {
				t.Errorf("changed RRset: error %v, want EDE %d", err, EDEBogus)
			}
		})
	}
}

func TestVerifyRRsetReasons(t *testing.T) {
	rrset := rrs(t, "www.example. 300 IN A 192.0.2.1")
	k := newKey(t, "example.", dns.ECDSAP256SHA256, 256, 256)
	other := newKey(t, "example.", dns.ECDSAP256SHA256, 256, 256)
	expired := k.signAt(t, rrset, testNow.Add(-48*time.Hour), testNow.Add(-time.Hour))
	future := k.signAt(t, rrset, testNow.Add(time.Hour), testNow.Add(48*time.Hour))
	good := k.sign(t, rrset)
	flipped := dns.Copy(good).(*dns.RRSIG)
	raw, _ := base64.StdEncoding.DecodeString(flipped.Signature)
	raw[5] ^= 1
	flipped.Signature = base64.StdEncoding.EncodeToString(raw)

	for _, tt := range []struct {
		name string
		sigs []*dns.RRSIG
		keys []*dns.DNSKEY
		want uint16
	}{
		{"no signature", nil, []*dns.DNSKEY{k.key}, EDERRSIGsMissing},
		{"expired", []*dns.RRSIG{expired}, []*dns.DNSKEY{k.key}, EDESignatureExpired},
		{"not yet valid", []*dns.RRSIG{future}, []*dns.DNSKEY{k.key}, EDESignatureNotYetValid},
		{"changed byte", []*dns.RRSIG{flipped}, []*dns.DNSKEY{k.key}, EDEBogus},
		{"unknown key", []*dns.RRSIG{good}, []*dns.DNSKEY{other.key}, EDEBogus},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := VerifyRRset(rrset, tt.sigs, tt.keys, testNow, nil)
			if err == nil {
				t.Fatal("VerifyRRset succeeded, want an error")
			}
			if got := AsError(err).EDE; got != tt.want {
				t.Errorf("EDE %d (%v), want %d", got, err, tt.want)
			}
		})
	}
	// A valid signature beside a broken one is enough.
	if _, err := VerifyRRset(rrset, []*dns.RRSIG{flipped, expired, good}, []*dns.DNSKEY{k.key}, testNow, nil); err != nil {
		t.Errorf("good signature among bad ones: %v", err)
	}
}

func TestVerifyRRsetWildcard(t *testing.T) {
	k := newKey(t, "example.", dns.ED25519, 256, 256)
	wild := rrs(t, "*.example. 300 IN A 192.0.2.9")
	sig := k.sign(t, wild)
	expanded := rrs(t, "a.b.example. 300 IN A 192.0.2.9")
	s := dns.Copy(sig).(*dns.RRSIG)
	s.Hdr.Name = "a.b.example."
	if _, err := VerifyRRset(expanded, []*dns.RRSIG{s}, []*dns.DNSKEY{k.key}, testNow, nil); err != nil {
		t.Fatalf("expanded wildcard: %v", err)
	}
}

func TestKeyTagCollisionsCapped(t *testing.T) {
	rrset := rrs(t, "www.example. 300 IN A 192.0.2.1")
	real := newKey(t, "example.", dns.ECDSAP256SHA256, 256, 256)
	sig := real.sign(t, rrset)
	// Keys that share the tag but not the key: the real one comes last.
	var keys []*dns.DNSKEY
	for len(keys) < 10 {
		k := newKey(t, "example.", dns.ECDSAP256SHA256, 256, 256).key
		raw, _ := base64.StdEncoding.DecodeString(k.PublicKey)
		for i := 0; i < 65536 && k.KeyTag() != real.key.KeyTag(); i++ {
			raw[0], raw[1] = byte(i>>8), byte(i)
			k.PublicKey = base64.StdEncoding.EncodeToString(raw)
		}
		if k.KeyTag() == real.key.KeyTag() {
			keys = append(keys, k)
		}
	}
	keys = append(keys, real.key)
	b := NewBudget(DefaultLimits)
	_, err := VerifyRRset(rrset, []*dns.RRSIG{sig}, keys, testNow, b)
	if err == nil {
		t.Fatal("verified through more colliding keys than the limit")
	}
	if !strings.Contains(err.Error(), "work limit") {
		t.Errorf("error %q, want it to name the work limit", err)
	}
	if b.Signatures() > DefaultLimits.MaxKeyTagCollisions {
		t.Errorf("%d verifications, want at most %d", b.Signatures(), DefaultLimits.MaxKeyTagCollisions)
	}
}

func TestBudgetStopsVerification(t *testing.T) {
	k := newKey(t, "example.", dns.ED25519, 256, 256)
	b := NewBudget(Limits{MaxKeyTagCollisions: 4, MaxSignatureValidations: 2, MaxNSEC3Hashes: 2, MaxNSEC3Iterations: 50})
	// Three RRsets, so that no check is a repeat that the verified cache
	// answers without a public-key operation.
	for i := range 3 {
		rrset := rrs(t, fmt.Sprintf("www%d.example. 300 IN A 192.0.2.1", i))
		sig := k.sign(t, rrset)
		_, err := VerifyRRset(rrset, []*dns.RRSIG{sig}, []*dns.DNSKEY{k.key}, testNow, b)
		if i < 2 && err != nil {
			t.Fatalf("verification %d: %v", i, err)
		}
		if i == 2 && (err == nil || !b.Spent) {
			t.Fatalf("third verification: error %v, spent %v; want the limit", err, b.Spent)
		}
	}
}

func TestVerifiedSignatureNotCheckedAgain(t *testing.T) {
	k := newKey(t, "example.", dns.ECDSAP256SHA256, 256, 256)
	rrset := rrs(t, "cached.example. 300 IN A 192.0.2.1")
	sig := k.sign(t, rrset)
	first := NewBudget(DefaultLimits)
	if _, err := VerifyRRset(rrset, []*dns.RRSIG{sig}, []*dns.DNSKEY{k.key}, testNow, first); err != nil {
		t.Fatalf("first verification: %v", err)
	}
	again := NewBudget(DefaultLimits)
	if _, err := VerifyRRset(rrset, []*dns.RRSIG{sig}, []*dns.DNSKEY{k.key}, testNow, again); err != nil {
		t.Fatalf("second verification: %v", err)
	}
	if first.Signatures() != 1 || again.Signatures() != 0 {
		t.Errorf("signatures checked: %d then %d, want 1 then 0 (a cache hit)", first.Signatures(), again.Signatures())
	}
	// The same signature over other data is checked, and fails.
	other := rrs(t, "cached.example. 300 IN A 192.0.2.2")
	if _, err := VerifyRRset(other, []*dns.RRSIG{sig}, []*dns.DNSKEY{k.key}, testNow, NewBudget(DefaultLimits)); err == nil {
		t.Error("a cached signature verified an RRset it does not sign")
	}
	// Validity times are checked on every use.
	if _, err := VerifyRRset(rrset, []*dns.RRSIG{sig}, []*dns.DNSKEY{k.key}, testNow.Add(10*365*24*time.Hour), NewBudget(DefaultLimits)); err == nil {
		t.Error("a cached signature verified after its expiration")
	}
}

func TestVerifyDNSKEYs(t *testing.T) {
	ksk := newKey(t, "example.", dns.ECDSAP256SHA256, 256, 257)
	zsk := newKey(t, "example.", dns.ECDSAP256SHA256, 256, 256)
	set := []dns.RR{ksk.key, zsk.key}
	sig := ksk.sign(t, set)
	keys := []*dns.DNSKEY{ksk.key, zsk.key}
	ds := ksk.key.ToDS(dns.SHA256)

	usable, insecure, err := VerifyDNSKEYs(keys, []*dns.RRSIG{sig}, Trust{DS: []*dns.DS{ds}}, testNow, nil)
	if err != nil || insecure || len(usable) != 2 {
		t.Fatalf("VerifyDNSKEYs = %d keys, insecure %v, %v; want 2 keys", len(usable), insecure, err)
	}
	if _, _, err := VerifyDNSKEYs(keys, []*dns.RRSIG{sig}, Trust{DNSKEYs: []*dns.DNSKEY{ksk.key}}, testNow, nil); err != nil {
		t.Errorf("DNSKEY anchor: %v", err)
	}

	wrong := zsk.key.ToDS(dns.SHA256)
	wrong.KeyTag++
	if _, _, err := VerifyDNSKEYs(keys, []*dns.RRSIG{sig}, Trust{DS: []*dns.DS{wrong}}, testNow, nil); err == nil || err.EDE != EDEDNSKEYMissing {
		t.Errorf("DS for no key: %v, want EDE %d", err, EDEDNSKEYMissing)
	}
	// The DS names the ZSK, which did not sign the DNSKEY RRset.
	if _, _, err := VerifyDNSKEYs(keys, []*dns.RRSIG{sig}, Trust{DS: []*dns.DS{zsk.key.ToDS(dns.SHA256)}}, testNow, nil); err == nil || err.EDE != EDEDNSKEYMissing {
		t.Errorf("DS for a key that did not sign: %v, want EDE %d", err, EDEDNSKEYMissing)
	}

	noZone := newKey(t, "example.", dns.ECDSAP256SHA256, 256, 1)
	nzSig := noZone.sign(t, []dns.RR{noZone.key})
	if _, _, err := VerifyDNSKEYs([]*dns.DNSKEY{noZone.key}, []*dns.RRSIG{nzSig}, Trust{DS: []*dns.DS{noZone.key.ToDS(dns.SHA256)}}, testNow, nil); err == nil || err.EDE != EDENoZoneKeyBitSet {
		t.Errorf("key without zone bit: %v, want EDE %d", err, EDENoZoneKeyBitSet)
	}
}

func TestTrustUsable(t *testing.T) {
	k := newKey(t, "example.", dns.ECDSAP256SHA256, 256, 257)
	sha1 := k.key.ToDS(dns.SHA1)
	if ok, err := (Trust{DS: []*dns.DS{sha1}}).Usable(); ok || err.EDE != EDEUnsupportedDigest {
		t.Errorf("SHA-1 DS only: usable %v, %v; want EDE %d", ok, err, EDEUnsupportedDigest)
	}
	ds := k.key.ToDS(dns.SHA256)
	ds.Algorithm = dns.RSASHA1
	if ok, err := (Trust{DS: []*dns.DS{ds}}).Usable(); ok || err.EDE != EDEUnsupportedAlgorithm {
		t.Errorf("RSASHA1 DS only: usable %v, %v; want EDE %d", ok, err, EDEUnsupportedAlgorithm)
	}
	if ok, _ := (Trust{DS: []*dns.DS{ds, k.key.ToDS(dns.SHA384)}}).Usable(); !ok {
		t.Error("mixed DS set: not usable, want usable through the supported record")
	}
}

func TestSmallRSAKeyIsInsecure(t *testing.T) {
	k := newKey(t, "example.", dns.RSASHA256, 1024, 257)
	raw, _ := base64.StdEncoding.DecodeString(k.key.PublicKey)
	// Keep the exponent and cut the modulus to 512 bits.
	small := *k.key
	small.PublicKey = base64.StdEncoding.EncodeToString(raw[:1+int(raw[0])+64])
	sig := &dns.RRSIG{TypeCovered: dns.TypeDNSKEY, SignerName: "example."}
	_, insecure, err := VerifyDNSKEYs([]*dns.DNSKEY{&small}, []*dns.RRSIG{sig}, Trust{DS: []*dns.DS{small.ToDS(dns.SHA256)}}, testNow, nil)
	if !insecure || err == nil || err.EDE != EDEUnsupportedAlgorithm {
		t.Errorf("512-bit RSA key: insecure %v, %v; want insecure with EDE %d", insecure, err, EDEUnsupportedAlgorithm)
	}
}
