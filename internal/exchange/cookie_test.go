package exchange

import (
	"context"
	"encoding/hex"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"bulwark/internal/cookie"

	"github.com/miekg/dns"
)

func cookieClient() (*Client, *cookie.Client) {
	cookies := cookie.NewClient(cookie.NewSecret())
	return NewClient(Config{BufferSize: 1232, Allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Cookies: cookies}), cookies
}

// queryCookie returns the COOKIE option data of m, or nil when it has none
// or the option is not hexadecimal.
func queryCookie(m *dns.Msg) []byte {
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if co, ok := o.(*dns.EDNS0_COOKIE); ok {
				b, _ := hex.DecodeString(co.Cookie)
				return b
			}
		}
	}
	return nil
}

// withCookie returns r with an OPT record that carries COOKIE data.
func withCookie(r *dns.Msg, data []byte) *dns.Msg {
	r.SetEdns0(1232, true)
	r.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: hex.EncodeToString(data)}}
	return r
}

// cookieServer behaves as a server with RFC 9018 cookies that insists on
// them over UDP, as Knot DNS does with mod-cookies and badcookie-slip 1:
// a query without a valid server cookie gets BADCOOKIE and a fresh one.
// It records the COOKIE data of every query.
type cookieServer struct {
	server *cookie.Server
	mu     sync.Mutex
	seen   [][]byte
}

func (s *cookieServer) reply(q *dns.Msg, from *net.UDPAddr, conn *net.UDPConn) {
	data := queryCookie(q)
	s.mu.Lock()
	s.seen = append(s.seen, data)
	s.mu.Unlock()
	if data == nil {
		send(conn, from, answer(q, "192.0.2.1"))
		return
	}
	client := from.AddrPort().Addr()
	now := uint32(time.Now().Unix())
	r := answer(q, "192.0.2.1")
	if !s.server.Valid(data[:cookie.ClientLen], data[cookie.ClientLen:], client, now) {
		r = new(dns.Msg)
		r.SetReply(q)
		r.Rcode = dns.RcodeBadCookie
	}
	fresh := s.server.Append(append([]byte(nil), data[:cookie.ClientLen]...), data[:cookie.ClientLen], client, now)
	send(conn, from, withCookie(r, fresh))
}

func (s *cookieServer) queries() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.seen...)
}

// TestExchangeCookieRoundTrip checks that a query carries the client cookie
// of the source and server addresses, that BADCOOKIE is retried with the
// server cookie it brought, and that the next query sends the server
// cookie at once.
func TestExchangeCookieRoundTrip(t *testing.T) {
	srv := &cookieServer{server: cookie.NewServer(cookie.NewSecret(), nil)}
	server := udpServer(t, srv.reply)
	c, cookies := cookieClient()
	q := Query{Name: "www.example.", Type: dns.TypeA, Server: server, Timeout: 2 * time.Second}
	for i := range 2 {
		resp, err := c.Exchange(context.Background(), q)
		if err != nil {
			t.Fatalf("exchange %d: %v", i, err)
		}
		if resp.Msg.Rcode != dns.RcodeSuccess || len(resp.Msg.Answer) != 1 || resp.TCP {
			t.Fatalf("exchange %d: rcode %s, %d answers, TCP %v; want NOERROR with one answer over UDP",
				i, dns.RcodeToString[resp.Msg.Rcode], len(resp.Msg.Answer), resp.TCP)
		}
	}
	seen := srv.queries()
	if len(seen) != 3 {
		t.Fatalf("server got %d queries, want 3: BADCOOKIE, its retry and the next query", len(seen))
	}
	want := cookies.ClientCookie(netip.MustParseAddr("127.0.0.1"), server.Addr())
	for i, data := range seen {
		if len(data) < cookie.ClientLen || string(data[:cookie.ClientLen]) != string(want[:]) {
			t.Errorf("query %d: COOKIE %x, want client cookie %x of 127.0.0.1 and the server", i, data, want)
		}
	}
	if len(seen[0]) != cookie.ClientLen {
		t.Errorf("first query: COOKIE of %d bytes, want the client cookie alone", len(seen[0]))
	}
	for i := 1; i < 3; i++ {
		if len(seen[i]) != cookie.OptionLen {
			t.Errorf("query %d: COOKIE of %d bytes, want the client and server cookies", i, len(seen[i]))
		}
	}
}

