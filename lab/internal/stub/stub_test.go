package stub

import (
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		l       Listener
		message string
	}{
		{"ok proxy", Listener{Address: "127.0.0.1", Port: 53, Mode: ModeProxy, Backend: "127.0.0.1:54"}, ""},
		{"ok silent", Listener{Address: "::1", Port: 53, Mode: ModeSilent}, ""},
		{"bad address", Listener{Address: "localhost", Port: 53, Mode: ModeSilent}, "invalid address"},
		{"bad port", Listener{Address: "127.0.0.1", Port: 0, Mode: ModeSilent}, "invalid port"},
		{"unknown mode", Listener{Address: "127.0.0.1", Port: 53, Mode: "echo"}, `unknown mode "echo"`},
		{"proxy without backend", Listener{Address: "127.0.0.1", Port: 53, Mode: ModeProxy}, "invalid backend"},
		{"silent with fault", Listener{Address: "127.0.0.1", Port: 53, Mode: ModeSilent, TruncateUDP: true}, "takes no backend"},
		{"relative name", Listener{Address: "127.0.0.1", Port: 53, Mode: ModeProxy, Backend: "127.0.0.1:54",
			NXDOMAINFor: []string{"a.example"}}, "fully qualified"},
		{"negative delay", Listener{Address: "127.0.0.1", Port: 53, Mode: ModeRefuse, DelayMS: -1}, "invalid delay_ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := (&Config{Listeners: []Listener{tt.l}}).Validate()
			if tt.message == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.message) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.message)
			}
		})
	}
}

func TestValidateRejectsDuplicateAddress(t *testing.T) {
	l := Listener{Address: "127.0.0.1", Port: 53, Mode: ModeSilent}
	err := (&Config{Listeners: []Listener{l, l}}).Validate()
	if err == nil || !strings.Contains(err.Error(), "duplicate address") {
		t.Errorf("Validate() = %v, want a duplicate address error", err)
	}
}

// freePort returns a port free for UDP and TCP on 127.0.0.1 at the time
// of the call.
func freePort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 20; i++ {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		pc.Close()
		if err == nil {
			ln.Close()
			return port
		}
	}
	t.Fatal("no free port for UDP and TCP")
	return 0
}

