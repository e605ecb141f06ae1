package fault

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// startBackend serves one A record for every name on a free loopback port.
func startBackend(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		resp := new(dns.Msg)
		resp.SetReply(req)
		rr, _ := dns.NewRR(req.Question[0].Name + " 60 IN A 192.0.2.1")
		resp.Answer = []dns.RR{rr}
		w.WriteMsg(resp)
	})
	udp := &dns.Server{PacketConn: pc, Handler: handler}
	tcp := &dns.Server{Listener: ln, Handler: handler}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() {
		udp.Shutdown()
		tcp.Shutdown()
	})
	return pc.LocalAddr().String()
}

// startProxy starts a proxy in mode on a free loopback port.
func startProxy(t *testing.T, cfg Config, backend string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := pc.LocalAddr().String()
	pc.Close()
	cfg.Routes = []Route{{Listen: listen, Backend: backend}}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate(%+v) = %v, want nil", cfg, err)
	}
	p := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := p.Start(); err != nil {
		t.Fatalf("Start() = %v", err)
	}
	t.Cleanup(p.Shutdown)
	return listen
}

func TestProxyModes(t *testing.T) {
	backend := startBackend(t)
	tests := []struct {
		name    string
		cfg     Config
		qname   string
		network string
		check   func(t *testing.T, resp *dns.Msg, rtt time.Duration, err error)
	}{
		{"pass", Config{Mode: ModePass}, "a.example.", "udp", func(t *testing.T, resp *dns.Msg, _ time.Duration, err error) {
			if err != nil || len(resp.Answer) != 1 {
				t.Errorf("pass: resp = %v, err = %v, want one A record", resp, err)
			}
		}},
		{"delay", Config{Mode: ModeDelay, Delay: 300 * time.Millisecond}, "a.example.", "udp", func(t *testing.T, resp *dns.Msg, rtt time.Duration, err error) {
			if err != nil || rtt < 300*time.Millisecond {
				t.Errorf("delay: rtt = %v, err = %v, want at least 300ms and no error", rtt, err)
			}
		}},
		{"truncate udp", Config{Mode: ModeTruncate}, "a.example.", "udp", func(t *testing.T, resp *dns.Msg, _ time.Duration, err error) {
			if err != nil || !resp.Truncated || len(resp.Answer) != 0 {
				t.Errorf("truncate: resp = %v, err = %v, want TC=1 without records", resp, err)
			}
		}},
		{"truncate passes tcp", Config{Mode: ModeTruncate}, "a.example.", "tcp", func(t *testing.T, resp *dns.Msg, _ time.Duration, err error) {
			if err != nil || resp.Truncated || len(resp.Answer) != 1 {
				t.Errorf("truncate over TCP: resp = %v, err = %v, want the full answer", resp, err)
			}
		}},
		{"garbage", Config{Mode: ModeGarbage}, "a.example.", "udp", func(t *testing.T, _ *dns.Msg, _ time.Duration, err error) {
			if err == nil {
				t.Errorf("garbage: err = nil, want an unpack error or an ID mismatch")
			}
		}},
		{"wrong id", Config{Mode: ModeWrongID}, "a.example.", "udp", func(t *testing.T, _ *dns.Msg, _ time.Duration, err error) {
			// The client skips a reply whose ID differs and times out.
			if err == nil {
				t.Errorf("wrong-id: err = nil, want a timeout or an id mismatch")
			}
		}},
		{"black hole drops zone", Config{Mode: ModeBlackHole, Zone: "org."}, "www.example.org.", "udp", func(t *testing.T, _ *dns.Msg, _ time.Duration, err error) {
			if err == nil {
				t.Errorf("black-hole: err = nil, want a timeout")
			}
		}},
		{"black hole passes other zones", Config{Mode: ModeBlackHole, Zone: "org."}, "www.example.com.", "udp", func(t *testing.T, resp *dns.Msg, _ time.Duration, err error) {
			if err != nil || len(resp.Answer) != 1 {
				t.Errorf("black-hole for com: resp = %v, err = %v, want one A record", resp, err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := startProxy(t, tt.cfg, backend)
			msg := new(dns.Msg)
			msg.SetQuestion(tt.qname, dns.TypeA)
			client := &dns.Client{Net: tt.network, Timeout: 3 * time.Second}
			resp, rtt, err := client.Exchange(msg, addr)
			tt.check(t, resp, rtt, err)
		})
	}
}

func TestConfigValidate(t *testing.T) {
	route := []Route{{Listen: "127.0.0.1:5440", Backend: "127.53.1.3:53"}}
	tests := []struct {
		name    string
		cfg     Config
		message string
	}{
		{"unknown mode", Config{Mode: "slow", Routes: route}, `unknown mode "slow"`},
		{"delay without duration", Config{Mode: ModeDelay, Routes: route}, "invalid delay"},
		{"black hole without zone", Config{Mode: ModeBlackHole, Routes: route}, "invalid zone"},
		{"no routes", Config{Mode: ModePass}, "no routes"},
		{"bad backend", Config{Mode: ModePass, Routes: []Route{{Listen: "127.0.0.1:5440", Backend: "lab:53"}}}, `invalid address "lab:53"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.message) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.message)
			}
		})
	}
	if _, err := ParseRoute("127.0.0.1:5440"); err == nil {
		t.Error(`ParseRoute("127.0.0.1:5440") error = nil, want one for the missing backend`)
	}
}

func TestProxyWrongIDSendsReply(t *testing.T) {
	addr := startProxy(t, Config{Mode: ModeWrongID}, startBackend(t))
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msg := new(dns.Msg)
	msg.SetQuestion("a.example.", dns.TypeA)
	packed, _ := msg.Pack()
	conn.Write(packed)
	conn.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 512)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("read reply: %v, want a reply", err)
	}
	resp := new(dns.Msg)
	if err := resp.Unpack(buf[:n]); err != nil {
		t.Fatalf("unpack reply: %v", err)
	}
	if resp.Id == msg.Id || len(resp.Answer) != 1 {
		t.Errorf("reply ID %d with %d answers, want an ID other than %d and one answer", resp.Id, len(resp.Answer), msg.Id)
	}
}