// TestExchangeCookieSpoofedDropped sends a response with another client
// cookie and one with a malformed COOKIE before the genuine one: both are
// dropped and counted.
func TestExchangeCookieSpoofedDropped(t *testing.T) {
	server := udpServer(t, func(q *dns.Msg, from *net.UDPAddr, conn *net.UDPConn) {
		data := queryCookie(q)
		forged := append([]byte("\x01\x02\x03\x04\x05\x06\x07\x08"), "server-cookie-16"...)
		send(conn, from, withCookie(answer(q, "192.0.2.66"), forged))
		send(conn, from, withCookie(answer(q, "192.0.2.66"), data[:5]))
		time.Sleep(20 * time.Millisecond)
		send(conn, from, withCookie(answer(q, "192.0.2.1"), append(data, "server-cookie-16"...)))
	})
	c, _ := cookieClient()
	resp, err := c.Exchange(context.Background(), Query{Name: "www.example.", Type: dns.TypeA, Server: server, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if got := resp.Msg.Answer[0].(*dns.A).A.String(); got != "192.0.2.1" {
		t.Errorf("accepted answer %s, want the genuine 192.0.2.1", got)
	}
	if resp.Spoofed != 2 {
		t.Errorf("Spoofed = %d, want 2", resp.Spoofed)
	}
}

// TestExchangeCookieSpoofedOnly checks that a server whose only responses
// carry another client cookie times out, with the drops counted.
func TestExchangeCookieSpoofedOnly(t *testing.T) {
	server := udpServer(t, func(q *dns.Msg, from *net.UDPAddr, conn *net.UDPConn) {
		send(conn, from, withCookie(answer(q, "192.0.2.66"), []byte("\x01\x02\x03\x04\x05\x06\x07\x08")))
	})
	c, _ := cookieClient()
	resp, err := c.Exchange(context.Background(), Query{Name: "www.example.", Type: dns.TypeA, Server: server, Timeout: 300 * time.Millisecond})
	if err == nil || resp.Msg != nil {
		t.Fatalf("Exchange = %v, %v; want a timeout", resp.Msg, err)
	}
	if resp.Spoofed != 1 {
		t.Errorf("Spoofed = %d, want 1", resp.Spoofed)
	}
}

// TestExchangeCookieIgnored checks that a server that ignores cookies is
// answered, and keeps getting the client cookie alone.
func TestExchangeCookieIgnored(t *testing.T) {
	var mu sync.Mutex
	var seen [][]byte
	server := udpServer(t, func(q *dns.Msg, from *net.UDPAddr, conn *net.UDPConn) {
		mu.Lock()
		seen = append(seen, queryCookie(q))
		mu.Unlock()
		r := answer(q, "192.0.2.1")
		r.SetEdns0(1232, true)
		send(conn, from, r)
	})
	c, _ := cookieClient()
	for i := range 2 {
		resp, err := c.Exchange(context.Background(), Query{Name: "www.example.", Type: dns.TypeA, Server: server, Timeout: 2 * time.Second})
		if err != nil || resp.Spoofed != 0 {
			t.Fatalf("exchange %d: %v, Spoofed %d; want an answer and no drop", i, err, resp.Spoofed)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i, data := range seen {
		if len(data) != cookie.ClientLen {
			t.Errorf("query %d: COOKIE of %d bytes, want the client cookie alone", i, len(data))
		}
	}
}

// TestExchangeBadCookieTwiceUsesTCP checks that a second BADCOOKIE over UDP
// makes the query go over TCP (RFC 7873 section 5.3).
func TestExchangeBadCookieTwiceUsesTCP(t *testing.T) {
	ln, udp := tcpAndUDP(t)
	var udpQueries atomic.Int32
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := udp.ReadFromUDP(buf)
			if err != nil {
				return
			}
			q := new(dns.Msg)
			q.Unpack(buf[:n])
			udpQueries.Add(1)
			r := new(dns.Msg)
			r.SetReply(q)
			r.Rcode = dns.RcodeBadCookie
			send(udp, from, withCookie(r, append(queryCookie(q)[:8], "server-cookie-16"...)))
		}
	}()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		dc := &dns.Conn{Conn: conn}
		if q, err := dc.ReadMsg(); err == nil {
			dc.WriteMsg(answer(q, "192.0.2.2"))
		}
		conn.Close()
	}()
	server := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(ln.Addr().(*net.TCPAddr).Port))
	c, _ := cookieClient()
	resp, err := c.Exchange(context.Background(), Query{Name: "www.example.", Type: dns.TypeA, Server: server, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if !resp.TCP || len(resp.Msg.Answer) != 1 {
		t.Errorf("response TCP=%v answers=%d, want the answer over TCP", resp.TCP, len(resp.Msg.Answer))
	}
	if n := udpQueries.Load(); n != 2 {
		t.Errorf("UDP queries = %d, want 2: the first and one retry", n)
	}
}

// TestExchangeCookieOmitted checks that no COOKIE is sent with cookies off
// or in a query without EDNS.
func TestExchangeCookieOmitted(t *testing.T) {
	var mu sync.Mutex
	var seen [][]byte
	server := udpServer(t, func(q *dns.Msg, from *net.UDPAddr, conn *net.UDPConn) {
		mu.Lock()
		seen = append(seen, queryCookie(q))
		mu.Unlock()
		send(conn, from, answer(q, "192.0.2.1"))
	})
	withCookies, _ := cookieClient()
	q := Query{Name: "www.example.", Type: dns.TypeA, Server: server, Timeout: 2 * time.Second}
	if _, err := testClient().Exchange(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	q.NoEDNS = true
	if _, err := withCookies.Exchange(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, data := range seen {
		if data != nil {
			t.Errorf("query %d: COOKIE %x, want none", i, data)
		}
	}
}

func TestDecodeHex(t *testing.T) {
	var buf [maxCookieLen]byte
	if got, ok := decodeHex(buf[:0], "00fFa1"); !ok || string(got) != "\x00\xff\xa1" {
		t.Errorf("decodeHex(00fFa1) = %x, %v; want 00ffa1", got, ok)
	}
	for _, bad := range []string{"0", "0g", "zz", string(make([]byte, 2*maxCookieLen+2))} {
		if _, ok := decodeHex(buf[:0], bad); ok {
			t.Errorf("decodeHex(%q) ok, want a failure", bad)
		}
	}
	if got := hexString([]byte{0, 0xab, 0x10}); got != "00ab10" {
		t.Errorf("hexString = %q, want 00ab10", got)
	}
}
