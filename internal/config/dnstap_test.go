package config

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestDnstapDefaults(t *testing.T) {
	for _, yaml := range []string{"", "dnstap:\n"} {
		c, err := Parse([]byte(yaml), "")
		if err != nil {
			t.Fatalf("Parse(%q): %v", yaml, err)
		}
		d := c.Dnstap
		if d.Enabled() {
			t.Errorf("Parse(%q): dnstap on, want off without socket or tcp", yaml)
		}
		if d.Anonymise != "truncate" || d.IPv4Prefix != 24 || d.IPv6Prefix != 56 {
			t.Errorf("Parse(%q): anonymise %q /%d /%d, want truncate /24 /56", yaml, d.Anonymise, d.IPv4Prefix, d.IPv6Prefix)
		}
		if d.QueueSize != 16384 {
			t.Errorf("Parse(%q): queue_size %d, want 16384", yaml, d.QueueSize)
		}
		if !slices.Equal(d.Messages, DnstapMessages) {
			t.Errorf("Parse(%q): messages %q, want %q", yaml, d.Messages, DnstapMessages)
		}
	}
}

func TestDnstapValues(t *testing.T) {
	dir := t.TempDir()
	yaml := "dnstap:\n  socket: tap.sock\n  identity: ns1\n  anonymise: hash\n  ipv4_prefix: 16\n  messages: [client_response]\n"
	c, err := Parse([]byte(yaml), filepath.Join(dir, "bulwark.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	d := c.Dnstap
	if want := filepath.Join(dir, "tap.sock"); d.Socket != want {
		t.Errorf("socket %q, want %q: relative to the config file", d.Socket, want)
	}
	if !d.Enabled() || d.Identity != "ns1" || d.Anonymise != "hash" || d.IPv4Prefix != 16 {
		t.Errorf("got %+v, want on, identity ns1, hash, ipv4_prefix 16", d)
	}
	if !slices.Equal(d.Messages, []string{"client_response"}) {
		t.Errorf("messages %q, want [client_response]: the list replaces the default", d.Messages)
	}

	c, err = Parse([]byte("dnstap:\n  tcp: \"[::ffff:127.0.0.1]:6000\"\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Dnstap.TCPAddr.String(); got != "127.0.0.1:6000" {
		t.Errorf("TCPAddr %s, want 127.0.0.1:6000", got)
	}
}

func TestDnstapErrors(t *testing.T) {
	long := "/tmp/" + strings.Repeat("d", 110)
	tests := []struct{ name, yaml, key, want string }{
		{"both collectors", "socket: /tmp/a.sock\n  tcp: 127.0.0.1:6000", "dnstap.tcp", "both set"},
		{"bad tcp", "tcp: localhost:6000", "dnstap.tcp", `"localhost:6000"`},
		{"tcp port 0", "tcp: 127.0.0.1:0", "dnstap.tcp", `"127.0.0.1:0"`},
		{"missing directory", "socket: /nonexistent/dir/tap.sock", "dnstap.socket", "/nonexistent/dir"},
		{"long socket path", "socket: " + long, "dnstap.socket", "107"},
		{"mode", "anonymise: mask", "dnstap.anonymise", `"mask"`},
		{"ipv4 prefix", "ipv4_prefix: 32", "dnstap.ipv4_prefix", "32"},
		{"ipv6 prefix zero", "ipv6_prefix: 0", "dnstap.ipv6_prefix", "0"},
		{"queue size", "queue_size: 0", "dnstap.queue_size", "0"},
		{"no messages", "messages: []", "dnstap.messages", "no message type"},
		{"unknown message", "messages: [client_query, auth_query]", "dnstap.messages", `"auth_query"`},
		{"duplicate message", "messages: [client_query, client_query]", "dnstap.messages", "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte("dnstap:\n  "+tt.yaml+"\n"), "")
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Parse = %v, want a config error", err)
			}
			if ce.Key != tt.key || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse = %v (key %s), want key %s and an error containing %s", err, ce.Key, tt.key, tt.want)
			}
		})
	}
}

// TestDnstapDocExamples keeps the examples of docs/dnstap.md valid.
func TestDnstapDocExamples(t *testing.T) {
	data, err := os.ReadFile("../../docs/dnstap.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(data), -1)
	if len(blocks) == 0 {
		t.Fatal("no YAML example in docs/dnstap.md")
	}
	for i, b := range blocks {
		c, err := Parse([]byte(b[1]), "")
		if err != nil {
			t.Errorf("example %d: %v", i+1, err)
			continue
		}
		if !c.Dnstap.Enabled() {
			t.Errorf("example %d does not turn dnstap on", i+1)
		}
	}
}
