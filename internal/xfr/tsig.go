package xfr

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"

	"github.com/miekg/dns"
)

// fudge is the time difference allowed between signer and verifier
// (RFC 8945 section 10 recommends 300 seconds).
const fudge = 300

// Key is a TSIG key shared with the primaries (RFC 8945).
type Key struct {
	// Name is the key name, fully qualified, in lower case.
	Name string
	// Algorithm is the algorithm name of TSIG records, such as
	// "hmac-sha256.".
	Algorithm string
	secret    []byte
}

// NewKey returns a key from its name, algorithm name ("hmac-sha256." or
// "hmac-sha256") and base64 secret.
func NewKey(name, algorithm, secret string) (*Key, error) {
	raw, err := base64.StdEncoding.DecodeString(secret)
	if err != nil || len(raw) == 0 {
		return nil, fmt.Errorf("TSIG key %s: the secret is not valid base64", name)
	}
	k := &Key{Name: dns.CanonicalName(name), Algorithm: dns.CanonicalName(algorithm), secret: raw}
	if k.newHash() == nil {
		return nil, fmt.Errorf("TSIG key %s: unsupported algorithm %q", name, algorithm)
	}
	return k, nil
}

func (k *Key) newHash() hash.Hash {
	var h func() hash.Hash
	switch k.Algorithm {
	case dns.HmacSHA256:
		h = sha256.New
	case dns.HmacSHA384:
		h = sha512.New384
	case dns.HmacSHA512:
		h = sha512.New
	case dns.HmacSHA1:
		h = sha1.New
	default:
		return nil
	}
	return hmac.New(h, k.secret)
}

// errKeyMismatch means a TSIG record names another key or algorithm than
// the configured key.
var errKeyMismatch = errors.New("TSIG record names another key or algorithm")

// matches reports whether a TSIG record is made with k.
func (k *Key) matches(t *dns.TSIG) bool {
	return strings.EqualFold(t.Hdr.Name, k.Name) && strings.EqualFold(dns.CanonicalName(t.Algorithm), k.Algorithm)
}

// Generate computes the MAC of msg; it implements dns.TsigProvider. A
// record for another key or algorithm is an error, so that a peer cannot
// pick a weaker algorithm with the same secret.
func (k *Key) Generate(msg []byte, t *dns.TSIG) ([]byte, error) {
	if !k.matches(t) {
		return nil, errKeyMismatch
	}
	h := k.newHash()
	h.Write(msg)
	return h.Sum(nil), nil
}

// Verify checks the MAC of msg; it implements dns.TsigProvider.
func (k *Key) Verify(msg []byte, t *dns.TSIG) error {
	mac, err := k.Generate(msg, t)
	if err != nil {
		return err
	}
	got, err := hex.DecodeString(t.MAC)
	if err != nil || !hmac.Equal(mac, got) {
		return dns.ErrSig
	}
	return nil
}

// TSIGError is a TSIG failure: a response that is unsigned, badly signed,
// or that carries a TSIG error code from the primary.
type TSIGError struct {
	// Code is the TSIG error the primary returned (RFC 8945 section
	// 5.3.2), such as dns.RcodeBadSig, or 0 when Bulwark found the
	// failure.
	Code int
	// Err is the failure Bulwark found, when Code is 0.
	Err error
}

func (e *TSIGError) Error() string {
	if e.Code != 0 {
		return fmt.Sprintf("the primary rejected the TSIG signature: %s; check that tsig.name, tsig.algorithm and the secret match the primary's key", rcodeName(e.Code))
	}
	return fmt.Sprintf("TSIG check of the response failed: %v; check that tsig.name, tsig.algorithm and the secret match the primary's key", e.Err)
}

func (e *TSIGError) Unwrap() error { return e.Err }

// rcodeName returns the mnemonic of an rcode or TSIG error, such as BADSIG.
func rcodeName(code int) string {
	if s, ok := dns.RcodeToString[code]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", code)
}

// sign packs m with a TSIG record of k, or without one when k is nil. It
// returns the wire form and the MAC, which signs the response chain.
func sign(m *dns.Msg, k *Key, requestMAC string, now int64) ([]byte, string, error) {
	if k == nil {
		wire, err := m.Pack()
		return wire, "", err
	}
	m.SetTsig(k.Name, k.Algorithm, fudge, now)
	return dns.TsigGenerateWithProvider(m, k, requestMAC, false)
}

// checkResponse verifies the TSIG record of the response wire, whose
// parsed form is m, against k. requestMAC is the MAC of the query or, with
// timersOnly, of the previous message of the same response (RFC 8945
// section 5.3.1). It returns the response's MAC.
func checkResponse(m *dns.Msg, wire []byte, k *Key, requestMAC string, timersOnly bool) (string, error) {
	t := m.IsTsig()
	if k == nil {
		return "", nil
	}
	if t == nil {
		return "", &TSIGError{Err: errors.New("the response is not signed")}
	}
	if t.Error != dns.RcodeSuccess {
		return "", &TSIGError{Code: int(t.Error)}
	}
	if err := dns.TsigVerifyWithProvider(wire, k, requestMAC, timersOnly); err != nil {
		return "", &TSIGError{Err: err}
	}
	return t.MAC, nil
}
