package config

import (
	"os"
	"slices"
	"time"

	"bulwark/internal/privacy"
)

// QueryLog sets the query log: one JSON line per client query, written to
// hourly files in Directory with the client address anonymised, and
// optionally aggregate counts that leave out rare rows. Both are off by
// default.
type QueryLog struct {
	// Enabled writes one line per client query. Default: false.
	Enabled bool `yaml:"enabled"`
	// Directory holds the query log and aggregate files, relative to the
	// config file's directory. Bulwark creates it, mode 0700, when it is
	// missing. Required when Enabled or Aggregates.Enabled is true.
	Directory string `yaml:"directory"`
	// Rotation is the period of one query log file, named after the UTC
	// time it starts. Unit: duration, 1m to 24h, dividing 24h. Default: 1h.
	Rotation Duration `yaml:"rotation"`
	// Retention is how long a query log file is kept after its period
	// ends; older files are deleted at start and at every rotation. Unit:
	// duration, at least 1m. Default: 24h.
	Retention Duration `yaml:"retention"`
	// QueueSize is the number of queries waiting for the writer; past it,
	// queries are dropped from the log and counted. Default: 8192.
	QueueSize int `yaml:"queue_size"`
	// Anonymise is the anonymisation mode of client addresses: truncate
	// (to IPv4Prefix and IPv6Prefix), hash (a keyed hash whose key changes
	// every UTC day and is never written) or omit. Default: truncate.
	Anonymise string `yaml:"anonymise"`
	// IPv4Prefix is the prefix length kept by truncate for IPv4, 0 to 24.
	// Default: 24.
	IPv4Prefix int `yaml:"ipv4_prefix"`
	// IPv6Prefix is the prefix length kept by truncate for IPv6, 0 to 56.
	// Default: 56.
	IPv6Prefix int `yaml:"ipv6_prefix"`
	// Flavours maps a flavour name, such as protective or tenant:school,
	// to the anonymisation mode of its clients, replacing Anonymise.
	// Default: none.
	Flavours map[string]string `yaml:"flavours"`
	// Aggregates sets the aggregate counts.
	Aggregates QueryLogAggregates `yaml:"aggregates"`
}

// QueryLogAggregates sets the aggregate counts of the query log: per
// interval, the queries and distinct clients of each (flavour, qname,
// qtype, rcode), without rows of fewer than MinClients clients.
type QueryLogAggregates struct {
	// Enabled writes the aggregates. Default: false.
	Enabled bool `yaml:"enabled"`
	// Interval is the period of one aggregate file. Unit: duration, 1m to
	// 24h, dividing 24h. Default: 1h.
	Interval Duration `yaml:"interval"`
	// MinClients is the k threshold: a row counted from fewer distinct
	// clients is left out. 2 to 1000000. Default: 10.
	MinClients int `yaml:"min_clients"`
	// MaxRows caps the rows counted in one interval; queries for new rows
	// past it are not counted. Default: 100000.
	MaxRows int `yaml:"max_rows"`
	// Retention is how long an aggregate file is kept after its interval
	// ends. Unit: duration, at least 1m. Default: 720h (30 days).
	Retention Duration `yaml:"retention"`
}

// On reports whether q writes anything.
func (q QueryLog) On() bool { return q.Enabled || q.Aggregates.Enabled }

func defaultQueryLog() QueryLog {
	return QueryLog{
		Rotation:   Duration(time.Hour),
		Retention:  Duration(24 * time.Hour),
		QueueSize:  8192,
		Anonymise:  string(privacy.Truncate),
		IPv4Prefix: privacy.DefaultIPv4Prefix,
		IPv6Prefix: privacy.DefaultIPv6Prefix,
		Aggregates: defaultQueryLogAggregates(),
	}
}

func defaultQueryLogAggregates() QueryLogAggregates {
	return QueryLogAggregates{
		Interval:   Duration(time.Hour),
		MinClients: 10,
		MaxRows:    100000,
		Retention:  Duration(30 * 24 * time.Hour),
	}
}

