package integration

import (
	"crypto/tls"
	"crypto/x509"
	endian "encoding/binary"
	"encoding/pem"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"bulwark/internal/tlscert"
	"bulwark/test/labkit"

	"github.com/miekg/dns"
)

// limitsResolver runs a resolver beside the lab's with one DoT listener,
// and returns the DoT address and the log path. Each key of inserts is a
// line of the derived config, such as "server:\n" or "policy:\n", and its
// value goes after that line. listenerKeys go under the DoT listener.
func limitsResolver(t *testing.T, offset int, listenerKeys string, inserts map[string]string) (string, string) {
	t.Helper()
	dnsPort, dotPort := port+offset, port+offset+1
	dir := t.TempDir()
	path := filepath.Join(dir, "limits.yaml")
	writeDerivedConfig(t, path, dnsPort, "")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	edits := map[string]string{"  listen:\n": fmt.Sprintf("    - address: 127.0.0.1:%d\n      transports: [dot]\n%s", dotPort, listenerKeys)}
	for after, insert := range inserts {
		edits[after] += insert
	}
	for after, insert := range edits {
		if !strings.Contains(text, after) {
			t.Fatalf("derived config has no line %q", after)
		}
		text = strings.Replace(text, after, after+insert, 1)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "limits.log")
	cmd, err := labkit.StartBulwark(binary, path, net.JoinHostPort(resolver, strconv.Itoa(dnsPort)), logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := labkit.StopProcess(cmd); err != nil {
			t.Errorf("resolver did not stop cleanly: %v", err)
		}
	})
	dotAddr := fmt.Sprintf("127.0.0.1:%d", dotPort)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", dotAddr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s: %v", dotAddr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return dotAddr, logPath
}

// waitLog waits until the log at path contains every one of texts.
func waitLog(t *testing.T, path string, texts ...string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		data, _ := os.ReadFile(path)
		missing := ""
		for _, s := range texts {
			if !strings.Contains(string(data), s) {
				missing = s
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("log has no %q after 20 seconds:\n%s", missing, data)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// writeCertificate writes a self-signed certificate for name and its key.
func writeCertificate(t *testing.T, dir, name string) (string, string) {
	t.Helper()
	cert, err := tlscert.SelfSigned([]string{name}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	// Written to temporary names and renamed, as a certificate renewal
	// tool does, so that Bulwark never reads half a file.
	for _, f := range []struct {
		path string
		data []byte
	}{
		{keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key})},
		{certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})},
	} {
		if err := os.WriteFile(f.path+".tmp", f.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(f.path+".tmp", f.path); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

// peerName returns the DNS name of the certificate a new DoT connection
// to addr gets.
func peerName(t *testing.T, addr string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, insecureTLS(""))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].DNSNames[0]
}

// TestCertificateReload replaces the certificate files while a DoT
// connection is open: new connections get the new certificate, and the
// open one keeps answering.
func TestCertificateReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCertificate(t, dir, "old.dns.lab")
	addr, logPath := limitsResolver(t, 70, "", map[string]string{
		"  tls:\n": fmt.Sprintf("    cert_file: %s\n    key_file: %s\n", certFile, keyFile),
	})
	if got := peerName(t, addr); got != "old.dns.lab" {
		t.Fatalf("certificate for %s, want old.dns.lab", got)
	}
	conn, err := tls.Dial("tcp", addr, insecureTLS(""))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &dns.Conn{Conn: conn}
	ask := func() {
		t.Helper()
		if err := c.WriteMsg(dnsQuery(lab.Info.Policy.CleanName, dns.TypeA, false)); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if r, err := c.ReadMsg(); err != nil || r.Rcode != dns.RcodeSuccess {
			t.Fatalf("query on the open connection: %v, %v", r, err)
		}
	}
	ask()

	time.Sleep(10 * time.Millisecond) // a later modification time
	writeCertificate(t, dir, "new.dns.lab")
	waitLog(t, logPath, "TLS certificate reloaded")
	if got := peerName(t, addr); got != "new.dns.lab" {
		t.Errorf("after the reload a new connection got a certificate for %s, want new.dns.lab", got)
	}
	ask() // the connection made with the old certificate still works
}

