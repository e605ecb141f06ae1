package policyload

import (
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"testing"
	"time"

	"bulwark/internal/config"
)

const proceedConfig = `policy:
  lists:
    - name: malware
      file: malware.txt
      format: domains
      category: malware
    - name: school-deny
      file: deny.txt
      format: domains
      category: ads
  flavours:
    - name: protective
      categories: [malware, phishing, botnet]
      proceed_anyway: 10m
    - name: strict
      categories: [malware]
  tenants:
    - name: school
      subnets: [10.1.0.0/16]
      deny: [school-deny]
    - name: hospital
      subnets: [10.2.0.0/16]
      deny: [school-deny]
      proceed_anyway: 5m
    - name: bank
      subnets: [10.3.0.0/16]
      proceed_anyway: 0s
    - name: shop
      subnets: [10.4.0.0/16]
      flavour: strict
`

func TestProceedRules(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "malware.txt", "bad.example\n")
	write(t, dir, "deny.txt", "games.example\n")
	cfg, err := config.Load(write(t, dir, "bulwark.yaml", proceedConfig))
	if err != nil {
		t.Fatal(err)
	}
	rules := ProceedRules(cfg)
	for _, tt := range []struct {
		flavour  string
		duration time.Duration
		enforced []string
	}{
		{"protective", 10 * time.Minute, nil},
		{"strict", 0, nil},
		{"tenant:school", 10 * time.Minute, []string{"school-deny"}},
		{"tenant:hospital", 5 * time.Minute, nil},
		{"tenant:bank", 0, nil},
		{"tenant:shop", 0, nil},
	} {
		r, ok := rules[tt.flavour]
		if r.Duration != tt.duration {
			t.Errorf("%s: duration %s, want %s", tt.flavour, r.Duration, tt.duration)
		}
		if ok != (tt.duration > 0) {
			t.Errorf("%s: rule present %v, want %v", tt.flavour, ok, tt.duration > 0)
		}
		if !slices.Equal(r.Enforced, tt.enforced) {
			t.Errorf("%s: enforced lists %v, want %v", tt.flavour, r.Enforced, tt.enforced)
		}
	}

	m, err := NewManager(cfg, &recorder{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		client string
		want   time.Duration
	}{
		{"192.0.2.1", 10 * time.Minute}, // no subnet: protective
		{"10.1.0.1", 10 * time.Minute},
		{"10.2.0.1", 5 * time.Minute},
		{"10.3.0.1", 0},
	} {
		if got := m.ProceedRule(netip.MustParseAddr(tt.client)).Duration; got != tt.want {
			t.Errorf("ProceedRule(%s).Duration = %s, want %s", tt.client, got, tt.want)
		}
	}
	var names []string
	for _, f := range m.Flavours() {
		names = append(names, f.Name)
	}
	for _, want := range []string{"unfiltered", "protective", "strict", "tenant:school"} {
		if !slices.Contains(names, want) {
			t.Errorf("Flavours() = %v, want it to contain %s", names, want)
		}
	}
}
