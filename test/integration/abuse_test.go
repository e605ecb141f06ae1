package integration

import (
	endian "encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"bulwark/test/labkit"

	"github.com/miekg/dns"
)

// rawHeader returns a query header with the given flags and counts.
func rawHeader(flags uint16, qd, an, ns, ar uint16) []byte {
	h := make([]byte, 12)
	endian.BigEndian.PutUint16(h, 0x4242)
	for i, v := range []uint16{flags, qd, an, ns, ar} {
		endian.BigEndian.PutUint16(h[2+2*i:], v)
	}
	return h
}

// rootQuestion is the question ". NS IN".
var rootQuestion = []byte{0, 0, 2, 0, 1}

// opt returns an OPT record with owner name owner (wire form) and rdata.
func opt(owner, rdata []byte) []byte {
	b := append([]byte(nil), owner...)
	b = append(b, 0, 41, 4, 0xd0, 0, 0, 0, 0)
	b = endian.BigEndian.AppendUint16(b, uint16(len(rdata)))
	return append(b, rdata...)
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// malformedCases are packets that Bulwark must answer with an error or
// drop. rcode -1 means no response.
func malformedCases() []struct {
	name  string
	pkt   []byte
	rcode int
} {
	longLabel := append([]byte{64}, make([]byte, 64)...)
	longLabel = append(longLabel, 0)
	var longName []byte
	for range 5 {
		longName = append(longName, 60)
		longName = append(longName, []byte(strings.Repeat("a", 60))...)
	}
	longName = append(longName, 0)
	return []struct {
		name  string
		pkt   []byte
		rcode int
	}{
		{"short header", []byte{0x42, 0x42, 1, 0, 0}, -1},
		{"response bit set", cat(rawHeader(0x8100, 1, 0, 0, 0), rootQuestion), -1},
		{"no question", rawHeader(0x0100, 0, 0, 0, 0), dns.RcodeFormatError},
		{"two questions", cat(rawHeader(0x0100, 2, 0, 0, 0), rootQuestion, rootQuestion), dns.RcodeFormatError},
		{"question cut short", cat(rawHeader(0x0100, 1, 0, 0, 0), []byte{0, 0}), dns.RcodeFormatError},
		{"count beyond packet", cat(rawHeader(0x0100, 1, 3, 0, 0), rootQuestion), dns.RcodeFormatError},
		{"compression loop", cat(rawHeader(0x0100, 1, 0, 0, 0), []byte{0xc0, 12, 0, 2, 0, 1}), dns.RcodeFormatError},
		{"forward pointer", cat(rawHeader(0x0100, 1, 0, 0, 0), []byte{0xc0, 40, 0, 2, 0, 1}), dns.RcodeFormatError},
		{"label over 63", cat(rawHeader(0x0100, 1, 0, 0, 0), longLabel, []byte{0, 1, 0, 1}), dns.RcodeFormatError},
		{"name over 255", cat(rawHeader(0x0100, 1, 0, 0, 0), longName, []byte{0, 1, 0, 1}), dns.RcodeFormatError},
		{"OPT not at root", cat(rawHeader(0x0100, 1, 0, 0, 1), rootQuestion, opt([]byte{1, 'a', 0}, nil)), dns.RcodeFormatError},
		{"two OPT records", cat(rawHeader(0x0100, 1, 0, 0, 2), rootQuestion, opt([]byte{0}, nil), opt([]byte{0}, nil)), dns.RcodeFormatError},
		{"option longer than OPT", cat(rawHeader(0x0100, 1, 0, 0, 1), rootQuestion, opt([]byte{0}, []byte{0, 10, 0, 20, 1, 2})), dns.RcodeFormatError},
		{"COOKIE of 5 bytes", cat(rawHeader(0x0100, 1, 0, 0, 1), rootQuestion, opt([]byte{0}, []byte{0, 10, 0, 5, 1, 2, 3, 4, 5})), dns.RcodeFormatError},
		{"unknown class", cat(rawHeader(0x0100, 1, 0, 0, 0), []byte{0, 0, 2, 0x0f, 0xa0}), dns.RcodeRefused},
		{"unknown opcode", cat(rawHeader(0x0100|3<<11, 1, 0, 0, 0), rootQuestion), dns.RcodeNotImplemented},
	}
}

// exchangeRaw sends pkt over network and returns the response, or nil when
// none came within a second.
func exchangeRaw(t *testing.T, network, addr string, pkt []byte) []byte {
	t.Helper()
	conn, err := net.DialTimeout(network, addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Second))
	if network == "udp" {
		if _, err := conn.Write(pkt); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 65535)
		n, err := conn.Read(buf)
		if err != nil {
			return nil
		}
		return buf[:n]
	}
	if _, err := conn.Write(endian.BigEndian.AppendUint16(nil, uint16(len(pkt)))); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(pkt); err != nil {
		t.Fatal(err)
	}
	var length [2]byte
	if _, err := io.ReadFull(conn, length[:]); err != nil {
		return nil
	}
	resp := make([]byte, endian.BigEndian.Uint16(length[:]))
	if _, err := io.ReadFull(conn, resp); err != nil {
		return nil
	}
	return resp
}

