package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"bulwark/internal/cache"
	"bulwark/internal/config"
	"bulwark/internal/pipeline"
	"bulwark/internal/rrl"

	"github.com/miekg/dns"
)

// startLimitedServer starts a server whose UDP responses go through a
// limiter of cfg.
func startLimitedServer(t testing.TB, cfg rrl.Config) (*Server, string) {
	t.Helper()
	ap := freePort(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := cache.New(cache.Config{MaxBytes: 4 << 20, MaxTTL: time.Hour})
	pipe := pipeline.New(pipeline.Config{BufferSize: 1232, ClientTimeout: 5 * time.Second,
		FailureTTL: time.Second, MaxResolutions: 100}, c, slowResolver{}, log, nil)
	s := New(config.Server{
		Listen:            []config.Listener{{AddrPort: ap, Transports: []string{"udp", "tcp"}}},
		UDPSockets:        1,
		TCPIdleTimeout:    config.Duration(5 * time.Second),
		MaxTCPConnections: 10,
	}, pipe, log)
	s.SetRateLimiter(rrl.New(cfg))
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return s, ap.String()
}

func limiterConfig(exempt ...netip.Prefix) rrl.Config {
	return rrl.Config{Rate: 5, Burst: 5, Slip: 2, IPv4Prefix: 24, IPv6Prefix: 56, TableSize: 1024, Exempt: exempt}
}

// TestUDPRateLimit sends a burst over one socket and counts what comes
// back: the burst, then every second limited response as TC, the rest
// nothing. TCP is never limited.
func TestUDPRateLimit(t *testing.T) {
	s, addr := startLimitedServer(t, limiterConfig())
	defer s.Shutdown(context.Background())
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	q := new(dns.Msg)
	q.SetQuestion("limited.example.", dns.TypeA)
	wire, _ := q.Pack()
	const sent = 25
	for range sent {
		conn.Write(wire)
		time.Sleep(time.Millisecond) // keep the socket buffer from overflowing
	}
	answers, truncated := 0, 0
	buf := make([]byte, 4096)
	for {
		conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := conn.Read(buf)
		if err != nil {
			break
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:n]); err != nil {
			t.Fatalf("unpack response: %v", err)
		}
		switch {
		case r.Truncated && len(r.Answer) == 0:
			truncated++
		case len(r.Answer) == 1:
			answers++
		}
	}
	// A response or two may earn a new token while the burst is sent.
	if answers < 5 || answers > 7 {
		t.Errorf("answers = %d, want the burst of 5 (up to 7 with refills)", answers)
	}
	limited := sent - answers
	if truncated < limited/2-1 || truncated > limited/2+1 {
		t.Errorf("truncated = %d of %d limited, want about half (slip 2)", truncated, limited)
	}
	slipped, dropped := s.rrl.Limited()
	if int(slipped) != truncated || slipped+dropped != uint64(limited) {
		t.Errorf("counters: slipped %d, dropped %d; want %d and %d", slipped, dropped, truncated, limited-truncated)
	}

	c := dns.Client{Net: "tcp", Timeout: 2 * time.Second}
	r, _, err := c.Exchange(q, addr)
	if err != nil || len(r.Answer) != 1 {
		t.Errorf("TCP after the UDP limit: %v, %v; want one A", r, err)
	}
}

func TestUDPRateLimitExempt(t *testing.T) {
	s, addr := startLimitedServer(t, limiterConfig(netip.MustParsePrefix("127.0.0.0/8")))
	defer s.Shutdown(context.Background())
	c := dns.Client{Net: "udp", Timeout: 2 * time.Second}
	q := new(dns.Msg)
	q.SetQuestion("exempt.example.", dns.TypeA)
	for i := range 20 {
		r, _, err := c.Exchange(q, addr)
		if err != nil || r.Truncated || len(r.Answer) != 1 {
			t.Fatalf("query %d from an exempt network: %v, %v; want one A", i, r, err)
		}
	}
}

// BenchmarkUDPCachedRateLimited is BenchmarkUDPCached with a rate limiter
// that exempts loopback, as by default: the bucket runs dry at once, so
// every response also pays for the exemption check.
func BenchmarkUDPCachedRateLimited(b *testing.B) {
	cfg := limiterConfig(netip.MustParsePrefix("127.0.0.0/8"))
	cfg.Rate, cfg.Burst = 1000, 1000
	s, addr := startLimitedServer(b, cfg)
	defer s.Shutdown(context.Background())
	conn, err := net.Dial("udp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	q := new(dns.Msg)
	q.SetQuestion("bench.example.", dns.TypeA)
	wire, _ := q.Pack()
	buf := make([]byte, 4096)
	conn.Write(wire)
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
