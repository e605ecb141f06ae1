package pipeline

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"bulwark/internal/cache"
	"bulwark/internal/dnssec"
	"bulwark/internal/resolver"

	"github.com/miekg/dns"
)

// scriptedResolver returns the result set for each name, counts calls,
// and blocks each call while gate is set, until gate is closed.
type scriptedResolver struct {
	mu      sync.Mutex
	results map[string]resolver.Result
	gate    chan struct{}
	calls   atomic.Int32
	// started receives the name of each call, when not nil.
	started chan string
}

func (s *scriptedResolver) Resolve(ctx context.Context, name string, qtype uint16) resolver.Result {
	s.calls.Add(1)
	s.mu.Lock()
	res, gate, started := s.results[name], s.gate, s.started
	s.mu.Unlock()
	if started != nil {
		started <- name
	}
	if gate != nil {
		<-gate
	}
	// Each caller gets its own records, as the real resolver's are.
	res.Answer = copyRRs(res.Answer)
	res.Authority = copyRRs(res.Authority)
	return res
}

func copyRRs(rrs []dns.RR) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		out = append(out, dns.Copy(rr))
	}
	return out
}

func (s *scriptedResolver) set(name string, res resolver.Result) {
	s.mu.Lock()
	s.results[name] = res
	s.mu.Unlock()
}

func (s *scriptedResolver) setGate(gate chan struct{}) {
	s.mu.Lock()
	s.gate = gate
	s.mu.Unlock()
}

// atomicClock is a test clock that background resolutions may read.
type atomicClock struct{ ns atomic.Int64 }

func (c *atomicClock) now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

func (c *atomicClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

type staleSetup struct {
	p     *Pipeline
	res   *scriptedResolver
	clock *atomicClock
}

func newStalePipeline(t *testing.T, cfg Config, staleMaxAge time.Duration) staleSetup {
	t.Helper()
	clock := &atomicClock{}
	clock.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	c := cache.New(cache.Config{
		MaxBytes: 8 << 20, MaxTTL: time.Hour, MaxNegativeTTL: time.Hour,
		StaleMaxAge: staleMaxAge, Now: clock.now,
	})
	res := &scriptedResolver{results: map[string]resolver.Result{}}
	cfg.BufferSize, cfg.ClientTimeout, cfg.MaxResolutions = 1232, 5*time.Second, 10
	cfg.StaleAnswerTTL = 30 * time.Second
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return staleSetup{p: New(cfg, c, res, log, clock.now), res: res, clock: clock}
}

func answerA(t *testing.T, name string, ttl int, sec dnssec.Security) resolver.Result {
	t.Helper()
	rr, err := dns.NewRR(name + " " + strconv.Itoa(ttl) + " IN A 192.0.2.7")
	if err != nil {
		t.Fatal(err)
	}
	return resolver.Result{Rcode: dns.RcodeSuccess, Answer: []dns.RR{rr}, Security: sec}
}

var unreachable = resolver.Result{
	Rcode: dns.RcodeServerFailure,
	EDE:   &resolver.EDE{Code: resolver.EDENoReachableAuthority, Text: "no usable server for example."},
}

// edeCodes returns the info codes of every EDE option of m.
func edeCodes(m *dns.Msg) []int {
	var codes []int
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				codes = append(codes, int(e.InfoCode))
			}
		}
	}
	return codes
}

func hasCode(codes []int, code int) bool {
	for _, c := range codes {
		if c == code {
			return true
		}
	}
	return false
}

