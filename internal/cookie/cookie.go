// Package cookie makes and checks DNS cookies (RFC 7873). Server cookies
// follow the interoperable format of RFC 9018, so that every node of a fleet
// that shares a secret accepts the cookies of the others: a version byte, three
// reserved bytes, a timestamp and a SipHash-2-4 of the client cookie, those
// fields and the client address. Client cookies, for queries to authoritative
// servers, are a keyed hash of the server address.
//
// The package reads and writes COOKIE option data only; where options sit in
// a message is left to its callers.
package cookie

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"

	"bulwark/internal/siphash"
)

// Sizes of cookies, in bytes (RFC 7873 section 4, RFC 9018 section 4).
const (
	// ClientLen is the size of a client cookie.
	ClientLen = 8
	// ServerLen is the size of the server cookies made here.
	ServerLen = 16
	// OptionLen is the size of option data with a client cookie and a
	// server cookie made here.
	OptionLen = ClientLen + ServerLen
	// minServerLen and maxServerLen bound a server cookie of any server.
	minServerLen = 8
	maxServerLen = 32
)

// OptionCode is the EDNS option code of COOKIE (RFC 7873 section 4).
const OptionCode = 10

// Server cookie lifetime (RFC 9018 section 4.3): a cookie is valid from five
// minutes before its timestamp, to allow for clocks of a fleet that differ,
// until an hour after it.
const (
	maxAge    = 3600
	maxFuture = 300
)

// version is the server cookie version of RFC 9018.
const version = 1

// ErrMalformed means the COOKIE option data has a length that RFC 7873
// section 5.2.2 does not allow: not 8 bytes, nor 16 to 40.
var ErrMalformed = errors.New("malformed COOKIE option")

// Split returns the client cookie and the server cookie, empty when absent,
// of COOKIE option data. Both point into data.
func Split(data []byte) (client, server []byte, err error) {
	n := len(data)
	if n != ClientLen && (n < ClientLen+minServerLen || n > ClientLen+maxServerLen) {
		return nil, nil, fmt.Errorf("%w: %d bytes", ErrMalformed, n)
	}
	return data[:ClientLen], data[ClientLen:], nil
}

// Secret is a 128-bit SipHash key.
type Secret [16]byte

// NewSecret returns a random secret.
func NewSecret() Secret {
	var s Secret
	rand.Read(s[:])
	return s
}

// ParseSecret reads a secret written as 32 hexadecimal digits.
func ParseSecret(text string) (Secret, error) {
	var s Secret
	b, err := hex.DecodeString(text)
	if err != nil || len(b) != len(s) {
		return s, fmt.Errorf("invalid cookie secret: want 32 hexadecimal digits (16 bytes), such as the output of 'openssl rand -hex 16'")
	}
	copy(s[:], b)
	return s, nil
}

func (s *Secret) hash(msg []byte) uint64 {
	return siphash.Sum64(binary.LittleEndian.Uint64(s[:8]), binary.LittleEndian.Uint64(s[8:]), msg)
}

// Server makes server cookies and checks those that clients send back.
// It is safe for concurrent use.
type Server struct {
	current  Secret
	previous Secret
	// hasPrevious is set during a rotation, while cookies made with
	// the previous secret are still accepted.
	hasPrevious bool
}

// NewServer returns a Server that makes cookies with current and accepts
// those made with current or, when not nil, previous.
func NewServer(current Secret, previous *Secret) *Server {
	s := &Server{current: current}
	if previous != nil {
		s.previous, s.hasPrevious = *previous, true
	}
	return s
}

// Append appends the server cookie for clientCookie and client at now, in
// seconds since 1970, to dst. It does not allocate when dst has room for
// ServerLen more bytes.
func (s *Server) Append(dst, clientCookie []byte, client netip.Addr, now uint32) []byte {
	var buf [ClientLen + 8 + 16]byte
	msg := hashInput(buf[:0], clientCookie, now, client)
	dst = append(dst, msg[ClientLen:ClientLen+8]...)
	return binary.LittleEndian.AppendUint64(dst, s.current.hash(msg))
}

// hashInput appends what RFC 9018 section 4.4 hashes: the client cookie,
// the version, reserved and timestamp fields, and the client address.
func hashInput(dst, clientCookie []byte, ts uint32, client netip.Addr) []byte {
	dst = append(dst, clientCookie...)
	dst = append(dst, version, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, ts)
	client = client.Unmap()
	if client.Is4() {
		a := client.As4()
		return append(dst, a[:]...)
	}
	a := client.As16()
	return append(dst, a[:]...)
}

// Valid reports whether server is a cookie that this Server, or a node with
// the same secret, made for clientCookie and client, and whether it is still
// within its lifetime at now.
func (s *Server) Valid(clientCookie, server []byte, client netip.Addr, now uint32) bool {
	if len(clientCookie) != ClientLen || len(server) != ServerLen || server[0] != version {
		return false
	}
	ts := binary.BigEndian.Uint32(server[4:])
	// Serial number arithmetic (RFC 1982) keeps the check right when the
	// 32-bit timestamp wraps, as RFC 9018 section 4.3 asks.
	age := int32(now - ts)
	if age > maxAge || age < -maxFuture {
		return false
	}
	var buf [ClientLen + 8 + 16]byte
	msg := hashInput(buf[:0], clientCookie, ts, client)
	want := binary.LittleEndian.Uint64(server[8:])
	if s.current.hash(msg) == want {
		return true
	}
	return s.hasPrevious && s.previous.hash(msg) == want
}
