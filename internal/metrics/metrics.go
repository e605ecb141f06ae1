// Package metrics serves Bulwark's counters in the Prometheus text format
// on a listener of its own. It exposes no client address and no query
// name: counters are kept per transport, flavour, qtype, response code,
// list, limit and authoritative server, never per client, and every label
// has a bounded set of values.
package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"bulwark/internal/cache"
	"bulwark/internal/dnssec"
	"bulwark/internal/guard"
	"bulwark/internal/intel/sources"
	"bulwark/internal/intel/store"
	"bulwark/internal/pipeline"
	"bulwark/internal/policyload"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Sources are the parts of a node whose counters are exposed. Any may be
// nil.
type Sources struct {
	Pipeline *pipeline.Stats
	// Observer counts client queries by transport, flavour, qtype and
	// rcode, their latency, and the queries to authoritative servers.
	Observer *Observer
	// Cache returns the size of the RRset and answer caches.
	Cache func() cache.Usage
	// LimitHits returns the hits of each client limit, as the server
	// counts them.
	LimitHits func() map[string]uint64
	// RateLimited returns the UDP responses that response rate limiting
	// replaced with a truncated or BADCOOKIE one, and those it dropped.
	RateLimited func() (slipped, dropped uint64)
	// Lists returns the state of the policy lists.
	Lists func() []policyload.ListState
	// Outputs returns the counters of the outputs that write queries
	// elsewhere, such as dnstap and the query log.
	Outputs func() []Output
	// LogSuppressed returns the log lines left out by the repeat limit.
	LogSuppressed func() uint64
	// Guard returns the counters of the protection per target domain.
	Guard func() guard.Stats
	// Intel returns the counters of the traffic analysis.
	Intel func() IntelStats
	// Primary returns the counters and zones of the RPZ primary.
	Primary func() PrimaryStats
	// IntelSources returns the state of the indicator sources.
	IntelSources func() []sources.Status
	// IntelStore returns the counters of the candidate store.
	IntelStore func() store.Counters
	// Now is the clock for list ages; nil means time.Now.
	Now func() time.Time
}

// Output is the counters of one output of the query path.
type Output struct {
	// Name is the output's config section, such as dnstap or query_log.
	Name string
	// Sent counts messages or lines written; Dropped those left out
	// because the output's queue was full; Failed those whose write
	// failed or that were still queued at shutdown.
	Sent, Dropped, Failed uint64
}

