package cookie

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSipHashPaperVector checks the test vector of the SipHash paper,
// appendix A: key 00 01 .. 0f and message 00 01 .. 0e.
func TestSipHashPaperVector(t *testing.T) {
	var key Secret
	for i := range key {
		key[i] = byte(i)
	}
	msg := make([]byte, 15)
	for i := range msg {
		msg[i] = byte(i)
	}
	if got, want := key.hash(msg), uint64(0xa129ca6149be45e5); got != want {
		t.Errorf("SipHash-2-4 = %#x, want %#x", got, want)
	}
}

// TestServerCookieRFC9018Vectors checks the examples of RFC 9018 appendix
// A, for an IPv4 and an IPv6 client.
func TestServerCookieRFC9018Vectors(t *testing.T) {
	tests := []struct {
		name, secret, clientCookie, client, want string
		ts                                       uint32
	}{
		{"ipv4", "e5e973e5a6b2a43f48e7dc849e37bfcf", "2464c4abcf10c957", "198.51.100.100",
			"010000005cf79f111f8130c3eee29480", 1559731985},
		{"ipv6", "445536bcd2513298075a5d379663c962", "22681ab97d52c298", "2001:db8:220:1:59de:d0f4:8769:82b8",
			"010000005cf7c609a6bb79d16625507a", 1559741961},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secret, err := ParseSecret(tt.secret)
			if err != nil {
				t.Fatal(err)
			}
			s := NewServer(secret, nil)
			client := netip.MustParseAddr(tt.client)
			got := s.Append(nil, unhex(t, tt.clientCookie), client, tt.ts)
			if want := unhex(t, tt.want); !bytes.Equal(got, want) {
				t.Errorf("server cookie = %x, want %x", got, want)
			}
			if !s.Valid(unhex(t, tt.clientCookie), got, client, tt.ts+10) {
				t.Errorf("Valid(own cookie) = false, want true")
			}
		})
	}
}

// TestServerCookieRotationVector checks RFC 9018 appendix A.4: a cookie
// made with the previous secret is still accepted after a rotation.
func TestServerCookieRotationVector(t *testing.T) {
	previous, _ := ParseSecret("dd3bdf9344b678b185a6f5cb60fca715")
	current, _ := ParseSecret("445536bcd2513298075a5d379663c962")
	client := netip.MustParseAddr("2001:db8:220:1:59de:d0f4:8769:82b8")
	cc, sc := unhex(t, "22681ab97d52c298"), unhex(t, "010000005cf7c57926556bd0934c72f8")
	if !NewServer(current, &previous).Valid(cc, sc, client, 1559741961) {
		t.Error("Valid(cookie of the previous secret) = false, want true")
	}
	if NewServer(current, nil).Valid(cc, sc, client, 1559741961) {
		t.Error("Valid(cookie of a secret no longer kept) = true, want false")
	}
}