// TestMalformedQueries sends each kind of malformed packet to the lab's
// resolver over UDP and TCP and checks the rcode or the silence, and that
// the next normal query is answered.
func TestMalformedQueries(t *testing.T) {
	addr := net.JoinHostPort(resolver, strconv.Itoa(port))
	for _, network := range []string{"udp", "tcp"} {
		for _, tc := range malformedCases() {
			t.Run(network+"/"+tc.name, func(t *testing.T) {
				resp := exchangeRaw(t, network, addr, tc.pkt)
				switch {
				case tc.rcode < 0 && resp != nil:
					t.Errorf("response %x, want none", resp)
				case tc.rcode >= 0 && len(resp) < 12:
					t.Errorf("response %x, want a header with rcode %s", resp, dns.RcodeToString[tc.rcode])
				case tc.rcode >= 0:
					if got := int(resp[3] & 0x0f); got != tc.rcode || resp[2]&0x80 == 0 {
						t.Errorf("rcode %s, QR %v; want %s with QR", dns.RcodeToString[got], resp[2]&0x80 != 0, dns.RcodeToString[tc.rcode])
					}
					if id := endian.BigEndian.Uint16(resp); id != 0x4242 {
						t.Errorf("response ID %#x, want the query's 0x4242", id)
					}
				}
				r, err := kdig(resolver, port, ".", "NS", map[string]string{"udp": "+notcp", "tcp": "+tcp"}[network])
				if err != nil || r.Status != "NOERROR" || len(r.Answer) == 0 {
					t.Errorf("normal query after it: %v, %v; want NOERROR with NS records", r, err)
				}
			})
		}
	}
}

var kdigCookieRe = regexp.MustCompile(`;; COOKIE: ([0-9A-Fa-f]+)`)

// kdigCookie runs kdig with +cookie (a client cookie, or HEX to send) and
// returns the COOKIE that the response carried.
func kdigCookie(t *testing.T, cookieArg string) (string, *kdigResult) {
	t.Helper()
	r, err := kdig(resolver, port, ".", "NS", "+cookie"+cookieArg)
	if err != nil {
		t.Fatal(err)
	}
	m := kdigCookieRe.FindStringSubmatch(r.Output)
	if m == nil {
		t.Fatalf("kdig printed no COOKIE:\n%s", r.Output)
	}
	return strings.ToLower(m[1]), r
}

// TestKdigCookie checks server cookies with kdig: a query with a client
// cookie gets a 16-byte server cookie of version 1 after it, and one that
// sends that cookie back gets a fresh one, answered from the cache too.
func TestKdigCookie(t *testing.T) {
	const clientCookie = "0102030405060708"
	got, r := kdigCookie(t, "="+clientCookie)
	if r.Status != "NOERROR" || len(got) != 48 || got[:16] != clientCookie || got[16:18] != "01" {
		t.Fatalf("first response: status %s, COOKIE %s; want NOERROR, the client cookie and a version 1 server cookie", r.Status, got)
	}
	again, r := kdigCookie(t, "="+got)
	if r.Status != "NOERROR" || len(again) != 48 || again[:16] != clientCookie {
		t.Errorf("second response: status %s, COOKIE %s; want NOERROR with the client cookie", r.Status, again)
	}
	if strings.Contains(r.Output, "BADCOOKIE") {
		t.Errorf("a returned server cookie got BADCOOKIE:\n%s", r.Output)
	}
	bad, err := kdig(resolver, port, ".", "NS", "+ednsopt=10:0102030405")
	if err != nil {
		t.Fatal(err)
	}
	if bad.Status != "FORMERR" {
		t.Errorf("5-byte COOKIE: status %s, want FORMERR", bad.Status)
	}
}