var (
	responsesDesc = prometheus.NewDesc("bulwark_responses_total",
		"Responses sent to clients, by response code.", []string{"rcode"}, nil)
	cacheDesc = prometheus.NewDesc("bulwark_answer_cache_lookups_total",
		"Queries answered from the answer cache (hit) or resolved (miss).", []string{"result"}, nil)
	droppedDesc = prometheus.NewDesc("bulwark_queries_dropped_total",
		"Queries that got no response: packets too short to answer and queries a policy drops.", nil, nil)
	busyDesc = prometheus.NewDesc("bulwark_queries_busy_total",
		"Queries answered SERVFAIL because every resolution slot was taken.", nil, nil)
	staleDesc = prometheus.NewDesc("bulwark_cache_stale_answers_total",
		"Stale responses sent because resolution failed or was slow (RFC 8767).", nil, nil)
	prefetchDesc = prometheus.NewDesc("bulwark_cache_prefetches_total",
		"Background refreshes of cached responses served close to their expiry.", nil, nil)
	nsecAnswersDesc = prometheus.NewDesc("bulwark_nsec_answers_total",
		"Responses synthesised from cached, validated NSEC or NSEC3 records without asking a server (RFC 8198).", nil, nil)
	limitDesc = prometheus.NewDesc("bulwark_client_limit_hits_total",
		"Connections or queries held back or refused by a client limit, by the limit's config key.", []string{"limit"}, nil)
	rateLimitedDesc = prometheus.NewDesc("bulwark_rate_limited_responses_total",
		"UDP responses held back by response rate limiting: slipped (sent truncated, or as BADCOOKIE to a client with a cookie) or dropped.",
		[]string{"action"}, nil)
	listRulesDesc = prometheus.NewDesc("bulwark_policy_list_rules",
		"Rules of a policy list as loaded.", []string{"list", "category"}, nil)
	listAgeDesc = prometheus.NewDesc("bulwark_policy_list_age_seconds",
		"Seconds since the loaded version of a policy list was read.", []string{"list", "category"}, nil)
	listErrorDesc = prometheus.NewDesc("bulwark_policy_list_error",
		"1 when the last load of a policy list failed and it serves its previous version, else 0.", []string{"list", "category"}, nil)
	policyActionsDesc = prometheus.NewDesc("bulwark_policy_actions_total",
		"Answers that a policy list decided, including those served from the answer cache, by list, category and action.",
		[]string{"list", "category", "action"}, nil)
	validationDesc = prometheus.NewDesc("bulwark_dnssec_validations_total",
		"Resolutions by the DNSSEC validation state of their result.", []string{"result"}, nil)
	cacheEntriesDesc = prometheus.NewDesc("bulwark_cache_entries",
		"Entries in the RRset cache (RRsets and negative answers) and the answer cache (packed responses).", []string{"cache"}, nil)
	cacheBytesDesc = prometheus.NewDesc("bulwark_cache_bytes",
		"Estimated memory of the entries of the RRset and answer caches, in bytes.", []string{"cache"}, nil)
	cacheMaxBytesDesc = prometheus.NewDesc("bulwark_cache_max_bytes",
		"Memory budget of the RRset and answer caches together, in bytes (cache.max_bytes).", nil, nil)
	outputDesc = prometheus.NewDesc("bulwark_output_messages_total",
		"Messages of the query outputs (dnstap, query_log) by result: sent, dropped on a full queue, or failed.",
		[]string{"output", "result"}, nil)
	logSuppressedDesc = prometheus.NewDesc("bulwark_log_repeats_suppressed_total",
		"Log lines left out because the same message at the same level repeated beyond log.repeat_limit.", nil, nil)
)

// collector reads Sources at each scrape.
type collector struct{ src Sources }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{responsesDesc, cacheDesc, droppedDesc, busyDesc, staleDesc, prefetchDesc, nsecAnswersDesc,
		limitDesc, rateLimitedDesc, listRulesDesc, listAgeDesc, listErrorDesc, policyActionsDesc, validationDesc,
		cacheEntriesDesc, cacheBytesDesc, cacheMaxBytesDesc, outputDesc, logSuppressedDesc} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	if st := c.src.Pipeline; st != nil {
		collectPipeline(ch, st)
	}
	if c.src.Cache != nil {
		collectCache(ch, c.src.Cache())
	}
	if c.src.Outputs != nil {
		for _, o := range c.src.Outputs() {
			counter(ch, outputDesc, o.Sent, o.Name, "sent")
			counter(ch, outputDesc, o.Dropped, o.Name, "dropped")
			counter(ch, outputDesc, o.Failed, o.Name, "failed")
		}
	}
	if c.src.LogSuppressed != nil {
		counter(ch, logSuppressedDesc, c.src.LogSuppressed())
	}
	if c.src.LimitHits != nil {
		for limit, n := range c.src.LimitHits() {
			counter(ch, limitDesc, n, limit)
		}
	}
	if c.src.RateLimited != nil {
		slipped, dropped := c.src.RateLimited()
		counter(ch, rateLimitedDesc, slipped, "slipped")
		counter(ch, rateLimitedDesc, dropped, "dropped")
	}
	if c.src.Lists != nil {
		now := time.Now
		if c.src.Now != nil {
			now = c.src.Now
		}
		collectLists(ch, c.src.Lists(), now())
	}
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v uint64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func collectPipeline(ch chan<- prometheus.Metric, st *pipeline.Stats) {
	for code := range st.Rcodes {
		if n := st.Rcodes[code].Load(); n > 0 || code <= dns.RcodeRefused {
			counter(ch, responsesDesc, n, rcodeName(code))
		}
	}
	counter(ch, cacheDesc, st.CacheHits.Load(), "hit")
	counter(ch, cacheDesc, st.Resolved.Load(), "miss")
	counter(ch, droppedDesc, st.Dropped.Load())
	counter(ch, busyDesc, st.Busy.Load())
	counter(ch, staleDesc, st.Stale.Load())
	counter(ch, prefetchDesc, st.Prefetches.Load())
	counter(ch, nsecAnswersDesc, st.NSECAnswers.Load())
	for sec := range st.Validation {
		counter(ch, validationDesc, st.Validation[sec].Load(), dnssec.Security(sec).String())
	}
	for _, a := range st.PolicyActions() {
		counter(ch, policyActionsDesc, a.Count, a.List, a.Category, a.Action)
	}
}

