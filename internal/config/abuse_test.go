package config

import (
	"net/netip"
	"slices"
	"testing"
)

func TestAbuseDefaults(t *testing.T) {
	cfg, err := Parse([]byte("server:\n  udp_sockets: 1\n"), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Server.RateLimit
	if r.ResponsesPerSecond != 1000 || r.Burst != 1000 || r.Slip != 2 || r.IPv4Prefix != 24 || r.IPv6Prefix != 56 {
		t.Errorf("rate_limit defaults = %+v", r)
	}
	if !slices.Contains(r.ExemptPrefixes, netip.MustParsePrefix("127.0.0.0/8")) {
		t.Errorf("exempt = %v, want loopback", r.ExemptPrefixes)
	}
	if len(cfg.Server.Recursion.AllowPrefixes) != len(DefaultRecursionAllow) {
		t.Errorf("recursion.allow = %v, want the private networks", cfg.Server.Recursion.AllowPrefixes)
	}
	cfg, err = Parse([]byte("server:\n  rate_limit:\n    exempt: []\n  recursion:\n    allow: []\n"), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Server.RateLimit.ExemptPrefixes) != 0 || len(cfg.Server.Recursion.AllowPrefixes) != 0 {
		t.Errorf("empty lists became %v and %v, want them empty", cfg.Server.RateLimit.ExemptPrefixes, cfg.Server.Recursion.AllowPrefixes)
	}
}

func TestAbuseErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		line       int
		text       string
	}{
		{"short secret", "server:\n  cookie_secret: abcd\n", 2, "invalid cookie secret"},
		{"previous alone", "server:\n  cookie_previous_secret: 00112233445566778899aabbccddeeff\n", 2, "without server.cookie_secret"},
		{"rate too high", "server:\n  rate_limit:\n    responses_per_second: 70000\n", 3, "invalid value 70000"},
		{"slip too high", "server:\n  rate_limit:\n    slip: 16\n", 3, "invalid value 16"},
		{"ipv6 prefix", "server:\n  rate_limit:\n    ipv6_prefix: 96\n", 3, "invalid prefix length 96"},
		{"table size", "server:\n  rate_limit:\n    table_size: 1000\n", 3, "power of two"},
		{"bad exempt", "server:\n  rate_limit:\n    exempt: [10.0.0.1]\n", 3, `invalid prefix "10.0.0.1"`},
		{"bad allow", "server:\n  recursion:\n    allow: [nope]\n", 3, `invalid prefix "nope"`},
		{"unknown open flavour", "server:\n  recursion:\n    open_flavours: [strict]\n", 3, `unknown flavour "strict"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "test.yaml")
			checkConfigError(t, err, tt.line, tt.text)
		})
	}
}
