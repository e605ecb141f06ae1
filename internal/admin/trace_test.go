package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"bulwark/internal/cache"
	"bulwark/internal/dnssec"
	"bulwark/internal/pipeline"
	"bulwark/internal/trace"

	"github.com/miekg/dns"
)

// fakeTracer returns a report of one step for the question it gets.
type fakeTracer struct{ flavour string }

func (f *fakeTracer) Trace(ctx context.Context, name string, qtype uint16, flavour string) (*trace.Report, error) {
	if flavour == "nosuch" {
		return nil, fmt.Errorf("unknown flavour %q", flavour)
	}
	f.flavour = flavour
	return &trace.Report{
		Name: name, Type: dns.Type(qtype).String(), Flavour: flavour,
		Steps:  []trace.Step{{Kind: trace.KindQuery, Zone: ".", Server: "192.0.2.53:53", Name: name, Type: dns.Type(qtype).String()}},
		Answer: trace.Answer{Rcode: "NOERROR", Security: "secure", Answer: []string{}},
	}, nil
}

func (f *fakeTracer) DescribeAnswerKey(flags byte, variant []byte) pipeline.AnswerVariant {
	return pipeline.AnswerVariant{DO: flags&1 != 0, Flavour: "protective"}
}

// inspectedCache is a real cache behind the Flusher and CacheInspector
// interfaces.
type inspectedCache struct{ *cache.Cache }

func (c inspectedCache) Inspect(name string) ([]cache.Entry, []cache.AnswerEntry) {
	return c.Cache.Inspect(name)
}

func newTraceServer(t *testing.T) (*Server, *fakeTracer, *cache.Cache) {
	t.Helper()
	c := cache.New(cache.Config{MaxBytes: 1 << 20, MaxTTL: time.Hour, MaxNegativeTTL: time.Hour, Now: func() time.Time { return testNow }})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := New(&fakeResolver{ntas: map[string]time.Time{}}, inspectedCache{c}, log, func() time.Time { return testNow })
	tr := &fakeTracer{}
	s.SetTracer(tr, "unfiltered")
	return s, tr, c
}

func TestTraceEndpoint(t *testing.T) {
	s, tr, _ := newTraceServer(t)
	code, body := do(t, s, "GET", "/v1/trace?name=Www.Example.com&type=aaaa", "")
	if code != http.StatusOK {
		t.Fatalf("GET /v1/trace: %d %s, want 200", code, body)
	}
	var rep trace.Report
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("trace body %q: %v", body, err)
	}
	if rep.Name != "www.example.com." || rep.Type != "AAAA" || tr.flavour != "unfiltered" {
		t.Errorf("traced %s %s in flavour %q, want www.example.com. AAAA in unfiltered", rep.Name, rep.Type, tr.flavour)
	}
	if len(rep.Steps) != 1 || rep.Steps[0].Server != "192.0.2.53:53" {
		t.Errorf("steps %+v, want the query to 192.0.2.53:53", rep.Steps)
	}

	code, body = do(t, s, "GET", "/v1/trace?name=www.example.com&flavour=protective&format=text", "")
	if code != http.StatusOK || !strings.Contains(body, "query www.example.com. A to 192.0.2.53:53") {
		t.Errorf("text trace: %d %q, want the query line", code, body)
	}
	if tr.flavour != "protective" {
		t.Errorf("flavour %q, want protective", tr.flavour)
	}
}

func TestTraceEndpointErrors(t *testing.T) {
	s, _, _ := newTraceServer(t)
	for _, tt := range []struct {
		query string
		code  int
		want  string
	}{
		{"", http.StatusBadRequest, "missing name"},
		{"name=a..b", http.StatusBadRequest, "invalid domain name"},
		{"name=example.com&type=XYZ", http.StatusBadRequest, `unknown type \"XYZ\"`},
		{"name=example.com&format=html", http.StatusBadRequest, `invalid format \"html\"`},
		{"name=example.com&flavour=nosuch", http.StatusNotFound, `unknown flavour \"nosuch\"`},
	} {
		code, body := do(t, s, "GET", "/v1/trace?"+tt.query, "")
		if code != tt.code || !strings.Contains(body, tt.want) {
			t.Errorf("GET /v1/trace?%s = %d %s, want %d with %q", tt.query, code, body, tt.code, tt.want)
		}
	}
	bare, _, _ := newTestServer()
	if code, _ := do(t, bare, "GET", "/v1/trace?name=example.com", ""); code != http.StatusServiceUnavailable {
		t.Errorf("GET /v1/trace without a tracer = %d, want 503", code)
	}
	if code, _ := do(t, bare, "GET", "/v1/cache?name=example.com", ""); code != http.StatusServiceUnavailable {
		t.Errorf("GET /v1/cache without an inspector = %d, want 503", code)
	}
}

func TestCacheInspectAndFlushName(t *testing.T) {
	s, _, c := newTraceServer(t)
	a, _ := dns.NewRR("www.example.com. 300 IN A 192.0.2.1")
	c.StoreSet(cache.Set{RRs: []dns.RR{a}, Rank: cache.RankAnswer, Security: dnssec.Secure}, 0)
	soa, _ := dns.NewRR("example.com. 300 IN SOA ns.example.com. admin.example.com. 1 3600 600 86400 60")
	c.StoreNegativeProof("www.example.com.", dns.TypeAAAA, cache.Negative{
		SOA: soa.(*dns.SOA), Security: dnssec.Bogus, Reason: &dnssec.Error{EDE: 6, Text: "bad"},
	}, 0)
	sub, _ := dns.NewRR("x.www.example.com. 300 IN A 192.0.2.2")
	c.StoreRRset([]dns.RR{sub}, cache.RankAnswer)

	code, body := do(t, s, "GET", "/v1/cache?name=WWW.example.com", "")
	if code != http.StatusOK {
		t.Fatalf("GET /v1/cache: %d %s", code, body)
	}
	var got cacheJSON
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.RRsets) != 1 || got.RRsets[0].Type != "A" || got.RRsets[0].Rank != "answer" || got.RRsets[0].TTL != 300 || got.RRsets[0].Security != "secure" {
		t.Errorf("rrsets %+v, want one secure answer A RRset with TTL 300", got.RRsets)
	}
	if len(got.Negative) != 1 || got.Negative[0].Type != "AAAA" || got.Negative[0].TTL != 60 ||
		got.Negative[0].Security != "bogus" || got.Negative[0].Reason == nil || got.Negative[0].Reason.Code != 6 {
		t.Errorf("negative %+v, want a bogus AAAA NODATA with TTL 60 and EDE 6", got.Negative)
	}

	code, body = do(t, s, "POST", "/v1/cache/flush", `{"name": "www.example.com"}`)
	if code != http.StatusOK || !strings.Contains(body, `"entries_removed":2`) {
		t.Errorf("flush name: %d %s, want 200 with 2 entries removed", code, body)
	}
	if _, _, ok := c.RRset("x.www.example.com.", dns.TypeA); !ok {
		t.Error("flushing one name removed a name below it")
	}
	if code, body := do(t, s, "POST", "/v1/cache/flush", `{"name": "a.example", "zone": "example"}`); code != http.StatusBadRequest {
		t.Errorf("flush with name and zone: %d %s, want 400", code, body)
	}
}
