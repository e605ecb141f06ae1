package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	endian "encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// insecureTLS accepts the lab resolver's self-signed certificate.
func insecureTLS(sni string, alpn ...string) *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, ServerName: sni, NextProtos: alpn}
}

// dnsQuery returns a query for name and qtype with EDNS, and DO when do
// is set.
func dnsQuery(name string, qtype uint16, do bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(1232, do)
	return m
}

// exchangeDoT sends m over a new DoT connection.
func exchangeDoT(t *testing.T, addr, sni string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := dns.Client{Net: "tcp-tls", TLSConfig: insecureTLS(sni), Timeout: 10 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("DoT %s: %v", addr, err)
	}
	return r
}

// dohClient is an HTTP/2 client for the lab's DoH listener.
func dohClient(sni string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: insecureTLS(sni), ForceAttemptHTTP2: true,
	}}
}

// h3Client is an HTTP/3 client for the lab's DoH listener.
func h3Client() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http3.Transport{TLSClientConfig: insecureTLS("")}}
}

// exchangeDoH sends m to url with client, by GET when get is set, else by
// POST, and returns the response and the HTTP response.
func exchangeDoH(t *testing.T, client *http.Client, url string, m *dns.Msg, get bool) (*dns.Msg, *http.Response) {
	t.Helper()
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	var req *http.Request
	if get {
		req, err = http.NewRequest(http.MethodGet, url+"?dns="+base64.RawURLEncoding.EncodeToString(wire), nil)
	} else {
		req, err = http.NewRequest(http.MethodPost, url, bytes.NewReader(wire))
		req.Header.Set("Content-Type", "application/dns-message")
	}
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/dns-message")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("DoH %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DoH %s: HTTP %d: %s", url, resp.StatusCode, body)
	}
	r := new(dns.Msg)
	if err := r.Unpack(body); err != nil {
		t.Fatalf("DoH %s: response does not parse: %v", url, err)
	}
	return r, resp
}

// exchangeDoQ sends m over a new DoQ connection; the ID is set to 0 as
// RFC 9250 requires.
func exchangeDoQ(t *testing.T, addr, sni string, m *dns.Msg) *dns.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, addr, insecureTLS(sni, "doq"), nil)
	if err != nil {
		t.Fatalf("DoQ %s: %v", addr, err)
	}
	defer conn.CloseWithError(0, "")
	return doqOnConn(t, ctx, conn, m)
}

func doqOnConn(t *testing.T, ctx context.Context, conn *quic.Conn, m *dns.Msg) *dns.Msg {
	t.Helper()
	q := m.Copy()
	q.Id = 0
	wire, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatalf("DoQ stream: %v", err)
	}
	frame := endian.BigEndian.AppendUint16(nil, uint16(len(wire)))
	if _, err := st.Write(append(frame, wire...)); err != nil {
		t.Fatalf("DoQ write: %v", err)
	}
	st.Close()
	st.SetReadDeadline(time.Now().Add(10 * time.Second))
	body, err := io.ReadAll(st)
	if err != nil || len(body) < 2 || int(endian.BigEndian.Uint16(body)) != len(body)-2 {
		t.Fatalf("DoQ read: %v (%d bytes)", err, len(body))
	}
	r := new(dns.Msg)
	if err := r.Unpack(body[2:]); err != nil {
		t.Fatalf("DoQ response does not parse: %v", err)
	}
	return r
}

// rrStrings returns the records of a section without TTLs, sorted.
func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		c := dns.Copy(rr)
		c.Header().Ttl = 0
		out = append(out, c.String())
	}
	slices.Sort(out)
	return out
}

// ede returns the EDE code of m, or -1.
func edeOf(m *dns.Msg) int {
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				return int(e.InfoCode)
			}
		}
	}
	return -1
}

