// Package training loads the labelled data of lab/data, trains the DGA
// model of package dga and measures it with each DGA family held out. The
// command in ../train and the tests of package dga use it; the resolver
// does not.
package training

import (
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"

	"bulwark/internal/intel/corpus"
	"bulwark/internal/intel/detect"
	"bulwark/internal/intel/dga"
)

// Data is the training and evaluation data, as registered-domain labels.
type Data struct {
	// Popular holds the distinct lowercase labels of the popular names,
	// by corpus part.
	Popular map[corpus.Part][]string
	// Open holds the DGA families under the MIT licence (chinad, vidro),
	// which may train the weights.
	Open map[string][]string
	// GPL holds the families of the GPL-2.0 sample file, which may only
	// choose the threshold and evaluate.
	GPL map[string][]string
}

// Load reads the data files under dir, the repository's lab/data.
func Load(dir string) (*Data, error) {
	names, err := corpus.Popular(filepath.Join(dir, "popular.csv"))
	if err != nil {
		return nil, err
	}
	d := &Data{Popular: map[corpus.Part][]string{}, Open: map[string][]string{}, GPL: map[string][]string{}}
	seen := map[string]bool{}
	for _, n := range names {
		// Internationalised labels are left out, as the model does not
		// score them.
		l := strings.ToLower(detect.Split(n).Label)
		if l != "" && !strings.HasPrefix(l, "xn--") && !seen[l] {
			seen[l] = true
			p := corpus.PartOf(l)
			d.Popular[p] = append(d.Popular[p], l)
		}
	}

	intel := filepath.Join(dir, "intel")
	for file, family := range map[string]string{
		"360netlab-chinad-examples.txt": "chinad",
		"360netlab-vidro-examples.txt":  "vidro",
	} {
		s, err := corpus.Lines(filepath.Join(intel, file), family)
		if err != nil {
			return nil, err
		}
		addLabels(d.Open, s)
	}
	s, err := corpus.DGA(filepath.Join(intel, "andrewaeva-dga-8families.csv"))
	if err != nil {
		return nil, err
	}
	addLabels(d.GPL, s)
	return d, nil
}

func addLabels(m map[string][]string, samples []corpus.Sample) {
	for _, s := range samples {
		if l := strings.ToLower(detect.Split(s.Name).Label); l != "" {
			m[s.Class] = append(m[s.Class], l)
		}
	}
}

// Regularisation and step count of the weight fit.
const (
	l2    = 0.001
	steps = 3000
)

// Train builds the character model from the training part of the popular
// labels, with the interpolation weights that fit the fit part best. It
// then fits the feature weights on the fit part against the MIT-licensed
// families and RandomLabels, and chooses the threshold on the fit part
// against all families. It is deterministic.
func Train(d *Data) (table []float32, lambdas dga.Lambdas, l dga.Logistic, threshold float64) {
	lambdas = dga.ChooseLambdas(d.Popular[corpus.PartTrain], d.Popular[corpus.PartFit])
	table = dga.TrainTable(d.Popular[corpus.PartTrain], lambdas)
	var malicious []string
	for _, f := range sortedKeys(d.Open) {
		malicious = append(malicious, d.Open[f]...)
	}
	malicious = append(malicious, RandomLabels(2000)...)
	l = dga.FitLogistic(dga.Features(d.Popular[corpus.PartFit], table),
		dga.Features(malicious, table), l2, steps)
	m, _ := dga.New(table, l, 0)
	threshold = dga.ChooseThreshold(scores(m, d.Popular[corpus.PartFit]), familyScores(m, d, ""))
	return table, lambdas, l, threshold
}

// FamilyResult is the detection rate of one family.
type FamilyResult struct {
	Family string
	// Names is the number of samples.
	Names int
	// Threshold was chosen without this family.
	Threshold float64
	// Detected is the share of samples at or above Threshold.
	Detected float64
	// FalsePositive is the share of the test part of the popular labels
	// at or above Threshold.
	FalsePositive float64
	// InWeights is true for the families that also trained the weights
	// (chinad, vidro), whose rates are therefore not held out.
	InWeights bool
}

// Evaluate measures m on every family, each with a threshold chosen on the
// fit part without that family, and returns the results sorted by family.
func Evaluate(m *dga.Model, d *Data) []FamilyResult {
	fit := scores(m, d.Popular[corpus.PartFit])
	test := scores(m, d.Popular[corpus.PartTest])
	all := familyScores(m, d, "")
	var out []FamilyResult
	for _, f := range sortedKeys(all) {
		t := dga.ChooseThreshold(fit, familyScores(m, d, f))
		_, open := d.Open[f]
		out = append(out, FamilyResult{
			Family: f, Names: len(all[f]), Threshold: t,
			Detected: dga.Rate(all[f], t), FalsePositive: dga.Rate(test, t), InWeights: open,
		})
	}
	return out
}

// TestScores returns the scores of the test part of the popular labels.
func TestScores(m *dga.Model, d *Data) []float64 {
	return scores(m, d.Popular[corpus.PartTest])
}

// familyScores scores every family except the one named without.
func familyScores(m *dga.Model, d *Data, without string) map[string][]float64 {
	out := map[string][]float64{}
	for _, set := range []map[string][]string{d.Open, d.GPL} {
		for f, labels := range set {
			if f != without {
				out[f] = scores(m, labels)
			}
		}
	}
	return out
}

func scores(m *dga.Model, labels []string) []float64 {
	out := make([]float64, len(labels))
	for i, l := range labels {
		out[i] = m.ScoreLabel(l)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// RandomLabels returns n labels drawn from a fixed-seed generator: half of
// letters only, 6 to 15 long, half of letters and digits, 8 to 23 long.
// They stand for a DGA that draws characters uniformly, the simplest kind,
// so that the weights need no sample of a real family beyond the MIT ones.
func RandomLabels(n int) []string {
	r := rand.New(rand.NewPCG(1, 2))
	const letters = "abcdefghijklmnopqrstuvwxyz"
	const alnum = letters + "0123456789"
	out := make([]string, n)
	for i := range out {
		set, length := letters, 6+r.IntN(10)
		if i%2 == 1 {
			set, length = alnum, 8+r.IntN(16)
		}
		b := make([]byte, length)
		for j := range b {
			b[j] = set[r.IntN(len(set))]
		}
		out[i] = string(b)
	}
	return out
}
