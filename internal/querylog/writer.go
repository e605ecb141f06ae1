package querylog

import (
	"encoding/json"
	"time"

	"bulwark/internal/privacy"
)

// Intervals of the writer's housekeeping.
const (
	// flushInterval is how often buffered lines reach the file.
	flushInterval = time.Second
	// sweepInterval is how often expired files are deleted.
	sweepInterval = time.Minute
	// dropLogInterval is the least time between two warnings about
	// dropped queries.
	dropLogInterval = time.Minute
)

// writer is the goroutine that owns the files. Only it touches its fields.
type writer struct {
	l   *Logger
	cfg Config

	// anonymisers maps a flavour to the anonymiser of its clients;
	// fallback serves the other flavours. Flavours of the same mode
	// share one anonymiser, so a client's pseudonym is the same in all.
	anonymisers map[string]*privacy.Anonymiser
	fallback    *privacy.Anonymiser
	// pseudonyms makes the keyed hashes that count distinct clients in the
	// aggregates.
	pseudonyms *privacy.Anonymiser

	queries    *periodFile // nil when the lines are off
	aggregates *aggregator // nil when the aggregates are off
	rules      []retentionRule

	lastSweep, lastDropLog time.Time
	droppedLogged          uint64
}

func newWriter(l *Logger) (*writer, error) {
	cfg := l.cfg
	byMode := map[privacy.Mode]*privacy.Anonymiser{}
	anonymiser := func(mode privacy.Mode) *privacy.Anonymiser {
		if byMode[mode] == nil {
			c := cfg.Anonymise
			c.Mode = mode
			byMode[mode] = privacy.New(c, cfg.Now)
		}
		return byMode[mode]
	}
	w := &writer{
		l: l, cfg: cfg,
		anonymisers: map[string]*privacy.Anonymiser{},
		fallback:    anonymiser(cfg.Anonymise.Mode),
		pseudonyms:  privacy.New(privacy.Config{Mode: privacy.Hash}, cfg.Now),
		rules: []retentionRule{
			{queriesPrefix, cfg.Rotation, cfg.Retention},
			{aggregatesPrefix, cfg.Interval, cfg.AggregateRetention},
		},
	}
	for name, mode := range cfg.Flavours {
		w.anonymisers[name] = anonymiser(mode)
	}
	if cfg.Queries {
		w.queries = &periodFile{dir: cfg.Directory, prefix: queriesPrefix, period: cfg.Rotation}
	}
	if cfg.Aggregates {
		w.aggregates = newAggregator(cfg)
	}
	// Retention holds from the start, even when the Logger is never
	// given a query.
	if err := w.sweep(cfg.Now()); err != nil {
		return nil, err
	}
	return w, nil
}

// run writes queued queries until Logger.Close, then writes what is left.
func (w *writer) run() {
	defer close(w.l.done)
	tick := time.NewTicker(flushInterval)
	defer tick.Stop()
	for {
		select {
		case e := <-w.l.queue:
			w.handle(e)
		case <-tick.C:
			w.housekeeping(w.cfg.Now())
		case <-w.l.stop:
			w.finish()
			return
		}
	}
}

// finish writes the queued queries and the aggregates of the current
// interval, and closes the files.
func (w *writer) finish() {
	for len(w.l.queue) > 0 { // the writer is the only receiver
		w.handle(<-w.l.queue)
	}
	now := w.cfg.Now()
	if w.aggregates != nil {
		w.writeAggregates(now)
	}
	if w.queries != nil {
		n, err := w.queries.closeCounted()
		w.l.written.Add(uint64(n))
		if err != nil {
			w.lost("cannot close the query log", err)
		}
	}
	w.logDropped(now, true)
}

// handle writes the line of e and counts it in the aggregates.
func (w *writer) handle(e *entry) {
	defer release(e)
	qname, qtype, err := question(e.query())
	if err != nil {
		return // a malformed query: its response is FORMERR or none
	}
	var out outcome
	if e.answered {
		out = responseOutcome(e.response())
	}
	if e.action != "" && e.action != "allow" {
		out.list, out.category, out.action = e.list, e.category, e.action
	}
	now := w.cfg.Now()
	if w.queries != nil {
		w.writeLine(now, e, qname, qtype, out)
	}
	if w.aggregates != nil {
		if w.aggregates.due(now) {
			w.writeAggregates(w.aggregates.start.Add(w.cfg.Interval))
		}
		key := aggregateKey{flavour: e.flavour, qname: qname, qtype: qtype, rcode: out.rcode}
		w.aggregates.add(now, key, w.pseudonyms.Pseudonym(e.client))
	}
}

