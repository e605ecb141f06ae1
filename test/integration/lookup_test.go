package integration

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"bulwark/test/labkit"

	"golang.org/x/net/idna"
)

// lookupLab is a resolver on the lab with the public lookup on its admin
// listener, a block page, a lawful list, and clients 127.0.0.3 and
// 127.0.0.4 in a flavour with proceed anyway on.
type lookupLab struct {
	dnsPort int
	api     string // base URL of the admin listener
	page    string // base URL of the block page
	review  string // review queue file
	log     string // the resolver's log file
	// proceedName resolves in the lab and is in the test malware list.
	// lawfulName resolves too and is in the test lawful list. idnName is
	// an internationalized name in the test malware list.
	proceedName, lawfulName, idnName string
}

// Clients of the proceed flavour. Both are on loopback, so kdig and the HTTP
// client can send from them.
const (
	proceedClient = "127.0.0.3"
	otherClient   = "127.0.0.4"
)

// startLookupLab starts the resolver of lookupLab and stops it at the end
// of the test.
func startLookupLab(t *testing.T) *lookupLab {
	t.Helper()
	dir := t.TempDir()
	l := &lookupLab{
		dnsPort:     port + 97,
		api:         "http://127.0.0.1:" + strconv.Itoa(port+98),
		page:        "http://127.0.0.9:" + strconv.Itoa(port+99),
		review:      filepath.Join(dir, "review.jsonl"),
		log:         filepath.Join(dir, "lookup.log"),
		proceedName: lab.Info.WildcardName,
		lawfulName:  lab.Info.SubDelegationName,
		idnName:     "bücher-lookup.example.",
	}
	malware := filepath.Join(dir, "test-malware.txt")
	lawful := filepath.Join(dir, "test-lawful.txt")
	writeFile(t, malware, strings.TrimSuffix(l.proceedName, ".")+"\n"+strings.TrimSuffix(l.idnName, ".")+"\n")
	writeFile(t, lawful, strings.TrimSuffix(l.lawfulName, ".")+"\n")

	path := filepath.Join(dir, "lookup.yaml")
	writeDerivedConfig(t, path, l.dnsPort, "admin:\n  listen: 127.0.0.1:"+strconv.Itoa(port+98)+"\n")
	cfg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(cfg)
	for _, edit := range []struct{ old, new string }{
		{"policy:\n", "policy:\n" +
			"  clients:\n" +
			"    - subnet: " + proceedClient + "/32\n      flavour: protective-proceed\n" +
			"    - subnet: " + otherClient + "/32\n      flavour: protective-proceed\n" +
			"  flavours:\n" +
			"    - name: protective-proceed\n      categories: [malware, phishing, botnet]\n      proceed_anyway: 10m\n"},
		{"  block_page:\n", "  block_page:\n    listen: " + strings.TrimPrefix(l.page, "http://") + "\n    review_file: " + l.review + "\n"},
		{"  lists:\n", "  lists:\n" +
			"    - name: test-lawful\n      file: " + lawful + "\n      format: domains\n      category: lawful\n" +
			"    - name: test-malware\n      file: " + malware + "\n      format: domains\n      category: malware\n"},
	} {
		if !strings.Contains(text, edit.old) {
			t.Fatalf("lab config lacks %q", edit.old)
		}
		text = strings.Replace(text, edit.old, edit.new, 1)
	}
	writeFile(t, path, text)

	cmd, err := labkit.StartBulwark(binary, path, net.JoinHostPort(resolver, strconv.Itoa(l.dnsPort)), l.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := labkit.StopProcess(cmd); err != nil {
			t.Errorf("resolver with the lookup did not stop cleanly: %v", err)
		}
	})
	return l
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// lookupResult is the part of GET /v1/policy/lookup that the tests read.
type lookupResult struct {
	Name         string   `json:"name"`
	DisplayName  string   `json:"display_name"`
	Blocked      bool     `json:"blocked"`
	NotBlockedIn []string `json:"not_blocked_in"`
	Flavours     []struct {
		Flavour string `json:"flavour"`
		Action  string `json:"action"`
		EDE     int    `json:"ede"`
		Lists   []struct {
			List        string    `json:"list"`
			Category    string    `json:"category"`
			Trigger     string    `json:"trigger"`
			ListedSince time.Time `json:"listed_since"`
			Decides     bool      `json:"decides"`
		} `json:"lists"`
	} `json:"flavours"`
}

