package policy

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"bulwark/lab/rpzgen"
)

// rpzProbeCount is the number of names each sub-benchmark cycles through.
const rpzProbeCount = 4096

// BenchmarkMatchNameRPZ measures MatchName on a set of the names of the
// benchmark zone (see docs/benchmarks.md): RPZ_NAMES triggers from
// lab/rpzgen with its default seed, one in ten a wildcard, compiled as
// policyload compiles an RPZ. A set of millions of names takes long to
// build, so it runs only when RPZ_NAMES is set.
func BenchmarkMatchNameRPZ(b *testing.B) {
	env := os.Getenv("RPZ_NAMES")
	if env == "" {
		b.Skip("set RPZ_NAMES to the number of generated names, such as RPZ_NAMES=1000000, to run this benchmark")
	}
	n, err := strconv.Atoi(env)
	if err != nil || n < rpzgen.WildcardEvery {
		b.Fatalf("invalid RPZ_NAMES %q: want a whole number of at least %d", env, rpzgen.WildcardEvery)
	}
	set, probes := buildRPZSet(b, n)
	for _, c := range []struct {
		name  string
		names []string
	}{
		{"listed", probes.listed},
		{"below-wildcard", probes.below},
		{"unlisted", probes.unlisted},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				set.MatchName(c.names[i%len(c.names)])
				i++
			}
		})
	}
}

// rpzProbes are fully qualified names of three kinds: exact triggers, names
// below wildcard triggers and names that no trigger covers.
type rpzProbes struct {
	listed, below, unlisted []string
}

// buildRPZSet compiles n generated triggers and checks that every probe
// matches as it should, so that the timings are of correct lookups.
func buildRPZSet(b *testing.B, n int) (*Set, rpzProbes) {
	b.Helper()
	start := time.Now()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	g := rpzgen.NewNames(n, rpzgen.DefaultSeed)
	builder := NewBuilder()
	var p rpzProbes
	exactStride := max(1, n/rpzProbeCount)
	wildStride := max(1, n/rpzgen.WildcardEvery/rpzProbeCount)
	var wildBases []string
	exact, wild := 0, 0
	for t, ok := g.Next(); ok; t, ok = g.Next() {
		if t.Wildcard {
			builder.Add(Rule{Name: t.Name + ".", Match: Below, Verdict: 1})
			if wild%wildStride == 0 && len(wildBases) < rpzProbeCount {
				wildBases = append(wildBases, t.Name)
			}
			wild++
			continue
		}
		builder.Add(Rule{Name: t.Name + ".", Match: Exact, Verdict: 1})
		if exact%exactStride == 0 && len(p.listed) < rpzProbeCount {
			p.listed = append(p.listed, t.Name+".")
		}
		exact++
	}
	set := builder.Build()
	for i, base := range wildBases {
		p.below = append(p.below, g.Below("x"+strconv.Itoa(i), base)+".")
	}
	for _, name := range g.Unlisted(rpzProbeCount) {
		p.unlisted = append(p.unlisted, name+".")
	}

	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.Logf("built a set of %d names (%d exact, %d wildcard) in %.1fs; Set.MemoryBytes %d (%.1f bytes a name), live heap grew by %.0f MiB",
		n, exact, wild, time.Since(start).Seconds(), set.MemoryBytes(),
		float64(set.MemoryBytes())/float64(n), float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20))
	checkRPZProbes(b, set, p)
	return set, p
}

func checkRPZProbes(b *testing.B, set *Set, p rpzProbes) {
	b.Helper()
	for _, name := range p.listed {
		if _, matched, ok := set.MatchName(name); !ok || matched != name {
			b.Fatalf("MatchName(%q) = %q, %v; want the name itself, true", name, matched, ok)
		}
	}
	for _, name := range p.below {
		_, parent, _ := strings.Cut(name, ".")
		if _, matched, ok := set.MatchName(name); !ok || matched != parent {
			b.Fatalf("MatchName(%q) = %q, %v; want %q, true", name, matched, ok, parent)
		}
	}
	for _, name := range p.unlisted {
		if _, matched, ok := set.MatchName(name); ok {
			b.Fatalf("MatchName(%q) = %q, true; want no match", name, matched)
		}
	}
}
