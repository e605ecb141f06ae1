package metrics

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"bulwark/internal/cache"
	"bulwark/internal/dnssec"
	"bulwark/internal/guard"
	"bulwark/internal/intel/events"
	"bulwark/internal/intel/indicator"
	"bulwark/internal/intel/nod"
	"bulwark/internal/intel/sources"
	"bulwark/internal/intel/store"
	"bulwark/internal/intel/traffic"
	"bulwark/internal/policyload"
	"bulwark/internal/xfr"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

func testSources() Sources {
	st := blockingPipeline().Stats() // one hit, one miss, two NXDOMAIN
	st.CacheHits.Add(6)
	st.Resolved.Add(2)
	st.Rcodes[0].Add(8)
	st.Dropped.Add(1)
	st.Validation[dnssec.Secure].Add(5)
	st.Validation[dnssec.Bogus].Add(1)
	loaded := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return Sources{
		Pipeline: st,
		Observer: testObserver(),
		Cache: func() cache.Usage {
			return cache.Usage{RRsets: 40, RRsetBytes: 12000, Answers: 9, AnswerBytes: 3000, MaxBytes: 1 << 20}
		},
		LimitHits: func() map[string]uint64 { return map[string]uint64{"max_connections_per_client": 4} },
		Guard: func() guard.Stats {
			return guard.Stats{Protected: 1, LocalAnswers: 30, ShedProtected: 25, ShedInFlight: 5}
		},
		Intel: func() IntelStats {
			return IntelStats{
				Queue:  events.Stats{Queued: 90, Dropped: 4, Skipped: 1},
				Engine: traffic.Stats{Findings: []uint64{3, 1, 0, 2, 0, 0, 1}, NOD: nod.Stats{Domains: 12, FillRatio: 0.01}},
			}
		},
		Primary: func() PrimaryStats {
			return PrimaryStats{
				Counters: xfr.PrimaryStats{SOA: 4, AXFR: 2, AXFRFailed: 1, IXFR: 3, RefusedBy: map[string]uint64{"tsig": 2}, NotifyAcked: 5},
				Zones:    []xfr.ZoneStats{{Name: "rpz.example.", Serial: 1767225600, Records: 42}},
			}
		},
		IntelSources: func() []sources.Status {
			return []sources.Status{{Name: "cert-eu", Pulls: 3, Failures: 1, Items: 20, ItemsTotal: 45, LastSuccess: loaded}}
		},
		IntelStore: func() store.Counters {
			return store.Counters{States: map[indicator.State]int{indicator.AutoBlocked: 2, indicator.Review: 1}, Evicted: 4}
		},
		RateLimited: func() (uint64, uint64) { return 3, 5 },
		Lists: func() []policyload.ListState {
			return []policyload.ListState{
				{Name: "urlhaus", Category: "malware", Rules: 2689, Loaded: loaded},
				{Name: "broken", Category: "phishing", Rules: 10, Loaded: loaded, Error: "cannot read"},
			}
		},
		Outputs: func() []Output {
			return []Output{{Name: "dnstap", Sent: 100, Dropped: 2, Failed: 1}, {Name: "query_log", Sent: 50}}
		},
		LogSuppressed: func() uint64 { return 7 },
		Now:           func() time.Time { return loaded.Add(90 * time.Second) },
	}
}

