package integration

import (
	"bufio"
	"bytes"
	endian "encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"bulwark/test/labkit"

	"github.com/miekg/dns"
)

// capturedMessage is one DNS message over UDP between the resolver and a
// lab server, read from a packet capture.
type capturedMessage struct {
	from, to netip.Addr
	msg      *dns.Msg
	cookie   []byte // COOKIE option data, nil when absent
}

// TestCookieClientLab resolves names through a resolver of its own while
// tcpdump captures the loopback traffic to the lab's servers. Queries to
// every server carry a client cookie. The instances with cookies get their
// server cookie back in later queries: Knot DNS with mod-cookies, which
// sends BADCOOKIE to a query without a valid server cookie, and NSD with
// answer-cookie. The others respond without cookies and are used all the
// same.
func TestCookieClientLab(t *testing.T) {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Fatal("tcpdump not found: install it with lab/deps.sh tcpdump")
	}
	dir := t.TempDir()
	capture := filepath.Join(dir, "lab.pcap")
	tcpdump := startTcpdump(t, capture)

	dnsPort := port + 111
	path := filepath.Join(dir, "cookies.yaml")
	writeDerivedConfig(t, path, dnsPort, "")
	addr := net.JoinHostPort(resolver, strconv.Itoa(dnsPort))
	cmd, err := labkit.StartBulwark(binary, path, addr, filepath.Join(dir, "cookies.log"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := labkit.ReadExpected(lab.Info.Expected)
	if err != nil {
		t.Fatal(err)
	}
	resolved := 0
	for _, row := range rows {
		if row.Rcode != "NOERROR" || row.Value == "-" || resolved == 40 {
			continue
		}
		r, err := kdig(resolver, dnsPort, row.Name, row.Type)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != row.Rcode {
			t.Errorf("%s %s: rcode %s, want %s", row.Name, row.Type, r.Status, row.Rcode)
		}
		resolved++
	}
	if err := labkit.StopProcess(cmd); err != nil {
		t.Errorf("resolver did not stop cleanly: %v", err)
	}
	stopTcpdump(t, tcpdump)
	checkCookieCapture(t, readPcap(t, capture))
}

// startTcpdump captures UDP on the loopback interface between lab server
// addresses and the lab's authoritative port into file.
func startTcpdump(t *testing.T, file string) *exec.Cmd {
	t.Helper()
	filter := "udp and net 127.53.0.0/16 and port " + strconv.Itoa(lab.Info.AuthPort)
	cmd := exec.Command("tcpdump", "-i", "lo", "-U", "-s", "0", "-w", file, filter)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start tcpdump: %v", err)
	}
	// tcpdump reports "listening on lo" once its capture runs.
	listening := make(chan struct{})
	go func() {
		scanner := bufio.NewScanner(stderr)
		for scanner.Scan() {
			if strings.Contains(scanner.Text(), "listening on") {
				close(listening)
				break
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case <-listening:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("tcpdump did not report listening on lo in 10s")
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd
}

// stopTcpdump ends the capture with SIGINT, after which tcpdump flushes
// and closes its file.
func stopTcpdump(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	time.Sleep(200 * time.Millisecond) // let the last packets reach the capture
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatalf("stop tcpdump: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Fatalf("tcpdump: %v", err)
		}
	}
}

// readPcap returns the DNS messages of a capture in the classic pcap
// format, with Ethernet (the loopback interface) or Linux cooked headers.
func readPcap(t *testing.T, file string) []capturedMessage {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 24 || endian.LittleEndian.Uint32(data) != 0xa1b2c3d4 {
		t.Fatalf("%s is not a little-endian pcap file", file)
	}
	linkLen := map[uint32]int{1: 14, 113: 16, 276: 20}[endian.LittleEndian.Uint32(data[20:])]
	if linkLen == 0 {
		t.Fatalf("%s: link type %d not handled", file, endian.LittleEndian.Uint32(data[20:]))
	}
	var out []capturedMessage
	for rest := data[24:]; len(rest) >= 16; {
		n := int(endian.LittleEndian.Uint32(rest[8:]))
		if len(rest) < 16+n {
			break
		}
		if m, ok := parseUDPDNS(rest[16 : 16+n][linkLen:]); ok {
			out = append(out, m)
		}
		rest = rest[16+n:]
	}
	return out
}

// parseUDPDNS reads an IPv4 packet carrying a DNS message over UDP.
func parseUDPDNS(pkt []byte) (capturedMessage, bool) {
	if len(pkt) < 20 || pkt[0]>>4 != 4 || pkt[9] != 17 {
		return capturedMessage{}, false
	}
	ihl := int(pkt[0]&0x0f) * 4
	if len(pkt) < ihl+8 {
		return capturedMessage{}, false
	}
	m := capturedMessage{from: netip.AddrFrom4([4]byte(pkt[12:16])), to: netip.AddrFrom4([4]byte(pkt[16:20])),
		msg: new(dns.Msg)}
	if err := m.msg.Unpack(pkt[ihl+8:]); err != nil {
		return capturedMessage{}, false
	}
	if opt := m.msg.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if c, ok := o.(*dns.EDNS0_COOKIE); ok {
				m.cookie, _ = hex.DecodeString(c.Cookie)
			}
		}
	}
	return m, true
}

