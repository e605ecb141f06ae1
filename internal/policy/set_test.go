package policy

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

func TestMatchName(t *testing.T) {
	s := Compile([]Rule{
		{Name: "bad.example.", Match: Exact | Below, Verdict: 1},
		{Name: "exact.example.", Match: Exact, Verdict: 2},
		{Name: "wild.example.", Match: Below, Verdict: 3},
		{Name: "deep.wild.example.", Match: Exact, Verdict: 4},
		{Name: "x.bad.example.", Match: Exact, Verdict: 5},
	})
	for _, tt := range []struct {
		name    string
		verdict uint32
		matched string
		ok      bool
	}{
		{"bad.example.", 1, "bad.example.", true},
		{"BAD.example.", 1, "BAD.example.", true},
		{"a.b.bad.example.", 1, "bad.example.", true},
		{"x.bad.example.", 5, "x.bad.example.", true}, // exact beats the parent's
		{"y.x.bad.example.", 1, "bad.example.", true},
		{"exact.example.", 2, "exact.example.", true},
		{"a.exact.example.", 0, "", false},
		{"wild.example.", 0, "", false},
		{"a.wild.example.", 3, "wild.example.", true},
		{"deep.wild.example.", 4, "deep.wild.example.", true},
		{"a.deep.wild.example.", 3, "wild.example.", true},
		{"example.", 0, "", false},
		{"notbad.example.", 0, "", false},
		{".", 0, "", false},
	} {
		v, m, ok := s.MatchName(tt.name)
		if v != tt.verdict || m != tt.matched || ok != tt.ok {
			t.Errorf("MatchName(%q) = %d, %q, %v; want %d, %q, %v", tt.name, v, m, ok, tt.verdict, tt.matched, tt.ok)
		}
	}
}

func TestMatchRootBelow(t *testing.T) {
	s := Compile([]Rule{{Name: ".", Match: Below, Verdict: 7}})
	if v, _, ok := s.MatchName("anything.example."); !ok || v != 7 {
		t.Errorf("below the root: %d %v, want 7", v, ok)
	}
}

func TestMatchAddr(t *testing.T) {
	s := Compile([]Rule{
		{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Verdict: 1},
		{Prefix: netip.MustParsePrefix("192.0.2.7/32"), Verdict: 2},
		{Prefix: netip.MustParsePrefix("2001:db8::/32"), Verdict: 3},
		{Prefix: netip.MustParsePrefix("10.1.2.3/8"), Verdict: 4}, // masked
	})
	for _, tt := range []struct {
		addr    string
		verdict uint32
		ok      bool
	}{
		{"192.0.2.7", 2, true},
		{"192.0.2.8", 1, true},
		{"::ffff:192.0.2.8", 1, true},
		{"192.0.3.1", 0, false},
		{"2001:db8::1", 3, true},
		{"2001:db9::1", 0, false},
		{"10.200.0.1", 4, true},
	} {
		v, _, ok := s.MatchAddr(netip.MustParseAddr(tt.addr))
		if v != tt.verdict || ok != tt.ok {
			t.Errorf("MatchAddr(%s) = %d, %v; want %d, %v", tt.addr, v, ok, tt.verdict, tt.ok)
		}
	}
}

func TestMatchNameDoesNotAllocate(t *testing.T) {
	s := Compile([]Rule{{Name: "bad.example.", Match: Exact | Below, Verdict: 1}})
	allocs := testing.AllocsPerRun(100, func() {
		s.MatchName("www.some.name.bad.example.")
		s.MatchName("www.good.example.")
	})
	if allocs != 0 {
		t.Errorf("MatchName allocated %.1f times per run, want 0", allocs)
	}
}

// genRPZNames returns n names in the shape of a large RPZ: mostly exact
// names, every tenth a wildcard.
func genRules(n int) []Rule {
	rules := make([]Rule, n)
	for i := range rules {
		rules[i] = Rule{Name: fmt.Sprintf("host%d.domain%d.example.", i, i%50000), Match: Exact, Verdict: uint32(i % 3)}
		if i%10 == 0 {
			rules[i].Match = Below
		}
	}
	return rules
}

// BenchmarkBuild10M adds ten million names, one at a time as a streaming
// parser would, and reports the build time, the Set's size and the peak
// heap. Run with -benchtime=1x.
func BenchmarkBuild10M(b *testing.B) {
	var s *Set
	var peak uint64
	for range b.N {
		runtime.GC()
		start := time.Now()
		bld := NewBuilder()
		for i := range 10_000_000 {
			r := Rule{Name: fmt.Sprintf("host%d.domain%d.example.", i, i%50000), Match: Exact, Verdict: uint32(i % 3)}
			if i%10 == 0 {
				r.Match = Below
			}
			bld.Add(r)
			if i%1_000_000 == 0 {
				peak = max(peak, heapInUse())
			}
		}
		peak = max(peak, heapInUse())
		s = bld.Build()
		peak = max(peak, heapInUse())
		b.ReportMetric(time.Since(start).Seconds(), "build-s")
	}
	b.ReportMetric(float64(s.MemoryBytes())/(1<<20), "set-MiB")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	runtime.KeepAlive(s)
}

func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func BenchmarkMatchName(b *testing.B) {
	s := Compile(genRules(1_000_000))
	names := []string{"host12345.domain12345.example.", "a.b.host10.domain10.example.", "www.not-listed.example.org."}
	b.ResetTimer()
	for i := range b.N {
		s.MatchName(names[i%len(names)])
	}
}
