package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"bulwark/internal/blockpage"
	"bulwark/internal/policy"
	"bulwark/internal/policyload"
)

var (
	urlhausModified = time.Date(2026, 11, 30, 8, 15, 0, 0, time.UTC)
	phishingLoaded  = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
)

// lookupPolicy is a list manager with three public flavours and a tenant.
type lookupPolicy struct {
	fakePolicy
	flavours []*policy.Flavour
}

func (p *lookupPolicy) Flavours() []*policy.Flavour { return p.flavours }

func (p *lookupPolicy) Lists() []policyload.ListState {
	return []policyload.ListState{
		{Name: "urlhaus", Modified: urlhausModified, Loaded: urlhausModified.Add(time.Hour)},
		{Name: "phishing"},
	}
}

func newLookupPolicy() *lookupPolicy {
	list := func(name, category string, action policy.Action, loaded time.Time, rules ...policy.Rule) *policy.List {
		return &policy.List{Name: name, Category: category, Verdicts: []policy.Verdict{{Action: action}},
			Set: policy.Compile(rules), Loaded: loaded}
	}
	below := policy.Exact | policy.Below
	urlhaus := list("urlhaus", policy.CategoryMalware, policy.NXDomain, time.Time{},
		policy.Rule{Name: "bad.example.", Match: below},
		policy.Rule{Name: "xn--bcher-kva.example.", Match: below})
	phishing := list("phishing", policy.CategoryPhishing, policy.NXDomain, phishingLoaded,
		policy.Rule{Name: "bad.example.", Match: policy.Exact})
	ads := list("ads", policy.CategoryAds, policy.Redirect, phishingLoaded, policy.Rule{Name: "ads.example.", Match: below})
	court := list("court", policy.CategoryLawful, policy.NXDomain, phishingLoaded, policy.Rule{Name: "casino.example.", Match: below})
	allow := list("allow", policy.CategoryMalware, policy.Allow, phishingLoaded, policy.Rule{Name: "good.bad.example.", Match: policy.Exact})
	deny := list("school-deny", policy.CategoryAds, policy.NXDomain, phishingLoaded, policy.Rule{Name: "secret-tenant.example.", Match: below})
	return &lookupPolicy{flavours: []*policy.Flavour{
		policy.NewFlavour("unfiltered", []*policy.List{court}),
		policy.NewFlavour("protective", []*policy.List{court, allow, urlhaus, phishing}),
		policy.NewFlavour("protective-ads", []*policy.List{court, urlhaus, ads}),
		policy.NewFlavour(policyload.TenantFlavour("school"), []*policy.List{court, urlhaus, deny}),
	}}
}

// newLookupServer returns a Server with the lookup policy and a review
// queue in a temporary file.
func newLookupServer(t *testing.T) (*Server, string) {
	t.Helper()
	s, _, _ := newTestServer()
	s.SetPolicy(newLookupPolicy())
	review := filepath.Join(t.TempDir(), "review.jsonl")
	s.SetLookup(LookupConfig{Organization: "Example Telecom", Contact: "mailto:abuse@example.net", Reviews: blockpage.NewReviewQueue(review)})
	return s, review
}

func lookupJSONFor(t *testing.T, s *Server, query string) lookupJSON {
	t.Helper()
	code, body := do(t, s, "GET", "/v1/policy/lookup?"+query, "")
	if code != http.StatusOK {
		t.Fatalf("lookup %s: %d %s, want 200", query, code, body)
	}
	if strings.Contains(body, "tenant:") || strings.Contains(body, "school-deny") {
		t.Errorf("lookup %s reveals a tenant: %s", query, body)
	}
	var out lookupJSON
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("lookup %s: %v in %s", query, err, body)
	}
	return out
}

func flavourNames(fs []flavourBlockJSON) []string {
	var names []string
	for _, f := range fs {
		names = append(names, f.Flavour)
	}
	return names
}

func TestLookupListedName(t *testing.T) {
	s, _ := newLookupServer(t)
	out := lookupJSONFor(t, s, "name=Bad.Example")
	if out.Name != "bad.example." || !out.Blocked {
		t.Fatalf("name %q blocked %v, want bad.example. blocked", out.Name, out.Blocked)
	}
	if got := flavourNames(out.Flavours); !slices.Equal(got, []string{"protective", "protective-ads"}) {
		t.Errorf("blocking flavours %v, want [protective protective-ads]", got)
	}
	if !slices.Equal(out.NotBlockedIn, []string{"unfiltered"}) {
		t.Errorf("not_blocked_in %v, want [unfiltered]", out.NotBlockedIn)
	}
	if out.Note == "" {
		t.Error("no note on listed_since")
	}
	p := out.Flavours[0]
	if p.Action != "nxdomain" || p.EDE != 15 || p.EDEName != "Blocked" {
		t.Errorf("protective: action %s EDE %d %q, want nxdomain with EDE 15 Blocked", p.Action, p.EDE, p.EDEName)
	}
	want := []listMatchJSON{
		{List: "urlhaus", Category: "malware", Action: "nxdomain", Trigger: "bad.example.", ListedSince: urlhausModified, Decides: true},
		{List: "phishing", Category: "phishing", Action: "nxdomain", Trigger: "bad.example.", ListedSince: phishingLoaded},
	}
	if !slices.Equal(p.Lists, want) {
		t.Errorf("protective lists\n%+v, want\n%+v", p.Lists, want)
	}
}