// checkCookieCapture checks the cookies of every exchange in msgs against
// what the lab instance of each server address does.
func checkCookieCapture(t *testing.T, msgs []capturedMessage) {
	t.Helper()
	withCookies := map[netip.Addr]bool{}
	known := map[netip.Addr]bool{}
	for _, in := range lab.Info.Instances {
		for _, a := range in.Addresses {
			if addr, err := netip.ParseAddr(a); err == nil {
				withCookies[addr] = in.Cookies
				known[addr] = true
			}
		}
	}
	var queries, cookieServers, plainServers, returned, badCookies int
	lastServerCookie := map[netip.Addr][]byte{}
	for _, m := range msgs {
		if !m.msg.Response {
			queries++
			if m.msg.IsEdns0() != nil && len(m.cookie) < 8 {
				t.Errorf("query %s to %s has EDNS but COOKIE %x, want a client cookie", m.msg.Question[0].Name, m.to, m.cookie)
			}
			if sc := lastServerCookie[m.to]; sc != nil && len(m.cookie) > 8 && bytes.Equal(m.cookie[8:], sc) {
				returned++
			}
			continue
		}
		if !known[m.from] {
			continue // a labstub listener
		}
		switch {
		case withCookies[m.from] && m.cookie == nil && m.msg.IsEdns0() != nil:
			t.Errorf("response from %s, which answers cookies, has no COOKIE", m.from)
		case withCookies[m.from] && m.cookie != nil:
			cookieServers++
			lastServerCookie[m.from] = append([]byte(nil), m.cookie[8:]...)
		case !withCookies[m.from] && m.cookie != nil:
			t.Errorf("response from %s, which does not answer cookies, has COOKIE %x", m.from, m.cookie)
		default:
			plainServers++
		}
		if m.msg.Rcode == dns.RcodeBadCookie {
			badCookies++
		}
	}
	t.Logf("%d queries; responses: %d with cookies (%d BADCOOKIE), %d without; %d queries sent a server cookie back",
		queries, cookieServers, badCookies, plainServers, returned)
	if cookieServers == 0 || plainServers == 0 {
		t.Errorf("responses with cookies %d, without %d; want servers of both kinds", cookieServers, plainServers)
	}
	if returned == 0 {
		t.Error("no query sent back a server cookie that its server had returned")
	}
	if badCookies == 0 {
		t.Error("no BADCOOKIE from Knot DNS mod-cookies, whose first response to a new client should be one")
	}
}
