package blockpage

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// request sends method and path to s for host, from client, with a form
// body when form is not empty.
func request(t *testing.T, s *Server, method, host, path, form string, client netip.Addr) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, "http://"+host+path, strings.NewReader(form))
	if form != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.RemoteAddr = netip.AddrPortFrom(client, 40000).String()
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func wireName(t *testing.T, name string) []byte {
	t.Helper()
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(dns.Fqdn(name), buf, 0, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

func TestPageOffersProceedAnyway(t *testing.T) {
	s, _ := newServer(t)
	other := netip.MustParseAddr("192.0.2.99")
	for _, tt := range []struct {
		desc   string
		host   string
		client netip.Addr
		want   bool
	}{
		{"malware block, proceed on", "bad.example", proceedClient, true},
		{"lawful block, proceed on", "casino.example", proceedClient, false},
		{"malware block, proceed off", "bad.example", other, false},
		{"clean name", "fine.example", proceedClient, false},
	} {
		_, body := request(t, s, "GET", tt.host, "/", "", tt.client)
		if got := strings.Contains(body, `action="/proceed"`); got != tt.want {
			t.Errorf("%s: proceed button shown %v, want %v:\n%s", tt.desc, got, tt.want, body)
		}
		if tt.want && !strings.Contains(body, "for 10 minutes") {
			t.Errorf("%s: page does not say how long proceed anyway lasts:\n%s", tt.desc, body)
		}
	}
}

func TestProceedGrantsExemption(t *testing.T) {
	s, review, x, logs := newServerWithLog(t)
	code, body := request(t, s, "POST", "bad.example", "/proceed", "name=bad.example", proceedClient)
	if code != http.StatusOK {
		t.Fatalf("proceed: %d %s, want 200", code, body)
	}
	for _, want := range []string{"bad.example is open for you for 10 minutes", "60 seconds", "12:10 UTC", `href="http://bad.example/"`} {
		if !strings.Contains(body, want) {
			t.Errorf("proceed page lacks %q:\n%s", want, body)
		}
	}
	if !x.Holds(proceedClient, wireName(t, "www.bad.example"), pageNow.Add(9*time.Minute)) {
		t.Error("no exemption for the client 9 minutes later")
	}
	if x.Holds(proceedClient, wireName(t, "www.bad.example"), pageNow.Add(10*time.Minute)) {
		t.Error("exemption still holds after 10 minutes")
	}
	if x.Holds(netip.MustParseAddr("192.0.2.99"), wireName(t, "bad.example"), pageNow) {
		t.Error("exemption holds for another client")
	}
	if strings.Contains(logs.String(), proceedClient.String()) {
		t.Errorf("log contains the client address:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "proceed anyway granted") {
		t.Errorf("log lacks the grant:\n%s", logs.String())
	}
	// Nothing is written to disk: the review file is not even created.
	if entries, _ := os.ReadDir(filepath.Dir(review)); len(entries) != 0 {
		t.Errorf("files written by proceed anyway: %v, want none", entries)
	}
}

func TestProceedRejected(t *testing.T) {
	s, _, x, _ := newServerWithLog(t)
	for _, tt := range []struct {
		desc   string
		form   string
		client netip.Addr
		code   int
		text   string
	}{
		{"lawful block", "name=casino.example", proceedClient, http.StatusForbidden, "blocked by law"},
		{"flavour without proceed", "name=bad.example", netip.MustParseAddr("192.0.2.99"), http.StatusForbidden, "not offered for the list urlhaus"},
		{"name not blocked", "name=fine.example", proceedClient, http.StatusBadRequest, "fine.example is not blocked for you"},
		{"missing name", "name=", proceedClient, http.StatusBadRequest, "invalid name"},
		{"invalid name", "name=a..b", proceedClient, http.StatusBadRequest, `invalid name "a..b"`},
		{"root", "name=.", proceedClient, http.StatusBadRequest, "invalid name"},
		{"space in name", "name=bad.example%20x", proceedClient, http.StatusBadRequest, "invalid name"},
	} {
		code, body := request(t, s, "POST", "bad.example", "/proceed", tt.form, tt.client)
		if code != tt.code {
			t.Errorf("%s: status %d, want %d", tt.desc, code, tt.code)
		}
		if !strings.Contains(body, tt.text) {
			t.Errorf("%s: body %q, want it to contain %q", tt.desc, body, tt.text)
		}
	}
	if n := x.Len(); n != 0 {
		t.Errorf("%d exemptions after rejected requests, want 0", n)
	}
}

func TestProceedOffWithoutExemptions(t *testing.T) {
	s, _ := newServer(t)
	s.cfg.Exemptions = nil
	_, body := request(t, s, "GET", "bad.example", "/", "", proceedClient)
	if strings.Contains(body, `action="/proceed"`) {
		t.Errorf("proceed button shown without an exemption table:\n%s", body)
	}
	if code, _ := request(t, s, "POST", "bad.example", "/proceed", "name=bad.example", proceedClient); code != http.StatusForbidden {
		t.Errorf("proceed without an exemption table: %d, want 403", code)
	}
}

func TestHumanDuration(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{10 * time.Minute, "10 minutes"},
		{time.Hour, "1 hour"},
		{90 * time.Minute, "1 hour 30 minutes"},
		{24 * time.Hour, "24 hours"},
		{61 * time.Second, "1 minute 1 second"},
		{time.Millisecond, "less than a second"},
	} {
		if got := humanDuration(tt.d); got != tt.want {
			t.Errorf("humanDuration(%s) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestTrimComment(t *testing.T) {
	long := strings.Repeat("é", MaxCommentBytes) // two bytes each
	got := TrimComment(long)
	if len(got) > MaxCommentBytes {
		t.Errorf("TrimComment kept %d bytes, want at most %d", len(got), MaxCommentBytes)
	}
	if !strings.HasSuffix(got, "é") || len(got)%2 != 0 {
		t.Errorf("TrimComment cut inside a character: ends with %q", got[len(got)-2:])
	}
	if got := TrimComment("short"); got != "short" {
		t.Errorf("TrimComment(%q) = %q, want it unchanged", "short", got)
	}
}