func TestLookupParentListed(t *testing.T) {
	s, _ := newLookupServer(t)
	out := lookupJSONFor(t, s, "name=www.bad.example.")
	if !out.Blocked || len(out.Flavours) != 2 {
		t.Fatalf("www.bad.example: blocked %v in %v, want blocked in two flavours", out.Blocked, flavourNames(out.Flavours))
	}
	lists := out.Flavours[0].Lists
	if len(lists) != 1 || lists[0].List != "urlhaus" || lists[0].Trigger != "*.bad.example." {
		t.Errorf("lists %+v, want only urlhaus through *.bad.example.", lists)
	}
}

func TestLookupCleanAndTenantNames(t *testing.T) {
	s, _ := newLookupServer(t)
	for _, name := range []string{"fine.example", "secret-tenant.example", "good.bad.example"} {
		out := lookupJSONFor(t, s, "name="+name)
		if name == "good.bad.example" {
			// Allowlisted in protective, blocked through *.bad.example.
			// in protective-ads.
			if got := flavourNames(out.Flavours); !slices.Equal(got, []string{"protective-ads"}) {
				t.Errorf("%s: blocking flavours %v, want [protective-ads]", name, got)
			}
			continue
		}
		if out.Blocked || len(out.Flavours) != 0 {
			t.Errorf("%s: blocked %v in %v, want not blocked", name, out.Blocked, flavourNames(out.Flavours))
		}
		if !slices.Equal(out.NotBlockedIn, []string{"unfiltered", "protective", "protective-ads"}) {
			t.Errorf("%s: not_blocked_in %v, want the three public flavours", name, out.NotBlockedIn)
		}
	}
}

func TestLookupLawfulName(t *testing.T) {
	s, _ := newLookupServer(t)
	out := lookupJSONFor(t, s, "name=casino.example")
	if got := flavourNames(out.Flavours); !slices.Equal(got, []string{"unfiltered", "protective", "protective-ads"}) {
		t.Errorf("blocking flavours %v, want all three", got)
	}
	for _, f := range out.Flavours {
		if f.EDE != 16 || f.EDEName != "Censored" {
			t.Errorf("%s: EDE %d %q, want 16 Censored", f.Flavour, f.EDE, f.EDEName)
		}
	}
}

func TestLookupInternationalizedName(t *testing.T) {
	s, _ := newLookupServer(t)
	for _, input := range []string{"BÜCHER.example", "bücher.example.", "xn--bcher-kva.example", "https://www.bücher.example/some/path?q=1"} {
		out := lookupJSONFor(t, s, "name="+url.QueryEscape(input))
		if !out.Blocked {
			t.Errorf("%s: not blocked, want blocked by urlhaus", input)
		}
		if !strings.HasSuffix(out.Name, "xn--bcher-kva.example.") || !strings.HasSuffix(out.DisplayName, "bücher.example") {
			t.Errorf("%s: name %q display %q, want the punycode and Unicode forms of bücher.example", input, out.Name, out.DisplayName)
		}
	}
}

func TestLookupRejectsInvalidNames(t *testing.T) {
	s, _ := newLookupServer(t)
	for _, tt := range []struct{ input, want string }{
		{"", "missing name"},
		{"   ", "missing name"},
		{"a..b", `invalid name \"a..b\": it has an empty label`},
		{"192.0.2.1", "it is an IP address"},
		{"2001:db8::1", "it is an IP address"},
		{"ex ample.com", `the character ' ' is not allowed`},
		{"bad!.example", `the character '!' is not allowed`},
		{"123.456", "only digits"},
		{strings.Repeat("a", 64) + ".example", "longer than 63 characters"},
		{strings.Repeat("abcdefghi.", 26) + "example", "more than the 253"},
		{"http://", "the URL has no host"},
		{"xn--a.bü.example", "not a valid internationalized name"},
		{strings.Repeat("x", 3000), "too long"},
	} {
		code, body := do(t, s, "GET", "/v1/policy/lookup?name="+url.QueryEscape(tt.input), "")
		if code != http.StatusBadRequest {
			t.Errorf("lookup %q: status %d, want 400", tt.input, code)
		}
		if !strings.Contains(body, tt.want) {
			t.Errorf("lookup %q: body %s, want it to contain %q", tt.input, body, tt.want)
		}
	}
}

