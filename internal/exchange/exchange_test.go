package exchange

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// udpServer answers on a loopback UDP socket with the replies that reply
// builds for each query, in order.
func udpServer(t *testing.T, reply func(q *dns.Msg, from *net.UDPAddr, conn *net.UDPConn)) netip.AddrPort {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			q := new(dns.Msg)
			if q.Unpack(buf[:n]) == nil {
				reply(q, from, conn)
			}
		}
	}()
	return conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

func send(conn *net.UDPConn, to *net.UDPAddr, m *dns.Msg) {
	wire, _ := m.Pack()
	conn.WriteToUDP(wire, to)
}

func answer(q *dns.Msg, value string) *dns.Msg {
	r := new(dns.Msg)
	r.SetReply(q)
	rr, _ := dns.NewRR(q.Question[0].Name + " 300 IN A " + value)
	r.Answer = []dns.RR{rr}
	return r
}

func testClient() *Client {
	return NewClient(Config{BufferSize: 1232, Allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
}

func TestExchangeIgnoresForgedResponses(t *testing.T) {
	spoofer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	defer spoofer.Close()
	server := udpServer(t, func(q *dns.Msg, from *net.UDPAddr, conn *net.UDPConn) {
		wrongID := answer(q, "192.0.2.66")
		wrongID.Id = q.Id + 1
		send(conn, from, wrongID)
		wrongName := answer(q, "192.0.2.66")
		wrongName.Question[0].Name = "other.example."
		send(conn, from, wrongName)
		send(spoofer, from, answer(q, "192.0.2.66")) // right ID, wrong source
		time.Sleep(20 * time.Millisecond)
		send(conn, from, answer(q, "192.0.2.1"))
	})
	resp, err := testClient().Exchange(context.Background(), Query{Name: "www.example.", Type: dns.TypeA, Server: server, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if got := resp.Msg.Answer[0].(*dns.A).A.String(); got != "192.0.2.1" {
		t.Errorf("accepted answer %s, want the genuine 192.0.2.1", got)
	}
}

func TestExchangeRetriesTruncatedOverTCP(t *testing.T) {
	ln, udp := tcpAndUDP(t)
	port := ln.Addr().(*net.TCPAddr).Port
	go func() {
		buf := make([]byte, 4096)
		n, from, err := udp.ReadFromUDP(buf)
		if err != nil {
			return
		}
		q := new(dns.Msg)
		q.Unpack(buf[:n])
		r := new(dns.Msg)
		r.SetReply(q)
		r.Truncated = true
		send(udp, from, r)
	}()
	go answerTCPOnce(ln, "192.0.2.2")
	server := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	resp, err := testClient().Exchange(context.Background(), Query{Name: "big.example.", Type: dns.TypeA, Server: server, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if !resp.TCP || len(resp.Msg.Answer) != 1 {
		t.Errorf("response TCP=%v answers=%d, want the full answer over TCP", resp.TCP, len(resp.Msg.Answer))
	}
}

// TestExchangeOversizedUDPRetriesTCP checks that a UDP response larger than
// any size the client may advertise, from a server that ignored it, is
// fetched again over TCP instead of being read cut short.
func TestExchangeOversizedUDPRetriesTCP(t *testing.T) {
	ln, udp := tcpAndUDP(t)
	port := ln.Addr().(*net.TCPAddr).Port
	go func() {
		buf := make([]byte, 4096)
		n, from, err := udp.ReadFromUDP(buf)
		if err != nil {
			return
		}
		q := new(dns.Msg)
		q.Unpack(buf[:n])
		r := answer(q, "192.0.2.3")
		for i := range 300 {
			txt, _ := dns.NewRR(fmt.Sprintf("%s 300 IN TXT \"padding %d padding padding\"", q.Question[0].Name, i))
			r.Extra = append(r.Extra, txt)
		}
		wire, _ := r.Pack()
		if len(wire) <= udpReceiveSize {
			panic(fmt.Sprintf("test response of %d bytes is not oversized", len(wire)))
		}
		udp.WriteToUDP(wire, from)
	}()
	go answerTCPOnce(ln, "192.0.2.4")
	server := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	resp, err := testClient().Exchange(context.Background(), Query{Name: "huge.example.", Type: dns.TypeA, Server: server, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if !resp.TCP {
		t.Errorf("response came over UDP, want the retry over TCP")
	}
	if got := resp.Msg.Answer[0].(*dns.A).A.String(); got != "192.0.2.4" {
		t.Errorf("answer %s, want 192.0.2.4 from the TCP server", got)
	}
}

// answerTCPOnce accepts one connection on ln and answers its query with
// an A record of value.
func answerTCPOnce(ln net.Listener, value string) {
	c, err := ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	dc := &dns.Conn{Conn: c}
	if q, err := dc.ReadMsg(); err == nil {
		dc.WriteMsg(answer(q, value))
	}
}

// tcpAndUDP opens a TCP listener and a UDP socket on the same loopback port.
func tcpAndUDP(t *testing.T) (net.Listener, *net.UDPConn) {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err == nil {
			t.Cleanup(func() { ln.Close(); udp.Close() })
			return ln, udp
		}
		ln.Close()
	}
	t.Fatal("found no loopback port free for both TCP and UDP in 20 tries")
	return nil, nil
}

func TestExchangeTimeout(t *testing.T) {
	server := udpServer(t, func(*dns.Msg, *net.UDPAddr, *net.UDPConn) {})
	start := time.Now()
	_, err := testClient().Exchange(context.Background(), Query{Name: "slow.example.", Type: dns.TypeA, Server: server, Timeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrTimeout) {
		t.Errorf("Exchange to a silent server: %v, want ErrTimeout", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("timeout of 100ms took %s", elapsed)
	}
}

func TestExchangeForbiddenAddress(t *testing.T) {
	tests := []struct {
		name    string
		allowed []netip.Prefix
		addr    string
	}{
		{"outside the lab networks", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, "192.0.2.1"},
		{"loopback by default", nil, "127.0.0.1"},
		{"link-local by default", nil, "fe80::1"},
		{"unspecified by default", nil, "0.0.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewClient(Config{BufferSize: 1232, Allowed: tt.allowed})
			server := netip.AddrPortFrom(netip.MustParseAddr(tt.addr), 53)
			_, err := c.Exchange(context.Background(), Query{Name: "example.", Type: dns.TypeA, Server: server, Timeout: time.Second})
			if !errors.Is(err, ErrForbidden) {
				t.Errorf("Exchange to %s: %v, want ErrForbidden", tt.addr, err)
			}
		})
	}
}

func TestQueryIDsVary(t *testing.T) {
	c := testClient()
	seen := map[uint16]bool{}
	for range 100 {
		seen[c.newQuery(Query{Name: "example.", Type: dns.TypeA}).Id] = true
	}
	if len(seen) < 95 {
		t.Errorf("100 queries used %d distinct IDs, want them random", len(seen))
	}
}
