package pipeline

import (
	"bytes"
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

func (s *suspectZones) Suspect(qname []byte) bool {
	return bytes.HasSuffix(qname, []byte(".victim.example.")) && !bytes.Equal(qname, []byte("www.victim.example."))
}

func TestSuspectPoolFullSheds(t *testing.T) {
	p, fr, _ := newTestPipeline(t)
	p.cfg.SuspectRate = 3
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

	// The third suspect resolution of the second spends the rate of 3.
	handle(p, query(t, "a.victim.example.", dns.TypeA, true, 1232), true)
	m = unpack(t, handle(p, query(t, "b.victim.example.", dns.TypeA, true, 1232), true))
	if m.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode %s for a fourth suspect name in one second at a rate of 3, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
}

func TestSuspectShedDoesNotAllocate(t *testing.T) {
	p, _, _ := newTestPipeline(t)
	p.cfg.SuspectRate = 3
	p.SetZoneObserver(&suspectZones{})
	p.suspects <- struct{}{}
	pkt := query(t, "x7f3k.victim.example.", dns.TypeA, true, 1232)
	out := make([]byte, 0, 512)
	allocs := testing.AllocsPerRun(100, func() {
		if _, outcome, _ := p.HandleFast(pkt, out, true, 0, testClient); outcome != Answered {
			t.Fatalf("outcome %v for a suspect name with the pool full, want Answered", outcome)
		}
	})
	if allocs != 0 {
		t.Errorf("shedding a suspect name on the fast path: %v allocations, want 0", allocs)
	}
}

func TestAppendLowerName(t *testing.T) {
	tests := []struct {
		name string
		want string
		ok   bool
	}{
		{"WWW.Example.COM.", "www.example.com.", true},
		{".", ".", true},
		{"_dmarc.x-1.example.", "_dmarc.x-1.example.", true},
		{"a\\.b.example.", "", false},
		{"a\032b.example.", "", false},
	}
	for _, tt := range tests {
		wire := make([]byte, 256)
		n, err := dns.PackDomainName(tt.name, wire, 0, nil, false)
		if err != nil {
			t.Fatalf("pack %s: %v", tt.name, err)
		}
		got, ok := appendLowerName(nil, wire[:n])
		if ok != tt.ok || ok && string(got) != tt.want {
			t.Errorf("appendLowerName(%s) = %q, %v, want %q, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}
