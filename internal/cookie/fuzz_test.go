package cookie

import (
	"net/netip"
	"testing"
)

// FuzzServerCookie checks that any COOKIE option data is either rejected
// by Split or checked by Valid without a panic, and that a cookie this
// server made for the client cookie found is accepted.
func FuzzServerCookie(f *testing.F) {
	f.Add([]byte("12345678"), uint32(100))
	f.Add([]byte("12345678\x01\x00\x00\x00\x00\x00\x00\x64abcdefgh"), uint32(100))
	f.Add(make([]byte, 40), uint32(0))
	s := NewServer(NewSecret(), nil)
	client := netip.MustParseAddr("192.0.2.7")
	f.Fuzz(func(t *testing.T, data []byte, now uint32) {
		cc, sc, err := Split(data)
		if err != nil {
			return
		}
		s.Valid(cc, sc, client, now)
		fresh := s.Append(nil, cc, client, now)
		if !s.Valid(cc, fresh, client, now) {
			t.Fatalf("Valid(fresh cookie %x for %x) = false", fresh, cc)
		}
	})
}
