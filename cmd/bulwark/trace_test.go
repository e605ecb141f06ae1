package main

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestTraceArgsNames(t *testing.T) {
	tests := []struct {
		args     []string
		name     string
		qtype    uint16
		wantCode int
	}{
		{[]string{"-config", "c.yaml", "Example.COM"}, "example.com.", dns.TypeA, 0},
		{[]string{"www.example.", "AAAA", "-config", "c.yaml"}, "www.example.", dns.TypeAAAA, 0},
		// An internationalised name is queried as its A-label.
		{[]string{"-config", "c.yaml", "bücher.example"}, "xn--bcher-kva.example.", dns.TypeA, 0},
		{[]string{"-config", "c.yaml", "bad name.example"}, "", 0, 2},
		{[]string{"-config", "c.yaml", "ctrl\x01.example"}, "", 0, 2},
		{[]string{"-config", "c.yaml", "a..b"}, "", 0, 2},
		{[]string{"example.com"}, "", 0, 2},
	}
	for _, tt := range tests {
		var stderr strings.Builder
		a, code, ok := parseTraceArgs(tt.args, &stderr)
		if code != tt.wantCode || ok != (tt.wantCode == 0) {
			t.Errorf("%q: code %d, ok %v; want code %d\n%s", tt.args, code, ok, tt.wantCode, stderr.String())
			continue
		}
		if ok && (a.name != tt.name || a.qtype != tt.qtype) {
			t.Errorf("%q: name %q type %d, want %q type %d", tt.args, a.name, a.qtype, tt.name, tt.qtype)
		}
		if !ok && stderr.Len() == 0 {
			t.Errorf("%q: rejected without a message", tt.args)
		}
	}
}