func TestStaleAfterFailedResolution(t *testing.T) {
	s := newStalePipeline(t, Config{FailureTTL: 5 * time.Second}, 24*time.Hour)
	s.res.set("www.example.", answerA(t, "www.example.", 60, dnssec.Insecure))
	fresh := unpack(t, handle(s.p, query(t, "www.example.", dns.TypeA, true, 1232), true))
	if len(fresh.Answer) != 1 || hasCode(edeCodes(fresh), edeStaleAnswer) {
		t.Fatalf("fresh response = %v, want one A without a stale EDE", fresh)
	}

	s.clock.advance(61 * time.Second)
	s.res.set("www.example.", unreachable)
	m := unpack(t, handle(s.p, query(t, "www.example.", dns.TypeA, true, 1232), true))
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
		t.Fatalf("response after failure = %v, want the stale A", m)
	}
	if ttl := m.Answer[0].Header().Ttl; ttl != 30 {
		t.Errorf("stale TTL = %d, want 30", ttl)
	}
	if codes := edeCodes(m); !hasCode(codes, edeStaleAnswer) {
		t.Errorf("stale EDE codes = %v, want 3 among them", codes)
	}
	if n := s.p.Stats().Stale.Load(); n != 1 {
		t.Errorf("Stats().Stale = %d, want 1", n)
	}

	// Within the failure TTL the stale copy comes from the fast path and
	// the servers are not asked again.
	calls := s.res.calls.Load()
	s.clock.advance(4 * time.Second)
	resp, outcome, _ := s.p.HandleFast(query(t, "www.example.", dns.TypeA, true, 1232), nil, true, 0, testClient)
	if outcome != Answered {
		t.Fatalf("HandleFast outcome = %d within the failure TTL, want Answered", outcome)
	}
	if m := unpack(t, resp); !hasCode(edeCodes(m), edeStaleAnswer) {
		t.Errorf("fast stale response EDE codes = %v, want 3", edeCodes(m))
	}
	if got := s.res.calls.Load(); got != calls {
		t.Errorf("resolver calls = %d within the failure TTL, want %d", got, calls)
	}
	if n := s.p.Stats().Stale.Load(); n != 2 {
		t.Errorf("Stats().Stale = %d after a fast stale hit, want 2", n)
	}

	// After it, the servers are tried again and a fresh answer wins.
	s.clock.advance(2 * time.Second)
	s.res.set("www.example.", answerA(t, "www.example.", 60, dnssec.Insecure))
	m = unpack(t, handle(s.p, query(t, "www.example.", dns.TypeA, true, 1232), true))
	if got := s.res.calls.Load(); got != calls+1 {
		t.Errorf("resolver calls = %d after the failure TTL, want %d", got, calls+1)
	}
	if hasCode(edeCodes(m), edeStaleAnswer) || m.Answer[0].Header().Ttl != 60 {
		t.Errorf("response after recovery = %v, want a fresh A with TTL 60", m)
	}
}

func TestStaleNXDomainEDE(t *testing.T) {
	s := newStalePipeline(t, Config{FailureTTL: 5 * time.Second}, 24*time.Hour)
	soa, _ := dns.NewRR("example. 60 IN SOA ns.example. host.example. 1 3600 600 86400 60")
	s.res.set("gone.example.", resolver.Result{Rcode: dns.RcodeNameError, Authority: []dns.RR{soa}})
	handle(s.p, query(t, "gone.example.", dns.TypeA, true, 1232), true)

	s.clock.advance(90 * time.Second)
	s.res.set("gone.example.", unreachable)
	m := unpack(t, handle(s.p, query(t, "gone.example.", dns.TypeA, true, 1232), true))
	if m.Rcode != dns.RcodeNameError {
		t.Fatalf("rcode = %s, want the stale NXDOMAIN", dns.RcodeToString[m.Rcode])
	}
	if codes := edeCodes(m); !hasCode(codes, edeStaleNXDomain) || hasCode(codes, edeStaleAnswer) {
		t.Errorf("EDE codes = %v, want 19 and not 3", codes)
	}
	if len(m.Ns) != 1 || m.Ns[0].Header().Ttl != 30 {
		t.Errorf("authority = %v, want the SOA with TTL 30", m.Ns)
	}
}

func TestStaleLimits(t *testing.T) {
	tests := []struct {
		name        string
		staleMaxAge time.Duration
		age         time.Duration
		want        int
	}{
		{"within max age", time.Hour, 59 * time.Minute, dns.RcodeSuccess},
		{"past max age", time.Hour, 61 * time.Minute, dns.RcodeServerFailure},
		{"serve-stale off", 0, time.Minute, dns.RcodeServerFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStalePipeline(t, Config{FailureTTL: 5 * time.Second}, tt.staleMaxAge)
			s.res.set("www.example.", answerA(t, "www.example.", 60, dnssec.Insecure))
			handle(s.p, query(t, "www.example.", dns.TypeA, true, 1232), true)
			s.clock.advance(60*time.Second + tt.age)
			s.res.set("www.example.", unreachable)
			m := unpack(t, handle(s.p, query(t, "www.example.", dns.TypeA, true, 1232), true))
			if m.Rcode != tt.want {
				t.Errorf("rcode %s after %s past expiry, want %s", dns.RcodeToString[m.Rcode], tt.age, dns.RcodeToString[tt.want])
			}
		})
	}
}

