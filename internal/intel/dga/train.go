package dga

import (
	"math"
	"sort"
)

// Lambdas are the interpolation weights of the trigram, bigram and
// unigram estimates in the character model, summing to 1. The bigram and
// unigram terms give trigrams never seen in training a cost that reflects
// their parts.
type Lambdas [3]float64

// ChooseLambdas returns the weights, on a grid of steps of 0.05 with each
// weight at least 0.05, under which the table trained on train gives the
// labels in heldOut the highest likelihood.
func ChooseLambdas(train, heldOut []string) Lambdas {
	best, bestCost := Lambdas{}, math.Inf(1)
	for i3 := 1; i3 < 20; i3++ {
		for i2 := 1; i3+i2 < 20; i2++ {
			l := Lambdas{float64(i3) / 20, float64(i2) / 20, float64(20-i3-i2) / 20}
			table := TrainTable(train, l)
			var cost float64
			for _, label := range heldOut {
				cost += extract(label, table)[fTotalCost]
			}
			if cost < bestCost {
				best, bestCost = l, cost
			}
		}
	}
	return best
}

// TrainTable builds the trigram cost table from benign labels: entry
// cell(a, b, c) is -log2 P(c | a b) in bits, where P interpolates with
// weights l the maximum-likelihood trigram and bigram estimates and an
// add-one unigram estimate. A context never seen in training gives its
// weight to the shorter ones.
func TrainTable(labels []string, l Lambdas) []float32 {
	var c3 [symbols * symbols * symbols]float64
	var c2 [symbols * symbols]float64
	var c1 [symbols]float64
	var total float64
	for _, l := range labels {
		a, b := 0, 0
		for i := 0; i <= len(l); i++ {
			c := 0
			if i < len(l) {
				c = symbol(l[i])
			}
			c3[cell(a, b, c)]++
			c2[b*symbols+c]++
			c1[c]++
			total++
			a, b = b, c
		}
	}
	table := make([]float32, len(c3))
	for a := range symbols {
		for b := range symbols {
			ctx3, ctx2 := 0.0, 0.0
			for c := range symbols {
				ctx3 += c3[cell(a, b, c)]
				ctx2 += c2[b*symbols+c]
			}
			for c := range symbols {
				table[cell(a, b, c)] = float32(-math.Log2(
					l.interpolate(c3[cell(a, b, c)], ctx3, c2[b*symbols+c], ctx2, c1[c], total)))
			}
		}
	}
	return table
}

func (l Lambdas) interpolate(n3, ctx3, n2, ctx2, n1, total float64) float64 {
	p1 := (n1 + 1) / (total + symbols)
	w3, w2, w1 := l[0], l[1], l[2]
	if ctx3 == 0 {
		w2, w3 = w2+w3, 0
	}
	if ctx2 == 0 {
		w1, w2 = w1+w2, 0
	}
	p := w1 * p1
	if w2 > 0 {
		p += w2 * n2 / ctx2
	}
	if w3 > 0 {
		p += w3 * n3 / ctx3
	}
	return p
}

// Features returns the feature vectors of labels under table.
func Features(labels []string, table []float32) [][numFeatures]float64 {
	out := make([][numFeatures]float64, len(labels))
	for i, l := range labels {
		out[i] = extract(l, table)
	}
	return out
}

// Logistic is a logistic regression over standardised features:
// score = 1 / (1 + exp(-(Bias + sum Weights[i] * (x[i]-Mean[i]) / Std[i]))).
type Logistic struct {
	Mean, Std, Weights [numFeatures]float64
	Bias               float64
}

// FitLogistic fits a logistic regression separating benign (label 0) from
// malicious (label 1) feature vectors by full-batch gradient descent on the
// mean log loss, both classes weighted equally, with an L2 penalty of
// l2 on the weights. The result depends only on its inputs.
func FitLogistic(benign, malicious [][numFeatures]float64, l2 float64, steps int) Logistic {
	var m Logistic
	all := append(append([][numFeatures]float64{}, benign...), malicious...)
	for i := range numFeatures {
		var s, ss float64
		for _, x := range all {
			s += x[i]
		}
		m.Mean[i] = s / float64(len(all))
		for _, x := range all {
			d := x[i] - m.Mean[i]
			ss += d * d
		}
		m.Std[i] = math.Sqrt(ss/float64(len(all))) + 1e-9
	}
	const rate = 0.5
	for range steps {
		var grad [numFeatures]float64
		var gb float64
		for class, set := range [][][numFeatures]float64{benign, malicious} {
			scale := 0.5 / float64(len(set))
			for _, x := range set {
				z := m.standardise(x)
				e := (m.raw(z) - float64(class)) * scale
				for i := range numFeatures {
					grad[i] += e * z[i]
				}
				gb += e
			}
		}
		for i := range numFeatures {
			m.Weights[i] -= rate * (grad[i] + l2*m.Weights[i])
		}
		m.Bias -= rate * gb
	}
	return m
}

func (m *Logistic) standardise(x [numFeatures]float64) [numFeatures]float64 {
	var z [numFeatures]float64
	for i := range numFeatures {
		z[i] = (x[i] - m.Mean[i]) / m.Std[i]
	}
	return z
}

// raw returns the probability for standardised features z.
func (m *Logistic) raw(z [numFeatures]float64) float64 {
	s := m.Bias
	for i := range numFeatures {
		s += m.Weights[i] * z[i]
	}
	return 1 / (1 + math.Exp(-s))
}

// Score returns the probability that feature vector x is malicious.
func (m *Logistic) Score(x [numFeatures]float64) float64 {
	return m.raw(m.standardise(x))
}

// MaxFalsePositiveRate bounds the share of benign fit names that the
// threshold may flag.
const MaxFalsePositiveRate = 0.001

// falsePositiveCost is how much detection rate one unit of false-positive
// rate costs when choosing the threshold: at 100, flagging one more of
// 2,000 benign names must gain at least 5 points of detection.
const falsePositiveCost = 100

// ChooseThreshold returns the threshold that maximises the mean detection
// rate over the families in malicious minus falsePositiveCost times the
// false-positive rate on benign, among the thresholds whose
// false-positive rate is at most MaxFalsePositiveRate. A score at or above
// the threshold is malicious.
func ChooseThreshold(benign []float64, malicious map[string][]float64) float64 {
	b := append([]float64(nil), benign...)
	sort.Float64s(b)
	// Candidate thresholds lie just above each benign score, so each
	// candidate flags a known number of benign names.
	var candidates []float64
	for i := len(b) - 1; i >= 0; i-- {
		fp := float64(len(b)-1-i) / float64(len(b))
		if fp > MaxFalsePositiveRate {
			break
		}
		candidates = append(candidates, math.Nextafter(b[i], 2))
	}
	best, bestValue := 1.0, math.Inf(-1)
	for _, t := range candidates {
		value := meanDetection(malicious, t) - falsePositiveCost*Rate(benign, t)
		if value > bestValue {
			best, bestValue = t, value
		}
	}
	return best
}

// Rate returns the share of scores at or above threshold.
func Rate(scores []float64, threshold float64) float64 {
	n := 0
	for _, s := range scores {
		if s >= threshold {
			n++
		}
	}
	return float64(n) / float64(len(scores))
}

func meanDetection(families map[string][]float64, threshold float64) float64 {
	var sum float64
	for _, s := range families {
		sum += Rate(s, threshold)
	}
	return sum / float64(len(families))
}
