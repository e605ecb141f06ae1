package blockpage

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bulwark/internal/policy"
	"bulwark/internal/proceed"
)

type fakeChecker struct{}

func (fakeChecker) CheckClient(_ netip.Addr, name string) (policy.Decision, bool) {
	loaded := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	switch name {
	case "bad.example.":
		l := &policy.List{Name: "urlhaus", Category: policy.CategoryMalware, Loaded: loaded}
		return policy.Decision{List: l, Verdict: policy.Verdict{Action: policy.Redirect}, Trigger: "bad.example."}, true
	case "casino.example.":
		l := &policy.List{Name: "court-order-12", Category: policy.CategoryLawful, Loaded: loaded}
		return policy.Decision{List: l, Verdict: policy.Verdict{Action: policy.Redirect}, Trigger: "casino.example."}, true
	}
	return policy.Decision{}, false
}

// proceedClient is in a flavour with proceed anyway on for 10 minutes; every
// other client has it off.
var proceedClient = netip.MustParseAddr("192.0.2.10")

func (fakeChecker) ProceedRule(client netip.Addr) proceed.Rule {
	if client == proceedClient {
		return proceed.Rule{Duration: 10 * time.Minute}
	}
	return proceed.Rule{}
}

var pageNow = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

func newServer(t *testing.T) (*Server, string) {
	t.Helper()
	s, review, _, _ := newServerWithLog(t)
	return s, review
}

// newServerWithLog returns a Server with its review file, its exemptions
// and the buffer of its log.
func newServerWithLog(t *testing.T) (*Server, string, *proceed.Exemptions, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	review := filepath.Join(t.TempDir(), "review.jsonl")
	x := proceed.NewExemptions(0, log)
	s := New(Config{Organization: "Example Telecom", Contact: "abuse@example.net", Reviews: NewReviewQueue(review), Exemptions: x},
		fakeChecker{}, log, func() time.Time { return pageNow })
	return s, review, x, &logs
}

func get(t *testing.T, s *Server, host string) (int, string) {
	t.Helper()
	req := httptest.NewRequest("GET", "http://"+host+"/some/path", nil)
	req.RemoteAddr = "192.0.2.10:40000"
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func TestPageExplainsBlock(t *testing.T) {
	s, _ := newServer(t)
	code, body := get(t, s, "BAD.example")
	if code != http.StatusForbidden {
		t.Errorf("blocked name: status %d, want 403", code)
	}
	for _, want := range []string{"bad.example is blocked", "urlhaus", "malware", "2026-12-01 10:00 UTC", "Example Telecom", `action="/report"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	code, body = get(t, s, "casino.example:80")
	if code != http.StatusUnavailableForLegalReasons || !strings.Contains(body, "blocked by law") || strings.Contains(body, `action="/report"`) {
		t.Errorf("lawful block: %d, want 451 with the legal notice and no report form:\n%s", code, body)
	}
	code, body = get(t, s, "fine.example")
	if code != http.StatusOK || !strings.Contains(body, "is not blocked") {
		t.Errorf("clean name: %d\n%s", code, body)
	}
	if code, _ = get(t, s, "bad..name"); code != http.StatusBadRequest {
		t.Errorf("invalid host: %d, want 400", code)
	}
	if code, body = get(t, s, "<script>.example"); strings.Contains(body, "<script>") {
		t.Errorf("host echoed unescaped (%d):\n%s", code, body)
	}
}

func post(t *testing.T, s *Server, form string) (int, string) {
	t.Helper()
	req := httptest.NewRequest("POST", "http://bad.example/report", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = "192.0.2.10:40000"
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func TestReportsQueued(t *testing.T) {
	s, review := newServer(t)
	if code, body := post(t, s, "name=bad.example&comment=our+own+site"); code != http.StatusOK {
		t.Fatalf("report: %d %s", code, body)
	}
	if code, _ := post(t, s, "name=casino.example&comment=x"); code != http.StatusForbidden {
		t.Errorf("report of a lawful block: %d, want 403", code)
	}
	if code, _ := post(t, s, "name=&comment=x"); code != http.StatusBadRequest {
		t.Errorf("report without a name: %d, want 400", code)
	}
	f, err := os.Open(review)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var reports []Report
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Report
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("review line %q: %v", sc.Text(), err)
		}
		reports = append(reports, r)
	}
	if len(reports) != 1 || reports[0].Name != "bad.example." || reports[0].List != "urlhaus" || reports[0].Comment != "our own site" {
		t.Errorf("review queue %+v, want one report for bad.example. from urlhaus", reports)
	}
	if len(reports) == 1 && reports[0].Source != SourceBlockPage {
		t.Errorf("report source %q, want %q", reports[0].Source, SourceBlockPage)
	}
	data, _ := os.ReadFile(review)
	if strings.Contains(string(data), "192.0.2.10") {
		t.Error("the review queue holds the client address")
	}
}