func TestLookupPage(t *testing.T) {
	s, _ := newLookupServer(t)
	req := httptest.NewRequest("GET", "/lookup?name=www.bad.example", nil)
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	body := rec.Body.String()
	if rec.Code != http.StatusOK {
		t.Errorf("page: status %d, want 200", rec.Code)
	}
	for _, want := range []string{
		"www.bad.example is blocked", "In the protective policy", "urlhaus", "every name below bad.example",
		"Listed at least since", "2026-11-30 08:15 UTC", "Extended DNS Error 15 (Blocked)",
		`action="lookup/report"`, "Example Telecom", `value="www.bad.example"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "tenant:") || strings.Contains(body, "school-deny") {
		t.Errorf("page reveals a tenant:\n%s", body)
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q, want default-src 'none'", csp)
	}

	code, body := do(t, s, "GET", "/lookup", "")
	if code != http.StatusOK || !strings.Contains(body, `<form method="get" action="lookup">`) || strings.Contains(body, "is blocked") {
		t.Errorf("empty form: %d\n%s", code, body)
	}
	code, body = do(t, s, "GET", "/lookup?name=casino.example", "")
	if code != http.StatusOK || strings.Contains(body, `action="lookup/report"`) || !strings.Contains(body, "blocked by law") {
		t.Errorf("lawful name: %d, want 200 with no report form and the legal notice:\n%s", code, body)
	}
	code, body = do(t, s, "GET", "/lookup?name="+url.QueryEscape("<script>x</script>"), "")
	if code != http.StatusBadRequest || strings.Contains(body, "<script>") {
		t.Errorf("invalid name: %d, want 400 with the input escaped:\n%s", code, body)
	}
	if !strings.Contains(body, "is not allowed") {
		t.Errorf("invalid name: page does not say why:\n%s", body)
	}
}

// postForm sends form to path from a client address that must never be
// stored.
func postForm(t *testing.T, s *Server, path, form string) (int, string) {
	t.Helper()
	req := httptest.NewRequest("POST", path, strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = "203.0.113.7:40000"
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func TestLookupReport(t *testing.T) {
	s, review := newLookupServer(t)
	code, body := postForm(t, s, "/lookup/report", "name=www.bad.example&comment=our+shop")
	if code != http.StatusOK || !strings.Contains(body, "queued for review") {
		t.Fatalf("report: %d %s, want 200", code, body)
	}
	for _, tt := range []struct {
		form string
		code int
		text string
	}{
		{"name=casino.example&comment=x", http.StatusForbidden, "blocks by law"},
		{"name=fine.example&comment=x", http.StatusBadRequest, "fine.example is not blocked"},
		{"name=a..b&comment=x", http.StatusBadRequest, "invalid name"},
		{"comment=x", http.StatusBadRequest, "missing name"},
	} {
		code, body := postForm(t, s, "/lookup/report", tt.form)
		if code != tt.code || !strings.Contains(body, tt.text) {
			t.Errorf("report %s: %d %q, want %d with %q", tt.form, code, body, tt.code, tt.text)
		}
	}

	data, err := os.ReadFile(review)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 1 {
		t.Fatalf("review queue has %d lines, want 1:\n%s", len(lines), data)
	}
	var rep blockpage.Report
	if err := json.Unmarshal([]byte(lines[0]), &rep); err != nil {
		t.Fatal(err)
	}
	want := blockpage.Report{Time: testNow, Name: "www.bad.example.", List: "urlhaus", Category: "malware",
		Comment: "our shop", Source: blockpage.SourceLookup}
	if rep != want {
		t.Errorf("report %+v, want %+v", rep, want)
	}
	if strings.Contains(string(data), "203.0.113.7") {
		t.Error("the review queue contains the client address")
	}
}

func TestLookupReportOffWithoutQueue(t *testing.T) {
	s, _ := newLookupServer(t)
	s.SetLookup(LookupConfig{})
	if code, _ := postForm(t, s, "/lookup/report", "name=bad.example"); code != http.StatusServiceUnavailable {
		t.Errorf("report without a queue: %d, want 503", code)
	}
	if _, body := do(t, s, "GET", "/lookup?name=bad.example", ""); strings.Contains(body, `action="lookup/report"`) {
		t.Errorf("report form shown without a queue:\n%s", body)
	}
}