func TestServerCookieLifetime(t *testing.T) {
	s := NewServer(NewSecret(), nil)
	cc := []byte("abcdefgh")
	client := netip.MustParseAddr("192.0.2.1")
	const ts = 1_000_000
	sc := s.Append(nil, cc, client, ts)
	tests := []struct {
		name string
		now  uint32
		want bool
	}{
		{"same second", ts, true},
		{"59 minutes later", ts + 3540, true},
		{"61 minutes later", ts + 3660, false},
		{"4 minutes earlier", ts - 240, true},
		{"6 minutes earlier", ts - 360, false},
	}
	for _, tt := range tests {
		if got := s.Valid(cc, sc, client, tt.now); got != tt.want {
			t.Errorf("%s: Valid = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestServerCookieRejectsChanges(t *testing.T) {
	secret := NewSecret()
	s := NewServer(secret, nil)
	cc := []byte("abcdefgh")
	client := netip.MustParseAddr("2001:db8::1")
	sc := s.Append(nil, cc, client, 5000)
	if s.Valid([]byte("abcdefgX"), sc, client, 5000) {
		t.Error("Valid with another client cookie = true, want false")
	}
	if s.Valid(cc, sc, netip.MustParseAddr("2001:db8::2"), 5000) {
		t.Error("Valid from another client address = true, want false")
	}
	bad := bytes.Clone(sc)
	bad[15] ^= 1
	if s.Valid(cc, bad, client, 5000) {
		t.Error("Valid with a changed hash = true, want false")
	}
	if NewServer(NewSecret(), nil).Valid(cc, sc, client, 5000) {
		t.Error("Valid under another secret = true, want false")
	}
	rotated := NewServer(NewSecret(), &secret)
	if !rotated.Valid(cc, sc, client, 5000) {
		t.Error("Valid under the previous secret = false, want true")
	}
}

func TestSplitLengths(t *testing.T) {
	for n := 0; n <= 48; n++ {
		_, _, err := Split(make([]byte, n))
		want := n == 8 || (n >= 16 && n <= 40)
		if (err == nil) != want {
			t.Errorf("Split(%d bytes) error = %v, want ok %v", n, err, want)
		}
	}
}

func TestParseSecret(t *testing.T) {
	if _, err := ParseSecret("00112233445566778899aabbccddeeff"); err != nil {
		t.Errorf("ParseSecret(32 digits) = %v, want nil", err)
	}
	for _, bad := range []string{"", "0011", "zz112233445566778899aabbccddeeff", "00112233445566778899aabbccddeeff00"} {
		if _, err := ParseSecret(bad); err == nil {
			t.Errorf("ParseSecret(%q) = nil error, want one", bad)
		}
	}
}

func TestClientCookies(t *testing.T) {
	c := NewClient(NewSecret())
	src := netip.MustParseAddr("198.51.100.1")
	a, b := netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("192.0.2.54")
	if c.ClientCookie(src, a) == c.ClientCookie(src, b) {
		t.Error("two servers got the same client cookie")
	}
	if c.ClientCookie(src, a) == c.ClientCookie(netip.MustParseAddr("198.51.100.2"), a) {
		t.Error("two source addresses got the same client cookie")
	}
	if c.ClientCookie(src, a) != c.ClientCookie(netip.MustParseAddr("::ffff:198.51.100.1"), a) {
		t.Error("an IPv4-mapped source address got another client cookie than the IPv4 one")
	}
	if got := c.AppendOption(nil, src, a); len(got) != ClientLen {
		t.Fatalf("first AppendOption = %x, want the client cookie alone", got)
	}
	cc := c.ClientCookie(src, a)
	sc := []byte("server-cookie-16")
	if !c.Accept(src, a, append(cc[:], sc...)) {
		t.Fatal("Accept(own client cookie) = false, want true")
	}
	if got, want := c.AppendOption(nil, src, a), append(cc[:], sc...); !bytes.Equal(got, want) {
		t.Errorf("AppendOption after Accept = %x, want %x", got, want)
	}
	other := c.ClientCookie(src, b)
	if c.Accept(src, a, append(other[:], sc...)) {
		t.Error("Accept(another server's client cookie) = true, want false")
	}
	if c.Accept(src, a, cc[:5]) {
		t.Error("Accept(short option) = true, want false")
	}
	if c.Accept(src, a, append(cc[:], 1, 2, 3)) {
		t.Error("Accept(3-byte server cookie) = true, want false")
	}
}

// TestClientServerCookieScope checks that a server cookie is sent back only
// from the source address it was received on, and that a server without
// cookies is left with the client cookie alone.
func TestClientServerCookieScope(t *testing.T) {
	c := NewClient(NewSecret())
	src, other := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	server := netip.MustParseAddr("2001:db8::53")
	cc := c.ClientCookie(src, server)
	if !c.Accept(src, server, append(cc[:], make([]byte, 32)...)) {
		t.Fatal("Accept(32-byte server cookie) = false, want true")
	}
	if got := c.AppendOption(nil, src, server); len(got) != ClientLen+32 {
		t.Errorf("AppendOption from the same source = %d bytes, want %d", len(got), ClientLen+32)
	}
	if got := c.AppendOption(nil, other, server); len(got) != ClientLen {
		t.Errorf("AppendOption from another source = %d bytes, want the client cookie alone", len(got))
	}
	if !c.Accept(src, server, cc[:]) {
		t.Error("Accept(client cookie alone) = false, want true")
	}
	if got := c.AppendOption(nil, src, server); len(got) != ClientLen+32 {
		t.Errorf("AppendOption after a response without server cookie = %d bytes, want the kept %d", len(got), ClientLen+32)
	}
}

// TestClientTableBounded fills the table with far more servers than it has
// slots: its size does not change, and the last server's cookie is kept.
func TestClientTableBounded(t *testing.T) {
	c := NewClient(NewSecret())
	src := netip.MustParseAddr("198.51.100.1")
	var last netip.Addr
	for i := range 4 * tableSlots {
		last = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		cc := c.ClientCookie(src, last)
		if !c.Accept(src, last, append(cc[:], "server-cookie-16"...)) {
			t.Fatalf("Accept for %s = false", last)
		}
	}
	if len(c.slots) != tableSlots {
		t.Errorf("table has %d slots, want %d", len(c.slots), tableSlots)
	}
	if got := c.AppendOption(nil, src, last); len(got) != ClientLen+16 {
		t.Errorf("AppendOption for the last server = %d bytes, want %d", len(got), ClientLen+16)
	}
}

func TestClientAppendOptionAllocs(t *testing.T) {
	c := NewClient(NewSecret())
	src, server := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("192.0.2.53")
	cc := c.ClientCookie(src, server)
	c.Accept(src, server, append(cc[:], "server-cookie-16"...))
	buf := make([]byte, 0, ClientLen+maxServerLen)
	allocs := testing.AllocsPerRun(100, func() {
		buf = c.AppendOption(buf[:0], src, server)
		c.Accept(src, server, buf)
	})
	if allocs != 0 {
		t.Errorf("AppendOption and Accept: %v allocations, want 0", allocs)
	}
}
