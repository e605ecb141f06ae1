// Package sources pulls threat indicators from the feeds of CERTs and
// peers: TAXII 2.1 collections, MISP feeds, STIX 2.1 bundles and indicator
// CSV files. One goroutine per source pulls at the source's interval, with
// backoff and jitter after a failure, bounds what one pull reads, tags each
// indicator with the source's name, trust level and mode, and hands the
// batch to a Sink. Deciding what the indicators block is left to the Sink.
package sources

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"bulwark/internal/intel/indicator"
	"bulwark/internal/intel/taxii"
)

// Sink receives the indicators of each successful pull. items are those of
// one pull of source: for TAXII the objects added since the previous pull,
// for the other types the whole feed. Import must not keep items past the
// call unless it owns them: the puller does not touch a batch again once
// handed over. Import is called from the source's goroutine, so calls for
// different sources may run at once.
type Sink interface {
	Import(source string, trust int, mode indicator.Mode, items []indicator.Indicator)
}

// Types of source.
const (
	TypeTAXII = "taxii"
	TypeMISP  = "misp"
	TypeSTIX  = "stix"
	TypeCSV   = "csv"
)

// Defaults and bounds of a Source.
const (
	DefaultMaxBytes = 64 << 20
	DefaultMaxItems = 1_000_000
	// DefaultMaxFiles bounds the files of one MISP feed pull: the
	// manifest and the events it lists.
	DefaultMaxFiles = 10_000
	// DefaultTimeout bounds each HTTP request.
	DefaultTimeout = 30 * time.Second
	// retryBase is the wait after the first failure; it doubles on each
	// further failure up to the source's interval.
	retryBase = 30 * time.Second
)

// Source configures one source.
type Source struct {
	// Name identifies the source in provenance, logs, metrics and the
	// Sink.
	Name string
	// Type is TypeTAXII, TypeMISP, TypeSTIX or TypeCSV.
	Type string
	// URL is the TAXII API root, the MISP feed's base URL, or the URL of
	// the STIX bundle or CSV file; file:// URLs name local files, except
	// for TAXII.
	URL string
	// Collection is the TAXII collection id.
	Collection string
	// Trust is the trust level given to the indicators, 1 to 100.
	Trust int
	// Mode is given to the indicators.
	Mode indicator.Mode
	// Interval is the time between two pulls.
	Interval time.Duration
	// TokenFile holds a bearer token; Username and PasswordFile set basic
	// authentication instead. The files are read at each pull, so a
	// rotated credential is used without a restart.
	TokenFile, Username, PasswordFile string
	// MaxBytes bounds each response or file read; MaxItems the
	// indicators of one pull, beyond which the rest are dropped and
	// counted; MaxFiles the files of one MISP pull. Zero means the
	// defaults.
	MaxBytes int64
	MaxItems int
	MaxFiles int
}

// Options are the settings shared by every source of a Puller.
type Options struct {
	// HTTP sends the requests; nil means a client with DefaultTimeout.
	HTTP *http.Client
	// TAXIIState is the file that stores where each TAXII collection's
	// last pull ended. Empty keeps it in memory, so each start pulls the
	// whole collection again.
	TAXIIState string
}

// Status is the state of one source, for the admin API and the metrics.
type Status struct {
	Name            string         `json:"name"`
	Type            string         `json:"type"`
	URL             string         `json:"url"`
	Collection      string         `json:"collection,omitempty"`
	Trust           int            `json:"trust"`
	Mode            indicator.Mode `json:"mode"`
	IntervalSeconds float64        `json:"interval_seconds"`
	// LastAttempt and LastSuccess are the end times of the last pull and
	// of the last successful one; zero before the first.
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	// LastError is the error of the last pull, empty after a success.
	LastError string `json:"last_error,omitempty"`
	// Pulls and Failures count pulls since the start.
	Pulls    uint64 `json:"pulls"`
	Failures uint64 `json:"failures"`
	// Items is the number of indicators of the last successful pull;
	// Skipped the objects, rows or attributes it did not take, and
	// Truncated the indicators dropped beyond MaxItems. ItemsTotal
	// counts the indicators of every pull since the start.
	Items      int    `json:"items"`
	Skipped    int    `json:"skipped"`
	Truncated  int    `json:"truncated"`
	ItemsTotal uint64 `json:"items_total"`
	// NextPull is when the next pull starts.
	NextPull time.Time `json:"next_pull,omitzero"`
}

// Puller pulls every configured source into a Sink.
type Puller struct {
	sources []*puller
	sink    Sink
	log     *slog.Logger
	// state stores where each TAXII collection's last pull ended; it is
	// saved to statePath unless that is empty. stateMu guards it, since
	// the TAXII sources share it.
	state     *taxii.State
	statePath string
	stateMu   sync.Mutex
}

// puller is the state of one source.
type puller struct {
	cfg    Source
	fetch  fetcher
	mu     sync.Mutex
	status Status
	// failures counts the failures since the last success, for the
	// backoff.
	failures int
}

// New returns a puller of srcs that hands their indicators to sink. It
// checks each source's settings and loads the TAXII state file.
func New(srcs []Source, sink Sink, opts Options, log *slog.Logger) (*Puller, error) {
	if sink == nil {
		return nil, errors.New("sources: no sink")
	}
	if opts.HTTP == nil {
		opts.HTTP = &http.Client{Timeout: DefaultTimeout}
	}
	p := &Puller{sink: sink, log: log.With("component", "intel_sources")}
	seen := map[string]bool{}
	for _, s := range srcs {
		if seen[s.Name] {
			return nil, fmt.Errorf("source %q is listed twice: give each source its own name", s.Name)
		}
		seen[s.Name] = true
		setDefaults(&s)
		f, err := newFetcher(s, opts, p)
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", s.Name, err)
		}
		p.sources = append(p.sources, &puller{cfg: s, fetch: f, status: Status{
			Name: s.Name, Type: s.Type, URL: s.URL, Collection: s.Collection,
			Trust: s.Trust, Mode: s.Mode, IntervalSeconds: s.Interval.Seconds(),
		}})
	}
	st, err := taxii.LoadState(opts.TAXIIState)
	if err != nil {
		return nil, err
	}
	p.state, p.statePath = st, opts.TAXIIState
	return p, nil
}

