package querylog

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"bulwark/internal/config"
	"bulwark/internal/observe"
	"bulwark/internal/privacy"
)

// Config sets up a Logger.
type Config struct {
	// Queries turns on the per-query lines, Aggregates the counts.
	Queries, Aggregates bool
	// Directory holds the files; New creates it when missing.
	Directory string
	// Rotation is the period of one query file, and Retention how long
	// a file is kept after its period ends.
	Rotation, Retention time.Duration
	// QueueSize bounds the queries waiting for the writer.
	QueueSize int
	// Anonymise is the default anonymisation, and Flavours the mode of
	// the clients of a flavour, by flavour name, where it differs.
	Anonymise privacy.Config
	Flavours  map[string]privacy.Mode
	// Interval is the period of one aggregate file, MinClients the k
	// threshold, MaxRows the rows counted per interval and
	// AggregateRetention how long an aggregate file is kept.
	Interval           time.Duration
	MinClients         int
	MaxRows            int
	AggregateRetention time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// ConfigFrom returns the Config of a validated query_log section.
func ConfigFrom(c config.QueryLog) Config {
	flavours := make(map[string]privacy.Mode, len(c.Flavours))
	for name, mode := range c.Flavours {
		flavours[name] = privacy.Mode(mode)
	}
	return Config{
		Queries: c.Enabled, Aggregates: c.Aggregates.Enabled,
		Directory: c.Directory, Rotation: c.Rotation.D(), Retention: c.Retention.D(),
		QueueSize: c.QueueSize,
		Anonymise: privacy.Config{
			Mode: privacy.Mode(c.Anonymise), IPv4Prefix: c.IPv4Prefix, IPv6Prefix: c.IPv6Prefix,
		},
		Flavours:           flavours,
		Interval:           c.Aggregates.Interval.D(),
		MinClients:         c.Aggregates.MinClients,
		MaxRows:            c.Aggregates.MaxRows,
		AggregateRetention: c.Aggregates.Retention.D(),
	}
}

// Logger is the query log: an observe.Observer that queues each client
// query for a writer goroutine.
type Logger struct {
	cfg   Config
	log   *slog.Logger
	queue chan *entry
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once

	dropped, written, failed atomic.Uint64
}

// Stats are the counters of a Logger since it started.
type Stats struct {
	// Written is the number of query lines written.
	Written uint64
	// Dropped is the number of queries left out because the queue was
	// full.
	Dropped uint64
	// Failed is the number of lines or files that could not be written.
	Failed uint64
}

// entry is one client query waiting for the writer. buf holds the query
// and then the response; qlen is the length of the query.
type entry struct {
	received  time.Time
	duration  time.Duration
	transport observe.Transport
	flavour   string
	client    netip.Addr
	cached    bool
	answered  bool
	// list, category and action name the policy list that decided the
	// response; empty when none did.
	list, category, action string
	qlen                   int
	buf                    []byte
}

func (e *entry) query() []byte    { return e.buf[:e.qlen] }
func (e *entry) response() []byte { return e.buf[e.qlen:] }

// maxPooledBuffer is the largest buffer kept for reuse, so that one large
// response does not stay in memory.
const maxPooledBuffer = 4096

var entryPool = sync.Pool{New: func() any { return new(entry) }}

// New creates the directory, deletes the files past their retention and
// starts the writer. Close stops it.
func New(cfg Config, log *slog.Logger) (*Logger, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.MkdirAll(cfg.Directory, 0o700); err != nil {
		return nil, fmt.Errorf("query log: create directory: %w", err)
	}
	l := &Logger{
		cfg: cfg, log: log.With("component", "querylog"),
		queue: make(chan *entry, cfg.QueueSize),
		stop:  make(chan struct{}), done: make(chan struct{}),
	}
	w, err := newWriter(l)
	if err != nil {
		return nil, err
	}
	go w.run()
	return l, nil
}

// ClientQuery queues q for the writer, or counts it as dropped when the
// queue is full. It does not block.
func (l *Logger) ClientQuery(q *observe.Query) {
	e := entryPool.Get().(*entry)
	e.received, e.duration, e.transport = q.Received, q.Duration, q.Transport
	e.flavour, e.client, e.cached = q.FlavourName, q.Client, q.Cached
	e.list, e.category, e.action = q.List, q.Category, q.Action
	e.answered, e.qlen = q.Response != nil, len(q.Query)
	e.buf = append(append(e.buf[:0], q.Query...), q.Response...)
	select {
	case l.queue <- e:
	default:
		l.dropped.Add(1)
		release(e)
	}
}

// UpstreamQuery does nothing: the query log records client queries only.
func (l *Logger) UpstreamQuery(*observe.Upstream) {}

// Stats returns the counters of l.
func (l *Logger) Stats() Stats {
	return Stats{Written: l.written.Load(), Dropped: l.dropped.Load(), Failed: l.failed.Load()}
}

// Close writes the queries still queued and the aggregates of the current
// interval, closes the files and stops the writer. Queries reported after
// Close are dropped.
func (l *Logger) Close() error {
	l.once.Do(func() { close(l.stop) })
	<-l.done
	return nil
}

func release(e *entry) {
	if cap(e.buf) > maxPooledBuffer {
		e.buf = nil
	}
	e.flavour, e.client = "", netip.Addr{}
	entryPool.Put(e)
}
