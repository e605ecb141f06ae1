package server

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestUDPBurstAnswered sends bursts of queries from many sockets without
// waiting, so that reads return several datagrams at once, and checks that
// every query gets its own response, cached or resolved.
func TestUDPBurstAnswered(t *testing.T) {
	s, addr := startServer(t, 0)
	defer s.Shutdown(context.Background())
	const clients, perClient = 8, 50
	// Warm the cache, so that a burst needs fewer resolution slots than the
	// server has (100): a query beyond them gets SERVFAIL by design.
	c := dns.Client{Net: "udp", Timeout: 2 * time.Second}
	for i := range 10 {
		q := new(dns.Msg)
		q.SetQuestion(fmt.Sprintf("n%d.example.", i), dns.TypeA)
		if _, _, err := c.Exchange(q, addr); err != nil {
			t.Fatalf("warming the cache: %v", err)
		}
	}
	errs := make(chan error, clients)
	for c := range clients {
		go func() { errs <- burst(addr, c, perClient) }()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// burst sends n queries on one socket, then reads n responses and checks
// that each matches a query by ID and name. Four in five names are cached
// ones shared by every client; the fifth is new and resolved.
func burst(addr string, client, n int) error {
	conn, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	want := map[uint16]string{}
	for i := range n {
		q := new(dns.Msg)
		name := fmt.Sprintf("n%d.example.", i%10)
		if i%5 == 4 {
			name = fmt.Sprintf("new%d-%d.example.", client, i)
		}
		q.SetQuestion(name, dns.TypeA)
		q.Id = uint16(client*1000 + i)
		want[q.Id] = name
		wire, _ := q.Pack()
		if _, err := conn.Write(wire); err != nil {
			return err
		}
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	for range n {
		k, err := conn.Read(buf)
		if err != nil {
			return fmt.Errorf("client %d: %d of %d responses missing: %v", client, len(want), n, err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:k]); err != nil {
			return fmt.Errorf("client %d: bad response: %v", client, err)
		}
		name, ok := want[r.Id]
		if !ok {
			return fmt.Errorf("client %d: response with unexpected or repeated ID %d", client, r.Id)
		}
		if len(r.Question) != 1 || r.Question[0].Name != name || len(r.Answer) != 1 {
			return fmt.Errorf("client %d: response %d = %v, want one A for %s", client, r.Id, r, name)
		}
		delete(want, r.Id)
	}
	return nil
}

// TestUDPOversizedDatagramDropped checks that a datagram longer than a
// receive buffer is dropped without disturbing the queries around it.
func TestUDPOversizedDatagramDropped(t *testing.T) {
	s, addr := startServer(t, 0)
	defer s.Shutdown(context.Background())
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	q := new(dns.Msg)
	q.SetQuestion("big.example.", dns.TypeA)
	wire, _ := q.Pack()
	huge := append(append([]byte(nil), wire...), make([]byte, 9000)...)
	if _, err := conn.Write(huge); err != nil {
		t.Fatal(err)
	}

	q.SetQuestion("after.example.", dns.TypeA)
	q.Id = 4242
	wire, _ = q.Pack()
	if _, err := conn.Write(wire); err != nil {
		t.Fatal(err)
	}

	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 4096)
	k, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no response to the query after the oversized one: %v", err)
	}
	r := new(dns.Msg)
	if err := r.Unpack(buf[:k]); err != nil {
		t.Fatal(err)
	}
	if r.Id != 4242 || r.Question[0].Name != "after.example." {
		t.Errorf("got a response to %v (ID %d), want after.example. (ID 4242)", r.Question, r.Id)
	}
}

// TestUDPIPv6Answered checks source addresses of the IPv6 family.
func TestUDPIPv6Answered(t *testing.T) {
	ln, err := net.ListenPacket("udp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	ln.Close()
	s, addr := startServerOn(t, "[::1]:0")
	defer s.Shutdown(context.Background())
	c := dns.Client{Net: "udp", Timeout: 2 * time.Second}
	q := new(dns.Msg)
	q.SetQuestion("v6.example.", dns.TypeA)
	for range 2 { // resolved, then cached
		r, _, err := c.Exchange(q, addr)
		if err != nil {
			t.Fatalf("exchange over IPv6: %v", err)
		}
		if len(r.Answer) != 1 {
			t.Errorf("response = %v, want one A", r)
		}
	}
}

// TestUDPSequentialQueries sends many queries one after the other, each
// as soon as the previous response came: every one must wake the socket's
// reader. A reader that waits for the poller without first reading the
// socket again loses the wake-up of a datagram that came meanwhile.
func TestUDPSequentialQueries(t *testing.T) {
	s, addr := startServer(t, 0)
	defer s.Shutdown(context.Background())
	conn, wire := dialQuery(t, addr, "sequence.example.")
	defer conn.Close()
	buf := make([]byte, 4096)
	for i := range 20000 {
		if _, err := conn.Write(wire); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := conn.Read(buf); err != nil {
			t.Fatalf("query %d of 20000: %v", i+1, err)
		}
	}
}

// dialQuery returns a UDP socket connected to addr and a query for name A.
func dialQuery(tb testing.TB, addr, name string) (net.Conn, []byte) {
	tb.Helper()
	conn, err := net.Dial("udp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeA)
	wire, err := q.Pack()
	if err != nil {
		conn.Close()
		tb.Fatal(err)
	}
	return conn, wire
}

// BenchmarkUDPCached measures cached answers over UDP, client included: the
// client reuses its buffers, so allocations per query are the server's.
func BenchmarkUDPCached(b *testing.B) {
	s, addr := startServer(b, 0)
	defer s.Shutdown(context.Background())
	conn, wire := dialQuery(b, addr, "bench.example.")
	defer conn.Close()
	buf := make([]byte, 4096)
	conn.Write(wire) // resolve once, so the loop hits the cache
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(buf); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		conn.Write(wire)
		if _, err := conn.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPollAnswersWaitingDatagram checks that a goroutine polling a batched
// socket answers what waits there, as goroutines finishing a resolution do
// while the socket's reader waits to be scheduled.
func TestPollAnswersWaitingDatagram(t *testing.T) {
	s, _ := startServer(t, 0)
	defer s.Shutdown(context.Background())
	// A socket of its own, with no reader: only pollUDP reads it.
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	b, err := newBatchConn(conn, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.addBatch(b)

	client, err := net.DialUDP("udp", nil, conn.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	q := new(dns.Msg)
	q.SetQuestion("polled.example.", dns.TypeA)
	wire, _ := q.Pack()
	if _, err := client.Write(wire); err != nil {
		t.Fatal(err)
	}

	buf := make([]byte, 4096)
	for deadline := time.Now().Add(3 * time.Second); ; {
		s.pollUDP()
		client.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := client.Read(buf)
		if err == nil {
			r := new(dns.Msg)
			if err := r.Unpack(buf[:n]); err != nil || r.Id != q.Id || len(r.Answer) != 1 {
				t.Fatalf("response %v (%v), want one A for polled.example.", r, err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no response: pollUDP did not read the waiting query")
		}
	}
}