// flavourNames returns the names of the flavours that block in r.
func (r lookupResult) flavourNames() []string {
	var names []string
	for _, f := range r.Flavours {
		names = append(names, f.Flavour)
	}
	return names
}

func TestPublicLookup(t *testing.T) {
	l := startLookupLab(t)
	p := lab.Info.Policy
	listed := strings.TrimSuffix(p.ListedName, ".")
	asciiIDN, err := idna.Lookup.ToASCII(l.idnName)
	if err != nil {
		t.Fatal(err)
	}

	// Every protective flavour blocks malware, the built-in ones and the
	// configured protective-proceed; unfiltered does not.
	protectives := []string{"protective", "protective-ads", "protective-child", "protective-child-ads", "protective-proceed"}
	for _, tt := range []struct {
		desc, input, name string
		blocked           bool
		list, trigger     string
	}{
		{"listed name", listed, p.ListedName, true, "urlhaus-hosts", p.ListedName},
		{"parent listed", "www." + listed, "www." + p.ListedName, true, "urlhaus-hosts", "*." + p.ListedName},
		{"clean name", p.CleanName, p.CleanName, false, "", ""},
		{"IDN name", strings.ToUpper(strings.TrimSuffix(l.idnName, ".")), asciiIDN, true, "test-malware", asciiIDN},
		{"URL", "http://" + listed + "/path?x=1", p.ListedName, true, "urlhaus-hosts", p.ListedName},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			var r lookupResult
			getJSON(t, l.api+"/v1/policy/lookup?name="+url.QueryEscape(tt.input), &r)
			if r.Name != tt.name {
				t.Errorf("name %q, want %q", r.Name, tt.name)
			}
			if r.Blocked != tt.blocked {
				t.Errorf("blocked %v, want %v", r.Blocked, tt.blocked)
			}
			if !tt.blocked {
				want := append([]string{"unfiltered"}, protectives...)
				if len(r.Flavours) != 0 || !slices.Equal(r.NotBlockedIn, want) {
					t.Errorf("blocking flavours %v, not blocked in %v, want not blocked in %v", r.flavourNames(), r.NotBlockedIn, want)
				}
				return
			}
			if got := r.flavourNames(); !slices.Equal(got, protectives) || !slices.Equal(r.NotBlockedIn, []string{"unfiltered"}) {
				t.Errorf("blocking flavours %v, not blocked in %v, want %v and unfiltered", got, r.NotBlockedIn, protectives)
			}
			f := r.Flavours[0]
			if f.Action != "nxdomain" || f.EDE != 15 || len(f.Lists) == 0 {
				t.Fatalf("flavour %s: action %s EDE %d lists %d, want nxdomain, EDE 15 and the lists", f.Flavour, f.Action, f.EDE, len(f.Lists))
			}
			first := f.Lists[0]
			if first.List != tt.list || !first.Decides || first.Trigger != tt.trigger {
				t.Errorf("first list %+v, want %s deciding through %s", first, tt.list, tt.trigger)
			}
			if first.ListedSince.IsZero() || first.ListedSince.After(time.Now()) {
				t.Errorf("listed_since %v, want a time in the past", first.ListedSince)
			}
		})
	}

	// People see the Unicode form.
	var idn lookupResult
	getJSON(t, l.api+"/v1/policy/lookup?name="+url.QueryEscape(l.idnName), &idn)
	if idn.DisplayName != strings.TrimSuffix(l.idnName, ".") {
		t.Errorf("display name %q, want %q", idn.DisplayName, strings.TrimSuffix(l.idnName, "."))
	}

	resp, err := http.Get(l.api + "/v1/policy/lookup?name=" + url.QueryEscape("bad..name"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `invalid name \"bad..name\": it has an empty label`) {
		t.Errorf("invalid name: %d %s, want 400 saying the label is empty", resp.StatusCode, body)
	}
}

