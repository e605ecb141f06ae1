package main

import (
	"testing"

	"github.com/miekg/dns"

	"bulwark/test/labkit"
)

func response(t *testing.T, name string, qtype uint16, rcode int, answers ...string) *dns.Msg {
	t.Helper()
	req := new(dns.Msg)
	req.SetQuestion(name, qtype)
	resp := new(dns.Msg)
	resp.SetRcode(req, rcode)
	for _, a := range answers {
		rr, err := dns.NewRR(a)
		if err != nil {
			t.Fatalf("dns.NewRR(%q) error = %v", a, err)
		}
		resp.Answer = append(resp.Answer, rr)
	}
	return resp
}

func TestCheckerCorrect(t *testing.T) {
	c := newChecker([]labkit.Row{
		{Name: "www.example.com.", Type: "A", Rcode: "NOERROR", EDE: -1, Value: "198.18.0.1"},
		{Name: "nx.example.com.", Type: "A", Rcode: "NXDOMAIN", EDE: -1, Value: "-"},
	})
	www := question{Name: "www.example.com.", Qtype: dns.TypeA}
	nx := question{Name: "nx.example.com.", Qtype: dns.TypeA}
	other := question{Name: "other.example.org.", Qtype: dns.TypeAAAA}
	truncated := response(t, "www.example.com.", dns.TypeA, dns.RcodeSuccess)
	truncated.Truncated = true

	tests := []struct {
		name string
		q    question
		resp *dns.Msg
		want bool
	}{
		{"listed value", www, response(t, "www.example.com.", dns.TypeA, dns.RcodeSuccess,
			"www.example.com. 60 IN CNAME cdn.example.net.", "cdn.example.net. 60 IN A 198.18.0.1"), true},
		{"listed wrong value", www, response(t, "www.example.com.", dns.TypeA, dns.RcodeSuccess,
			"www.example.com. 60 IN A 198.18.0.2"), false},
		{"listed no answer", www, response(t, "www.example.com.", dns.TypeA, dns.RcodeSuccess), false},
		{"listed servfail", www, response(t, "www.example.com.", dns.TypeA, dns.RcodeServerFailure), false},
		{"listed nxdomain", nx, response(t, "nx.example.com.", dns.TypeA, dns.RcodeNameError), true},
		{"listed nxdomain as noerror", nx, response(t, "nx.example.com.", dns.TypeA, dns.RcodeSuccess), false},
		{"unlisted noerror", other, response(t, "other.example.org.", dns.TypeAAAA, dns.RcodeSuccess), true},
		{"unlisted nxdomain", other, response(t, "other.example.org.", dns.TypeAAAA, dns.RcodeNameError), true},
		{"unlisted servfail", other, response(t, "other.example.org.", dns.TypeAAAA, dns.RcodeServerFailure), false},
		{"unlisted refused", other, response(t, "other.example.org.", dns.TypeAAAA, dns.RcodeRefused), false},
		{"other question", www, response(t, "nx.example.com.", dns.TypeA, dns.RcodeNameError), false},
		{"other qtype", www, response(t, "www.example.com.", dns.TypeAAAA, dns.RcodeSuccess,
			"www.example.com. 60 IN A 198.18.0.1"), false},
		{"name in other case", www, response(t, "WWW.Example.com.", dns.TypeA, dns.RcodeSuccess,
			"WWW.Example.com. 60 IN A 198.18.0.1"), true},
		{"truncated", www, truncated, false},
		{"no response", www, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.correct(tt.q, tt.resp); got != tt.want {
				t.Errorf("correct(%v, %v) = %v, want %v", tt.q, tt.resp, got, tt.want)
			}
		})
	}
}

func TestCheckerListed(t *testing.T) {
	c := newChecker([]labkit.Row{{Name: "A.example.", Type: "A", Rcode: "NOERROR", EDE: -1, Value: "-"}})
	qs := []question{{"a.example.", dns.TypeA}, {"a.example.", dns.TypeMX}, {"b.example.", dns.TypeA}}
	if got := c.listed(qs); got != 1 {
		t.Errorf("listed(%v) = %d, want 1", qs, got)
	}
}
