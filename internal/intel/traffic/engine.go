// Package traffic analyses the client queries of a resolver for threats
// that show in traffic rather than in single names. One goroutine reads the
// events that internal/intel/events queues, counts them per registered
// domain and window in bounded memory, and runs the detectors: newly
// observed domains (internal/intel/nod), DGA on names seen for the first
// time and on clients that query many unseen NXDOMAIN domains of one
// structure (clients.go), tunnelling per domain, NXDOMAIN floods and random-subdomain
// attacks, unique responses, fast flux and popularity spikes. It also keeps
// a popularity history for false-positive control.
//
// Findings go to a Sink and to a bounded list of recent ones. What to do
// with them (review, block, share) is left to the Sink.
package traffic

import (
	"context"
	"errors"
	"hash/maphash"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"bulwark/internal/intel/detect"
	"bulwark/internal/intel/dga"
	"bulwark/internal/intel/events"
	"bulwark/internal/intel/nod"
	"bulwark/internal/intel/tunnel"
)

// minRandomLabel is the length from which the first label of an NXDOMAIN
// name is scored for randomness: shorter labels carry too little for the
// DGA model to judge.
const minRandomLabel = 8

// Engine aggregates the query events and runs the detectors. Run owns the
// aggregation; Findings, Stats, SteadilyPopular and NOD are safe to call
// from other goroutines.
type Engine struct {
	cfg    Config
	log    *slog.Logger
	queue  <-chan events.Event
	now    func() time.Time
	nod    *nod.Set
	pop    *Popularity
	tunnel *tunnel.Tracker
	dga    *dga.Model
	seed   maphash.Seed

	sinkMu sync.Mutex
	sink   Sink

	// Owned by the goroutine of Run.
	win      *window
	winStart time.Time
	unique   *uniqueTracker
	spike    *spikeTracker
	clients  *clientTracker // nil when DGAClients is off
	lastSave time.Time

	findings *findingLog
	stats    counters

	// handOff carries HandOff's requests to Run, and handedOff stops
	// the saves once another process owns the state files.
	handOff   chan chan error
	handedOff atomic.Bool
}

// counters are the Engine's counters that Stats reads.
type counters struct {
	processed, noDomain, windowDropped, uniqueDropped, spikeDropped, saveFailed atomic.Uint64
}

// New returns an Engine that reads queue, with its NOD seen-set and
// popularity history loaded from their state files. A state file that
// cannot be used is logged and replaced by an empty state, so that a
// corrupt file does not stop the resolver. clock is the time source, nil
// for time.Now; its time at the call starts the warm-up of a new seen-set.
func New(cfg Config, queue <-chan events.Event, log *slog.Logger, clock func() time.Time) (*Engine, error) {
	if clock == nil {
		clock = time.Now
	}
	now := clock()
	log = log.With("component", "intel")
	seen, err := nod.Open(cfg.NOD, now)
	switch {
	case errors.Is(err, nod.ErrDiscarded):
		log.Warn("NOD state not loaded; starting an empty seen-set with its warm-up",
			"file", cfg.NOD.Path, "warm_up_seconds", cfg.NOD.WarmUp.Seconds(), "error", err)
	case err != nil:
		return nil, err
	}
	pop := NewPopularity(cfg.Popularity)
	if err := pop.Load(); err != nil {
		log.Warn("popularity history not loaded; starting an empty one", "file", cfg.Popularity.Path, "error", err)
		pop = NewPopularity(cfg.Popularity)
	}
	e := &Engine{
		cfg: cfg, log: log, queue: queue, now: clock, nod: seen, pop: pop, handOff: make(chan chan error),
		tunnel:   tunnel.NewTracker(tunnel.TrackerConfig{Window: cfg.Window, MaxDomains: cfg.MaxDomains, MinQueries: cfg.TunnelMinQueries}),
		dga:      dga.Default(),
		seed:     maphash.MakeSeed(),
		unique:   newUniqueTracker(cfg.Unique),
		spike:    newSpikeTracker(cfg.Spike),
		findings: newFindingLog(cfg.MaxFindings, log),
		lastSave: now,
	}
	if cfg.DGAClients.Enabled {
		e.clients = newClientTracker(cfg.DGAClients)
	}
	e.startWindow(now)
	return e, nil
}

// SetSink sets where findings go besides the recent list; nil for none.
func (e *Engine) SetSink(s Sink) {
	e.sinkMu.Lock()
	e.sink = s
	e.sinkMu.Unlock()
}

// Run reads events until ctx is done, closing a window when its time has
// passed and saving the state every SaveInterval. On return it has
// handled the events still queued and saved the state.
func (e *Engine) Run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case ev := <-e.queue:
			e.process(&ev)
		case <-tick.C:
			e.tick(e.now())
		case reply := <-e.handOff:
			err := e.saveState()
			e.handedOff.Store(true)
			reply <- err
		case <-ctx.Done():
			e.drain()
			e.countPartialWindow(e.now())
			e.save()
			return
		}
	}
}