func setDefaults(s *Source) {
	if s.MaxBytes <= 0 {
		s.MaxBytes = DefaultMaxBytes
	}
	if s.MaxItems <= 0 {
		s.MaxItems = DefaultMaxItems
	}
	if s.MaxFiles <= 0 {
		s.MaxFiles = DefaultMaxFiles
	}
	if s.Interval <= 0 {
		s.Interval = time.Hour
	}
	if s.Mode == "" {
		s.Mode = indicator.Audit
	}
}

// Run pulls every source, first at once and then at its interval, until
// ctx ends. It returns when every source's goroutine has stopped.
func (p *Puller) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, s := range p.sources {
		wg.Go(func() { p.loop(ctx, s) })
	}
	wg.Wait()
}

func (p *Puller) loop(ctx context.Context, s *puller) {
	for {
		wait := p.Pull(ctx, s.cfg.Name)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Pull pulls the source called name once, hands a successful pull's
// indicators to the Sink, and returns the wait until the next pull: the
// interval after a success, a growing backoff after a failure, both with
// jitter. An unknown name returns 0 and does nothing.
func (p *Puller) Pull(ctx context.Context, name string) time.Duration {
	s := p.source(name)
	if s == nil {
		return 0
	}
	start := time.Now()
	res, err := s.fetch(ctx)
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	var items []indicator.Indicator
	truncated := 0
	if err == nil {
		items, truncated = tag(res.items, s.cfg)
		p.sink.Import(s.cfg.Name, s.cfg.Trust, s.cfg.Mode, items)
	}
	wait := s.record(res, items, truncated, err, rand.Float64())
	p.logPull(s, res, len(items), truncated, err, time.Since(start), wait)
	return wait
}

func (p *Puller) source(name string) *puller {
	for _, s := range p.sources {
		if s.cfg.Name == name {
			return s
		}
	}
	return nil
}

func (p *Puller) logPull(s *puller, res result, items, truncated int, err error, took, wait time.Duration) {
	if err != nil {
		p.log.Warn("source pull failed", "source", s.cfg.Name, "error", err,
			"retry_in_seconds", wait.Seconds())
		return
	}
	p.log.Info("source pulled", "source", s.cfg.Name, "type", s.cfg.Type, "items", items,
		"skipped", res.skipped, "duration_seconds", took.Seconds(), "next_pull_in_seconds", wait.Seconds())
	if truncated > 0 {
		p.log.Warn("source pull truncated", "source", s.cfg.Name, "max_items", s.cfg.MaxItems,
			"dropped", truncated)
	}
	for _, msg := range res.samples {
		p.log.Debug("source item skipped", "source", s.cfg.Name, "reason", msg)
	}
}

// tag gives each indicator the source's name, trust and mode, keeping at
// most cfg.MaxItems, and returns how many it dropped.
func tag(items []indicator.Indicator, cfg Source) ([]indicator.Indicator, int) {
	dropped := 0
	if len(items) > cfg.MaxItems {
		dropped = len(items) - cfg.MaxItems
		items = items[:cfg.MaxItems]
	}
	for i := range items {
		in := &items[i]
		in.Source, in.Trust, in.Mode = cfg.Name, cfg.Trust, cfg.Mode
		if in.State == "" {
			in.State = indicator.Observed
		}
	}
	return items, dropped
}

// record updates the status after a pull and returns the wait until the
// next one; jitter is a number in [0, 1).
func (s *puller) record(res result, items []indicator.Indicator, truncated int, err error, jitter float64) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	st := &s.status
	st.Pulls++
	st.LastAttempt = now
	if err != nil {
		st.Failures++
		st.LastError = err.Error()
		s.failures++
	} else {
		st.LastSuccess, st.LastError = now, ""
		st.Items, st.Skipped, st.Truncated = len(items), res.skipped, truncated
		st.ItemsTotal += uint64(len(items))
		s.failures = 0
	}
	wait := nextWait(s.cfg.Interval, s.failures, jitter)
	st.NextPull = now.Add(wait)
	return wait
}

// nextWait returns the wait before the next pull after failures failures
// in a row (0 after a success). A success waits the interval, spread by
// ±10% so that sources and resolvers do not pull in step. A failure
// waits retryBase, doubled per further failure up to the interval, and
// then between half and all of that ("equal jitter"), so that clients
// retrying a server that came back do not all arrive at once.
func nextWait(interval time.Duration, failures int, jitter float64) time.Duration {
	if failures == 0 {
		return time.Duration(float64(interval) * (0.9 + 0.2*jitter))
	}
	backoff := retryBase
	for range failures - 1 {
		if backoff >= interval {
			break
		}
		backoff *= 2
	}
	backoff = min(backoff, interval)
	return time.Duration(float64(backoff) * (0.5 + 0.5*jitter))
}

// Statuses returns the state of every source, in config order.
func (p *Puller) Statuses() []Status {
	out := make([]Status, 0, len(p.sources))
	for _, s := range p.sources {
		s.mu.Lock()
		out = append(out, s.status)
		s.mu.Unlock()
	}
	return out
}
