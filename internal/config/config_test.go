package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultConfig(t *testing.T) {
	c := Default()
	if got := len(c.Server.Listen); got != 2 {
		t.Fatalf("Default() has %d listeners, want 2", got)
	}
	if got := c.Server.Listen[1].AddrPort.String(); got != "[::1]:5300" {
		t.Errorf("second listener = %s, want [::1]:5300", got)
	}
	if got := c.Resolver.EDNSBufferSize; got != 1232 {
		t.Errorf("EDNSBufferSize = %d, want 1232", got)
	}
	if !*c.Resolver.QNAMEMinimisation {
		t.Error("QNAME minimisation is off by default, want on")
	}
	roots, err := ParseRootHints(c.Resolver.RootHintsText)
	if err != nil {
		t.Fatalf("ParseRootHints(builtin) error: %v", err)
	}
	if len(roots) != 13 {
		t.Errorf("builtin root hints have %d servers, want 13", len(roots))
	}
	if got := len(c.DNSSEC.TrustAnchors); got != 2 {
		t.Errorf("builtin trust anchors: %d, want 2 (KSK 20326 and 38696)", got)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name     string
		yaml     string
		wantLine int
		wantText string
	}{
		{"unknown top key", "server:\n  listen: []\nresolvr:\n  x: 1\n", 3, `unknown field "resolvr"`},
		{"unknown nested key", "cache:\n  max_bytes: 64MiB\n  max_byte: 1\n", 3, `unknown field "max_byte"`},
		{"bad address", "server:\n  listen:\n    - address: localhost:53\n", 3, `invalid address "localhost:53"`},
		{"bad transport", "server:\n  listen:\n    - address: 127.0.0.1:53\n      transports: [sctp]\n", 4, `unknown transport "sctp"`},
		{"bad duration", "resolver:\n  query_timeout: 5\n", 2, `invalid duration "5"`},
		{"negative nested duration", "intel:\n  nod:\n    warm_up: -1s\n", 3, `intel.nod.warm_up: invalid duration "-1s"`},
		{"bad size", "cache:\n  max_bytes: lots\n", 2, `invalid size "lots"`},
		{"small cache", "cache:\n  max_bytes: 1KiB\n", 2, "at least 1MiB"},
		{"bad prefix", "resolver:\n  allowed_upstream_networks: [127.0.0.1]\n", 2, `invalid prefix "127.0.0.1"`},
		{"bad port", "resolver:\n  upstream_port: 70000\n", 2, "invalid port 70000"},
		{"bad level", "log:\n  level: loud\n", 2, `unknown level "loud"`},
		{"bad anchor", "dnssec:\n  trust_anchors: [\". IN A 1.2.3.4\"]\n", 2, "not DS or DNSKEY"},
		{"anchor digest not hex", "dnssec:\n  trust_anchors: [\". IN DS 1 8 2 zz\"]\n", 2, "not hexadecimal"},
		{"anchor digest short", "dnssec:\n  trust_anchors: [\". IN DS 1 8 2 abcd\"]\n", 2, "has 2 bytes, want 32"},
		{"anchor key protocol", "dnssec:\n  trust_anchors: [\". IN DNSKEY 257 2 8 AwEAAQ==\"]\n", 2, "protocol 2"},
		{"missing hints", "resolver:\n  root_hints: /nonexistent/root.hints\n", 2, "cannot read root hints"},
		{"min above max ttl", "cache:\n  min_ttl: 2h\n  max_ttl: 1h\n", 2, "above max_ttl"},
		{"explicit zero resolutions", "server:\n  max_resolutions: 0\n", 2, "invalid value 0"},
		{"explicit zero port", "resolver:\n  upstream_port: 0\n", 2, "invalid port 0"},
		{"explicit zero size", "cache:\n  max_bytes: 0\n", 2, "at least 1MiB"},
		{"explicit zero timeout", "resolver:\n  query_timeout: 0s\n", 2, "must be positive"},
		{"empty listen list", "server:\n  listen: []\n", 2, "no listener"},
		{"empty transports", "server:\n  listen:\n    - address: 127.0.0.1:53\n      transports: []\n", 4, "no transport"},
		{"empty anchors", "dnssec:\n  trust_anchors: []\n", 2, "no trust anchor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "test.yaml")
			if err == nil {
				t.Fatalf("Parse(%q) = nil error, want one containing %q", tt.yaml, tt.wantText)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Parse error %v is %T, want *config.Error", err, err)
			}
			if ce.Line != tt.wantLine {
				t.Errorf("error %q has line %d, want %d", err, ce.Line, tt.wantLine)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not contain %q", err, tt.wantText)
			}
			if !strings.Contains(err.Error(), "test.yaml") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestParseValues(t *testing.T) {
	dir := t.TempDir()
	hints := filepath.Join(dir, "root.hints")
	os.WriteFile(hints, []byte(". 3600 NS a.root.lab.\na.root.lab. 3600 A 127.53.1.1\n"), 0o644)
	yaml := `
server:
  listen:
    - address: 127.0.0.1:5300
      transports: [udp]
resolver:
  root_hints: root.hints
  upstream_port: 53
  allowed_upstream_networks: [127.0.0.0/8, ::1/128]
  qname_minimisation: false
cache:
  max_bytes: 64MiB
  min_ttl: 30s
`
	c, err := Parse([]byte(yaml), filepath.Join(dir, "bulwark.yaml"))
	if err != nil {
		t.Fatalf("Parse error: %v", err)
	}
	if got := int64(c.Cache.MaxBytes); got != 64<<20 {
		t.Errorf("MaxBytes = %d, want %d", got, 64<<20)
	}
	if got := c.Cache.MinTTL.D(); got != 30*time.Second {
		t.Errorf("MinTTL = %s, want 30s", got)
	}
	if *c.Resolver.QNAMEMinimisation {
		t.Error("QNAMEMinimisation = true, want false as configured")
	}
	if len(c.Resolver.AllowedPrefixes) != 2 {
		t.Errorf("AllowedPrefixes = %v, want 2 prefixes", c.Resolver.AllowedPrefixes)
	}
	if !strings.Contains(c.Resolver.RootHintsText, "127.53.1.1") {
		t.Errorf("root hints were not read from the relative path")
	}
	if got := c.Server.Listen[0].Transports; len(got) != 1 || got[0] != "udp" {
		t.Errorf("Transports = %v, want [udp]", got)
	}
}

func TestZeroMeansZero(t *testing.T) {
	c, err := Parse([]byte("cache:\n  max_negative_ttl: 0s\nresolver:\n  failure_ttl: 0s\n  server_hold_down: 0s\n"), "zero.yaml")
	if err != nil {
		t.Fatalf("Parse error: %v", err)
	}
	if c.Cache.MaxNegativeTTL != 0 || c.Resolver.FailureTTL != 0 || c.Resolver.ServerHoldDown != 0 {
		t.Errorf("explicit 0s became %s, %s, %s; want 0s each", c.Cache.MaxNegativeTTL.D(), c.Resolver.FailureTTL.D(), c.Resolver.ServerHoldDown.D())
	}
}

func TestNullSectionIsDefault(t *testing.T) {
	c, err := Parse([]byte("server:\ncache:\n"), "null.yaml")
	if err != nil {
		t.Fatalf("Parse error: %v", err)
	}
	if c.Server.MaxTCPConnections != 4096 || c.Cache.MaxBytes != 256<<20 {
		t.Errorf("null sections: max_tcp_connections %d, max_bytes %d; want the defaults", c.Server.MaxTCPConnections, c.Cache.MaxBytes)
	}
}

func TestEmptyConfigIsDefault(t *testing.T) {
	c, err := Parse(nil, "empty.yaml")
	if err != nil {
		t.Fatalf("Parse(empty) error: %v", err)
	}
	if len(c.Server.Listen) != 2 {
		t.Errorf("empty config has %d listeners, want the 2 default ones", len(c.Server.Listen))
	}
}

func TestTypeErrorsNameTheKey(t *testing.T) {
	for _, tt := range []struct {
		yaml, want string
	}{
		{"cache:\n  max_negative_ttl: [1]\n", "where a duration or size is expected"},
		{"server:\n  listen:\n    - address: 127.0.0.1:53\n      transports: udp\n", "server.listen[0].transports: invalid value: want a list"},
		{"testing:\n  enabled: maybe\n", "testing.enabled: invalid value: want true or false"},
		{"resolver:\n  max_referrals: many\n", "resolver.max_referrals: invalid value: want a whole number"},
	} {
		_, err := Parse([]byte(tt.yaml), "test.yaml")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want it to contain %q", tt.yaml, err, tt.want)
		}
	}
}