// TestEncryptedAnswersMatchPlain asks the same questions over plain DNS and
// over each encrypted transport of the lab config: DoT and DoH with kdig,
// DoH over HTTP/2 by GET and POST, DoH over HTTP/3 and DoQ with Go
// clients. The answers must be the same.
func TestEncryptedAnswersMatchPlain(t *testing.T) {
	p := lab.Info.Policy
	dnssecZone := "lab-dnssec.net."
	questions := []struct {
		name  string
		qtype uint16
		do    bool
	}{
		{p.CleanName, dns.TypeA, false},
		{p.CleanName, dns.TypeNULL, false}, // NODATA
		{"no-such-name." + p.CleanName, dns.TypeA, false},
		{dnssecZone, dns.TypeDNSKEY, true}, // with RRSIGs
		{dnssecZone, dns.TypeSOA, false},
	}
	doh := "https://" + lab.Info.DoHAddress + "/dns-query"
	h2, h3 := dohClient(""), h3Client()
	for _, q := range questions {
		t.Run(fmt.Sprintf("%s/%s", q.name, dns.TypeToString[q.qtype]), func(t *testing.T) {
			plain, _, err := (&dns.Client{Timeout: 10 * time.Second}).Exchange(dnsQuery(q.name, q.qtype, q.do), lab.Info.ResolverAddress)
			if err != nil {
				t.Fatal(err)
			}
			if q.do && !slices.ContainsFunc(plain.Answer, func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeRRSIG }) {
				t.Fatalf("plain DNS answer has no RRSIG with DO set:\n%s", plain)
			}
			got := map[string]*dns.Msg{
				"DoT":        exchangeDoT(t, lab.Info.DoTAddress, "", dnsQuery(q.name, q.qtype, q.do)),
				"DoQ":        exchangeDoQ(t, lab.Info.DoQAddress, "", dnsQuery(q.name, q.qtype, q.do)),
				"DoH/2 GET":  first(exchangeDoH(t, h2, doh, dnsQuery(q.name, q.qtype, q.do), true)),
				"DoH/2 POST": first(exchangeDoH(t, h2, doh, dnsQuery(q.name, q.qtype, q.do), false)),
				"DoH/3 GET":  first(exchangeDoH(t, h3, doh, dnsQuery(q.name, q.qtype, q.do), true)),
				"DoH/3 POST": first(exchangeDoH(t, h3, doh, dnsQuery(q.name, q.qtype, q.do), false)),
			}
			for transport, r := range got {
				if r.Rcode != plain.Rcode {
					t.Errorf("%s: %s, plain DNS %s", transport, dns.RcodeToString[r.Rcode], dns.RcodeToString[plain.Rcode])
				}
				if a, b := rrStrings(r.Answer), rrStrings(plain.Answer); !slices.Equal(a, b) {
					t.Errorf("%s answer:\n%s\nplain DNS:\n%s", transport, strings.Join(a, "\n"), strings.Join(b, "\n"))
				}
				if r.AuthenticatedData != plain.AuthenticatedData {
					t.Errorf("%s: AD %v, plain DNS %v", transport, r.AuthenticatedData, plain.AuthenticatedData)
				}
			}
			// kdig, a real client, over TLS and HTTPS.
			for _, opt := range []string{"+tls", "+https"} {
				addr := lab.Info.DoTAddress
				if opt == "+https" {
					addr = lab.Info.DoHAddress
				}
				host, port := splitHostPort(t, addr)
				extra := []string{opt}
				if q.do {
					extra = append(extra, "+dnssec")
				}
				r, err := kdig(host, port, q.name, dns.TypeToString[q.qtype], extra...)
				if err != nil {
					t.Fatal(err)
				}
				if r.Status != dns.RcodeToString[plain.Rcode] {
					t.Errorf("kdig %s: %s, plain DNS %s\n%s", opt, r.Status, dns.RcodeToString[plain.Rcode], r.Output)
				}
				if len(r.Answer) != len(plain.Answer) {
					t.Errorf("kdig %s: %d answer records, plain DNS %d\n%s", opt, len(r.Answer), len(plain.Answer), r.Output)
				}
			}
		})
	}
}

func first[A, B any](a A, _ B) A { return a }

func splitHostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	p, err := net.LookupPort("tcp", portText)
	if err != nil {
		t.Fatal(err)
	}
	return host, p
}

