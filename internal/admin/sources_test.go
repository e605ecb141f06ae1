package admin

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"bulwark/internal/intel/indicator"
	"bulwark/internal/intel/sources"
)

type fakeSources struct {
	statuses []sources.Status
	batches  map[string]sources.Batch
}

func (f fakeSources) Statuses() []sources.Status { return f.statuses }

func (f fakeSources) Last(name string) (sources.Batch, bool) {
	b, ok := f.batches[name]
	return b, ok
}

func TestIntelSources(t *testing.T) {
	s, _, _ := newTestServer()
	if code, body := do(t, s, "GET", "/v1/intel/sources", ""); code != http.StatusServiceUnavailable {
		t.Errorf("GET /v1/intel/sources without sources = %d %s, want 503", code, body)
	}
	ins := []indicator.Indicator{
		{Name: "a.example.", Source: "cert", Trust: 80, Mode: indicator.Enforce, Provenance: []indicator.Provenance{{Source: "cert", Ref: "indicator--1"}}},
		{Name: "b.example.", Source: "cert", Trust: 80, Mode: indicator.Enforce},
	}
	s.SetIntelSources(fakeSources{
		statuses: []sources.Status{{Name: "cert", Trust: 80, Mode: indicator.Enforce, Items: 2}, {Name: "peer", Trust: 20}},
		batches:  map[string]sources.Batch{"cert": {Source: "cert", Trust: 80, Mode: indicator.Enforce, Indicators: ins}},
	})

	code, body := do(t, s, "GET", "/v1/intel/sources?limit=1", "")
	if code != http.StatusOK {
		t.Fatalf("GET /v1/intel/sources?limit=1 = %d %s, want 200", code, body)
	}
	var got []struct {
		Name      string `json:"name"`
		Trust     int    `json:"trust"`
		LastBatch *struct {
			Items      int `json:"items"`
			Indicators []struct {
				Name       string   `json:"name"`
				Mode       string   `json:"mode"`
				Provenance []string `json:"provenance"`
			} `json:"indicators"`
		} `json:"last_batch"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("GET /v1/intel/sources: %v in %s", err, body)
	}
	if len(got) != 2 || got[0].Name != "cert" || got[1].LastBatch != nil {
		t.Fatalf("GET /v1/intel/sources = %s, want cert with a batch and peer without", body)
	}
	b := got[0].LastBatch
	if b == nil || b.Items != 2 || len(b.Indicators) != 1 || b.Indicators[0].Name != "a.example." {
		t.Fatalf("cert's batch = %s, want 2 items with a.example. listed alone", body)
	}
	if b.Indicators[0].Mode != "enforce" || strings.Join(b.Indicators[0].Provenance, ",") != "cert indicator--1" {
		t.Errorf("a.example. = %+v, want mode enforce and provenance cert indicator--1", b.Indicators[0])
	}

	if code, body := do(t, s, "GET", "/v1/intel/sources?source=nope", ""); code != http.StatusNotFound || !strings.Contains(body, `unknown source \"nope\"`) {
		t.Errorf("GET with an unknown source = %d %s, want 404 naming it", code, body)
	}
	if code, body := do(t, s, "GET", "/v1/intel/sources?limit=-1", ""); code != http.StatusBadRequest {
		t.Errorf("GET with limit -1 = %d %s, want 400", code, body)
	}
}
