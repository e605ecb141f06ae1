package trace

import (
	"context"
	"strings"
	"testing"
)

func TestNilRecorderRecordsNothing(t *testing.T) {
	var r *Recorder
	r.Add(Step{Kind: KindQuery})
	r.Enter()
	r.Leave()
	if steps, dropped := r.Steps(); steps != nil || dropped != 0 {
		t.Errorf("nil Recorder Steps() = %v, %d, want nil, 0", steps, dropped)
	}
	if got := FromContext(context.Background()); got != nil {
		t.Errorf("FromContext(Background) = %p, want nil", got)
	}
}

func TestRecorderDepthAndLimit(t *testing.T) {
	r := New()
	if FromContext(NewContext(context.Background(), r)) != r {
		t.Fatal("FromContext does not return the Recorder of NewContext")
	}
	r.Add(Step{Kind: KindLookup})
	r.Enter()
	r.Add(Step{Kind: KindQuery})
	r.Leave()
	r.Leave() // an extra Leave keeps the depth at 0
	r.Add(Step{Kind: KindResponse})
	steps, _ := r.Steps()
	for i, want := range []int{0, 1, 0} {
		if steps[i].Depth != want {
			t.Errorf("step %d depth %d, want %d", i, steps[i].Depth, want)
		}
	}
	for range MaxSteps {
		r.Add(Step{Kind: KindQuery})
	}
	steps, dropped := r.Steps()
	if len(steps) != MaxSteps || dropped != 3 {
		t.Errorf("after %d steps: %d kept, %d dropped; want %d kept, 3 dropped", MaxSteps+3, len(steps), dropped, MaxSteps)
	}
}

func TestWriteText(t *testing.T) {
	ttl := uint32(42)
	rep := &Report{
		Name: "www.example.", Type: "A", Flavour: "protective",
		Steps: []Step{
			{Kind: KindQuery, Zone: "example.", Server: "192.0.2.53:53", Name: "www.example.", Type: "A"},
			{Kind: KindResponse, Server: "192.0.2.53:53", Protocol: "tcp", Rcode: "NOERROR", Result: "referral", Target: "www.example.", RTTMS: 1.5},
			{Kind: KindLookup, Name: "ns.example.", Type: "A", Detail: "address of a name server"},
			{Kind: KindCache, Depth: 1, Name: "ns.example.", Type: "A", Result: "RRset", TTL: &ttl, Security: "secure",
				Records: []string{"ns.example.\t42\tIN\tA\t192.0.2.54"}},
			{Kind: KindDNSKEY, Zone: "example.", Keys: []Key{{Tag: 12345, Algorithm: 13, Flags: 257}}, Security: "secure"},
			{Kind: KindRRSIG, Name: "www.example.", Type: "A", Signer: "example.", Keys: []Key{{Tag: 12345, Algorithm: 13}},
				Result: "failed", EDE: &EDE{Code: 7, Text: "expired"}},
			{Kind: KindPolicy, Name: "www.example.", List: "urlhaus", Category: "malware", Match: "qname", Trigger: "www.example.", Action: "nxdomain"},
		},
		StepsDropped: 2,
		Answer:       Answer{Rcode: "NXDOMAIN", Security: "secure", Blocked: true, EDE: &EDE{Code: 15}, Answer: []string{}},
	}
	var b strings.Builder
	if err := WriteText(&b, rep); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, want := range []string{
		"trace of www.example. A, flavour protective",
		"query www.example. A to 192.0.2.53:53 (zone example.)",
		"response from 192.0.2.53:53 over TCP in 1.5 ms: NOERROR, referral to www.example.",
		"lookup ns.example. A: address of a name server",
		"   cache hit: RRset ns.example. A, ttl 42, secure",
		"ns.example.\t42\tIN\tA\t192.0.2.54",
		"DNSKEY of example.: key tag 12345 alg 13 flags 257, secure",
		"RRSIG over www.example. A by example. key tag 12345 alg 13: failed, EDE 7 (expired)",
		"list urlhaus (category malware) matched qname trigger www.example., action nxdomain",
		"... 2 more steps not kept",
		"answer: NXDOMAIN, secure, blocked by policy, EDE 15",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
}
