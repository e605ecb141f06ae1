package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"bulwark/lab/labspec"
	"bulwark/test/labkit"

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// privacyPorts are the ports of the resolver of TestNoClientAddressWritten,
// from the lab's resolver port: plain DNS, DoT, DoH and DoQ, and metrics.
const (
	privacyDNS = 60 + iota
	privacyDoT
	privacyDoH
	privacyDoQ
	privacyMetrics
)

// privacyTransports are the transports of the workload, each with the
// function that sends one query from a source address.
var privacyTransports = []string{"udp", "tcp", "dot", "doh-h2", "doh-h3", "doq"}

// privacyClient returns the source address of client c on transport t:
// 127.77.(10+t).(100+40c). The last octets are at least 100, so that no
// truncated form, such as 127.77.10.0/24, contains an address as text.
func privacyClient(t, c int) netip.Addr {
	return netip.AddrFrom4([4]byte{127, 77, byte(10 + t), byte(100 + 40*c)})
}

const privacyClientsPerTransport = 4

// privacyResolver writes the config of the resolver under test into dir
// and starts it. The config is the lab's, with every transport on its own
// ports, debug logging, metrics and a trust anchor state file. The query
// log and aggregates are on, in their default anonymisation.
func privacyResolver(t *testing.T, dir string) (resolverCmd, captureCmd *exec.Cmd) {
	t.Helper()
	path := filepath.Join(dir, "privacy.yaml")
	socket := filepath.Join(dir, "dnstap.sock")
	capture := startFstrmCapture(t, socket, filepath.Join(dir, "dnstap.fstrm"))
	writeDerivedConfig(t, path, port+privacyDNS, fmt.Sprintf(`query_log:
  enabled: true
  directory: %s
  aggregates:
    enabled: true
    min_clients: 3
dnstap:
  socket: %s
`, filepath.Join(dir, "querylog"), socket))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	edits := []struct{ old, new string }{
		{"  listen:\n", fmt.Sprintf(`  listen:
    - address: 127.0.0.1:%d
      transports: [dot]
    - address: 127.0.0.1:%d
      transports: [doh]
      doh_paths:
        /protective: protective
    - address: 127.0.0.1:%d
      transports: [doq]
`, port+privacyDoT, port+privacyDoH, port+privacyDoQ)},
		{"  level: info\n", "  level: debug\n"},
		{"metrics:\n  listen: 127.0.0.1:0\n", fmt.Sprintf("metrics:\n  listen: 127.0.0.1:%d\n", port+privacyMetrics)},
		{"dnssec:\n", "dnssec:\n  auto_trust_anchor_file: " + filepath.Join(dir, "root.state") + "\n"},
	}
	for _, e := range edits {
		if !strings.Contains(text, e.old) {
			t.Fatalf("derived config has no %q:\n%s", e.old, text)
		}
		text = strings.Replace(text, e.old, e.new, 1)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, err := labkit.StartBulwark(binary, path, net.JoinHostPort(resolver, strconv.Itoa(port+privacyDNS)), filepath.Join(dir, "privacy.log"))
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, p := range []int{privacyDoT, privacyDoH, privacyMetrics} {
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(port+p))
	}
	// DoQ listens on UDP only; the DoQ queries show whether it serves.
	if err := waitTCP(addrs); err != nil {
		labkit.StopProcess(cmd)
		t.Fatal(err)
	}
	return cmd, capture
}

