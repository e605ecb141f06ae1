package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"bulwark/internal/clock"
)

func TestStaleConfig(t *testing.T) {
	dir := t.TempDir()
	lab := filepath.Join(dir, "bulwark.yaml")
	base := "server:\n  listen: []\ncache:\n  max_bytes: 64MiB\nlog:\n  level: info\n"
	if err := os.WriteFile(lab, []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	text, err := staleConfig(lab, "/tmp/clock")
	if err != nil {
		t.Fatalf("staleConfig() error = %v", err)
	}
	for _, want := range []string{
		"cache:\n  stale_max_age: 72h0m0s\n  stale_answer_ttl: 17s\n  max_bytes: 64MiB\n",
		"\ntesting:\n  enabled: true\n  clock_file: /tmp/clock\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("staleConfig() = %q, want it to contain %q", text, want)
		}
	}

	for name, text := range map[string]string{
		"no cache":       "server:\n  listen: []\n",
		"stale age set":  base + "cache:\n  stale_max_age: 1h\n",
		"testing exists": base + "testing:\n  enabled: true\n",
	} {
		if err := os.WriteFile(lab, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := staleConfig(lab, "/tmp/clock"); err == nil {
			t.Errorf("staleConfig(%s) error = nil, want one", name)
		}
	}
}

func TestWriteClock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clock")
	want := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := writeClock(path, want); err != nil {
		t.Fatalf("writeClock() error = %v", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := clock.ParseFileTime(data)
	if err != nil || !got.Equal(want) {
		t.Errorf("clock file %q parses to %v, %v; want %v", data, got, err, want)
	}
}

func withEDE(m *dns.Msg, code uint16) *dns.Msg {
	m.SetEdns0(1232, false)
	opt := m.IsEdns0()
	opt.Option = append(opt.Option, &dns.EDNS0_EDE{InfoCode: code})
	return m
}

func TestHasStaleEDE(t *testing.T) {
	tests := []struct {
		name string
		resp *dns.Msg
		want bool
	}{
		{"stale answer", withEDE(new(dns.Msg), dns.ExtendedErrorCodeStaleAnswer), true},
		{"stale nxdomain", withEDE(new(dns.Msg), dns.ExtendedErrorCodeStaleNXDOMAINAnswer), true},
		{"other code", withEDE(new(dns.Msg), dns.ExtendedErrorCodeNoReachableAuthority), false},
		{"edns without ede", new(dns.Msg).SetEdns0(1232, false), false},
		{"no edns", new(dns.Msg), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hasStaleEDE(tt.resp); got != tt.want {
				t.Errorf("hasStaleEDE(%v) = %v, want %v", tt.resp, got, tt.want)
			}
		})
	}
}

func TestAllTTLs(t *testing.T) {
	stale := response(t, "a.example.", dns.TypeA, dns.RcodeSuccess,
		"a.example. 17 IN CNAME b.example.", "b.example. 17 IN A 198.18.0.1")
	fresh := response(t, "a.example.", dns.TypeA, dns.RcodeSuccess,
		"a.example. 17 IN CNAME b.example.", "b.example. 60 IN A 198.18.0.1")
	nx := response(t, "a.example.", dns.TypeA, dns.RcodeNameError)
	soa, _ := dns.NewRR("example. 17 IN SOA ns.example. h.example. 1 1 1 1 1")
	nx.Ns = []dns.RR{soa}
	if !allTTLs(stale, 17) {
		t.Errorf("allTTLs(every record at 17, 17) = false, want true")
	}
	if allTTLs(fresh, 17) {
		t.Errorf("allTTLs(one record at 60, 17) = true, want false")
	}
	if !allTTLs(nx, 17) {
		t.Errorf("allTTLs(NXDOMAIN with SOA at 17, 17) = false, want true")
	}
	if allTTLs(response(t, "a.example.", dns.TypeA, dns.RcodeSuccess), 17) {
		t.Errorf("allTTLs(no records, 17) = true, want false")
	}
}

func TestNormalLoadRecordClasses(t *testing.T) {
	hit := question{Name: "a.example.", Qtype: dns.TypeA}
	other := question{Name: "b.example.", Qtype: dns.TypeA}
	l := &normalLoad{check: newChecker(nil), affected: map[question]bool{hit: true}, staleTTL: 17}
	sent := pendingQuery{q: hit, sent: time.Now()}

	staleMarked := withEDE(response(t, "a.example.", dns.TypeA, dns.RcodeSuccess, "a.example. 17 IN A 198.18.0.1"),
		dns.ExtendedErrorCodeStaleAnswer)
	staleUnmarked := response(t, "a.example.", dns.TypeA, dns.RcodeSuccess, "a.example. 17 IN A 198.18.0.1")
	fresh := response(t, "a.example.", dns.TypeA, dns.RcodeSuccess, "a.example. 60 IN A 198.18.0.1")
	servfail := response(t, "a.example.", dns.TypeA, dns.RcodeServerFailure)
	refused := response(t, "a.example.", dns.TypeA, dns.RcodeRefused)
	for _, resp := range []*dns.Msg{staleMarked, staleUnmarked, fresh, servfail, refused} {
		l.record(sent, resp)
	}
	l.record(pendingQuery{q: other, sent: time.Now()},
		response(t, "b.example.", dns.TypeA, dns.RcodeNameError))

	r := l.result(time.Second)
	checks := []struct {
		name      string
		got, want int64
	}{
		{"Correct", r.Correct, 4},
		{"Wrong", r.Wrong, 2},
		{"AffectedAnswered", r.AffectedAnswered, 4}, // all but REFUSED
		{"UnaffectedCorrect", r.UnaffectedCorrect, 1},
		{"Stale", r.Stale, 1},
		{"StaleWithoutEDE", r.StaleWithoutEDE, 1},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("after 6 responses %s = %d, want %d", c.name, c.got, c.want)
		}
	}
}
