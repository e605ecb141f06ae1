package querylog

import (
	"math/rand/v2"
	"testing"
)

func TestDistinctExactBelowCap(t *testing.T) {
	var d distinct
	for i := range distinctExact - 1 {
		d.add(uint64(i) * 7919)
		d.add(uint64(i) * 7919) // a repeat counts once
	}
	if got := d.count(); got != distinctExact-1 {
		t.Errorf("count = %d, want %d", got, distinctExact-1)
	}
}

func TestDistinctEstimateAboveCap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{100, 1000, 100000} {
		var d distinct
		for range n {
			p := rng.Uint64()
			d.add(p)
			d.add(p)
		}
		if len(d.smallest) != distinctExact {
			t.Fatalf("n=%d: kept %d pseudonyms, want %d", n, len(d.smallest), distinctExact)
		}
		// Four standard errors of 13%: a wrong formula misses by far more.
		got := d.count()
		if lo, hi := float64(n)*0.48, float64(n)*1.52; float64(got) < lo || float64(got) > hi {
			t.Errorf("n=%d: estimate %d, want within [%.0f, %.0f]", n, got, lo, hi)
		}
	}
}

func TestDistinctKeepsSmallest(t *testing.T) {
	var d distinct
	for i := 1000; i > 0; i-- {
		d.add(uint64(i))
	}
	if d.smallest[0] != 1 || d.smallest[distinctExact-1] != distinctExact {
		t.Errorf("kept %d..%d, want 1..%d", d.smallest[0], d.smallest[distinctExact-1], distinctExact)
	}
}
