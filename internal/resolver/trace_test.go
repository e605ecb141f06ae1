package resolver

import (
	"context"
	"strings"
	"testing"

	"bulwark/internal/dnssec"
	"bulwark/internal/trace"

	"github.com/miekg/dns"
)

// traced resolves name and qtype with a recorder and returns the result
// and the steps.
func traced(t *testing.T, r *Resolver, name string, qtype uint16) (Result, []trace.Step) {
	t.Helper()
	rec := trace.New()
	res := r.Resolve(trace.NewContext(context.Background(), rec), name, qtype)
	steps, dropped := rec.Steps()
	if dropped != 0 {
		t.Errorf("%d steps dropped", dropped)
	}
	return res, steps
}

// findStep returns the first step of kind for which match is true.
func findStep(steps []trace.Step, kind trace.Kind, match func(trace.Step) bool) (trace.Step, bool) {
	for _, s := range steps {
		if s.Kind == kind && (match == nil || match(s)) {
			return s, true
		}
	}
	return trace.Step{}, false
}

func TestTraceSignedCNAME(t *testing.T) {
	n, anchors := signedNet(t)
	r, _ := testResolver(t, n, validating(anchors))
	res, steps := traced(t, r, "alias.example.", dns.TypeA)
	if res.Rcode != dns.RcodeSuccess || res.Security != dnssec.Secure {
		t.Fatalf("Resolve(alias.example. A) = %s %v, want NOERROR secure", dns.RcodeToString[res.Rcode], res.Security)
	}

	if _, ok := findStep(steps, trace.KindZoneCut, func(s trace.Step) bool { return s.Zone == "." }); !ok {
		t.Error("no zone cut at the root")
	}
	if _, ok := findStep(steps, trace.KindZoneCut, func(s trace.Step) bool { return s.Zone == "example." && strings.Contains(s.Detail, "referral") }); !ok {
		t.Error("no zone cut at example. from a referral")
	}
	q, ok := findStep(steps, trace.KindQuery, func(s trace.Step) bool { return s.Zone == "example." && s.Name == "alias.example." })
	if !ok {
		t.Fatal("no query for alias.example. to the servers of example.")
	}
	if q.Server != "10.0.0.2:53" || q.Type != "A" {
		t.Errorf("query step = %+v, want server 10.0.0.2:53 type A", q)
	}
	resp, ok := findStep(steps, trace.KindResponse, func(s trace.Step) bool { return s.Name == "alias.example." })
	if !ok {
		t.Fatal("no response step for alias.example.")
	}
	if resp.Rcode != "NOERROR" || resp.Result != "answer" || resp.Protocol != "udp" || resp.RTTMS != 1 {
		t.Errorf("response step = %+v, want NOERROR answer over udp in 1 ms", resp)
	}
	if _, ok := findStep(steps, trace.KindResponse, func(s trace.Step) bool { return s.Result == "referral" && s.Target == "example." }); !ok {
		t.Error("no referral to example. among the responses")
	}
	if c, ok := findStep(steps, trace.KindCNAME, nil); !ok || c.Name != "alias.example." || c.Target != "www.example." {
		t.Errorf("CNAME step = %+v (found %v), want alias.example. -> www.example.", c, ok)
	}
}

func TestTraceChainOfTrust(t *testing.T) {
	n, anchors := signedNet(t)
	r, _ := testResolver(t, n, validating(anchors))
	_, steps := traced(t, r, "www.example.", dns.TypeA)

	rootTag := anchors[0].(*dns.DS).KeyTag
	anchor, ok := findStep(steps, trace.KindDS, func(s trace.Step) bool { return s.Zone == "." })
	if !ok || anchor.Result != "trust anchor" || len(anchor.Keys) != 1 || anchor.Keys[0].Tag != rootTag {
		t.Errorf("root DS step = %+v (found %v), want the trust anchor with key tag %d", anchor, ok, rootTag)
	}

	keys, ok := findStep(steps, trace.KindDNSKEY, func(s trace.Step) bool { return s.Zone == "example." })
	if !ok {
		t.Fatal("no DNSKEY step for example.")
	}
	if len(keys.Keys) != 1 || keys.Security != "secure" {
		t.Fatalf("DNSKEY step = %+v, want one secure key", keys)
	}
	tag := keys.Keys[0].Tag
	if keys.Keys[0].Algorithm != dns.ED25519 || keys.Keys[0].Flags != 257 {
		t.Errorf("DNSKEY of example. = %+v, want algorithm 15 flags 257", keys.Keys[0])
	}
	ds, ok := findStep(steps, trace.KindDS, func(s trace.Step) bool { return s.Zone == "example." })
	if !ok || len(ds.Keys) != 1 || ds.Keys[0].Tag != tag || ds.Keys[0].DigestType != dns.SHA256 {
		t.Errorf("DS step of example. = %+v (found %v), want key tag %d digest 2", ds, ok, tag)
	}

	sig, ok := findStep(steps, trace.KindRRSIG, func(s trace.Step) bool { return s.Name == "www.example." && s.Type == "A" })
	if !ok {
		t.Fatal("no RRSIG step over www.example. A")
	}
	if sig.Result != "valid" || sig.Signer != "example." || sig.Keys[0].Tag != tag {
		t.Errorf("RRSIG step = %+v, want valid by example. key tag %d", sig, tag)
	}
	sec, ok := findStep(steps, trace.KindSecurity, func(s trace.Step) bool { return s.Name == "www.example." && s.Type == "A" })
	if !ok || sec.Security != "secure" {
		t.Errorf("security step = %+v (found %v), want secure", sec, ok)
	}
	if _, ok := findStep(steps, trace.KindLookup, func(s trace.Step) bool { return s.Name == "example." && s.Type == "DNSKEY" }); !ok {
		t.Error("no nested lookup of the DNSKEY RRset of example.")
	}
}