// abuseResolver starts a resolver beside the lab's on port+110 with the
// server keys in serverKeys, and returns its address.
func abuseResolver(t *testing.T, serverKeys string) string {
	t.Helper()
	dnsPort := port + 110
	dir := t.TempDir()
	path := filepath.Join(dir, "abuse.yaml")
	writeDerivedConfig(t, path, dnsPort, "")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	if !strings.Contains(text, "server:\n") {
		t.Fatal("derived config has no server section")
	}
	text = strings.Replace(text, "server:\n", "server:\n"+serverKeys, 1)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort(resolver, strconv.Itoa(dnsPort))
	cmd, err := labkit.StartBulwark(binary, path, addr, filepath.Join(dir, "abuse.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := labkit.StopProcess(cmd); err != nil {
			t.Errorf("resolver did not stop cleanly: %v", err)
		}
	})
	return addr
}

// exchangeFrom sends m over UDP from the local address from and returns
// the response, or nil after a second of silence.
func exchangeFrom(t *testing.T, from, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(from)}, Timeout: 2 * time.Second}
	conn, err := d.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	wire, _ := m.Pack()
	conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write(wire); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	n, err := conn.Read(buf)
	if err != nil {
		return nil
	}
	r := new(dns.Msg)
	if err := r.Unpack(buf[:n]); err != nil {
		t.Fatalf("unpack response: %v", err)
	}
	return r
}

// TestRecursionRefused binds clients to 127.0.0.1, inside the allow list,
// and 127.0.0.7, outside it: the second gets REFUSED with EDE 18, for a
// name the first has put in the cache too.
func TestRecursionRefused(t *testing.T) {
	addr := abuseResolver(t, "  recursion:\n    allow: [127.0.0.1/32]\n")
	m := new(dns.Msg)
	m.SetQuestion(".", dns.TypeNS)
	m.SetEdns0(1232, false)
	if r := exchangeFrom(t, "127.0.0.1", addr, m); r == nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		t.Fatalf("allowed client: %v, want NS records", r)
	}
	r := exchangeFrom(t, "127.0.0.7", addr, m)
	if r == nil || r.Rcode != dns.RcodeRefused || len(r.Answer) != 0 {
		t.Fatalf("client outside the allow list: %v, want REFUSED without answers", r)
	}
	ede := -1
	for _, o := range r.IsEdns0().Option {
		if e, ok := o.(*dns.EDNS0_EDE); ok {
			ede = int(e.InfoCode)
		}
	}
	if ede != 18 {
		t.Errorf("EDE %d, want 18 (Prohibited)", ede)
	}
	c := dns.Client{Net: "tcp", Timeout: 2 * time.Second,
		Dialer: &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.7")}}}
	if r, _, err := c.Exchange(m, addr); err != nil || r.Rcode != dns.RcodeRefused {
		t.Errorf("client outside the allow list over TCP: %v, %v; want REFUSED", r, err)
	}
}

// TestRecursionOpenFlavour allows recursion to 127.0.0.1 only and opens the
// protective flavour to everyone: a client at 127.0.0.7 gets answers on the
// protective listener (127.0.0.2) and REFUSED with EDE 18 on the unfiltered
// one, over UDP and TCP.
func TestRecursionOpenFlavour(t *testing.T) {
	unfiltered := abuseResolver(t, "  recursion:\n    allow: [127.0.0.1/32]\n    open_flavours: [protective]\n")
	_, dnsPort, err := net.SplitHostPort(unfiltered)
	if err != nil {
		t.Fatal(err)
	}
	protective := net.JoinHostPort("127.0.0.2", dnsPort)
	m := new(dns.Msg)
	m.SetQuestion(".", dns.TypeNS)
	m.SetEdns0(1232, false)
	if r := exchangeFrom(t, "127.0.0.7", protective, m); r == nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		t.Errorf("open protective flavour: %v, want NS records", r)
	}
	r := exchangeFrom(t, "127.0.0.7", unfiltered, m)
	if r == nil || r.Rcode != dns.RcodeRefused || len(r.Answer) != 0 {
		t.Fatalf("unfiltered flavour, client outside the allow list: %v, want REFUSED without answers", r)
	}
	ede := -1
	for _, o := range r.IsEdns0().Option {
		if e, ok := o.(*dns.EDNS0_EDE); ok {
			ede = int(e.InfoCode)
		}
	}
	if ede != 18 {
		t.Errorf("EDE %d, want 18 (Prohibited)", ede)
	}
	c := dns.Client{Net: "tcp", Timeout: 2 * time.Second,
		Dialer: &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.7")}}}
	if r, _, err := c.Exchange(m, protective); err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		t.Errorf("open protective flavour over TCP: %v, %v; want NS records", r, err)
	}
	if r, _, err := c.Exchange(m, unfiltered); err != nil || r.Rcode != dns.RcodeRefused {
		t.Errorf("unfiltered flavour over TCP: %v, %v; want REFUSED", r, err)
	}
	if r := exchangeFrom(t, "127.0.0.1", unfiltered, m); r == nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		t.Errorf("allowed client on the unfiltered flavour: %v, want NS records", r)
	}
}