func TestStaleNeverBogus(t *testing.T) {
	t.Run("bogus answer to a CD client", func(t *testing.T) {
		s := newStalePipeline(t, Config{FailureTTL: 5 * time.Second}, 24*time.Hour)
		s.res.set("bogus.example.", answerA(t, "bogus.example.", 60, dnssec.Bogus))
		q := query(t, "bogus.example.", dns.TypeA, true, 1232)
		q[3] |= flagCD
		if m := unpack(t, handle(s.p, q, true)); len(m.Answer) != 1 {
			t.Fatalf("CD response = %v, want the bogus A", m)
		}
		s.clock.advance(61 * time.Second)
		s.res.set("bogus.example.", unreachable)
		for _, pkt := range [][]byte{q, query(t, "bogus.example.", dns.TypeA, true, 1232)} {
			m := unpack(t, handle(s.p, pkt, true))
			if m.Rcode != dns.RcodeServerFailure || len(m.Answer) != 0 {
				t.Errorf("response after failure = %v, want SERVFAIL without data", m)
			}
		}
	})
	t.Run("bogus refresh of good data", func(t *testing.T) {
		s := newStalePipeline(t, Config{FailureTTL: 5 * time.Second}, 24*time.Hour)
		s.res.set("www.example.", answerA(t, "www.example.", 60, dnssec.Secure))
		handle(s.p, query(t, "www.example.", dns.TypeA, true, 1232), true)
		s.clock.advance(61 * time.Second)
		bogus := answerA(t, "www.example.", 60, dnssec.Bogus)
		bogus.EDE = &resolver.EDE{Code: dnssec.EDESignatureExpired, Text: "RRSIG expired"}
		s.res.set("www.example.", bogus)
		m := unpack(t, handle(s.p, query(t, "www.example.", dns.TypeA, true, 1232), true))
		if m.Rcode != dns.RcodeServerFailure || hasCode(edeCodes(m), edeStaleAnswer) {
			t.Errorf("response to a bogus refresh = %v, want SERVFAIL, not stale data", m)
		}
	})
}

func TestStaleKeepsAD(t *testing.T) {
	s := newStalePipeline(t, Config{FailureTTL: 5 * time.Second}, 24*time.Hour)
	s.res.set("secure.example.", answerA(t, "secure.example.", 60, dnssec.Secure))
	s.res.set("insecure.example.", answerA(t, "insecure.example.", 60, dnssec.Insecure))
	for _, name := range []string{"secure.example.", "insecure.example."} {
		q := query(t, name, dns.TypeA, true, 1232)
		q[3] |= flagAD
		handle(s.p, q, true)
	}
	s.clock.advance(61 * time.Second)
	s.res.set("secure.example.", unreachable)
	s.res.set("insecure.example.", unreachable)
	for name, want := range map[string]bool{"secure.example.": true, "insecure.example.": false} {
		q := query(t, name, dns.TypeA, true, 1232)
		q[3] |= flagAD
		m := unpack(t, handle(s.p, q, true))
		if !hasCode(edeCodes(m), edeStaleAnswer) {
			t.Fatalf("%s: response %v, want a stale answer", name, m)
		}
		if m.AuthenticatedData != want {
			t.Errorf("%s: stale AD = %t, want %t", name, m.AuthenticatedData, want)
		}
	}
}

func TestStaleClientTimeout(t *testing.T) {
	s := newStalePipeline(t, Config{FailureTTL: 5 * time.Second, StaleClientTimeout: 20 * time.Millisecond}, 24*time.Hour)
	s.res.set("slow.example.", answerA(t, "slow.example.", 60, dnssec.Insecure))
	handle(s.p, query(t, "slow.example.", dns.TypeA, true, 1232), true)
	s.clock.advance(61 * time.Second)

	// The resolution blocks until gate closes, so the timer fires first.
	gate := make(chan struct{})
	s.res.setGate(gate)
	s.res.set("slow.example.", answerA(t, "slow.example.", 120, dnssec.Insecure))
	m := unpack(t, handle(s.p, query(t, "slow.example.", dns.TypeA, true, 1232), true))
	if !hasCode(edeCodes(m), edeStaleAnswer) || m.Answer[0].Header().Ttl != 30 {
		t.Fatalf("response to a slow resolution = %v, want the stale A with TTL 30", m)
	}

	// The resolution goes on and refreshes the cache.
	s.p.flights.mu.Lock()
	var fl *flight
	for _, f := range s.p.flights.m {
		fl = f
	}
	s.p.flights.mu.Unlock()
	if fl == nil {
		t.Fatal("no resolution in progress after the stale response")
	}
	s.res.setGate(nil)
	close(gate)
	<-fl.done
	resp, outcome, _ := s.p.HandleFast(query(t, "slow.example.", dns.TypeA, true, 1232), nil, true, 0, testClient)
	if outcome != Answered {
		t.Fatalf("HandleFast outcome = %d after the refresh, want Answered", outcome)
	}
	if m := unpack(t, resp); hasCode(edeCodes(m), edeStaleAnswer) || m.Answer[0].Header().Ttl != 120 {
		t.Errorf("response after the refresh = %v, want the fresh A with TTL 120", m)
	}
}

func TestUncachedFailureIsServfail(t *testing.T) {
	s := newStalePipeline(t, Config{FailureTTL: 5 * time.Second, StaleClientTimeout: 20 * time.Millisecond}, 24*time.Hour)
	s.res.set("never.example.", unreachable)
	m := unpack(t, handle(s.p, query(t, "never.example.", dns.TypeA, true, 1232), true))
	if m.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode = %s for a name never cached, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	if n := s.p.Stats().Stale.Load(); n != 0 {
		t.Errorf("Stats().Stale = %d, want 0", n)
	}
}

