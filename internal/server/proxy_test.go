package server

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"
)

// proxyV2 returns a PROXY protocol v2 header with command cmd, family
// byte family and the address part rest.
func proxyV2(cmd, family byte, rest []byte) []byte {
	h := append([]byte(nil), proxySignature...)
	h = append(h, 0x20|cmd, family)
	h = binary.BigEndian.AppendUint16(h, uint16(len(rest)))
	return append(h, rest...)
}

func v4Addresses(src, dst string) []byte {
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	b := append(s[:], d[:]...)
	b = binary.BigEndian.AppendUint16(b, 40000)
	return binary.BigEndian.AppendUint16(b, 853)
}

func v6Addresses(src, dst string) []byte {
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	b := append(s[:], d[:]...)
	b = binary.BigEndian.AppendUint16(b, 40000)
	return binary.BigEndian.AppendUint16(b, 853)
}

// readFrom runs readProxyHeader on the server side of a pipe to which the
// client writes header and then payload, and returns the source and the
// first payload bytes read after the header.
func readFrom(t *testing.T, header, payload []byte) (netip.Addr, []byte, error) {
	t.Helper()
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	go client.Write(append(append([]byte(nil), header...), payload...))
	c, source, err := readProxyHeader(server, time.Second)
	if err != nil {
		return netip.Addr{}, nil, err
	}
	buf := make([]byte, len(payload))
	if _, err := c.Read(buf); err != nil && len(payload) > 0 {
		return source, nil, err
	}
	return source, buf, nil
}

func TestReadProxyHeader(t *testing.T) {
	tlv := []byte{0x04, 0x00, 0x02, 'h', 'i'} // a TLV after the addresses
	for _, tt := range []struct {
		name   string
		header []byte
		source string // "" for none
		fails  bool
	}{
		{"IPv4", proxyV2(1, 0x11, v4Addresses("192.0.2.55", "127.0.0.1")), "192.0.2.55", false},
		{"IPv6", proxyV2(1, 0x21, v6Addresses("2001:db8::7", "::1")), "2001:db8::7", false},
		{"IPv4-mapped", proxyV2(1, 0x21, v6Addresses("::ffff:192.0.2.9", "::1")), "192.0.2.9", false},
		{"with a TLV", proxyV2(1, 0x11, append(v4Addresses("192.0.2.56", "127.0.0.1"), tlv...)), "192.0.2.56", false},
		{"LOCAL", proxyV2(0, 0x00, nil), "", false},
		{"unix family", proxyV2(1, 0x31, make([]byte, 216)), "", false},
		{"short addresses", proxyV2(1, 0x11, []byte{1, 2, 3}), "", false},
		{"bad signature", append([]byte("GET / HTTP/1.1\r\n\r\n"), 0, 0), "", true},
		{"version 1", []byte("PROXY TCP4 192.0.2.1 127.0.0.1 1 2\r\n"), "", true},
		{"unknown command", proxyV2(5, 0x11, v4Addresses("192.0.2.1", "127.0.0.1")), "", true},
		{"too long", func() []byte {
			h := proxyV2(1, 0x11, nil)
			binary.BigEndian.PutUint16(h[14:], maxProxyHeader+1)
			return h
		}(), "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			source, payload, err := readFrom(t, tt.header, []byte("DNS"))
			if tt.fails {
				if err == nil {
					t.Errorf("accepted, source %v", source)
				}
				return
			}
			if err != nil {
				t.Fatalf("rejected: %v", err)
			}
			want := netip.Addr{}
			if tt.source != "" {
				want = netip.MustParseAddr(tt.source)
			}
			if source != want {
				t.Errorf("source %v, want %v", source, want)
			}
			if !bytes.Equal(payload, []byte("DNS")) {
				t.Errorf("bytes after the header %q, want %q", payload, "DNS")
			}
		})
	}
}

func TestReadProxyHeaderTimeout(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	go client.Write(proxySignature[:5]) // then nothing
	start := time.Now()
	if _, _, err := readProxyHeader(server, 100*time.Millisecond); err == nil {
		t.Fatal("a partial header was accepted")
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("gave up after %v, want about 100ms", waited)
	}
}

func FuzzParseProxyHeader(f *testing.F) {
	f.Add(proxyV2(1, 0x11, v4Addresses("192.0.2.55", "127.0.0.1")))
	f.Add(proxyV2(1, 0x21, v6Addresses("2001:db8::7", "::1")))
	f.Add(proxyV2(0, 0x00, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 16 {
			return
		}
		kind, rest, err := parseProxyHeader(data[:16])
		if err != nil {
			return
		}
		if rest < 0 || rest > maxProxyHeader {
			t.Fatalf("rest length %d out of range", rest)
		}
		if kind == proxyAddresses {
			body := data[16:]
			if len(body) > rest {
				body = body[:rest]
			}
			if a := proxySource(data[13], body); a.IsValid() && a.Is4In6() {
				t.Fatalf("source %v not unmapped", a)
			}
		}
	})
}
