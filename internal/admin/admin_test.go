package admin

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"bulwark/internal/policy"
	"bulwark/internal/policyload"
	"bulwark/internal/resolver"
)

type fakeResolver struct {
	ntas map[string]time.Time
}

func (f *fakeResolver) AddNegativeTrustAnchor(domain string, expires time.Time) {
	f.ntas[domain] = expires
}

func (f *fakeResolver) RemoveNegativeTrustAnchor(domain string) bool {
	_, ok := f.ntas[domain]
	delete(f.ntas, domain)
	return ok
}

func (f *fakeResolver) NegativeTrustAnchors() []resolver.NegativeTrustAnchor {
	var out []resolver.NegativeTrustAnchor
	for d, e := range f.ntas {
		out = append(out, resolver.NegativeTrustAnchor{Domain: d, Expires: e})
	}
	return out
}

type fakeCache struct{ flushed []string }

func (f *fakeCache) Flush(zone string) int {
	f.flushed = append(f.flushed, zone)
	return 3
}

var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func newTestServer() (*Server, *fakeResolver, *fakeCache) {
	res := &fakeResolver{ntas: map[string]time.Time{}}
	c := &fakeCache{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return New(res, c, log, func() time.Time { return testNow }), res, c
}

func do(t *testing.T, s *Server, method, path, body string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func TestNegativeTrustAnchorLifecycle(t *testing.T) {
	s, res, c := newTestServer()
	code, body := do(t, s, "POST", "/v1/dnssec/negative-trust-anchors", `{"domain": "Broken.Example", "lifetime": "2h"}`)
	if code != http.StatusCreated {
		t.Fatalf("add: %d %s, want 201", code, body)
	}
	if got := res.ntas["broken.example."]; !got.Equal(testNow.Add(2 * time.Hour)) {
		t.Errorf("expiry %v, want %v", got, testNow.Add(2*time.Hour))
	}
	if len(c.flushed) != 1 || c.flushed[0] != "broken.example." {
		t.Errorf("flushed %v, want [broken.example.]", c.flushed)
	}

	code, body = do(t, s, "GET", "/v1/dnssec/negative-trust-anchors", "")
	var list []ntaJSON
	if err := json.Unmarshal([]byte(body), &list); err != nil || code != http.StatusOK {
		t.Fatalf("list: %d %s (%v)", code, body, err)
	}
	if len(list) != 1 || list[0].Domain != "broken.example." || list[0].Expires == nil {
		t.Errorf("list %s, want broken.example. with its expiry", body)
	}

	if code, body = do(t, s, "DELETE", "/v1/dnssec/negative-trust-anchors/broken.example", ""); code != http.StatusNoContent {
		t.Errorf("remove: %d %s, want 204", code, body)
	}
	if code, _ = do(t, s, "DELETE", "/v1/dnssec/negative-trust-anchors/broken.example", ""); code != http.StatusNotFound {
		t.Errorf("second remove: %d, want 404", code)
	}
}

func TestNegativeTrustAnchorDefaultLifetime(t *testing.T) {
	s, res, _ := newTestServer()
	if code, body := do(t, s, "POST", "/v1/dnssec/negative-trust-anchors", `{"domain": "example.com."}`); code != http.StatusCreated {
		t.Fatalf("add: %d %s", code, body)
	}
	if got := res.ntas["example.com."]; !got.Equal(testNow.Add(DefaultLifetime)) {
		t.Errorf("expiry %v, want now plus %s", got, DefaultLifetime)
	}
}

func TestBadRequests(t *testing.T) {
	s, res, _ := newTestServer()
	for _, tt := range []struct {
		name, body, want string
	}{
		{"no domain", `{}`, "missing domain"},
		{"bad domain", `{"domain": "a..b"}`, `invalid domain name \"a..b\"`},
		{"bad lifetime", `{"domain": "example.com", "lifetime": "soon"}`, `invalid lifetime \"soon\"`},
		{"negative lifetime", `{"domain": "example.com", "lifetime": "-1h"}`, "invalid lifetime"},
		{"too long", `{"domain": "example.com", "lifetime": "800h"}`, "longer than the maximum"},
		{"past expiry", `{"domain": "example.com", "expires": "2020-01-01T00:00:00Z"}`, "not in the future"},
		{"both", `{"domain": "example.com", "lifetime": "1h", "expires": "2030-01-01T00:00:00Z"}`, "not both"},
		{"unknown field", `{"domain": "example.com", "ttl": 5}`, "unknown field"},
		{"not JSON", `domain=example.com`, "invalid JSON body"},
		{"bad expires", `{"domain": "example.com", "expires": "tomorrow"}`, `invalid expires \"tomorrow\"`},
		{"space in domain", `{"domain": "a b.example"}`, "invalid domain name"},
		{"trailing data", `{"domain": "example.com"} {}`, "more data after the object"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, s, "POST", "/v1/dnssec/negative-trust-anchors", tt.body)
			if code != http.StatusBadRequest {
				t.Errorf("status %d, want 400", code)
			}
			if !strings.Contains(body, tt.want) {
				t.Errorf("body %s, want it to contain %q", body, tt.want)
			}
		})
	}
	if len(res.ntas) != 0 {
		t.Errorf("bad requests added %v", res.ntas)
	}
}

func TestFlush(t *testing.T) {
	s, _, c := newTestServer()
	code, body := do(t, s, "POST", "/v1/cache/flush", `{"zone": "example.org"}`)
	if code != http.StatusOK || !strings.Contains(body, `"entries_removed":3`) {
		t.Errorf("flush: %d %s, want 200 with 3 entries", code, body)
	}
	if len(c.flushed) != 1 || c.flushed[0] != "example.org." {
		t.Errorf("flushed %v, want [example.org.]", c.flushed)
	}
}

