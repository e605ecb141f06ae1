package pipeline

import (
	"context"
	"testing"

	"bulwark/internal/trace"

	"github.com/miekg/dns"
)

// policySteps returns the policy steps of rep.
func policySteps(rep *trace.Report) []trace.Step {
	var out []trace.Step
	for _, s := range rep.Steps {
		if s.Kind == trace.KindPolicy {
			out = append(out, s)
		}
	}
	return out
}

func TestTracePolicyDecisions(t *testing.T) {
	p, _, _ := newTestPipeline(t)
	testPolicy(t, p, 1)
	for _, tt := range []struct {
		name, flavour string
		rcode         string
		blocked       bool
		// steps are the results of the policy steps in order, with the
		// list and match kind of a matched one.
		steps []string
	}{
		{"www.bad.example.", "protective", "NXDOMAIN", true, []string{"matched urlhaus qname"}},
		{"to-bad.example.", "protective", "NXDOMAIN", true, []string{"none", "matched urlhaus qname"}},
		{"ip66.example.", "protective", "NXDOMAIN", true, []string{"none", "matched urlhaus response-ip"}},
		{"good.bad.example.", "protective", "NOERROR", false, []string{"matched allow qname"}},
		{"www.example.", "protective", "NOERROR", false, []string{"none", "none"}},
		{"www.bad.example.", "", "NOERROR", false, []string{"none"}},
	} {
		t.Run(tt.name+"/"+tt.flavour, func(t *testing.T) {
			rep, err := p.Trace(context.Background(), tt.name, dns.TypeA, tt.flavour)
			if err != nil {
				t.Fatalf("Trace(%s) error %v", tt.name, err)
			}
			if rep.Answer.Rcode != tt.rcode || rep.Answer.Blocked != tt.blocked {
				t.Errorf("answer %s blocked %v, want %s blocked %v", rep.Answer.Rcode, rep.Answer.Blocked, tt.rcode, tt.blocked)
			}
			var got []string
			for _, s := range policySteps(rep) {
				if s.Result == "matched" {
					got = append(got, "matched "+s.List+" "+s.Match)
				} else {
					got = append(got, s.Result)
				}
			}
			if len(got) != len(tt.steps) {
				t.Fatalf("policy steps %q, want %q", got, tt.steps)
			}
			for i := range got {
				if got[i] != tt.steps[i] {
					t.Errorf("policy step %d = %q, want %q", i, got[i], tt.steps[i])
				}
			}
		})
	}
}

func TestTraceDefaultFlavourAndErrors(t *testing.T) {
	p, _, _ := newTestPipeline(t)
	testPolicy(t, p, 1)
	rep, err := p.Trace(context.Background(), "www.example", dns.TypeA, "")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Flavour != "unfiltered" || rep.Name != "www.example." || rep.Type != "A" {
		t.Errorf("report of %q %s in flavour %q, want www.example. A in unfiltered", rep.Name, rep.Type, rep.Flavour)
	}
	if len(rep.Answer.Answer) != 1 {
		t.Errorf("answer %q, want one record", rep.Answer.Answer)
	}
	if _, err := p.Trace(context.Background(), "www.example.", dns.TypeA, "nosuch"); err == nil {
		t.Error("Trace with flavour nosuch = nil error, want unknown flavour")
	}
}

func TestDescribeAnswerKey(t *testing.T) {
	p, _, _ := newTestPipeline(t)
	testPolicy(t, p, 7)
	q := Query{QName: []byte("\x03www\x07example\x00"), QType: dns.TypeA, DO: true, Flags: flagCD}
	key := p.appendPolicyKey(q.key(nil), 1, true)
	wire := []byte("\x03www\x07example\x00")
	rest := key[len(wire)+2:]
	got := p.DescribeAnswerKey(rest[0], rest[1:])
	want := AnswerVariant{DO: true, CD: true, Flavour: "protective", PolicyVersion: 7, Exempt: true}
	if got != want {
		t.Errorf("DescribeAnswerKey = %+v, want %+v", got, want)
	}
	plain := p.appendPolicyKey((&Query{QName: wire, QType: dns.TypeA}).key(nil), 0, false)
	rest = plain[len(wire)+2:]
	if got := p.DescribeAnswerKey(rest[0], rest[1:]); got != (AnswerVariant{}) {
		t.Errorf("DescribeAnswerKey of an unfiltered key = %+v, want the zero value", got)
	}
}
