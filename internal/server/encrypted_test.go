package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"bulwark/internal/cache"
	"bulwark/internal/config"
	"bulwark/internal/pipeline"

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"
)

// startEncrypted starts a Server with DoT, DoH and DoQ listeners on free
// ports and returns their addresses.
func startEncrypted(t testing.TB) (s *Server, dot, doh, doq string) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := cache.New(cache.Config{MaxBytes: 4 << 20, MaxTTL: time.Hour})
	pipe := pipeline.New(pipeline.Config{BufferSize: 1232, ClientTimeout: 5 * time.Second,
		FailureTTL: time.Second, MaxResolutions: 100}, c, slowResolver{0, make(chan string, 10)}, log, nil)
	ports := [3]netip.AddrPort{}
	for i := range ports {
		ports[i] = freePort(t)
	}
	cfg := config.Server{
		Listen: []config.Listener{
			{AddrPort: ports[0], Transports: []string{"dot"}},
			{AddrPort: ports[1], Transports: []string{"doh"}},
			{AddrPort: ports[2], Transports: []string{"doq"}},
		},
		TCPIdleTimeout:    config.Duration(5 * time.Second),
		MaxTCPConnections: 100,
		TLS:               config.TLS{Names: []string{"127.0.0.1"}},
	}
	s = New(cfg, pipe, log)
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s, ports[0].String(), ports[1].String(), ports[2].String()
}

// clientTLS is cloned for each client: http.Transport adds its protocols
// to the config it is given, which a DoT client must not offer.
var clientTLS = &tls.Config{InsecureSkipVerify: true}

func packQuery(t testing.TB, name string) []byte {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.Id = 0
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return wire
}

func TestEncryptedTransportsAnswer(t *testing.T) {
	_, dot, doh, doq := startEncrypted(t)
	check := func(transport string, wire []byte) {
		t.Helper()
		m := new(dns.Msg)
		if err := m.Unpack(wire); err != nil {
			t.Fatalf("%s: response does not parse: %v", transport, err)
		}
		if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
			t.Errorf("%s: %s with %d answers, want one A record", transport, dns.RcodeToString[m.Rcode], len(m.Answer))
		}
	}

	c := dns.Client{Net: "tcp-tls", TLSConfig: clientTLS.Clone(), Timeout: 5 * time.Second}
	r, _, err := c.Exchange(new(dns.Msg).SetQuestion("dot.example.", dns.TypeA), dot)
	if err != nil {
		t.Fatalf("DoT: %v", err)
	}
	wire, _ := r.Pack()
	check("DoT", wire)

	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: clientTLS.Clone(), ForceAttemptHTTP2: true}}
	resp, err := hc.Post("https://"+doh+"/dns-query", "application/dns-message", bytes.NewReader(packQuery(t, "doh.example.")))
	if err != nil {
		t.Fatalf("DoH: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		t.Fatalf("DoH: %s %d", resp.Proto, resp.StatusCode)
	}
	check("DoH", body)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, doq, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"doq"}}, nil)
	if err != nil {
		t.Fatalf("DoQ: %v", err)
	}
	defer conn.CloseWithError(0, "")
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	q := packQuery(t, "doq.example.")
	st.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(q))), q...))
	st.Close()
	st.SetReadDeadline(time.Now().Add(5 * time.Second))
	body, err = io.ReadAll(st)
	if err != nil || len(body) < 2 {
		t.Fatalf("DoQ: %v", err)
	}
	check("DoQ", body[2:])
}

// BenchmarkDoHPost measures cached answers over one HTTP/2 connection,
// client and server in one process.
func BenchmarkDoHPost(b *testing.B) {
	_, _, doh, _ := startEncrypted(b)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS.Clone(), ForceAttemptHTTP2: true}}
	q := packQuery(b, "cached.example.")
	url := "https://" + doh + "/dns-query"
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := hc.Post(url, "application/dns-message", bytes.NewReader(q))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}
