package tunnel_test

import (
	"path/filepath"
	"slices"
	"testing"

	"bulwark/internal/intel/corpus"
	"bulwark/internal/intel/tunnel"
)

const dataDir = "../../../lab/data"

// tunnelDomain stands in for the tunnel's own domain, which the query
// data set removed from its tunnelling rows.
const tunnelDomain = ".t.example"

// rates returns the share of names flagged by class: the data set's
// tunnelling tools, its plain rows and the popular names.
func rates(t *testing.T) map[string]float64 {
	t.Helper()
	samples, err := corpus.Tunnelling(filepath.Join(dataDir, "intel", "dns-tunneling-queries-dev.csv.gz"))
	if err != nil {
		t.Fatal(err)
	}
	popular, err := corpus.Popular(filepath.Join(dataDir, "popular.csv"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range popular {
		samples = append(samples, corpus.Sample{Name: n, Class: "popular"})
	}

	var d tunnel.Names
	flagged, total := map[string]int{}, map[string]int{}
	for _, s := range samples {
		name := s.Name
		if s.Class != "plain" && s.Class != "popular" {
			name += tunnelDomain
		}
		total[s.Class]++
		if d.Score(name).Malicious {
			flagged[s.Class]++
		}
	}
	out := map[string]float64{}
	for c, n := range total {
		out[c] = float64(flagged[c]) / float64(n)
	}
	return out
}

// Rates measured on the data files, rounded down a little: minimum
// detection for the tunnelling tools, maximum false positives for the
// benign classes. docs/intel.md lists the measured values.
var (
	minDetected = map[string]float64{"dns2tcp": 0.99, "dnscapy": 0.95, "iodine": 0.98, "tuns": 0.39}
	maxFlagged  = map[string]float64{"plain": 0.001, "popular": 0.001}
)

func TestNameRates(t *testing.T) {
	got := rates(t)
	classes := make([]string, 0, len(got))
	for c := range got {
		classes = append(classes, c)
	}
	slices.Sort(classes)
	if len(classes) != len(minDetected)+len(maxFlagged) {
		t.Errorf("data has classes %v, want %d", classes, len(minDetected)+len(maxFlagged))
	}
	for _, c := range classes {
		t.Logf("%-8s flagged %6.2f%%", c, 100*got[c])
		min, isTunnel := minDetected[c]
		max, isBenign := maxFlagged[c]
		switch {
		case isTunnel && got[c] < min:
			t.Errorf("%s: detected %.4f, want at least %.4f", c, got[c], min)
		case isBenign && got[c] > max:
			t.Errorf("%s: flagged %.4f, want at most %.4f", c, got[c], max)
		case !isTunnel && !isBenign:
			t.Errorf("class %q has no documented rate", c)
		}
	}
}