// TestEncryptedConnectionLimits checks the per-client connection limit, the
// handshake timeout and the idle timeout on a DoT listener.
func TestEncryptedConnectionLimits(t *testing.T) {
	addr, logPath := limitsResolver(t, 72, "", map[string]string{
		"server:\n": "  max_connections_per_client: 2\n  handshake_timeout: 1s\n  encrypted_idle_timeout: 2s\n",
	})

	// Two connections are allowed, the third is closed at once.
	var open []*tls.Conn
	for range 2 {
		c, err := tls.Dial("tcp", addr, insecureTLS(""))
		if err != nil {
			t.Fatalf("connection within the limit: %v", err)
		}
		open = append(open, c)
	}
	if c, err := tls.Dial("tcp", addr, insecureTLS("")); err == nil {
		c.Close()
		t.Error("a third connection from the same client was accepted")
	}
	waitLog(t, logPath, "limit=max_connections_per_client")
	for _, c := range open {
		c.Close()
	}
	time.Sleep(200 * time.Millisecond)
	if c, err := tls.Dial("tcp", addr, insecureTLS("")); err != nil {
		t.Errorf("a connection after the others closed: %v", err)
	} else {
		c.Close()
	}

	// A client that never starts the handshake is dropped after 1s.
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	start := time.Now()
	raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := raw.Read(make([]byte, 1)); err == nil {
		t.Error("a silent client got data")
	}
	if waited := time.Since(start); waited > 8*time.Second {
		t.Errorf("a silent client was dropped after %v, want about 1s", waited)
	}
	waitLog(t, logPath, "limit=handshake_timeout")

	// An idle connection is closed after 2s.
	c, err := tls.Dial("tcp", addr, insecureTLS(""))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start = time.Now()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("an idle connection got data")
	}
	if waited := time.Since(start); waited > 8*time.Second {
		t.Errorf("an idle connection was closed after %v, want about 2s", waited)
	}
}

// TestStreamLimit sends three slow queries on one DoT connection that may
// have one in progress: all are answered, and the limit is logged.
func TestStreamLimit(t *testing.T) {
	addr, logPath := limitsResolver(t, 74, "", map[string]string{"server:\n": "  max_streams_per_connection: 1\n"})
	conn, err := tls.Dial("tcp", addr, insecureTLS(""))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &dns.Conn{Conn: conn}
	zone := strings.TrimPrefix(lab.Info.SlowName, "www.")
	for i := range 3 {
		m := dnsQuery(fmt.Sprintf("s%d-%d.%s", i, time.Now().UnixNano(), zone), dns.TypeA, false)
		m.Id = uint16(i + 1)
		if err := c.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for range 3 {
		if _, err := c.ReadMsg(); err != nil {
			t.Fatalf("slow queries over the stream limit: %v", err)
		}
	}
	waitLog(t, logPath, "limit=max_streams_per_connection")
}

// proxyHeader returns a PROXY protocol v2 header for a TCP connection from
// source to 127.0.0.1.
func proxyHeader(source netip.Addr) []byte {
	h := []byte("\r\n\r\n\x00\r\nQUIT\n")
	h = append(h, 0x21, 0x11) // version 2 PROXY; TCP over IPv4
	h = endian.BigEndian.AppendUint16(h, 12)
	src, dst := source.As4(), netip.MustParseAddr("127.0.0.1").As4()
	h = append(h, src[:]...)
	h = append(h, dst[:]...)
	h = endian.BigEndian.AppendUint16(h, 40000)
	return endian.BigEndian.AppendUint16(h, 853)
}

// TestProxyProtocol puts a DoT listener behind a trusted load balancer:
// the client address in the PROXY header picks the flavour of its subnet,
// the recursion access list checks it, and a connection without a header
// is closed.
func TestProxyProtocol(t *testing.T) {
	addr, _ := limitsResolver(t, 76, "      proxy_protocol: true\n", map[string]string{
		"server:\n": "  proxy_protocol_from: [127.0.0.0/8]\n" +
			"  recursion:\n    allow: [127.0.0.0/8, 192.0.2.0/24, 198.51.100.0/24]\n",
		"policy:\n": "  clients:\n    - subnet: 192.0.2.0/24\n      flavour: protective\n",
	})
	ask := func(header []byte) (*dns.Msg, error) {
		raw, err := net.Dial("tcp", addr)
		if err != nil {
			return nil, err
		}
		defer raw.Close()
		if header != nil {
			if _, err := raw.Write(header); err != nil {
				return nil, err
			}
		}
		conn := tls.Client(raw, insecureTLS(""))
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		c := &dns.Conn{Conn: conn}
		if err := c.WriteMsg(dnsQuery(lab.Info.Policy.ListedName, dns.TypeA, false)); err != nil {
			return nil, err
		}
		return c.ReadMsg()
	}
	for _, tt := range []struct {
		source  string
		blocked bool
	}{
		{"192.0.2.55", true}, // in the protective subnet
		{"198.51.100.1", false},
	} {
		r, err := ask(proxyHeader(netip.MustParseAddr(tt.source)))
		if err != nil {
			t.Fatalf("client %s through the balancer: %v", tt.source, err)
		}
		if got := edeOf(r) == 15; got != tt.blocked {
			t.Errorf("client %s: blocked %v, want %v", tt.source, got, tt.blocked)
		}
	}
	r, err := ask(proxyHeader(netip.MustParseAddr("203.0.113.9")))
	if err != nil {
		t.Fatalf("client outside the allow list through the balancer: %v", err)
	}
	if r.Rcode != dns.RcodeRefused || edeOf(r) != 18 {
		t.Errorf("client 203.0.113.9: rcode %s, EDE %d; want REFUSED with EDE 18", dns.RcodeToString[r.Rcode], edeOf(r))
	}
	if _, err := ask(nil); err == nil {
		t.Error("a connection without a PROXY header was answered")
	}
}