// waitTCP waits until every address accepts TCP connections.
func waitTCP(addrs []string) error {
	deadline := time.Now().Add(20 * time.Second)
	for _, a := range addrs {
		for {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("nothing listens on tcp %s", a)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// privacySender sends queries from one source address over one transport.
type privacySender struct {
	t         *testing.T
	transport string
	src       netip.Addr
	closers   []func()
}

// send sends a query for name, to the protective flavour when protective
// is set, and returns the response.
func (s *privacySender) send(name string, protective bool) *dns.Msg {
	t := s.t
	t.Helper()
	m := dnsQuery(name, dns.TypeA, false)
	host := "127.0.0.1"
	if protective {
		host = "127.0.0.2"
	}
	sni, path := "", "/dns-query"
	if protective {
		sni, path = labspec.ProtectiveSNI, "/protective"
	}
	tcpSrc := &net.TCPAddr{IP: s.src.AsSlice()}
	switch s.transport {
	case "udp", "tcp":
		var local net.Addr = tcpSrc
		if s.transport == "udp" {
			local = &net.UDPAddr{IP: s.src.AsSlice()}
		}
		c := dns.Client{Net: s.transport, Timeout: 10 * time.Second, Dialer: &net.Dialer{LocalAddr: local, Timeout: 10 * time.Second}}
		r, _, err := c.Exchange(m, net.JoinHostPort(host, strconv.Itoa(port+privacyDNS)))
		if err != nil {
			t.Fatalf("%s from %s: %v", s.transport, s.src, err)
		}
		return r
	case "dot":
		c := dns.Client{Net: "tcp-tls", TLSConfig: insecureTLS(sni), Timeout: 10 * time.Second,
			Dialer: &net.Dialer{LocalAddr: tcpSrc, Timeout: 10 * time.Second}}
		r, _, err := c.Exchange(m, "127.0.0.1:"+strconv.Itoa(port+privacyDoT))
		if err != nil {
			t.Fatalf("DoT from %s: %v", s.src, err)
		}
		return r
	case "doh-h2":
		tr := &http.Transport{
			DialContext:     (&net.Dialer{LocalAddr: tcpSrc}).DialContext,
			TLSClientConfig: insecureTLS(""), ForceAttemptHTTP2: true,
		}
		s.closers = append(s.closers, tr.CloseIdleConnections)
		r, resp := exchangeDoH(t, &http.Client{Timeout: 10 * time.Second, Transport: tr}, s.dohURL(path), m, false)
		if resp.ProtoMajor != 2 {
			t.Fatalf("DoH from %s over HTTP/%d, want HTTP/2", s.src, resp.ProtoMajor)
		}
		return r
	case "doh-h3":
		tr := &http3.Transport{TLSClientConfig: insecureTLS(""), Dial: s.dialQUIC}
		s.closers = append(s.closers, func() { tr.Close() })
		r, resp := exchangeDoH(t, &http.Client{Timeout: 10 * time.Second, Transport: tr}, s.dohURL(path), m, false)
		if resp.ProtoMajor != 3 {
			t.Fatalf("DoH from %s over HTTP/%d, want HTTP/3", s.src, resp.ProtoMajor)
		}
		return r
	case "doq":
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := s.dialQUIC(ctx, "127.0.0.1:"+strconv.Itoa(port+privacyDoQ), insecureTLS(sni, "doq"), nil)
		if err != nil {
			t.Fatalf("DoQ from %s: %v", s.src, err)
		}
		defer conn.CloseWithError(0, "")
		return doqOnConn(t, ctx, conn, m)
	}
	t.Fatalf("unknown transport %q", s.transport)
	return nil
}

func (s *privacySender) dohURL(path string) string {
	return "https://127.0.0.1:" + strconv.Itoa(port+privacyDoH) + path
}

// dialQUIC opens a QUIC connection to addr from a UDP socket bound to the
// sender's source address.
func (s *privacySender) dialQUIC(ctx context.Context, addr string, tlsConf *tls.Config, conf *quic.Config) (*quic.Conn, error) {
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: s.src.AsSlice()})
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { udp.Close() })
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	return quic.DialEarly(ctx, udp, raddr, tlsConf, conf)
}

func (s *privacySender) close() {
	for _, c := range s.closers {
		c()
	}
}