func TestMetricNamesLint(t *testing.T) {
	families, err := NewRegistry(testSources()).Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(families).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

func TestMetricValues(t *testing.T) {
	reg := NewRegistry(testSources())
	want := `
# HELP bulwark_answer_cache_lookups_total Queries answered from the answer cache (hit) or resolved (miss).
# TYPE bulwark_answer_cache_lookups_total counter
bulwark_answer_cache_lookups_total{result="hit"} 7
bulwark_answer_cache_lookups_total{result="miss"} 3
# HELP bulwark_cache_bytes Estimated memory of the entries of the RRset and answer caches, in bytes.
# TYPE bulwark_cache_bytes gauge
bulwark_cache_bytes{cache="answer"} 3000
bulwark_cache_bytes{cache="rrset"} 12000
# HELP bulwark_cache_entries Entries in the RRset cache (RRsets and negative answers) and the answer cache (packed responses).
# TYPE bulwark_cache_entries gauge
bulwark_cache_entries{cache="answer"} 9
bulwark_cache_entries{cache="rrset"} 40
# HELP bulwark_cache_max_bytes Memory budget of the RRset and answer caches together, in bytes (cache.max_bytes).
# TYPE bulwark_cache_max_bytes gauge
bulwark_cache_max_bytes 1.048576e+06
# HELP bulwark_dnssec_validations_total Resolutions by the DNSSEC validation state of their result.
# TYPE bulwark_dnssec_validations_total counter
bulwark_dnssec_validations_total{result="bogus"} 1
bulwark_dnssec_validations_total{result="indeterminate"} 0
bulwark_dnssec_validations_total{result="insecure"} 0
bulwark_dnssec_validations_total{result="secure"} 5
# HELP bulwark_client_limit_hits_total Connections or queries held back or refused by a client limit, by the limit's config key.
# TYPE bulwark_client_limit_hits_total counter
bulwark_client_limit_hits_total{limit="max_connections_per_client"} 4
# HELP bulwark_policy_actions_total Answers that a policy list decided, including those served from the answer cache, by list, category and action.
# TYPE bulwark_policy_actions_total counter
bulwark_policy_actions_total{action="nxdomain",category="malware",list="urlhaus"} 2
# HELP bulwark_policy_list_age_seconds Seconds since the loaded version of a policy list was read.
# TYPE bulwark_policy_list_age_seconds gauge
bulwark_policy_list_age_seconds{category="malware",list="urlhaus"} 90
bulwark_policy_list_age_seconds{category="phishing",list="broken"} 90
# HELP bulwark_policy_list_error 1 when the last load of a policy list failed and it serves its previous version, else 0.
# TYPE bulwark_policy_list_error gauge
bulwark_policy_list_error{category="malware",list="urlhaus"} 0
bulwark_policy_list_error{category="phishing",list="broken"} 1
# HELP bulwark_rate_limited_responses_total UDP responses held back by response rate limiting: slipped (sent truncated, or as BADCOOKIE to a client with a cookie) or dropped.
# TYPE bulwark_rate_limited_responses_total counter
bulwark_rate_limited_responses_total{action="dropped"} 5
bulwark_rate_limited_responses_total{action="slipped"} 3
`
	names := []string{"bulwark_rate_limited_responses_total", "bulwark_answer_cache_lookups_total", "bulwark_cache_bytes", "bulwark_cache_entries",
		"bulwark_cache_max_bytes", "bulwark_dnssec_validations_total", "bulwark_client_limit_hits_total", "bulwark_policy_actions_total",
		"bulwark_policy_list_age_seconds", "bulwark_policy_list_error"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	responses := `
# HELP bulwark_responses_total Responses sent to clients, by response code.
# TYPE bulwark_responses_total counter
bulwark_responses_total{rcode="FORMERR"} 0
bulwark_responses_total{rcode="NOERROR"} 8
bulwark_responses_total{rcode="NOTIMP"} 0
bulwark_responses_total{rcode="NXDOMAIN"} 2
bulwark_responses_total{rcode="REFUSED"} 0
bulwark_responses_total{rcode="SERVFAIL"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(responses), "bulwark_responses_total"); err != nil {
		t.Error(err)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	s := NewServer(NewRegistry(testSources()), slog.New(slog.NewTextHandler(io.Discard, nil)))
	get := func(path string) int {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code
	}
	if code := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d, want 200", code)
	}
	if code := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before SetReady: %d, want 503", code)
	}
	s.SetReady(true)
	if code := get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz when ready: %d, want 200", code)
	}
	s.SetReady(false)
	if code := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz while shutting down: %d, want 503", code)
	}
	if code := get("/metrics"); code != http.StatusOK {
		t.Errorf("/metrics: %d, want 200", code)
	}
}
