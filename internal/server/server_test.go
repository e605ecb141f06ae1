package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"bulwark/internal/cache"
	"bulwark/internal/config"
	"bulwark/internal/pipeline"
	"bulwark/internal/resolver"

	"github.com/miekg/dns"
)

// slowResolver answers every name with one A record, after a delay for names
// that start with "slow"; it reports each slow start on started.
type slowResolver struct {
	delay   time.Duration
	started chan string
}

func (r slowResolver) Resolve(ctx context.Context, name string, qtype uint16) resolver.Result {
	if strings.HasPrefix(name, "slow") {
		select {
		case r.started <- name:
		default:
		}
		time.Sleep(r.delay)
	}
	rr, _ := dns.NewRR(name + " 300 IN A 192.0.2.1")
	return resolver.Result{Answer: []dns.RR{rr}}
}

// freePort returns a loopback port free for both UDP and TCP.
func freePort(t testing.TB) netip.AddrPort {
	t.Helper()
	return freePortOn(t, "127.0.0.1:0")
}

// freePortOn returns a port of the address in host (such as "[::1]:0") free
// for both UDP and TCP.
func freePortOn(t testing.TB, host string) netip.AddrPort {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		ap := ln.Addr().(*net.TCPAddr).AddrPort()
		pc, err := net.ListenPacket("udp", ap.String())
		ln.Close()
		if err == nil {
			pc.Close()
			return ap
		}
	}
	t.Fatal("no loopback port free for both UDP and TCP in 20 tries")
	return netip.AddrPort{}
}

func startServer(t testing.TB, delay time.Duration) (*Server, string) {
	s, addr, _ := startServerWatched(t, delay)
	return s, addr
}

func startServerWatched(t testing.TB, delay time.Duration) (*Server, string, chan string) {
	t.Helper()
	return startServerAt(t, freePort(t), delay)
}

// startServerOn starts a server on a free port of the address in host.
func startServerOn(t *testing.T, host string) (*Server, string) {
	t.Helper()
	s, addr, _ := startServerAt(t, freePortOn(t, host), 0)
	return s, addr
}

func startServerAt(t testing.TB, ap netip.AddrPort, delay time.Duration) (*Server, string, chan string) {
	t.Helper()
	started := make(chan string, 10)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := cache.New(cache.Config{MaxBytes: 4 << 20, MaxTTL: time.Hour})
	pipe := pipeline.New(pipeline.Config{BufferSize: 1232, ClientTimeout: 5 * time.Second,
		FailureTTL: time.Second, MaxResolutions: 100}, c, slowResolver{delay, started}, log, nil)
	cfg := config.Server{
		Listen:            []config.Listener{{AddrPort: ap, Transports: []string{"udp", "tcp"}}},
		UDPSockets:        2,
		TCPIdleTimeout:    config.Duration(5 * time.Second),
		MaxTCPConnections: 10,
	}
	s := New(cfg, pipe, log)
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return s, ap.String(), started
}

func TestUDPAndTCPAnswer(t *testing.T) {
	s, addr := startServer(t, 0)
	defer s.Shutdown(context.Background())
	for _, network := range []string{"udp", "tcp"} {
		c := dns.Client{Net: network, Timeout: 2 * time.Second}
		q := new(dns.Msg)
		q.SetQuestion("www.example.", dns.TypeA)
		r, _, err := c.Exchange(q, addr)
		if err != nil {
			t.Fatalf("%s exchange: %v", network, err)
		}
		if len(r.Answer) != 1 || !r.RecursionAvailable {
			t.Errorf("%s response = %v, want one A with RA", network, r)
		}
	}
}

func TestTCPAnswersOutOfOrder(t *testing.T) {
	s, addr := startServer(t, 500*time.Millisecond)
	defer s.Shutdown(context.Background())
	conn, err := dns.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	for i, name := range []string{"slow.example.", "fast.example."} {
		q := new(dns.Msg)
		q.SetQuestion(name, dns.TypeA)
		q.Id = uint16(i + 1)
		if err := conn.WriteMsg(q); err != nil {
			t.Fatal(err)
		}
	}
	first, err := conn.ReadMsg()
	if err != nil {
		t.Fatal(err)
	}
	second, err := conn.ReadMsg()
	if err != nil {
		t.Fatal(err)
	}
	if first.Id != 2 || second.Id != 1 {
		t.Errorf("responses came as IDs %d then %d, want the fast query (2) before the slow one (1)", first.Id, second.Id)
	}
}

func TestShutdownFinishesQueriesInProgress(t *testing.T) {
	s, addr, started := startServerWatched(t, 300*time.Millisecond)
	results := make(chan error, 2)
	for _, network := range []string{"udp", "tcp"} {
		go func() {
			c := dns.Client{Net: network, Timeout: 3 * time.Second}
			q := new(dns.Msg)
			q.SetQuestion("slow-"+network+".example.", dns.TypeA)
			r, _, err := c.Exchange(q, addr)
			if err == nil && len(r.Answer) != 1 {
				err = io.ErrUnexpectedEOF
			}
			results <- err
		}()
	}
	<-started // both queries are being resolved
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	for range 2 {
		if err := <-results; err != nil {
			t.Errorf("query in progress at shutdown: %v, want its answer", err)
		}
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("TCP still accepts connections after Shutdown")
	}
}

func TestSecondServerOnSameAddressFails(t *testing.T) {
	s, addr := startServer(t, 0)
	defer s.Shutdown(context.Background())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := config.Server{
		Listen:            []config.Listener{{AddrPort: netip.MustParseAddrPort(addr), Transports: []string{"udp"}}},
		UDPSockets:        1,
		TCPIdleTimeout:    config.Duration(time.Second),
		MaxTCPConnections: 1,
	}
	second := New(cfg, nil, log)
	if err := second.Start(); err == nil {
		second.Shutdown(context.Background())
		t.Fatalf("a second UDP-only server started on %s, want an address-in-use error", addr)
	}
}

func TestOptionalListenerSkipped(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ap := freePort(t)
	missing := netip.MustParseAddrPort("[2001:db8::53]:5300") // not on this host
	cfg := config.Server{
		Listen: []config.Listener{
			{AddrPort: ap, Transports: []string{"udp", "tcp"}},
			{AddrPort: missing, Transports: []string{"udp", "tcp"}, Optional: true},
		},
		UDPSockets: 1, TCPIdleTimeout: config.Duration(time.Second), MaxTCPConnections: 1,
	}
	s := New(cfg, nil, log)
	if err := s.Start(); err != nil {
		t.Fatalf("Start with an optional listener on a missing address: %v", err)
	}
	s.Shutdown(context.Background())

	cfg.Listen[1].Optional = false
	s = New(cfg, nil, log)
	if err := s.Start(); err == nil {
		s.Shutdown(context.Background())
		t.Error("Start with a required listener on a missing address succeeded, want an error")
	}
}