// startBackend serves a tiny zone: www.ent.example. has an A record, so
// ent.example. is an empty non-terminal, and big.example. has a TXT RRset
// larger than 1232 bytes. UDP replies are truncated to the client's EDNS
// buffer size, as a real authoritative server does.
func startBackend(t *testing.T) string {
	t.Helper()
	port := freePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		resp := new(dns.Msg)
		resp.SetReply(req)
		resp.Authoritative = true
		switch strings.ToLower(req.Question[0].Name) {
		case "www.ent.example.":
			rr, _ := dns.NewRR("www.ent.example. 300 IN A 198.18.0.1")
			resp.Answer = append(resp.Answer, rr)
		case "big.example.":
			txt := &dns.TXT{Hdr: dns.RR_Header{Name: "big.example.", Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300}}
			for i := 0; i < 30; i++ {
				txt.Txt = append(txt.Txt, strings.Repeat("x", 70))
			}
			resp.Answer = append(resp.Answer, txt)
		case "ent.example.":
			soa, _ := dns.NewRR("example. 300 IN SOA ns. host. 1 2 3 4 60")
			resp.Ns = append(resp.Ns, soa)
		default:
			resp.Rcode = dns.RcodeNameError
		}
		if w.RemoteAddr().Network() == "udp" {
			size := dns.MinMsgSize
			if opt := req.IsEdns0(); opt != nil {
				size = int(opt.UDPSize())
			}
			resp.Truncate(size)
		}
		_ = w.WriteMsg(resp)
	})
	for _, network := range []string{"udp", "tcp"} {
		started := make(chan struct{})
		srv := &dns.Server{Addr: addr, Net: network, Handler: handler, NotifyStartedFunc: func() { close(started) }}
		go func() { _ = srv.ListenAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return addr
}

// startStub runs one listener and returns its address.
func startStub(t *testing.T, l Listener) string {
	t.Helper()
	l.Name = "test"
	l.Address = "127.0.0.1"
	l.Port = freePort(t)
	cfg := &Config{Listeners: []Listener{l}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return l.HostPort()
}

func exchange(t *testing.T, network, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	msg := new(dns.Msg)
	msg.SetQuestion(name, qtype)
	msg.Id = 4242
	client := &dns.Client{Net: network, Timeout: 2 * time.Second}
	resp, _, err := client.Exchange(msg, addr)
	if err != nil {
		t.Fatalf("exchange %s %s over %s: %v", name, dns.Type(qtype), network, err)
	}
	if resp.Id != msg.Id {
		t.Errorf("reply ID = %d, want the query ID %d", resp.Id, msg.Id)
	}
	return resp
}

func TestProxyForwardsAndLogs(t *testing.T) {
	backend := startBackend(t)
	logPath := filepath.Join(t.TempDir(), "queries.log")
	addr := startStub(t, Listener{Mode: ModeProxy, Backend: backend, Log: logPath})

	resp := exchange(t, "udp", addr, "WwW.Ent.Example.", dns.TypeA)
	if len(resp.Answer) != 1 {
		t.Fatalf("proxied answer has %d records, want 1", len(resp.Answer))
	}
	exchange(t, "tcp", addr, "ent.example.", dns.TypeAAAA)

	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 {
		t.Fatalf("query log has %d lines, want 2: %q", len(lines), data)
	}
	wants := []string{" udp WwW.Ent.Example. A", " tcp ent.example. AAAA"}
	for i, want := range wants {
		fields := strings.SplitN(lines[i], " ", 2)
		if _, err := strconv.ParseInt(fields[0], 10, 64); err != nil {
			t.Errorf("log line %q does not start with unix seconds", lines[i])
		}
		if !strings.HasSuffix(lines[i], want) {
			t.Errorf("log line %q, want it to end with %q", lines[i], want)
		}
	}
}

func TestProxyRewritesENTToNXDOMAIN(t *testing.T) {
	backend := startBackend(t)
	addr := startStub(t, Listener{Mode: ModeProxy, Backend: backend, NXDOMAINFor: []string{"ent.example."}})

	if resp := exchange(t, "udp", addr, "ENT.example.", dns.TypeA); resp.Rcode != dns.RcodeNameError {
		t.Errorf("rcode for the listed ENT = %s, want NXDOMAIN", dns.RcodeToString[resp.Rcode])
	}
	if resp := exchange(t, "udp", addr, "www.ent.example.", dns.TypeA); resp.Rcode != dns.RcodeSuccess {
		t.Errorf("rcode below the ENT = %s, want NOERROR", dns.RcodeToString[resp.Rcode])
	}
}

func TestProxyTruncatesUDP(t *testing.T) {
	backend := startBackend(t)
	addr := startStub(t, Listener{Mode: ModeProxy, Backend: backend, TruncateUDP: true})

	udp := exchange(t, "udp", addr, "www.ent.example.", dns.TypeA)
	if !udp.Truncated || len(udp.Answer)+len(udp.Ns) != 0 {
		t.Errorf("UDP reply TC=%v with %d answer and %d authority records, want TC=1 and none",
			udp.Truncated, len(udp.Answer), len(udp.Ns))
	}
	if len(udp.Question) != 1 {
		t.Errorf("UDP reply has %d questions, want the query's one", len(udp.Question))
	}
	tcp := exchange(t, "tcp", addr, "www.ent.example.", dns.TypeA)
	if tcp.Truncated || len(tcp.Answer) != 1 {
		t.Errorf("TCP reply TC=%v with %d answers, want TC=0 and 1 answer", tcp.Truncated, len(tcp.Answer))
	}
}

func TestProxyKeepsBackendTruncation(t *testing.T) {
	backend := startBackend(t)
	addr := startStub(t, Listener{Mode: ModeProxy, Backend: backend})

	msg := new(dns.Msg)
	msg.SetQuestion("big.example.", dns.TypeTXT)
	msg.SetEdns0(1232, false)
	client := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	resp, _, err := client.Exchange(msg, addr)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Truncated {
		t.Errorf("UDP reply for a 2 KB TXT RRset has TC=0, want the backend's TC=1")
	}
	tcp := exchange(t, "tcp", addr, "big.example.", dns.TypeTXT)
	if len(tcp.Answer) != 1 {
		t.Errorf("TCP reply has %d answers, want 1", len(tcp.Answer))
	}
}

func TestRefuseMode(t *testing.T) {
	addr := startStub(t, Listener{Mode: ModeRefuse})
	resp := exchange(t, "udp", addr, "www.example.", dns.TypeA)
	if resp.Rcode != dns.RcodeRefused {
		t.Errorf("rcode = %s, want REFUSED", dns.RcodeToString[resp.Rcode])
	}
}

func TestSilentModeNeverReplies(t *testing.T) {
	addr := startStub(t, Listener{Mode: ModeSilent})
	for _, network := range []string{"udp", "tcp"} {
		msg := new(dns.Msg)
		msg.SetQuestion("www.example.", dns.TypeA)
		client := &dns.Client{Net: network, Timeout: 300 * time.Millisecond}
		if resp, _, err := client.Exchange(msg, addr); err == nil {
			t.Errorf("silent listener replied over %s with rcode %s, want no reply", network, dns.RcodeToString[resp.Rcode])
		}
	}
}

func TestDelay(t *testing.T) {
	addr := startStub(t, Listener{Mode: ModeRefuse, DelayMS: 200})
	start := time.Now()
	exchange(t, "udp", addr, "www.example.", dns.TypeA)
	if elapsed := time.Since(start); elapsed < 200*time.Millisecond {
		t.Errorf("reply came after %s, want at least 200ms", elapsed)
	}
}
