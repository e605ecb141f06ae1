package dga_test

import (
	"testing"

	"bulwark/internal/intel/dga"
)

func FuzzScore(f *testing.F) {
	for _, s := range []string{"www.example.com", "xjo4vk9bk1f19hxz.net", "a..b", ".", "", "\xff\x00.example", "co.uk.", "xn--.com"} {
		f.Add(s)
	}
	m := dga.Default()
	f.Fuzz(func(t *testing.T, qname string) {
		r := m.Score(qname)
		if r.Score < 0 || r.Score > 1 {
			t.Errorf("Score(%q) = %v, want a value in [0, 1]", qname, r.Score)
		}
		if r.Malicious != (r.Score >= m.Threshold()) {
			t.Errorf("Score(%q) = %v with verdict %v", qname, r.Score, r.Malicious)
		}
		if r.Reason == "" {
			t.Errorf("Score(%q) returned no reason", qname)
		}
	})
}
