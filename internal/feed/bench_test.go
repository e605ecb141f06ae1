package feed

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
)

// generateNames returns a list of n distinct host names of 20 to 40 bytes,
// one per line, in the form of generated threat feed entries.
func generateNames(n int, format string) []byte {
	var buf bytes.Buffer
	buf.Grow(n * 40)
	for i := range n {
		// A multiplicative hash spreads the labels like random ones.
		h := uint32(i) * 2654435761
		fmt.Fprintf(&buf, format, i, h, i%97)
	}
	return buf.Bytes()
}

// benchmarkParse parses data, which has lines lines, once per iteration and
// reports the time and allocations per line.
func benchmarkParse(b *testing.B, data []byte, lines int, format Format, opts Options) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	iterations := 0
	for b.Loop() {
		res, err := Parse(bytes.NewReader(data), format, opts)
		if err != nil {
			b.Fatal(err)
		}
		if res.BadCount != 0 || len(res.Rules) != lines {
			b.Fatalf("%d rules and %d bad lines, want %d rules", len(res.Rules), res.BadCount, lines)
		}
		iterations++
	}
	runtime.ReadMemStats(&after)
	total := float64(iterations * lines)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/total, "ns/line")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/total, "allocs/line")
}

func BenchmarkParseDomains(b *testing.B) {
	const lines = 1_000_000
	data := generateNames(lines, "h%d-%08x.example%d.com\n")
	benchmarkParse(b, data, lines, Domains, Options{})
}

func BenchmarkParseRPZ(b *testing.B) {
	const lines = 100_000
	data := append([]byte(rpzHeader), generateNames(lines, "h%d-%08x.example%d.com CNAME .\n")...)
	benchmarkParse(b, data, lines, RPZ, rpzOpts)
}
