package pipeline

import (
	"testing"

	"bulwark/internal/dnssec"

	"github.com/miekg/dns"
)

// actionCounts returns the policy action counts of p keyed by
// "list/category/action".
func actionCounts(p *Pipeline) map[string]uint64 {
	out := map[string]uint64{}
	for _, a := range p.Stats().PolicyActions() {
		out[a.List+"/"+a.Category+"/"+a.Action] = a.Count
	}
	return out
}

func TestPolicyActionsCountCachedAnswers(t *testing.T) {
	p, fr, _ := newTestPipeline(t)
	testPolicy(t, p, 1)
	const rounds = 3 // the first resolves, the others hit the answer cache
	for range rounds {
		ask(t, p, "www.bad.example.", dns.TypeA, 1, true)  // urlhaus nxdomain
		ask(t, p, "good.bad.example.", dns.TypeA, 1, true) // allowlist
		ask(t, p, "t.ads.example.", dns.TypeA, 1, true)    // ads redirect
		ask(t, p, "to-bad.example.", dns.TypeA, 1, true)   // CNAME to a listed name
		ask(t, p, "drop.example.", dns.TypeA, 1, true)     // dropped, never cached
		ask(t, p, "fine.example.", dns.TypeA, 1, true)     // no list
		ask(t, p, "www.bad.example.", dns.TypeA, 0, true)  // unfiltered
	}
	if p.Stats().CacheHits.Load() == 0 {
		t.Fatal("no answer came from the answer cache; the test checks cached answers")
	}
	want := map[string]uint64{
		"urlhaus/malware/nxdomain": 2 * rounds,
		"allow/malware/allow":      rounds,
		"ads/ads/redirect":         rounds,
		"urlhaus/malware/drop":     rounds,
	}
	got := actionCounts(p)
	for key, n := range want {
		if got[key] != n {
			t.Errorf("%s = %d, want %d", key, got[key], n)
		}
	}
	if len(got) != len(want) {
		t.Errorf("counted %v, want only %v", got, want)
	}
	if calls := fr.calls.Load(); calls == 0 {
		t.Error("the resolver was never called")
	}
}

func TestPolicyActionsKeptAcrossReload(t *testing.T) {
	p, _, _ := newTestPipeline(t)
	testPolicy(t, p, 1)
	ask(t, p, "www.bad.example.", dns.TypeA, 1, true)
	testPolicy(t, p, 2)
	ask(t, p, "www.bad.example.", dns.TypeA, 1, true)
	if got := actionCounts(p)["urlhaus/malware/nxdomain"]; got != 2 {
		t.Errorf("urlhaus/malware/nxdomain = %d after a reload, want 2", got)
	}
}

func TestTaggedCacheHitDoesNotAllocate(t *testing.T) {
	p, _, _ := newTestPipeline(t)
	testPolicy(t, p, 1)
	pkt := query(t, "www.bad.example.", dns.TypeA, true, 1232)
	if resp, _ := p.HandleSlow(pkt, true, 1, testClient); resp == nil {
		t.Fatal("no response to a blocked name")
	}
	out := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		if _, outcome, _ := p.HandleFast(pkt, out, true, 1, testClient); outcome != Answered {
			t.Fatal("cache miss on the fast path")
		}
	})
	if allocs != 0 {
		t.Errorf("HandleFast on a blocked cache hit made %.1f allocations, want 0", allocs)
	}
	if got := actionCounts(p)["urlhaus/malware/nxdomain"]; got < 101 {
		t.Errorf("urlhaus/malware/nxdomain = %d after 101 answers, want at least 101", got)
	}
}

func TestValidationCountsResolutions(t *testing.T) {
	p, _, _ := newTestPipeline(t)
	for range 2 { // the second round comes from the answer cache
		for _, name := range []string{"secure.example.", "insecure.example.", "bogus.example.", "plain.example."} {
			ask(t, p, name, dns.TypeA, 0, true)
		}
	}
	st := p.Stats()
	for sec, want := range map[dnssec.Security]uint64{
		dnssec.Secure: 1, dnssec.Insecure: 1, dnssec.Indeterminate: 1,
		// Bogus answers are cached as SERVFAIL for the failure TTL, so
		// the second query does not resolve again.
		dnssec.Bogus: 1,
	} {
		if got := st.Validation[sec].Load(); got != want {
			t.Errorf("Validation[%s] = %d, want %d", sec, got, want)
		}
	}
}

func TestTagNamesDecidingList(t *testing.T) {
	p, _, _ := newTestPipeline(t)
	testPolicy(t, p, 1)
	// No EDNS: the response carries no Extended DNS Error, but the tag
	// still names the list.
	pkt := query(t, "www.bad.example.", dns.TypeA, false, 0)
	_, slowTag := p.HandleSlow(pkt, true, 1, testClient)
	_, outcome, fastTag := p.HandleFast(pkt, nil, true, 1, testClient)
	if outcome != Answered {
		t.Fatal("cache miss on the fast path")
	}
	for name, tag := range map[string]uint32{"HandleSlow": slowTag, "HandleFast": fastTag} {
		list, category, action, ok := p.PolicyOf(tag)
		if !ok || list != "urlhaus" || category != "malware" || action != "nxdomain" {
			t.Errorf("%s: PolicyOf(%d) = %q %q %q %v, want urlhaus malware nxdomain", name, tag, list, category, action, ok)
		}
	}
	_, clean := p.HandleSlow(query(t, "www.good.example.", dns.TypeA, false, 0), true, 1, testClient)
	if _, _, _, ok := p.PolicyOf(clean); ok {
		t.Errorf("unlisted name has tag %d, want 0", clean)
	}
}
