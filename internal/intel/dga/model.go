// Package dga scores query names for signs of a domain generation
// algorithm (DGA): registered-domain labels whose characters are unlike
// those of popular names. See docs/intel.md for the model, its training
// and its measured detection rates.
//
// The model ships in the binary: the trigram cost table in trigram.bin and
// the weights and threshold in params_gen.go, both written by
// "go run ./internal/intel/dga/train" from the repository root.
package dga

import (
	_ "embed"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"

	"bulwark/internal/intel/detect"
)

//go:generate go run ./train -out .

//go:embed trigram.bin
var trigramFile []byte

// Model is a trained DGA detector. It is immutable and safe for
// concurrent use.
type Model struct {
	table     []float32
	logistic  Logistic
	threshold float64
}

// New returns a Model from a trigram cost table, as TrainTable builds, a
// fitted regression and a threshold.
func New(table []float32, l Logistic, threshold float64) (*Model, error) {
	if len(table) != symbols*symbols*symbols {
		return nil, fmt.Errorf("dga: trigram table has %d entries, want %d", len(table), symbols*symbols*symbols)
	}
	return &Model{table: table, logistic: l, threshold: threshold}, nil
}

// Default returns the model built into the binary. It panics if the
// embedded files do not fit together, which only a broken build can cause.
func Default() *Model {
	table, err := DecodeTable(trigramFile)
	if err == nil {
		var m *Model
		if m, err = New(table, trained, trainedThreshold); err == nil {
			return m
		}
	}
	panic(fmt.Sprintf("dga: embedded model: %v; run go generate ./internal/intel/dga", err))
}

// EncodeTable serialises a trigram table as little-endian float32 values.
func EncodeTable(table []float32) []byte {
	b := make([]byte, 0, 4*len(table))
	for _, v := range table {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

// DecodeTable parses what EncodeTable wrote.
func DecodeTable(b []byte) ([]float32, error) {
	if len(b) != 4*symbols*symbols*symbols {
		return nil, fmt.Errorf("trigram table is %d bytes, want %d", len(b), 4*symbols*symbols*symbols)
	}
	table := make([]float32, len(b)/4)
	for i := range table {
		table[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return table, nil
}

// Name returns "dga".
func (m *Model) Name() string { return "dga" }

// Threshold returns the score at and above which a name is malicious.
func (m *Model) Threshold() float64 { return m.threshold }

// Score scores the registered-domain label of qname ("example" in
// "www.example.co.uk"); labels left of it are not scored. Qname is in
// ASCII, internationalised labels in their A-label (xn--) form, as a
// query carries it. A name without a registered domain, such as "co.uk",
// scores 0, and so does an internationalised label.
func (m *Model) Score(qname string) detect.Result {
	label := detect.Split(qname).Label
	if label == "" {
		return detect.Result{Reason: "name " + strconv.Quote(qname) + " is a public suffix and has no registered-domain label"}
	}
	if isIDN(label) {
		// NOTE: internationalised labels are not scored. Their ASCII
		// form is punycode, which the model, trained on ASCII names,
		// mistakes for a random string.
		return detect.Result{Reason: "label " + strconv.Quote(label) + " is internationalised (xn--), which the model does not score"}
	}
	x := extract(label, m.table)
	s := m.logistic.Score(x)
	return detect.Result{Score: s, Malicious: s >= m.threshold, Reason: m.reason(label, s, &x)}
}

// ScoreLabel scores one registered-domain label, as Score does after
// splitting the name.
func (m *Model) ScoreLabel(label string) float64 {
	if label == "" || isIDN(label) {
		return 0
	}
	return m.logistic.Score(extract(label, m.table))
}

// isIDN reports whether label is the ASCII form of an internationalised
// label.
func isIDN(label string) bool {
	return len(label) >= 4 && strings.EqualFold(label[:4], "xn--")
}

// reason writes the score and up to three features that moved it most
// towards the verdict, for example: label "gllxeenmijch" scores 0.98
// (threshold 0.94): raised by character cost 5.3 bits per character,
// entropy 3.3 bits, consonant run of 4.
func (m *Model) reason(label string, score float64, x *[numFeatures]float64) string {
	// A malicious verdict is explained by the features that raised the
	// score most, a benign one by those that lowered it most.
	sign := 1.0
	if score < m.threshold {
		sign = -1
	}
	var order [numFeatures]int
	var contrib [numFeatures]float64
	for i := range numFeatures {
		order[i] = i
		contrib[i] = sign * m.logistic.Weights[i] * (x[i] - m.logistic.Mean[i]) / m.logistic.Std[i]
	}
	// Insertion sort by falling contribution: a few entries.
	for i := 1; i < numFeatures; i++ {
		for j := i; j > 0 && contrib[order[j]] > contrib[order[j-1]]; j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}

	var buf [192]byte
	b := append(buf[:0], "label "...)
	b = appendLabel(b, label)
	b = append(b, " scores "...)
	b = strconv.AppendFloat(b, score, 'f', 2, 64)
	b = append(b, " (threshold "...)
	b = strconv.AppendFloat(b, m.threshold, 'f', 2, 64)
	if sign > 0 {
		b = append(b, "): raised by "...)
	} else {
		b = append(b, "): kept below it by "...)
	}
	k := 0
	for _, i := range order[:3] {
		if contrib[i] <= 0 {
			break
		}
		if k > 0 {
			b = append(b, ", "...)
		}
		b = appendFeature(b, i, x[i])
		k++
	}
	if k == 0 {
		// No feature pushed the score this way: the bias did.
		b = appendFeature(b, fCost, x[fCost])
	}
	return string(b)
}

// appendLabel appends label quoted, cut to 32 bytes with "..." after.
func appendLabel(b []byte, label string) []byte {
	if len(label) > 32 {
		return append(strconv.AppendQuote(b, label[:32]), "..."...)
	}
	return strconv.AppendQuote(b, label)
}

func appendFeature(b []byte, i int, v float64) []byte {
	switch i {
	case fCost:
		b = strconv.AppendFloat(append(b, "character cost "...), v, 'f', 1, 64)
		return append(b, " bits per character"...)
	case fTotalCost:
		b = strconv.AppendFloat(append(b, "total character cost "...), v, 'f', 0, 64)
		return append(b, " bits"...)
	case fLength:
		return append(strconv.AppendInt(b, int64(v), 10), " characters"...)
	case fEntropy:
		b = strconv.AppendFloat(append(b, "entropy "...), v, 'f', 1, 64)
		return append(b, " bits"...)
	case fDigitShare:
		return append(strconv.AppendInt(b, int64(math.Round(100*v)), 10), "% digits"...)
	case fVowelShare:
		return append(strconv.AppendInt(b, int64(math.Round(100*v)), 10), "% vowels"...)
	}
	return strconv.AppendInt(append(b, "consonant run of "...), int64(v), 10)
}

var _ detect.Detector = (*Model)(nil)
