package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeList(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "list.txt")
	if err := os.WriteFile(path, []byte("bad.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPolicyConfig(t *testing.T) {
	path := writeList(t)
	yaml := `server:
  listen:
    - address: 127.0.0.2:5300
      flavour: protective
    - address: 127.0.0.3:5300
      flavour: family
policy:
  block_page:
    ipv4: 192.0.2.80
  lists:
    - name: urlhaus
      file: ` + path + `
      format: domains
      category: malware
  flavours:
    - name: family
      categories: [adult]
      lists: [urlhaus]
`
	c, err := Parse([]byte(yaml), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Policy.Lists[0].Action; got != "nxdomain" {
		t.Errorf("default action %q, want nxdomain", got)
	}
	if got := c.Policy.BlockPage.Addr4.String(); got != "192.0.2.80" {
		t.Errorf("block page %s, want 192.0.2.80", got)
	}
	if c.Server.Listen[1].Flavour != "family" {
		t.Errorf("listener flavour %q", c.Server.Listen[1].Flavour)
	}
}

func TestPolicyErrors(t *testing.T) {
	path := writeList(t)
	list := func(extra string) string {
		return "policy:\n  lists:\n    - name: l1\n      file: " + path + "\n      format: domains\n      category: malware\n" + extra
	}
	tests := []struct {
		name, yaml string
		line       int
		text       string
	}{
		{"missing file", "policy:\n  lists:\n    - name: l1\n      file: /nonexistent/list\n      format: domains\n      category: malware\n", 4, "cannot read list"},
		{"bad format", strings.Replace(list(""), "format: domains", "format: csvx", 1), 5, `unknown format "csvx"`},
		{"bad category", strings.Replace(list(""), "category: malware", "category: spam", 1), 6, `unknown category "spam"`},
		{"bad action", list("      action: block\n"), 7, `unknown action "block"`},
		{"list twice", list("    - name: l1\n      file: " + path + "\n      format: hosts\n      category: ads\n"), 7, "defined twice"},
		{"unknown list in flavour", list("  flavours:\n    - name: f\n      lists: [nope]\n"), 9, `unknown list "nope"`},
		{"unknown category in flavour", list("  flavours:\n    - name: f\n      categories: [spam]\n"), 9, `unknown category "spam"`},
		{"unknown listener flavour", "server:\n  listen:\n    - address: 127.0.0.1:5300\n      flavour: strict\n", 4, `unknown flavour "strict"`},
		{"bad block page", "policy:\n  block_page:\n    ipv4: ::1\n", 3, `invalid IPv4 address "::1"`},
		{"proceed too long", list("  flavours:\n    - name: f\n      proceed_anyway: 25h\n"), 9, "invalid duration 25h0m0s: use 0 (off) to 24h0m0s"},
		{"tenant proceed too long", list("  tenants:\n    - name: t\n      subnets: [10.0.0.0/8]\n      proceed_anyway: 48h\n"), 10, "invalid duration 48h0m0s"},
		{"proceed not a duration", list("  flavours:\n    - name: f\n      proceed_anyway: soon\n"), 9, `invalid duration "soon"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "test.yaml")
			checkConfigError(t, err, tt.line, tt.text)
		})
	}
}

func TestProceedAnyway(t *testing.T) {
	yaml := `policy:
  flavours:
    - name: family
      categories: [malware]
      proceed_anyway: 10m
  tenants:
    - name: school
      subnets: [10.1.0.0/16]
    - name: hospital
      subnets: [10.2.0.0/16]
      proceed_anyway: 0s
`
	c, err := Parse([]byte(yaml), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Policy.Flavours[0].ProceedAnyway.D(); got != 10*time.Minute {
		t.Errorf("flavour proceed_anyway = %s, want 10m", got)
	}
	if c.Policy.Tenants[0].ProceedAnyway != nil {
		t.Errorf("tenant without proceed_anyway = %s, want absent", c.Policy.Tenants[0].ProceedAnyway.D())
	}
	if p := c.Policy.Tenants[1].ProceedAnyway; p == nil || *p != 0 {
		t.Errorf("tenant with proceed_anyway: 0s = %v, want present and 0", p)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "set policy.block_page.listen") {
		t.Errorf("Warnings = %q, want one about the missing block page", c.Warnings)
	}
}

func TestClientFlavours(t *testing.T) {
	c, err := Parse([]byte("policy:\n  clients:\n    - subnet: 10.1.2.3/16\n      flavour: protective-child\n"), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Policy.Clients[0].Prefix.String(); got != "10.1.0.0/16" {
		t.Errorf("prefix %s, want 10.1.0.0/16", got)
	}
	_, err = Parse([]byte("policy:\n  clients:\n    - subnet: 10.1.2.3\n      flavour: protective\n"), "test.yaml")
	checkConfigError(t, err, 3, `invalid subnet "10.1.2.3"`)
	_, err = Parse([]byte("policy:\n  clients:\n    - subnet: 10.0.0.0/8\n      flavour: strict\n"), "test.yaml")
	checkConfigError(t, err, 4, `unknown flavour "strict"`)
}
