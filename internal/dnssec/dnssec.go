// Package dnssec holds the checks of DNSSEC validation (RFC 4033, 4034,
// 4035, 5155): signature verification over RRsets, authentication of a
// zone's DNSKEY RRset by DS records or trust anchors, and the proofs of
// non-existence made of NSEC and NSEC3 records.
//
// The package does no I/O. The resolver fetches the records and builds the
// chain of trust. This package reports whether given records prove what
// they claim, and why not. Every signature verification and NSEC3 hash is charged
// to a Budget, so a response built to cost much work (KeyTrap,
// CVE-2023-50387, and the NSEC3 variant CVE-2023-50868) costs a bounded
// amount.
//
// Supported algorithms are 8 and 10 (RSA, with moduli of 1024 to 4096
// bits), 13 and 14 (ECDSA), 15 (Ed25519) and 16 (Ed448), and DS digest types
// 2 (SHA-256) and 4 (SHA-384). Data signed only with other algorithms or
// digests is insecure, never bogus (RFC 4035 section 5.2, RFC 6840 section
// 5.2).
package dnssec

import (
	"errors"
	"fmt"
)

// Security is the validation state of data (RFC 4035 section 4.3).
type Security uint8

const (
	// Indeterminate means the data was not validated, for example because
	// validation is off.
	Indeterminate Security = iota
	// Insecure means a proven absence of a chain of trust.
	Insecure
	// Bogus means a chain of trust exists but the data failed it.
	Bogus
	// Secure means the data was proven by a chain of trust.
	Secure
)

func (s Security) String() string {
	switch s {
	case Insecure:
		return "insecure"
	case Bogus:
		return "bogus"
	case Secure:
		return "secure"
	}
	return "indeterminate"
}

// Combine returns the state of data made of parts in states a and b: secure
// only when both are, bogus when either is.
func Combine(a, b Security) Security {
	switch {
	case a == Bogus || b == Bogus:
		return Bogus
	case a == Secure && b == Secure:
		return Secure
	case a == Indeterminate || b == Indeterminate:
		return Indeterminate
	}
	return Insecure
}

// Extended DNS Error codes (RFC 8914 section 4) that explain validation
// results.
const (
	EDEUnsupportedAlgorithm  uint16 = 1
	EDEUnsupportedDigest     uint16 = 2
	EDEIndeterminate         uint16 = 5
	EDEBogus                 uint16 = 6
	EDESignatureExpired      uint16 = 7
	EDESignatureNotYetValid  uint16 = 8
	EDEDNSKEYMissing         uint16 = 9
	EDERRSIGsMissing         uint16 = 10
	EDENoZoneKeyBitSet       uint16 = 11
	EDENSECMissing           uint16 = 12
	EDEUnsupportedIterations uint16 = 27
)

// Error is a validation failure, or the reason data is insecure, with the
// Extended DNS Error code that names it.
type Error struct {
	EDE  uint16
	Text string
	// limit marks a failure caused by a work limit, which is the reason
	// to report over any signature that failed before it.
	limit bool
}

func (e *Error) Error() string { return e.Text }

func newError(code uint16, format string, args ...any) *Error {
	return &Error{EDE: code, Text: fmt.Sprintf(format, args...)}
}

// AsError returns err as an *Error, or a DNSSEC Bogus error wrapping its
// text.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{EDE: EDEBogus, Text: err.Error()}
}

// Limits caps the validation work of one client query.
type Limits struct {
	// MaxKeyTagCollisions is the number of DNSKEYs tried for one RRSIG
	// whose key tag and algorithm they share.
	MaxKeyTagCollisions int
	// MaxSignatureValidations is the number of signature verifications.
	MaxSignatureValidations int
	// MaxNSEC3Hashes is the number of NSEC3 hash computations.
	MaxNSEC3Hashes int
	// MaxNSEC3Iterations is the highest NSEC3 iteration count accepted;
	// proofs with more are insecure (RFC 9276 section 3.2).
	MaxNSEC3Iterations int
}

// DefaultLimits are the limits used when none are configured.
var DefaultLimits = Limits{
	MaxKeyTagCollisions:     4,
	MaxSignatureValidations: 32,
	MaxNSEC3Hashes:          32,
	MaxNSEC3Iterations:      50,
}

// errWorkLimit is returned when a Budget is spent.
var errWorkLimit = &Error{EDE: EDEBogus, Text: "validation work limit reached", limit: true}

// Budget counts the validation work left for one client query. A nil
// *Budget has no limit. It is not safe for concurrent use.
type Budget struct {
	Limits
	signatures int
	hashes     int
	// Spent is set once any limit was reached.
	Spent bool
}

// NewBudget returns a full budget for one client query. Limits left at 0
// take their default.
func NewBudget(l Limits) *Budget {
	d := DefaultLimits
	if l.MaxKeyTagCollisions <= 0 {
		l.MaxKeyTagCollisions = d.MaxKeyTagCollisions
	}
	if l.MaxSignatureValidations <= 0 {
		l.MaxSignatureValidations = d.MaxSignatureValidations
	}
	if l.MaxNSEC3Hashes <= 0 {
		l.MaxNSEC3Hashes = d.MaxNSEC3Hashes
	}
	return &Budget{Limits: l}
}

func (b *Budget) spendSignature() error {
	if b == nil {
		return nil
	}
	if b.signatures >= b.MaxSignatureValidations {
		b.Spent = true
		return errWorkLimit
	}
	b.signatures++
	return nil
}

func (b *Budget) spendHash() error {
	if b == nil {
		return nil
	}
	if b.hashes >= b.MaxNSEC3Hashes {
		b.Spent = true
		return errWorkLimit
	}
	b.hashes++
	return nil
}

func (b *Budget) keyTagCollisions() int {
	if b == nil || b.MaxKeyTagCollisions <= 0 {
		return DefaultLimits.MaxKeyTagCollisions
	}
	return b.MaxKeyTagCollisions
}

func (b *Budget) maxIterations() int {
	if b == nil {
		return DefaultLimits.MaxNSEC3Iterations
	}
	return b.MaxNSEC3Iterations
}

// Signatures returns the signature verifications done so far.
func (b *Budget) Signatures() int {
	if b == nil {
		return 0
	}
	return b.signatures
}