// TestBrowserStyleDoHGet sends the GET a browser sends: base64url without
// padding, Accept application/dns-message, ID 0.
func TestBrowserStyleDoHGet(t *testing.T) {
	m := dnsQuery(lab.Info.Policy.CleanName, dns.TypeA, false)
	m.Id = 0
	r, resp := exchangeDoH(t, dohClient(""), "https://"+lab.Info.DoHAddress+"/dns-query", m, true)
	if resp.ProtoMajor != 2 {
		t.Errorf("protocol %s, want HTTP/2", resp.Proto)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/dns-message" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.HasPrefix(cc, "max-age=") {
		t.Errorf("Cache-Control %q, want a max-age from the answer's TTL", cc)
	}
	if alt := resp.Header.Get("Alt-Svc"); !strings.Contains(alt, "h3=") {
		t.Errorf("Alt-Svc %q does not offer HTTP/3", alt)
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 || r.Id != 0 {
		t.Errorf("response: %s, %d answers, ID %d", dns.RcodeToString[r.Rcode], len(r.Answer), r.Id)
	}
	for _, tt := range []struct {
		method, path, body string
		status             int
	}{
		{http.MethodGet, "/dns-query", "", http.StatusBadRequest},
		{http.MethodGet, "/dns-query?dns=!!", "", http.StatusBadRequest},
		{http.MethodGet, "/elsewhere?dns=AAAA", "", http.StatusNotFound},
		{http.MethodPut, "/dns-query", "", http.StatusMethodNotAllowed},
		{http.MethodPost, "/dns-query", "short", http.StatusUnsupportedMediaType},
	} {
		req, _ := http.NewRequest(tt.method, "https://"+lab.Info.DoHAddress+tt.path, strings.NewReader(tt.body))
		resp, err := dohClient("").Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s %s: HTTP %d, want %d", tt.method, tt.path, resp.StatusCode, tt.status)
		}
	}
}

// TestEncryptedFlavourSelection checks that the TLS server name and the
// DoH path pick the protective flavour on listeners whose own flavour is
// unfiltered.
func TestEncryptedFlavourSelection(t *testing.T) {
	listed := lab.Info.Policy.ListedName
	q := func() *dns.Msg { return dnsQuery(listed, dns.TypeA, false) }
	const sni = "protective.dns.lab"
	doh := "https://" + lab.Info.DoHAddress
	for _, tt := range []struct {
		transport string
		r         *dns.Msg
		blocked   bool
	}{
		{"DoT", exchangeDoT(t, lab.Info.DoTAddress, "", q()), false},
		{"DoT with SNI", exchangeDoT(t, lab.Info.DoTAddress, sni, q()), true},
		{"DoQ", exchangeDoQ(t, lab.Info.DoQAddress, "", q()), false},
		{"DoQ with SNI", exchangeDoQ(t, lab.Info.DoQAddress, sni, q()), true},
		{"DoH /dns-query", first(exchangeDoH(t, dohClient(""), doh+"/dns-query", q(), true)), false},
		{"DoH /protective", first(exchangeDoH(t, dohClient(""), doh+"/protective", q(), true)), true},
		{"DoH with SNI", first(exchangeDoH(t, dohClient(sni), doh+"/dns-query", q(), false)), true},
	} {
		if got := edeOf(tt.r) == 15; got != tt.blocked {
			t.Errorf("%s: blocked %v (EDE %d), want %v", tt.transport, got, edeOf(tt.r), tt.blocked)
		}
	}
}

// rawExchange sends the wire query over one transport and returns the
// response as received, before any parsing.
type rawExchange func(t *testing.T, query []byte) []byte

func rawDoT(t *testing.T, query []byte) []byte {
	t.Helper()
	conn, err := tls.Dial("tcp", lab.Info.DoTAddress, insecureTLS(""))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(append(endian.BigEndian.AppendUint16(nil, uint16(len(query))), query...)); err != nil {
		t.Fatal(err)
	}
	var hdr [2]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		t.Fatal(err)
	}
	resp := make([]byte, endian.BigEndian.Uint16(hdr[:]))
	if _, err := io.ReadFull(conn, resp); err != nil {
		t.Fatal(err)
	}
	return resp
}

func rawDoH(t *testing.T, query []byte) []byte {
	t.Helper()
	resp, err := dohClient("").Post("https://"+lab.Info.DoHAddress+"/dns-query", "application/dns-message", bytes.NewReader(query))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("DoH: HTTP %d, %v", resp.StatusCode, err)
	}
	return body
}

func rawDoQ(t *testing.T, query []byte) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, lab.Info.DoQAddress, insecureTLS("", "doq"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.Write(append(endian.BigEndian.AppendUint16(nil, uint16(len(query))), query...))
	st.Close()
	st.SetReadDeadline(time.Now().Add(10 * time.Second))
	body, err := io.ReadAll(st)
	if err != nil || len(body) < 2 {
		t.Fatalf("DoQ read: %v (%d bytes)", err, len(body))
	}
	return body[2:]
}