func TestLookupPageAndReport(t *testing.T) {
	l := startLookupLab(t)
	listed := strings.TrimSuffix(lab.Info.Policy.ListedName, ".")
	for _, tt := range []struct {
		query string
		code  int
		want  []string
	}{
		{"", http.StatusOK, []string{`<form method="get" action="lookup">`}},
		{"name=" + listed, http.StatusOK, []string{listed + " is blocked", "In the protective policy", "urlhaus-hosts",
			"Listed at least since", `action="lookup/report"`, "Bulwark lab"}},
		{"name=www." + listed, http.StatusOK, []string{"every name below " + listed}},
		{"name=" + strings.TrimSuffix(lab.Info.Policy.CleanName, "."), http.StatusOK, []string{"is not blocked"}},
		{"name=" + url.QueryEscape(strings.TrimSuffix(l.idnName, ".")), http.StatusOK, []string{strings.TrimSuffix(l.idnName, ".") + " is blocked", "test-malware"}},
		{"name=" + strings.TrimSuffix(l.lawfulName, "."), http.StatusOK, []string{"blocked by law", "Censored"}},
		{"name=bad..name", http.StatusBadRequest, []string{"it has an empty label"}},
	} {
		resp, err := http.Get(l.api + "/lookup?" + tt.query)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.code {
			t.Errorf("page %q: status %d, want %d", tt.query, resp.StatusCode, tt.code)
		}
		for _, want := range tt.want {
			if !strings.Contains(string(body), want) {
				t.Errorf("page %q lacks %q:\n%s", tt.query, want, body)
			}
		}
		if strings.Contains(string(body), "tenant:") {
			t.Errorf("page %q shows a tenant", tt.query)
		}
	}

	// The report form of the page posts to lookup/report.
	resp, err := http.PostForm(l.api+"/lookup/report", url.Values{"name": {listed}, "comment": {"our school uses it"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("report: status %d, want 200", resp.StatusCode)
	}
	resp, err = http.PostForm(l.api+"/lookup/report", url.Values{"name": {l.lawfulName}, "comment": {"x"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("report of a lawful block: status %d, want 403", resp.StatusCode)
	}
	queued, err := os.ReadFile(l.review)
	if err != nil {
		t.Fatalf("review queue: %v", err)
	}
	var rep struct {
		Name, List, Category, Comment, Source string
	}
	lines := strings.Split(strings.TrimSpace(string(queued)), "\n")
	if len(lines) != 1 {
		t.Fatalf("review queue has %d lines, want 1:\n%s", len(lines), queued)
	}
	if err := json.Unmarshal([]byte(lines[0]), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Name != listed+"." || rep.List != "urlhaus-hosts" || rep.Source != "lookup" || rep.Comment != "our school uses it" {
		t.Errorf("queued report %+v, want %s from urlhaus-hosts with the comment, from the lookup", rep, listed)
	}
	if strings.Contains(string(queued), "127.0.0.1") {
		t.Error("the review queue contains the client address")
	}
}

// httpFrom returns an HTTP client whose connections come from addr.
func httpFrom(addr string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(addr)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			return d.DialContext(ctx, network, address)
		},
	}}
}

// blockPage requests the block page of host from client.
func (l *lookupLab) blockPage(t *testing.T, client, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, l.page+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = strings.TrimSuffix(host, ".")
	resp, err := httpFrom(client).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// proceed posts proceed anyway for name from client.
func (l *lookupLab) proceed(t *testing.T, client, name string) (int, string) {
	t.Helper()
	form := url.Values{"name": {strings.TrimSuffix(name, ".")}}
	req, err := http.NewRequest(http.MethodPost, l.page+"/proceed", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = strings.TrimSuffix(name, ".")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := httpFrom(client).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// kdigFrom queries the lookup lab's resolver from client.
func (l *lookupLab) kdigFrom(t *testing.T, client, name string, extra ...string) *kdigResult {
	t.Helper()
	r, err := kdig("127.0.0.1", l.dnsPort, name, "A", append([]string{"-b", client, "+edns"}, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestProceedAnyway(t *testing.T) {
	l := startLookupLab(t)
	below := "x." + l.proceedName

	for _, client := range []string{proceedClient, otherClient} {
		if r := l.kdigFrom(t, client, l.proceedName); r.Status != "NXDOMAIN" || r.EDE != 15 {
			t.Fatalf("before proceed anyway, from %s: %s EDE %d, want NXDOMAIN with EDE 15\n%s", client, r.Status, r.EDE, r.Output)
		}
	}
	code, body := l.blockPage(t, proceedClient, l.proceedName)
	if code != http.StatusForbidden || !strings.Contains(body, `action="/proceed"`) || !strings.Contains(body, "10 minutes") {
		t.Fatalf("block page from %s: %d, want 403 with the proceed anyway button for 10 minutes:\n%s", proceedClient, code, body)
	}

	code, body = l.proceed(t, proceedClient, l.proceedName)
	if code != http.StatusOK || !strings.Contains(body, "60 seconds") {
		t.Fatalf("proceed anyway: %d, want 200 with the 60-second notice:\n%s", code, body)
	}
	for _, tt := range []struct {
		name  string
		extra []string
	}{
		{l.proceedName, nil},
		{l.proceedName, []string{"+tcp"}},
		{below, nil},
	} {
		r := l.kdigFrom(t, proceedClient, tt.name, tt.extra...)
		if r.Status != "NOERROR" || r.EDE != -1 || len(r.Answer) == 0 {
			t.Errorf("after proceed anyway, %s %v from %s: %s EDE %d, %d answers, want NOERROR with the address\n%s",
				tt.name, tt.extra, proceedClient, r.Status, r.EDE, len(r.Answer), r.Output)
		}
		r = l.kdigFrom(t, otherClient, tt.name, tt.extra...)
		if r.Status != "NXDOMAIN" || r.EDE != 15 {
			t.Errorf("after proceed anyway, %s %v from %s: %s EDE %d, want still NXDOMAIN with EDE 15\n%s",
				tt.name, tt.extra, otherClient, r.Status, r.EDE, r.Output)
		}
	}

	// A lawful list gets no button, and proceed anyway is refused.
	if r := l.kdigFrom(t, proceedClient, l.lawfulName); r.Status != "NXDOMAIN" || r.EDE != 16 {
		t.Errorf("lawful name from %s: %s EDE %d, want NXDOMAIN with EDE 16\n%s", proceedClient, r.Status, r.EDE, r.Output)
	}
	code, body = l.blockPage(t, proceedClient, l.lawfulName)
	if code != http.StatusUnavailableForLegalReasons || strings.Contains(body, `action="/proceed"`) {
		t.Errorf("block page of the lawful name: %d, want 451 without the proceed anyway button:\n%s", code, body)
	}
	code, body = l.proceed(t, proceedClient, l.lawfulName)
	if code != http.StatusForbidden || !strings.Contains(body, "blocked by law") {
		t.Errorf("proceed anyway past a lawful list: %d %s, want 403 saying it is blocked by law", code, body)
	}
	if r := l.kdigFrom(t, proceedClient, l.lawfulName); r.Status != "NXDOMAIN" || r.EDE != 16 {
		t.Errorf("lawful name after the refused proceed: %s EDE %d, want NXDOMAIN with EDE 16", r.Status, r.EDE)
	}

	// The client in the plain protective flavour gets no button either.
	code, body = l.blockPage(t, "127.0.0.5", l.proceedName)
	if code != http.StatusForbidden || strings.Contains(body, `action="/proceed"`) {
		t.Errorf("block page from a protective client: %d, want 403 without the button:\n%s", code, body)
	}

	logText, err := os.ReadFile(l.log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logText), "proceed anyway granted") {
		t.Errorf("the resolver log lacks the grant; see %s", l.log)
	}
	for _, client := range []string{proceedClient, otherClient} {
		if strings.Contains(string(logText), client) {
			t.Errorf("the resolver log contains client address %s; see %s", client, l.log)
		}
	}
}
