package config

import (
	"strings"
	"testing"
	"time"
)

func TestQueryLogDefaults(t *testing.T) {
	c, err := Parse([]byte("query_log:\n"), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	q := c.QueryLog
	if q.On() {
		t.Error("query log on by default")
	}
	if q.Anonymise != "truncate" || q.IPv4Prefix != 24 || q.IPv6Prefix != 56 {
		t.Errorf("anonymisation %s /%d /%d, want truncate /24 /56", q.Anonymise, q.IPv4Prefix, q.IPv6Prefix)
	}
	if q.Rotation.D() != time.Hour || q.Retention.D() != 24*time.Hour || q.Aggregates.MinClients != 10 {
		t.Errorf("rotation %s, retention %s, min_clients %d; want 1h, 24h, 10", q.Rotation.D(), q.Retention.D(), q.Aggregates.MinClients)
	}
	if c.Log.RepeatLimit != 10 || c.Log.RepeatInterval.D() != time.Minute {
		t.Errorf("log repeat limit %d per %s, want 10 per 1m", c.Log.RepeatLimit, c.Log.RepeatInterval.D())
	}
}

func TestQueryLogConfig(t *testing.T) {
	dir := t.TempDir()
	c, err := Parse([]byte(`policy:
  tenants:
    - name: school
      subnets: [10.1.0.0/16]
query_log:
  enabled: true
  directory: `+dir+`
  flavours:
    tenant:school: hash
    protective: omit
  aggregates:
`), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	q := c.QueryLog
	if q.Flavours["tenant:school"] != "hash" || q.Directory != dir {
		t.Errorf("flavours %v, directory %s", q.Flavours, q.Directory)
	}
	if q.Aggregates.Interval.D() != time.Hour || q.Aggregates.MaxRows != 100000 {
		t.Errorf("bare aggregates section: interval %s, max_rows %d; want the defaults 1h and 100000", q.Aggregates.Interval.D(), q.Aggregates.MaxRows)
	}
}

func TestQueryLogErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"no directory", "query_log:\n  enabled: true\n", "query_log.directory"},
		{"aggregates without directory", "query_log:\n  aggregates:\n    enabled: true\n", "query_log.directory"},
		{"bad mode", "query_log:\n  anonymise: full\n", `query_log.anonymise: invalid anonymisation mode "full"`},
		{"long IPv4 prefix", "query_log:\n  ipv4_prefix: 32\n", "query_log.ipv4_prefix: invalid prefix length 32"},
		{"long IPv6 prefix", "query_log:\n  ipv6_prefix: 64\n", "query_log.ipv6_prefix: invalid prefix length 64"},
		{"rotation not dividing a day", "query_log:\n  rotation: 7h\n", "query_log.rotation: invalid duration 7h0m0s"},
		{"short retention", "query_log:\n  retention: 10s\n", "query_log.retention: invalid duration 10s"},
		{"zero queue", "query_log:\n  queue_size: 0\n", "query_log.queue_size: invalid value 0"},
		{"unknown flavour", "query_log:\n  flavours:\n    nosuch: hash\n", `unknown flavour "nosuch"`},
		{"bad flavour mode", "query_log:\n  flavours:\n    protective: clear\n", `flavour protective: invalid anonymisation mode "clear"`},
		{"k of one", "query_log:\n  aggregates:\n    min_clients: 1\n", "query_log.aggregates.min_clients: invalid value 1"},
		{"long interval", "query_log:\n  aggregates:\n    interval: 48h\n", "query_log.aggregates.interval: invalid duration 48h0m0s"},
		{"zero rows", "query_log:\n  aggregates:\n    max_rows: 0\n", "query_log.aggregates.max_rows: invalid value 0"},
		{"log repeat interval", "log:\n  repeat_interval: 2h\n", "log.repeat_interval: invalid duration 2h0m0s"},
		{"log repeat limit", "log:\n  repeat_limit: -1\n", "log.repeat_limit: invalid value -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "test.yaml")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