func TestRemoveRootByQuery(t *testing.T) {
	s, res, _ := newTestServer()
	if code, body := do(t, s, "POST", "/v1/dnssec/negative-trust-anchors", `{"domain": "."}`); code != http.StatusCreated {
		t.Fatalf("add root: %d %s", code, body)
	}
	if code, body := do(t, s, "DELETE", "/v1/dnssec/negative-trust-anchors?domain=.", ""); code != http.StatusNoContent {
		t.Errorf("remove root: %d %s, want 204", code, body)
	}
	if len(res.ntas) != 0 {
		t.Errorf("anchors left: %v", res.ntas)
	}
}

func TestUnknownEndpointIsJSON(t *testing.T) {
	s, _, _ := newTestServer()
	code, body := do(t, s, "GET", "/v1/nothing", "")
	if code != http.StatusNotFound || !strings.Contains(body, `"error"`) {
		t.Errorf("unknown endpoint: %d %s, want 404 with a JSON error", code, body)
	}
}

func TestWrongMethodIs405(t *testing.T) {
	s, _, _ := newTestServer()
	for _, c := range []struct{ method, path, want string }{
		{"GET", "/v1/cache/flush", "use POST"},
		{"POST", "/v1/cache", "use GET, HEAD"},
		{"PUT", "/v1/dnssec/negative-trust-anchors", "use GET, HEAD, POST, DELETE"},
		{"GET", "/v1/dnssec/negative-trust-anchors/broken.example", "use DELETE"},
	} {
		code, body := do(t, s, c.method, c.path, "")
		if code != http.StatusMethodNotAllowed || !strings.Contains(body, c.want) {
			t.Errorf("%s %s: %d %s, want 405 saying %q", c.method, c.path, code, body, c.want)
		}
	}
	if code, _ := do(t, s, "GET", "/v1/dnssec/negative-trust-anchors/a/b", ""); code != http.StatusNotFound {
		t.Errorf("GET with two segments after the wildcard: %d, want 404", code)
	}
}

func TestFlushWithoutZone(t *testing.T) {
	s, _, _ := newTestServer()
	code, body := do(t, s, "POST", "/v1/cache/flush", `{}`)
	if code != http.StatusBadRequest || !strings.Contains(body, "missing zone or name") {
		t.Errorf("flush without zone: %d %s, want 400 naming the zone and name fields", code, body)
	}
}

func TestHugeNameNotEchoedWhole(t *testing.T) {
	s, _, _ := newTestServer()
	huge := strings.Repeat("a", 50000) // below the 64 KiB body limit
	code, body := do(t, s, "POST", "/v1/cache/flush", `{"zone": "`+huge+`"}`)
	if code != http.StatusBadRequest {
		t.Errorf("flush of a 50000-byte name: status %d, want 400", code)
	}
	if len(body) > 1000 || !strings.Contains(body, "...") {
		t.Errorf("error body of %d bytes, want the name cut short: %.200s", len(body), body)
	}
}

type fakePolicy struct{ reloads int }

func (f *fakePolicy) Lists() []policyload.ListState {
	return []policyload.ListState{{Name: "urlhaus", Rules: 3}}
}

func (f *fakePolicy) Flavours() []*policy.Flavour { return nil }

func (f *fakePolicy) Reload(all bool) error {
	f.reloads++
	return nil
}

func (f *fakePolicy) Check(flavour, name string) (policy.Decision, bool, bool) {
	if flavour != "protective" {
		return policy.Decision{}, false, false
	}
	if name != "bad.example." {
		return policy.Decision{}, false, true
	}
	l := &policy.List{Name: "urlhaus", Category: policy.CategoryMalware}
	return policy.Decision{List: l, Verdict: policy.Verdict{Action: policy.NXDomain}, Trigger: "bad.example."}, true, true
}

func TestPolicyEndpoints(t *testing.T) {
	s, _, _ := newTestServer()
	if code, _ := do(t, s, "GET", "/v1/policy/lists", ""); code != http.StatusServiceUnavailable {
		t.Errorf("lists without a manager: %d, want 503", code)
	}
	fp := &fakePolicy{}
	s.SetPolicy(fp)
	code, body := do(t, s, "GET", "/v1/policy/check?name=Bad.Example", "")
	if code != http.StatusOK || !strings.Contains(body, `"blocked":true`) || !strings.Contains(body, `"list":"urlhaus"`) || !strings.Contains(body, `"action":"nxdomain"`) {
		t.Errorf("check blocked name: %d %s", code, body)
	}
	code, body = do(t, s, "GET", "/v1/policy/check?name=fine.example", "")
	if code != http.StatusOK || !strings.Contains(body, `"blocked":false`) {
		t.Errorf("check clean name: %d %s", code, body)
	}
	if code, _ = do(t, s, "GET", "/v1/policy/check?name=x.example&flavour=strict", ""); code != http.StatusNotFound {
		t.Errorf("unknown flavour: %d, want 404", code)
	}
	if code, _ = do(t, s, "GET", "/v1/policy/check", ""); code != http.StatusBadRequest {
		t.Errorf("check without name: %d, want 400", code)
	}
	code, body = do(t, s, "GET", "/v1/policy/lists", "")
	if code != http.StatusOK || !strings.Contains(body, `"rules":3`) {
		t.Errorf("lists: %d %s", code, body)
	}
	if code, _ = do(t, s, "POST", "/v1/policy/reload", ""); code != http.StatusOK || fp.reloads != 1 {
		t.Errorf("reload: %d, %d reloads, want 200 and 1", code, fp.reloads)
	}
}