// TestNoClientAddressWritten sends queries from many client addresses over
// every transport, then searches every file the resolver wrote, and a
// metrics scrape, for those addresses in text and in binary. The query
// log must hold every query, with the truncated prefixes instead.
func TestNoClientAddressWritten(t *testing.T) {
	dir := t.TempDir()
	cmd, capture := privacyResolver(t, dir)
	stopped := false
	defer func() {
		if !stopped {
			labkit.StopProcess(cmd)
		}
	}()

	p := lab.Info.Policy
	var clients []netip.Addr
	for ti, transport := range privacyTransports {
		for c := range privacyClientsPerTransport {
			src := privacyClient(ti, c)
			clients = append(clients, src)
			s := &privacySender{t: t, transport: transport, src: src}
			if r := s.send(p.CleanName, false); r.Rcode != dns.RcodeSuccess {
				t.Errorf("%s from %s: %s is %s, want NOERROR", transport, src, p.CleanName, dns.RcodeToString[r.Rcode])
			}
			unique := fmt.Sprintf("only-%s-%d.%s", transport, c, p.CleanName)
			s.send(unique, false)
			if r := s.send(p.ListedName, true); edeOf(r) != 15 {
				t.Errorf("%s from %s: %s has EDE %d, want 15 (Blocked) on the protective flavour", transport, src, p.ListedName, edeOf(r))
			}
			s.close()
		}
	}

	metricsText := scrapeText(t, "http://127.0.0.1:"+strconv.Itoa(port+privacyMetrics)+"/metrics")
	if err := labkit.StopProcess(cmd); err != nil {
		t.Errorf("resolver did not stop cleanly: %v", err)
	}
	stopped = true
	stopFstrmCapture(t, capture)

	// Every file the process wrote: its log, config directory, trust
	// anchor state, query log and aggregates, and the dnstap capture.
	files := map[string][]byte{"metrics scrape": []byte(metricsText)}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Errorf("walk %s: %v", path, err)
			return nil
		}
		if d.Type().IsRegular() {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("read %s: %v", path, err)
			}
			files[path] = data
		}
		return nil
	})
	for _, want := range []string{"privacy.log", "root.state", "dnstap.fstrm"} {
		if _, ok := files[filepath.Join(dir, want)]; !ok {
			t.Errorf("the resolver wrote no %s", want)
		}
	}
	for name, data := range files {
		for _, c := range clients {
			if bytes.Contains(data, []byte(c.String())) {
				t.Errorf("%s contains the client address %s", name, c)
			}
			raw := c.As4()
			if bytes.Contains(data, raw[:]) {
				t.Errorf("%s contains the client address %s as 4 bytes", name, c)
			}
		}
	}
	checkPrivacyQueryLog(t, filepath.Join(dir, "querylog"), clients)
	// The capture holds the clients' networks, so the search above looked
	// at real client messages.
	captured := files[filepath.Join(dir, "dnstap.fstrm")]
	for _, c := range clients {
		network := netip.PrefixFrom(c, 24).Masked().Addr().As4()
		if !bytes.Contains(captured, network[:]) {
			t.Errorf("the dnstap capture has no message from %s/24", netip.PrefixFrom(c, 24).Masked().Addr())
		}
	}
}

// checkPrivacyQueryLog checks that the query log holds three lines for
// each client, with its /24, and that the aggregates hold the two names
// that every client queried and none of the names of one client.
func checkPrivacyQueryLog(t *testing.T, dir string, clients []netip.Addr) {
	t.Helper()
	p := lab.Info.Policy
	lines, rows := 0, map[string]float64{}
	perPrefix := map[string]int{}
	blocked := 0
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("query log directory: %v", err)
	}
	for _, e := range entries {
		for _, m := range readJSONLines(t, filepath.Join(dir, e.Name())) {
			switch {
			case strings.HasPrefix(e.Name(), "queries-"):
				client, _ := m["client"].(string)
				if !strings.HasPrefix(client, "127.77.") {
					continue // the start-up probe from 127.0.0.1
				}
				lines++
				perPrefix[client]++
				if m["qname"] == p.ListedName && m["list"] != nil && m["category"] != nil {
					blocked++
				}
			case strings.HasPrefix(e.Name(), "aggregates-"):
				rows[m["qname"].(string)] = m["clients"].(float64)
			}
		}
	}
	if want := 3 * len(clients); lines != want {
		t.Errorf("query log has %d lines from the workload's clients, want %d", lines, want)
	}
	if blocked != len(clients) {
		t.Errorf("%d query log lines of %s name the list and category, want %d", blocked, p.ListedName, len(clients))
	}
	for ti := range privacyTransports {
		prefix := fmt.Sprintf("127.77.%d.0/24", 10+ti)
		if want := 3 * privacyClientsPerTransport; perPrefix[prefix] != want {
			t.Errorf("query log has %d lines with client %s, want %d (lines per client: %v)", perPrefix[prefix], prefix, want, perPrefix)
		}
	}
	for _, name := range []string{p.CleanName, p.ListedName} {
		qname := dns.Fqdn(strings.ToLower(name))
		if rows[qname] != float64(len(clients)) {
			t.Errorf("aggregates count %v clients for %s, want %d (rows: %v)", rows[qname], qname, len(clients), rows)
		}
	}
	if len(rows) != 2 {
		t.Errorf("aggregates have %d names, want only the 2 that at least 3 clients queried: %v", len(rows), rows)
	}
}

func readJSONLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Errorf("%s: line %q is not JSON: %v", path, sc.Text(), err)
			continue
		}
		out = append(out, m)
	}
	return out
}

func scrapeText(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: HTTP %d, %v", url, resp.StatusCode, err)
	}
	return string(body)
}