// TestRateLimitBurst sends a burst over UDP from 127.0.0.9 with no network
// exempt and a limit of 10 a second: past the burst, every second response
// is an empty one with TC set and the others are dropped. A query with a
// client cookie gets BADCOOKIE; sent back, its server cookie is exempt.
// TCP stays open.
func TestRateLimitBurst(t *testing.T) {
	addr := abuseResolver(t, "  rate_limit:\n    responses_per_second: 10\n    exempt: []\n")
	m := new(dns.Msg)
	m.SetQuestion(".", dns.TypeNS)
	if r := exchangeFrom(t, "127.0.0.9", addr, m); r == nil || len(r.Answer) == 0 { // fill the cache
		t.Fatalf("first query: %v, want NS records", r)
	}

	d := net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP("127.0.0.9")}}
	conn, err := d.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	wire, _ := m.Pack()
	const sent = 40
	for range sent {
		conn.Write(wire)
	}
	answers, truncated := 0, 0
	buf := make([]byte, 65535)
	for {
		conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := conn.Read(buf)
		if err != nil {
			break
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:n]); err != nil {
			t.Fatal(err)
		}
		if r.Truncated && len(r.Answer) == 0 {
			truncated++
		} else if len(r.Answer) > 0 {
			answers++
		}
	}
	dropped := sent - answers - truncated
	t.Logf("burst of %d: %d answers, %d truncated, %d dropped", sent, answers, truncated, dropped)
	if answers > 12 {
		t.Errorf("answers = %d, want at most the burst of 10 and a refill or two", answers)
	}
	if truncated < 10 || dropped < 10 {
		t.Errorf("truncated %d, dropped %d; want about half of the %d limited each", truncated, dropped, sent-answers)
	}

	// With the bucket empty again, a client cookie gets BADCOOKIE and a
	// server cookie, which then passes. Each try first empties the bucket
	// with 80 queries. A dropped try waits a second, which refills the
	// bucket to its burst of 10, so each try then makes 71 limited
	// responses: an odd number, so that the slip counter's parity changes
	// between tries. With slip 2, one limited response in two is sent
	// and the other dropped.
	cm := m.Copy()
	cm.SetEdns0(1232, false)
	cm.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "1122334455667788"}}
	var serverCookie string
	for range 8 {
		for range 2 * sent {
			conn.Write(wire)
		}
		r := exchangeFrom(t, "127.0.0.9", addr, cm)
		if r == nil {
			continue
		}
		if r.Rcode != dns.RcodeBadCookie {
			t.Fatalf("limited query with a client cookie: rcode %d, want BADCOOKIE", r.Rcode)
		}
		serverCookie = r.IsEdns0().Option[0].(*dns.EDNS0_COOKIE).Cookie
		break
	}
	if serverCookie == "" {
		t.Fatal("no BADCOOKIE response in eight queries after the burst")
	}
	cm.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: serverCookie}}
	for i := range 5 {
		if r := exchangeFrom(t, "127.0.0.9", addr, cm); r == nil || len(r.Answer) == 0 {
			t.Fatalf("query %d with a valid server cookie: %v, want NS records", i, r)
		}
	}

	c := dns.Client{Net: "tcp", Timeout: 2 * time.Second,
		Dialer: &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.9")}}}
	if r, _, err := c.Exchange(m, addr); err != nil || len(r.Answer) == 0 {
		t.Errorf("TCP while UDP is limited: %v, %v; want NS records", r, err)
	}
}
