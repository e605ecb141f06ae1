package tunnel

import "testing"

func FuzzNamesScore(f *testing.F) {
	for _, s := range []string{"www.example.com", "q+aHTYdlBA.t.example", "a..b", ".", "", "\xff\x00.x.example", "x.co.uk."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, qname string) {
		r := Names{}.Score(qname)
		if r.Score < 0 || r.Score > 1 {
			t.Errorf("Score(%q) = %v, want a value in [0, 1]", qname, r.Score)
		}
		if r.Malicious != (r.Score >= Threshold) {
			t.Errorf("Score(%q) = %v with verdict %v", qname, r.Score, r.Malicious)
		}
		if r.Reason == "" {
			t.Errorf("Score(%q) returned no reason", qname)
		}
	})
}