func collectCache(ch chan<- prometheus.Metric, u cache.Usage) {
	gauge(ch, cacheEntriesDesc, float64(u.RRsets), "rrset")
	gauge(ch, cacheEntriesDesc, float64(u.Answers), "answer")
	gauge(ch, cacheBytesDesc, float64(u.RRsetBytes), "rrset")
	gauge(ch, cacheBytesDesc, float64(u.AnswerBytes), "answer")
	gauge(ch, cacheMaxBytesDesc, float64(u.MaxBytes))
}

func collectLists(ch chan<- prometheus.Metric, lists []policyload.ListState, now time.Time) {
	for _, l := range lists {
		gauge(ch, listRulesDesc, float64(l.Rules), l.Name, l.Category)
		if !l.Loaded.IsZero() {
			gauge(ch, listAgeDesc, now.Sub(l.Loaded).Seconds(), l.Name, l.Category)
		}
		failed := 0.0
		if l.Error != "" {
			failed = 1
		}
		gauge(ch, listErrorDesc, failed, l.Name, l.Category)
	}
}

// rcodeName returns the mnemonic of a 4-bit response code.
func rcodeName(code int) string {
	if name, ok := dns.RcodeToString[code]; ok {
		return name
	}
	return "RCODE" + strconv.Itoa(code)
}

// NewRegistry returns a registry with the metrics of src and the Go
// runtime and process metrics.
func NewRegistry(src Sources) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{src},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if src.Observer != nil {
		reg.MustRegister(src.Observer)
	}
	if src.Guard != nil {
		reg.MustRegister(guardCollector{src.Guard})
	}
	if src.Intel != nil {
		reg.MustRegister(intelCollector{src.Intel})
	}
	if src.Primary != nil {
		reg.MustRegister(primaryCollector{src.Primary})
	}
	if src.IntelSources != nil {
		reg.MustRegister(sourcesCollector{src.IntelSources})
	}
	if src.IntelStore != nil {
		reg.MustRegister(storeCollector{src.IntelStore})
	}
	return reg
}

// Server serves /metrics, and the health and readiness checks of load
// balancers and orchestrators: /healthz answers 200 while the process
// runs, and /readyz answers 200 once the node serves queries and 503 from
// the start of its shutdown, so that traffic drains before it stops.
type Server struct {
	http  *http.Server
	log   *slog.Logger
	ready atomic.Bool
}

// NewServer returns a Server for reg, not ready until SetReady.
func NewServer(reg *prometheus.Registry, log *slog.Logger) *Server {
	s := &Server{log: log.With("component", "metrics")}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "not ready: starting or shutting down", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	})
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	return s
}

// SetReady sets what /readyz answers.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// Handler returns the HTTP handler, for tests.
func (s *Server) Handler() http.Handler { return s.http.Handler }

// Serve serves the metrics and health checks on ln in the background
// until Shutdown, which closes ln.
func (s *Server) Serve(ln net.Listener) {
	s.log.Info("listening", "listener", ln.Addr().String())
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("metrics listener stopped", "error", err)
		}
	}()
}

// Shutdown stops the listener.
func (s *Server) Shutdown(ctx context.Context) error { return s.http.Shutdown(ctx) }
