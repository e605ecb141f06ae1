package admin

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"bulwark/internal/intel/traffic"
)

type fakeFindings []traffic.Finding

func (f fakeFindings) Findings() []traffic.Finding { return f }

func TestIntelFindings(t *testing.T) {
	s, _, _ := newTestServer()
	if code, body := do(t, s, "GET", "/v1/intel/findings", ""); code != http.StatusServiceUnavailable {
		t.Errorf("GET /v1/intel/findings without intel = %d %s, want 503", code, body)
	}
	s.SetIntel(fakeFindings{
		{Detector: traffic.DetectorNOD, Domain: "new.example", Score: 0.5},
		{Detector: traffic.DetectorNXDomain, Domain: "victim.example", Score: 0.8, Malicious: true},
	})
	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"new.example", "victim.example"}},
		{"?detector=nxdomain", []string{"victim.example"}},
		{"?detector=flux", []string{}},
	}
	for _, tt := range tests {
		code, body := do(t, s, "GET", "/v1/intel/findings"+tt.query, "")
		if code != http.StatusOK {
			t.Fatalf("GET /v1/intel/findings%s = %d %s, want 200", tt.query, code, body)
		}
		var got []traffic.Finding
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("GET /v1/intel/findings%s: %v in %s", tt.query, err, body)
		}
		domains := []string{}
		for _, f := range got {
			domains = append(domains, f.Domain)
		}
		if strings.Join(domains, ",") != strings.Join(tt.want, ",") {
			t.Errorf("GET /v1/intel/findings%s = %v, want %v", tt.query, domains, tt.want)
		}
	}
	code, body := do(t, s, "GET", "/v1/intel/findings?detector=bogus", "")
	if code != http.StatusBadRequest || !strings.Contains(body, `unknown detector \"bogus\"`) {
		t.Errorf("GET with an unknown detector = %d %s, want 400 naming it", code, body)
	}
}