func TestTraceBogusSignature(t *testing.T) {
	n, anchors := signedNet(t)
	r, _ := testResolver(t, n, validating(anchors))
	res, steps := traced(t, r, "www.broken.", dns.TypeA)
	if res.Security != dnssec.Bogus {
		t.Fatalf("Resolve(www.broken. A) security %v, want bogus", res.Security)
	}
	sig, ok := findStep(steps, trace.KindRRSIG, func(s trace.Step) bool { return s.Name == "www.broken." })
	if !ok || sig.Result != "failed" || sig.EDE == nil || sig.EDE.Code != dnssec.EDEBogus {
		t.Errorf("RRSIG step = %+v (found %v), want failed with EDE 6", sig, ok)
	}
	sec, ok := findStep(steps, trace.KindSecurity, func(s trace.Step) bool { return s.Name == "www.broken." })
	if !ok || sec.Security != "bogus" || sec.EDE == nil || sec.EDE.Code != dnssec.EDEBogus {
		t.Errorf("security step = %+v (found %v), want bogus with EDE 6", sec, ok)
	}
}

func TestTraceDenialAndCache(t *testing.T) {
	n, anchors := signedNet(t)
	r, _ := testResolver(t, n, func(c *Config) {
		validating(anchors)(c)
		c.AggressiveNSEC = false // the second query must hit the negative cache
	})
	res, steps := traced(t, r, "nope.example.", dns.TypeA)
	if res.Rcode != dns.RcodeNameError {
		t.Fatalf("Resolve(nope.example. A) rcode %s, want NXDOMAIN", dns.RcodeToString[res.Rcode])
	}
	d, ok := findStep(steps, trace.KindDenial, func(s trace.Step) bool { return s.Name == "nope.example." })
	if !ok || d.Result != "NXDOMAIN" || d.Security != "secure" || len(d.Records) == 0 {
		t.Errorf("denial step = %+v (found %v), want a secure NXDOMAIN proof with NSEC records", d, ok)
	}
	for _, rr := range d.Records {
		if !strings.Contains(rr, "NSEC") {
			t.Errorf("proof record %q is not an NSEC record", rr)
		}
	}

	_, steps = traced(t, r, "nope.example.", dns.TypeA)
	hit, ok := findStep(steps, trace.KindCache, nil)
	if !ok || hit.Result != "NXDOMAIN" || hit.Name != "nope.example." || hit.TTL == nil || hit.Security != "secure" {
		t.Errorf("cache step = %+v (found %v), want a secure cached NXDOMAIN with a TTL", hit, ok)
	}
	if q, ok := findStep(steps, trace.KindQuery, nil); ok {
		t.Errorf("cached answer sent a query: %+v", q)
	}
}

func TestTraceTimeoutAndNSLookup(t *testing.T) {
	// example. is delegated to a glueless name whose address never
	// replies.
	n := newFakeNet()
	n.serve(t, "10.0.0.1", ".", `
. SOA a.root.test. admin.test. 1 3600 600 86400 300
. NS a.root.test.
a.root.test. A 10.0.0.1
example. NS ns2.other.
other. NS ns.other.
ns.other. A 10.0.0.3
`)
	n.serve(t, "10.0.0.3", "other.", `
other. SOA ns.other. admin.other. 1 3600 600 86400 300
other. NS ns.other.
ns.other. A 10.0.0.3
ns2.other. A 10.0.0.9
`)
	n.server("10.0.0.9").silent = true
	r, _ := testResolver(t, n, func(c *Config) { c.IPv6 = false })

	res, steps := traced(t, r, "www.example.", dns.TypeA)
	if res.Rcode != dns.RcodeServerFailure {
		t.Fatalf("Resolve(www.example. A) rcode %s, want SERVFAIL", dns.RcodeToString[res.Rcode])
	}
	lookup, ok := findStep(steps, trace.KindLookup, func(s trace.Step) bool { return s.Name == "ns2.other." })
	if !ok || lookup.Type != "A" || lookup.Depth != 0 {
		t.Errorf("lookup step = %+v (found %v), want ns2.other. A at depth 0", lookup, ok)
	}
	if _, ok := findStep(steps, trace.KindQuery, func(s trace.Step) bool { return s.Name == "ns2.other." && s.Depth == 1 }); !ok {
		t.Error("no query for ns2.other. nested at depth 1")
	}
	if _, ok := findStep(steps, trace.KindTimeout, func(s trace.Step) bool { return s.Server == "10.0.0.9:53" && s.RTTMS > 0 }); !ok {
		t.Error("no timeout step for 10.0.0.9:53")
	}
	if _, ok := findStep(steps, trace.KindError, func(s trace.Step) bool { return s.Zone == "example." && s.Server == "" }); !ok {
		t.Error("no error step for the zone example.")
	}
}

func TestUntracedRequestHasNoRecorder(t *testing.T) {
	n, anchors := signedNet(t)
	r, _ := testResolver(t, n, validating(anchors))
	req := r.newRequest(context.Background())
	if req.trace != nil {
		t.Fatalf("newRequest without a recorder in the context has trace %p, want nil", req.trace)
	}
	res := r.resolve(req, "www.example.", dns.TypeA)
	if res.Security != dnssec.Secure {
		t.Errorf("untraced resolve security %v, want secure", res.Security)
	}
}
