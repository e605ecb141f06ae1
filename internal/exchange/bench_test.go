package exchange

import (
	"context"
	"encoding/hex"
	"net"
	"testing"
	"time"

	"bulwark/internal/cookie"

	"github.com/miekg/dns"
)

// benchServer answers every query on a loopback UDP socket with one A
// record, echoing the COOKIE option data that echo returns, if any.
func benchServer(b *testing.B, echo func(q *dns.Msg) string) *net.UDPConn {
	b.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			q := new(dns.Msg)
			if q.Unpack(buf[:n]) != nil {
				continue
			}
			r := answer(q, "192.0.2.1")
			if opt := q.IsEdns0(); opt != nil {
				r.SetEdns0(1232, true)
				if echo != nil {
					if data := echo(q); data != "" {
						r.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: data}}
					}
				}
			}
			send(conn, from, r)
		}
	}()
	return conn
}

func benchExchange(b *testing.B, c *Client, conn *net.UDPConn) {
	q := Query{Name: "www.example.", Type: dns.TypeA,
		Server: conn.LocalAddr().(*net.UDPAddr).AddrPort(), Timeout: 2 * time.Second}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Exchange(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExchangeUDP measures one UDP exchange with a loopback server
// that ignores cookies.
func BenchmarkExchangeUDP(b *testing.B) {
	benchExchange(b, testClient(), benchServer(b, nil))
}

// BenchmarkExchangeUDPCookies measures the same exchange with cookies on:
// the server ignores them, as most do.
func BenchmarkExchangeUDPCookies(b *testing.B) {
	c, _ := cookieClient()
	benchExchange(b, c, benchServer(b, nil))
}

// BenchmarkExchangeUDPCookiesEchoed measures an exchange with a server that
// echoes the client cookie with a server cookie, which the client keeps.
func BenchmarkExchangeUDPCookiesEchoed(b *testing.B) {
	c, _ := cookieClient()
	benchExchange(b, c, benchServer(b, func(q *dns.Msg) string {
		data := queryCookie(q)
		return hex.EncodeToString(append(data[:cookie.ClientLen:cookie.ClientLen], "server-cookie-16"...))
	}))
}
