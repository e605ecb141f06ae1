package traffic

import (
	"math/rand/v2"
	"testing"
	"time"

	"bulwark/internal/intel/corpus"
	"bulwark/internal/intel/dga"
	"bulwark/internal/intel/dga/training"
)

// TestClusterThresholdsOnBenignData draws clusters of 8 labels, the
// default intel.dga_clients.min_domains, from the test part of the popular
// names, which trained nothing, and from one-letter typos of them, as a
// NAT of many users sends them. It fails when more than 0.1% of either
// pass the cluster tests. No DGA data takes part, so the thresholds leave
// every family held out.
func TestClusterThresholdsOnBenignData(t *testing.T) {
	data, err := training.Load("../../../lab/data")
	if err != nil {
		t.Fatal(err)
	}
	popular := data.Popular[corpus.PartTest]
	rng := rand.New(rand.NewPCG(21, 22))
	typos := make([]string, len(popular))
	for i, l := range popular {
		typos[i] = typo(rng, l+".com")
		typos[i] = typos[i][:len(typos[i])-len(".com")]
	}
	const draws, size, maxRate = 100_000, 8, 0.001
	model := dga.Default()
	for _, pool := range []struct {
		name   string
		labels []string
	}{{"popular", popular}, {"typos", typos}} {
		scores := make([]float32, len(pool.labels))
		for i, l := range pool.labels {
			scores[i] = float32(model.ScoreLabel(l))
		}
		var passed, byScore, byShape, byLength int
		c := &clientEntry{}
		for range draws {
			c.reset(1, 0)
			for range size {
				i := rng.IntN(len(pool.labels))
				l := pool.labels[i]
				c.add(clusterDomain{domain: l + ".com", suffixAt: uint8(len(l) + 1), length: uint8(len(l)), score: scores[i]})
			}
			cl := measureCluster(c, 0, time.Minute, size)
			if cl.passes(size) {
				passed++
			}
			byScore += b2i(cl.byScore)
			byShape += b2i(cl.byShape)
			byLength += b2i(cl.byLength)
		}
		rate := float64(passed) / draws
		t.Logf("%s: %d labels, %.3f%% of %d clusters of %d pass (name score %d, length spread %d, mean length %d)",
			pool.name, len(pool.labels), 100*rate, draws, size, byScore, byShape, byLength)
		if rate > maxRate {
			t.Errorf("%s: %.3f%% of benign clusters pass, want at most %.1f%%", pool.name, 100*rate, 100*maxRate)
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