// drain handles the events queued when Run stops.
func (e *Engine) drain() {
	for {
		select {
		case ev := <-e.queue:
			e.process(&ev)
		default:
			return
		}
	}
}

// tick closes the window when now is past its end, and saves the state
// when SaveInterval has passed.
func (e *Engine) tick(now time.Time) {
	e.advance(now)
	if now.Sub(e.lastSave) >= e.cfg.SaveInterval {
		e.lastSave = now
		e.save()
	}
}

// save writes the state files, unless HandOff stopped the saves, and
// logs a failure.
func (e *Engine) save() {
	if e.handedOff.Load() {
		return
	}
	if err := e.saveState(); err != nil {
		e.log.Error("intel state not saved; the previous file stays", "error", err)
	}
}

// saveState writes the state files and returns their errors.
func (e *Engine) saveState() error {
	var errs []error
	for _, save := range []func() error{e.nod.Save, e.pop.Save} {
		if err := save(); err != nil {
			e.stats.saveFailed.Add(1)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// handOffTimeout bounds the wait of HandOff for Run.
const handOffTimeout = 10 * time.Second

// HandOff saves the state files and stops every later save, the one at
// stop included, as Store.HandOff does for a handover. It needs Run to be
// running, and returns an error when Run did not save within
// handOffTimeout.
func (e *Engine) HandOff() error {
	reply := make(chan error, 1)
	timer := time.NewTimer(handOffTimeout)
	defer timer.Stop()
	select {
	case e.handOff <- reply:
	case <-timer.C:
		return errors.New("intel state not saved: the analysis did not respond in time")
	}
	select {
	case err := <-reply:
		return err
	case <-timer.C:
		return errors.New("intel state not saved: the analysis did not respond in time")
	}
}

// Resume lets the Engine save its state files again after HandOff.
func (e *Engine) Resume() { e.handedOff.Store(false) }

func (e *Engine) startWindow(now time.Time) {
	e.winStart = now.Truncate(e.cfg.Window)
	e.win = newWindow(e.cfg.MaxDomains, e.seed)
}

// advance closes the window when t is past its end. Events that arrive
// late, with a time before the window, count in the current one.
func (e *Engine) advance(t time.Time) {
	end := e.winStart.Add(e.cfg.Window)
	if t.Before(end) {
		return
	}
	e.closeWindow(end)
	e.startWindow(t)
}

// process counts one event and runs the detectors of single events.
func (e *Engine) process(ev *events.Event) {
	e.stats.processed.Add(1)
	qname := ev.QName()
	parts := detect.Split(qname)
	if parts.Registered == "" {
		e.stats.noDomain.Add(1)
		return
	}
	domain := parts.Registered
	e.advance(ev.Time)

	_, known := e.win.domains[domain]
	d := e.win.add(domain, qname, ev, e.randomNX(ev, parts.Sub))
	if d == nil {
		e.stats.windowDropped.Add(1)
	}
	if !known && d != nil && !e.nod.Seen(domain) {
		e.scoreDGA(domain, ev.Time)
	}
	if e.clients != nil {
		e.observeClient(ev, parts)
	}
	if ev.Answered && ev.Rcode == 0 && !ev.Blocked {
		if _, report := e.nod.Observe(domain, ev.Time); report {
			e.emit(e.nodFinding(domain, ev.Time))
		}
	}
	e.tunnel.Observe(tunnel.Observation{Time: ev.Time, QName: qname, QType: ev.QType,
		Bytes: int(ev.QuerySize) + int(ev.ResponseSize)})
	if f, ok := e.unique.observe(qname, domain, ev); ok {
		e.emit(f)
	}
}

// randomNX reports whether ev is an NXDOMAIN answer whose first label
// looks random to the DGA model.
func (e *Engine) randomNX(ev *events.Event, sub string) bool {
	if !ev.Answered || ev.Rcode != rcodeNXDomain || sub == "" {
		return false
	}
	first, _, _ := strings.Cut(sub, ".")
	return len(first) >= minRandomLabel && e.dga.ScoreLabel(first) >= e.dga.Threshold()
}

// scoreDGA scores a registered domain that the seen-set has not seen, on
// its first query of the window: names that resolve join the seen-set at
// once, while the NXDOMAIN names of a DGA stay unseen and are scored once
// a window.
func (e *Engine) scoreDGA(domain string, at time.Time) {
	r := e.dga.Score(domain)
	if !r.Malicious {
		return
	}
	e.emit(Finding{Time: at, Detector: DetectorDGA, Domain: domain, Score: r.Score, Malicious: true, Reason: r.Reason})
}

func (e *Engine) nodFinding(domain string, at time.Time) Finding {
	st := e.nod.Stats()
	return Finding{
		Time: at, Detector: DetectorNOD, Domain: domain, Score: 0.5,
		Reason: "newly observed domain: first resolved by this resolver, whose seen-set holds about " +
			itoa(st.Domains) + " domains at a false-positive rate of at most " +
			ftoa(e.cfg.NOD.FalsePositiveRate) + " when sized right",
	}
}

// closeWindow runs the detectors of a window that ends at end, and adds
// its counts to the popularity history.
func (e *Engine) closeWindow(end time.Time) {
	for _, d := range e.win.domains {
		e.closeDomain(d, end)
	}
	e.spike.close()
	e.tunnel.Expire(end)
	if len(e.unique.names) >= e.cfg.Unique.MaxNames*9/10 {
		e.unique.expire(end.Add(-10 * e.cfg.Window))
	}
	e.stats.uniqueDropped.Store(e.unique.dropped)
	e.stats.spikeDropped.Store(e.spike.dropped)
}

func (e *Engine) closeDomain(d *DomainWindow, end time.Time) {
	if f, ok := scoreNXDomain(e.cfg.NXDomain, d, end); ok && f.Malicious {
		e.emit(f)
	}
	if f, ok := scoreFlux(e.cfg.Flux, d, end); ok && f.Malicious {
		e.emit(f)
	}
	if f, ok := e.spike.observe(d, end); ok {
		e.emit(f)
	}
	if d.Queries >= e.cfg.TunnelMinQueries {
		// The tracker's window of the domain may still be filling; a
		// nanosecond before end scores the one that ends here.
		if r := e.tunnel.Score(d.Domain, end.Add(-time.Nanosecond)); r.Malicious {
			e.emit(Finding{Time: end, Detector: DetectorTunnel, Domain: d.Domain, Score: r.Score, Malicious: true, Reason: r.Reason})
		}
	}
	e.pop.Add(d.Domain, d.Queries, end.Add(-time.Nanosecond))
}

// countPartialWindow adds the counts of the window still open at stop to
// the popularity history, without running the detectors on a part of a
// window.
func (e *Engine) countPartialWindow(now time.Time) {
	for _, d := range e.win.domains {
		e.pop.Add(d.Domain, d.Queries, now)
	}
	e.win = newWindow(e.cfg.MaxDomains, e.seed)
}

func (e *Engine) emit(f Finding) {
	e.findings.add(f)
	e.sinkMu.Lock()
	sink := e.sink
	e.sinkMu.Unlock()
	if sink != nil {
		sink.Report(f)
	}
}

// Findings returns the recent findings, newest first, at most
// MaxFindings, in a new slice.
func (e *Engine) Findings() []Finding { return e.findings.list() }

// SteadilyPopular reports whether domain, a registered domain in
// lowercase without the final dot, was popular on each of the last
// complete days that the config asks for. The candidate store calls it
// before blocking a domain automatically.
func (e *Engine) SteadilyPopular(domain string) bool {
	return e.pop.SteadilyPopular(domain, e.now())
}

// Popularity returns the popularity history.
func (e *Engine) Popularity() *Popularity { return e.pop }

// NOD returns the seen-set, whose Records give the zone content of each
// NOD window.
func (e *Engine) NOD() *nod.Set { return e.nod }

// Stats are the counters of an Engine.
type Stats struct {
	// Processed counts the events read from the queue, and NoDomain those
	// among them whose name has no registered domain (a public suffix or
	// the root).
	Processed, NoDomain uint64
	// WindowDropped counts events not counted because the window held
	// MaxDomains domains; UniqueDropped, SpikeDropped and TunnelDropped
	// count names or domains the detectors had no room for.
	WindowDropped, UniqueDropped, SpikeDropped, TunnelDropped uint64
	// Findings counts the findings per detector, in the order of
	// Detectors.
	Findings []uint64
	// LogSuppressed counts findings not logged for the rate limit.
	LogSuppressed uint64
	// SaveFailed counts state files that could not be saved.
	SaveFailed uint64
	NOD        nod.Stats
	// PopularDomains is the number of domains in the popularity history.
	PopularDomains int
	// DGAClients is the number of clients in the DGA client table, and
	// DGAClientsEvicted counts those evicted to make room for others.
	DGAClients        int64
	DGAClientsEvicted uint64
}

// Stats returns the counters of e.
func (e *Engine) Stats() Stats {
	st := Stats{
		Processed: e.stats.processed.Load(), NoDomain: e.stats.noDomain.Load(),
		WindowDropped: e.stats.windowDropped.Load(), UniqueDropped: e.stats.uniqueDropped.Load(),
		SpikeDropped: e.stats.spikeDropped.Load(), TunnelDropped: e.tunnel.Dropped(),
		LogSuppressed: e.findings.suppressed.Load(), SaveFailed: e.stats.saveFailed.Load(),
		NOD: e.nod.Stats(), PopularDomains: e.pop.Len(),
	}
	if e.clients != nil {
		st.DGAClients, st.DGAClientsEvicted = e.clients.tracked.Load(), e.clients.evicted.Load()
	}
	for i := range Detectors {
		st.Findings = append(st.Findings, e.findings.counts[i].Load())
	}
	return st
}