// waitIdle blocks until no resolution slot is taken, so that every
// prefetch has ended.
func waitIdle(p *Pipeline) {
	for range cap(p.slots) {
		p.slots <- struct{}{}
	}
	for range cap(p.slots) {
		<-p.slots
	}
}

func TestPrefetch(t *testing.T) {
	s := newStalePipeline(t, Config{FailureTTL: 5 * time.Second, Prefetch: true}, 24*time.Hour)
	s.res.set("pop.example.", answerA(t, "pop.example.", 100, dnssec.Insecure))
	q := query(t, "pop.example.", dns.TypeA, true, 1232)
	handle(s.p, q, true)

	// With 20s of 100 left, a hit starts no refresh.
	s.clock.advance(80 * time.Second)
	if _, outcome, _ := s.p.HandleFast(q, nil, true, 0, testClient); outcome != Answered {
		t.Fatalf("HandleFast outcome = %d, want Answered", outcome)
	}
	waitIdle(s.p)
	if n := s.p.Stats().Prefetches.Load(); n != 0 {
		t.Fatalf("Stats().Prefetches = %d with 20%% of the TTL left, want 0", n)
	}

	// With 9s left, two hits start one refresh between them.
	gate := make(chan struct{})
	s.res.setGate(gate)
	s.clock.advance(11 * time.Second)
	for range 2 {
		s.p.HandleFast(q, nil, true, 0, testClient)
	}
	s.res.setGate(nil)
	close(gate)
	waitIdle(s.p)
	if n := s.p.Stats().Prefetches.Load(); n != 1 {
		t.Errorf("Stats().Prefetches = %d after two hits near expiry, want 1", n)
	}
	if n := s.res.calls.Load(); n != 2 {
		t.Errorf("resolver calls = %d, want 2: the first resolution and one prefetch", n)
	}

	// Past the first answer's expiry the refreshed one is served.
	s.clock.advance(20 * time.Second)
	resp, outcome, _ := s.p.HandleFast(q, nil, true, 0, testClient)
	if outcome != Answered {
		t.Fatalf("HandleFast outcome = %d past the first expiry, want Answered", outcome)
	}
	if ttl := unpack(t, resp).Answer[0].Header().Ttl; ttl != 80 {
		t.Errorf("TTL = %d, want 80 of the refreshed 100", ttl)
	}
}

func TestPrefetchSkipped(t *testing.T) {
	tests := []struct {
		name     string
		prefetch bool
		ttl      int
		left     int
	}{
		{"prefetch off", false, 100, 5},
		{"TTL below 10s", true, 9, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStalePipeline(t, Config{Prefetch: tt.prefetch}, 24*time.Hour)
			s.res.set("pop.example.", answerA(t, "pop.example.", tt.ttl, dnssec.Insecure))
			q := query(t, "pop.example.", dns.TypeA, true, 1232)
			handle(s.p, q, true)
			s.clock.advance(time.Duration(tt.ttl-tt.left)*time.Second - time.Millisecond)
			if _, outcome, _ := s.p.HandleFast(q, nil, true, 0, testClient); outcome != Answered {
				t.Fatalf("HandleFast outcome = %d, want Answered", outcome)
			}
			waitIdle(s.p)
			if n := s.p.Stats().Prefetches.Load(); n != 0 {
				t.Errorf("Stats().Prefetches = %d, want 0", n)
			}
		})
	}
}

func TestPrefetchFailureKeepsAnswer(t *testing.T) {
	s := newStalePipeline(t, Config{FailureTTL: 5 * time.Second, Prefetch: true}, 24*time.Hour)
	s.res.set("pop.example.", answerA(t, "pop.example.", 100, dnssec.Insecure))
	q := query(t, "pop.example.", dns.TypeA, true, 1232)
	handle(s.p, q, true)
	s.res.set("pop.example.", unreachable)
	s.clock.advance(95 * time.Second)
	s.p.HandleFast(q, nil, true, 0, testClient)
	waitIdle(s.p)
	if n := s.p.Stats().Prefetches.Load(); n != 1 {
		t.Fatalf("Stats().Prefetches = %d, want 1", n)
	}
	resp, outcome, _ := s.p.HandleFast(q, nil, true, 0, testClient)
	if outcome != Answered {
		t.Fatalf("HandleFast outcome = %d after a failed prefetch, want Answered", outcome)
	}
	if m := unpack(t, resp); m.Rcode != dns.RcodeSuccess || m.Answer[0].Header().Ttl != 5 {
		t.Errorf("response after a failed prefetch = %v, want the cached A with TTL 5", m)
	}
}