func (v *validator) queryLog() error {
	q := &v.cfg.QueryLog
	if q.On() && q.Directory == "" {
		return v.errorf("query_log.directory", "missing directory: give the directory for the query log files")
	}
	if q.Directory != "" {
		q.Directory = v.cfg.resolvePath(q.Directory)
		if info, err := os.Stat(q.Directory); err == nil && !info.IsDir() {
			return v.errorf("query_log.directory", "%s is not a directory: give a directory, which Bulwark creates when it is missing", q.Directory)
		}
	}
	if err := v.period("query_log.rotation", q.Rotation); err != nil {
		return err
	}
	if q.Retention < Duration(time.Minute) {
		return v.errorf("query_log.retention", "invalid duration %s: use at least 1m", q.Retention.D())
	}
	if q.QueueSize < 1 || q.QueueSize > 1<<20 {
		return v.errorf("query_log.queue_size", "invalid value %d: use 1 to %d", q.QueueSize, 1<<20)
	}
	if err := v.anonymisation(q); err != nil {
		return err
	}
	return v.queryLogAggregates(&q.Aggregates)
}

// period checks a file period: between 1m and 24h, and dividing 24h, so
// that periods start at the same UTC times every day.
func (v *validator) period(key string, d Duration) error {
	if d < Duration(time.Minute) || d > Duration(24*time.Hour) || (24*time.Hour)%d.D() != 0 {
		return v.errorf(key, "invalid duration %s: use 1m to 24h, dividing 24h, such as 10m, 1h or 24h", d.D())
	}
	return nil
}

func (v *validator) anonymisation(q *QueryLog) error {
	if err := (privacy.Config{Mode: privacy.Mode(q.Anonymise)}).Validate(); err != nil {
		return v.errorf("query_log.anonymise", "%w", err)
	}
	if q.IPv4Prefix < 0 || q.IPv4Prefix > privacy.DefaultIPv4Prefix {
		return v.errorf("query_log.ipv4_prefix", "invalid prefix length %d: use 0 to %d", q.IPv4Prefix, privacy.DefaultIPv4Prefix)
	}
	if q.IPv6Prefix < 0 || q.IPv6Prefix > privacy.DefaultIPv6Prefix {
		return v.errorf("query_log.ipv6_prefix", "invalid prefix length %d: use 0 to %d", q.IPv6Prefix, privacy.DefaultIPv6Prefix)
	}
	names := v.flavourNames()
	keys := make([]string, 0, len(q.Flavours))
	for name := range q.Flavours {
		keys = append(keys, name)
	}
	slices.Sort(keys)
	for _, name := range keys {
		key := "query_log.flavours." + name
		if !names[name] {
			return v.errorf(key, "unknown flavour %q: use a built-in flavour, one of policy.flavours, or tenant:NAME for a tenant", name)
		}
		if err := (privacy.Config{Mode: privacy.Mode(q.Flavours[name])}).Validate(); err != nil {
			return v.errorf(key, "flavour %s: %w", name, err)
		}
	}
	return nil
}

func (v *validator) queryLogAggregates(a *QueryLogAggregates) error {
	if err := v.period("query_log.aggregates.interval", a.Interval); err != nil {
		return err
	}
	if a.MinClients < 2 || a.MinClients > 1_000_000 {
		return v.errorf("query_log.aggregates.min_clients", "invalid value %d: use 2 to 1000000, because a row of one client would show that client's queries", a.MinClients)
	}
	if a.MaxRows < 1 || a.MaxRows > 10_000_000 {
		return v.errorf("query_log.aggregates.max_rows", "invalid value %d: use 1 to 10000000", a.MaxRows)
	}
	if a.Retention < Duration(time.Minute) {
		return v.errorf("query_log.aggregates.retention", "invalid duration %s: use at least 1m", a.Retention.D())
	}
	return nil
}