func (w *writer) writeLine(now time.Time, e *entry, qname string, qtype uint16, out outcome) {
	anon := w.anonymisers[e.flavour]
	if anon == nil {
		anon = w.fallback
	}
	bw, err := w.queries.writer(now)
	if err == nil {
		err = json.NewEncoder(bw).Encode(line{
			Time: timeText(e.received), Flavour: e.flavour, Transport: e.transport.String(),
			Client: anon.String(e.client), QName: qname, QType: qtypeName(qtype),
			Rcode: out.rcode, DurationSeconds: e.duration.Seconds(), Cached: e.cached,
			List: out.list, Category: out.category, Action: out.action,
		})
	}
	if err != nil {
		w.l.failed.Add(1) // this line
		w.lost("cannot write the query log", err)
		return
	}
	w.queries.pending++
}

// lost logs a failed write of the query log and counts the lines that were
// buffered since the last good flush as failed. The file is closed, so the
// next line opens it again.
func (w *writer) lost(msg string, err error) {
	path := w.queries.path()
	n := w.queries.discard()
	w.l.failed.Add(uint64(n))
	w.l.log.Error(msg, "file", path, "lines_lost", n, "error", err)
}

// housekeeping flushes the lines, writes the aggregates of an interval
// that has ended, deletes expired files and warns about dropped queries.
func (w *writer) housekeeping(now time.Time) {
	if w.queries != nil {
		n, err := w.queries.flush(now)
		w.l.written.Add(uint64(n))
		if err != nil {
			w.lost("cannot write the query log", err)
		}
	}
	if w.aggregates != nil && w.aggregates.due(now) {
		w.writeAggregates(w.aggregates.start.Add(w.cfg.Interval))
	}
	if now.Sub(w.lastSweep) >= sweepInterval {
		if err := w.sweep(now); err != nil {
			w.failed("cannot delete expired query log files", w.cfg.Directory, err)
		}
	}
	w.logDropped(now, false)
}

// writeAggregates writes the current interval, ending at end.
func (w *writer) writeAggregates(end time.Time) {
	a := w.aggregates
	notCounted, start := a.notCounted, a.start
	written, belowK, err := a.write(end)
	if err != nil {
		w.failed("cannot write the query log aggregates", a.file.path(), err)
		return
	}
	if notCounted > 0 {
		w.l.log.Warn("query log aggregates full; queries not counted",
			"interval_start", timeText(start), "max_rows", a.maxRows, "queries", notCounted)
	}
	w.l.log.Debug("query log aggregates written", "interval_start", timeText(start),
		"rows", written, "rows_below_min_clients", belowK)
}

// sweep deletes the files past their retention.
func (w *writer) sweep(now time.Time) error {
	w.lastSweep = now
	removed, err := deleteExpired(w.cfg.Directory, w.rules, now)
	if len(removed) > 0 {
		w.l.log.Info("expired query log files deleted", "directory", w.cfg.Directory, "files", len(removed))
	}
	return err
}

// logDropped warns about queries dropped at the full queue, at most once
// per dropLogInterval unless final.
func (w *writer) logDropped(now time.Time, final bool) {
	dropped := w.l.dropped.Load()
	if dropped == w.droppedLogged || !final && now.Sub(w.lastDropLog) < dropLogInterval {
		return
	}
	w.l.log.Warn("query log queue full; queries not logged",
		"queries", dropped-w.droppedLogged, "total_queries", dropped, "queue_size", w.cfg.QueueSize)
	w.droppedLogged, w.lastDropLog = dropped, now
}

func (w *writer) failed(msg, path string, err error) {
	w.l.failed.Add(1)
	w.l.log.Error(msg, "file", path, "error", err)
}
