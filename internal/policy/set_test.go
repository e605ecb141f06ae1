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

func TestSetExactAndBelowVerdicts(t *testing.T) {
	s := Compile([]Rule{
		{Name: "split.example.", Match: Exact, Verdict: 4},
		{Name: "split.example.", Match: Below, Verdict: 2},
		{Name: "same.example.", Match: Exact, Verdict: 3},
		{Name: "same.example.", Match: Below, Verdict: 3},
	})
	for _, tt := range []struct {
		name    string
		verdict uint32
	}{
		{"split.example.", 4},
		{"a.split.example.", 2},
		{"same.example.", 3},
		{"a.same.example.", 3},
	} {
		if v, _, ok := s.MatchName(tt.name); !ok || v != tt.verdict {
			t.Errorf("MatchName(%q) = %d, %v; want %d", tt.name, v, ok, tt.verdict)
		}
	}
	if s.Duplicates() != 0 || s.Conflicts() != 0 {
		t.Errorf("%d duplicates and %d conflicts, want none", s.Duplicates(), s.Conflicts())
	}
	if n := s.Len(); n != 3 {
		t.Errorf("Len = %d, want 3: one entry for same.example, two for split.example", n)
	}
}

func TestSetDuplicatesAndConflicts(t *testing.T) {
	s := Compile([]Rule{
		{Name: "dup.example.", Match: Exact | Below, Verdict: 1},
		{Name: "DUP.example.", Match: Exact | Below, Verdict: 1},
		{Name: "dup.example.", Match: Exact, Verdict: 1},
		{Name: "clash.example.", Match: Exact, Verdict: 6},
		{Name: "clash.example.", Match: Exact, Verdict: 5},
	})
	if got := s.Duplicates(); got != 2 {
		t.Errorf("Duplicates = %d, want 2", got)
	}
	if got := s.Conflicts(); got != 1 {
		t.Errorf("Conflicts = %d, want 1", got)
	}
	if v, _, _ := s.MatchName("clash.example."); v != 5 {
		t.Errorf("conflicting rules kept verdict %d, want the lowest, 5", v)
	}
}

// TestSetMatchesMap compares a Set of many names, large enough for several
// chunks and buckets of every size, with a map.
func TestSetMatchesMap(t *testing.T) {
	n := 3*chunkLen/2 + 17
	if testing.Short() {
		n = 50_000
	}
	exact := make(map[string]uint32, n)
	below := make(map[string]uint32, n/4)
	b := NewBuilder()
	for i := range n {
		name := fmt.Sprintf("n%x.example%d.", i*2654435761, i%7)
		r := Rule{Name: name, Match: Exact, Verdict: uint32(i % 1000)}
		switch i % 4 {
		case 1:
			r.Match = Below
		case 2:
			r.Match = Exact | Below
		}
		if r.Match&Exact != 0 {
			exact[name] = r.Verdict
		}
		if r.Match&Below != 0 {
			below[name] = r.Verdict
		}
		b.Add(r)
	}
	s := b.Build()
	if s.Names() != n {
		t.Fatalf("Names = %d, want %d", s.Names(), n)
	}
	checked := 0
	for i := range n {
		name := fmt.Sprintf("n%x.example%d.", i*2654435761, i%7)
		v, _, ok := s.MatchName(name)
		want, wantOK := exact[name]
		if ok != wantOK || v != want {
			t.Fatalf("MatchName(%q) = %d, %v; want %d, %v", name, v, ok, want, wantOK)
		}
		v, _, ok = s.MatchName("x." + name)
		want, wantOK = below[name]
		if ok != wantOK || v != want {
			t.Fatalf("MatchName(x.%s) = %d, %v; want %d, %v", name, v, ok, want, wantOK)
		}
		checked++
	}
	for i := range 1000 {
		if v, _, ok := s.MatchName(fmt.Sprintf("absent%d.example1.", i)); ok {
			t.Fatalf("absent name matched with verdict %d", v)
		}
	}
	t.Logf("%d names checked, %d bytes", checked, s.MemoryBytes())
}