// TestPaddedResponses sends padded and unpadded queries over each
// transport: responses to padded ones are multiples of 468 bytes (RFC
// 8467), others are not padded.
func TestPaddedResponses(t *testing.T) {
	query := func(pad bool) []byte {
		m := dnsQuery(lab.Info.Policy.CleanName, dns.TypeA, false)
		m.Id = 0
		if pad {
			m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_PADDING{Padding: make([]byte, 100)})
		}
		wire, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return wire
	}
	hasPadding := func(wire []byte) bool {
		m := new(dns.Msg)
		if err := m.Unpack(wire); err != nil {
			t.Fatalf("response does not parse: %v", err)
		}
		if opt := m.IsEdns0(); opt != nil {
			return slices.ContainsFunc(opt.Option, func(o dns.EDNS0) bool { return o.Option() == dns.EDNS0PADDING })
		}
		return false
	}
	for _, tt := range []struct {
		transport string
		exchange  rawExchange
	}{
		{"DoT", rawDoT},
		{"DoQ", rawDoQ},
		{"DoH", rawDoH},
	} {
		resp := tt.exchange(t, query(true))
		if len(resp)%468 != 0 || !hasPadding(resp) {
			t.Errorf("%s: padded query got %d bytes (padding option %v), want a multiple of 468", tt.transport, len(resp), hasPadding(resp))
		}
		if resp := tt.exchange(t, query(false)); hasPadding(resp) {
			t.Errorf("%s: unpadded query got a padded response of %d bytes", tt.transport, len(resp))
		}
	}
	// Plain DNS is never padded.
	padded := new(dns.Msg)
	padded.Unpack(query(true))
	r, _, err := (&dns.Client{Timeout: 5 * time.Second}).Exchange(padded, lab.Info.ResolverAddress)
	if err != nil {
		t.Fatal(err)
	}
	if opt := r.IsEdns0(); opt != nil && slices.ContainsFunc(opt.Option, func(o dns.EDNS0) bool { return o.Option() == dns.EDNS0PADDING }) {
		t.Error("plain DNS response padded")
	}
}

// TestDoTPipelinedOutOfOrder asks for the slow name, then a cached one, on
// one DoT connection: the cached answer comes first.
func TestDoTPipelinedOutOfOrder(t *testing.T) {
	cached := lab.Info.Policy.CleanName
	exchangeDoT(t, lab.Info.DoTAddress, "", dnsQuery(cached, dns.TypeA, false)) // now cached
	conn, err := tls.Dial("tcp", lab.Info.DoTAddress, insecureTLS(""))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &dns.Conn{Conn: conn}
	slow := dnsQuery("x"+fmt.Sprint(time.Now().UnixNano())+"."+strings.TrimPrefix(lab.Info.SlowName, "www."), dns.TypeA, false)
	slow.Id = 1
	fast := dnsQuery(cached, dns.TypeA, false)
	fast.Id = 2
	if err := c.WriteMsg(slow); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMsg(fast); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	var order []uint16
	for range 2 {
		r, err := c.ReadMsg()
		if err != nil {
			t.Fatalf("read after %v: %v", order, err)
		}
		order = append(order, r.Id)
	}
	if !slices.Equal(order, []uint16{2, 1}) {
		t.Errorf("responses in order %v, want the cached one (2) before the slow one (1)", order)
	}

	// The same connection keeps serving.
	again := dnsQuery(cached, dns.TypeA, false)
	again.Id = 3
	if err := c.WriteMsg(again); err != nil {
		t.Fatal(err)
	}
	if r, err := c.ReadMsg(); err != nil || r.Id != 3 {
		t.Errorf("third query on the connection: %v, %v", r, err)
	}
}

// TestDoQConnectionReuse sends several queries on one DoQ connection, one
// stream each, concurrently.
func TestDoQConnectionReuse(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, lab.Info.DoQAddress, insecureTLS("", "doq"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			name := lab.Info.Policy.CleanName
			if i%2 == 1 {
				name = "no-such-name." + name
			}
			r := doqOnConn(t, ctx, conn, dnsQuery(name, dns.TypeA, false))
			if r.Rcode == dns.RcodeServerFailure {
				errs <- fmt.Errorf("%s: SERVFAIL", name)
				return
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	// A query with a non-zero ID is a protocol error that closes the
	// connection (RFC 9250 section 4.2.1).
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bad := dnsQuery(lab.Info.Policy.CleanName, dns.TypeA, false)
	bad.Id = 77
	wire, _ := bad.Pack()
	st.Write(append(endian.BigEndian.AppendUint16(nil, uint16(len(wire))), wire...))
	st.Close()
	select {
	case <-conn.Context().Done():
	case <-time.After(10 * time.Second):
		t.Error("a query with ID 77 did not close the DoQ connection")
	}
}
