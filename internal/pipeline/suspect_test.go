package pipeline

import (
	"strings"
	"testing"

	"bulwark/internal/resolver"

	"github.com/miekg/dns"
)

// suspectZones finds every name under victim.example. suspect except
// www.victim.example.
type suspectZones struct{ observed []string }

func (s *suspectZones) Observe(qname string, res resolver.Result) {
	s.observed = append(s.observed, qname)
}

func (s *suspectZones) Suspect(qname string) bool {
	return strings.HasSuffix(qname, ".victim.example.") && qname != "www.victim.example."
}

func TestSuspectPoolFullSheds(t *testing.T) {
	p, fr, _ := newTestPipeline(t)
	p.SetZoneObserver(&suspectZones{})
	if n := cap(p.suspects); n != 1 {
		t.Fatalf("suspect pool of %d slots for 10 resolutions, want 1", n)
	}
	// A resolution of a suspect name holds the only slot.
	p.suspects <- struct{}{}

	m := unpack(t, handle(p, query(t, "x7f3k.victim.example.", dns.TypeA, true, 1232), true))
	if m.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode %s for a suspect name with the pool full, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	if code, text := ede(m); code != int(dns.ExtendedErrorCodeOther) || !strings.Contains(text, "random-subdomain flood") {
		t.Errorf("EDE %d %q, want code 0 naming the flood", code, text)
	}
	if n := fr.calls.Load(); n != 0 {
		t.Errorf("resolver called %d times for a shed name, want 0", n)
	}
	if n := p.stats.Busy.Load(); n != 1 {
		t.Errorf("Busy = %d, want 1", n)
	}

	for _, name := range []string{"www.victim.example.", "www.other.example."} {
		m := unpack(t, handle(p, query(t, name, dns.TypeA, true, 1232), true))
		if m.Rcode != dns.RcodeSuccess {
			t.Errorf("rcode %s for %s with the suspect pool full, want NOERROR", dns.RcodeToString[m.Rcode], name)
		}
	}

	<-p.suspects
	m = unpack(t, handle(p, query(t, "x7f3k.victim.example.", dns.TypeA, true, 1232), true))
	if m.Rcode != dns.RcodeSuccess {
		t.Errorf("rcode %s for a suspect name with a free slot, want NOERROR", dns.RcodeToString[m.Rcode])
	}
	if n := len(p.suspects); n != 0 {
		t.Errorf("%d suspect slots held after the resolution ended, want 0", n)
	}

	// The answers of suspect names are not cached; those of other names
	// are.
	calls := fr.calls.Load()
	handle(p, query(t, "x7f3k.victim.example.", dns.TypeA, true, 1232), true)
	handle(p, query(t, "www.victim.example.", dns.TypeA, true, 1232), true)
	if n := fr.calls.Load() - calls; n != 1 {
		t.Errorf("resolver called %d times for a suspect name and a cached one, want 1", n)
	}
}
