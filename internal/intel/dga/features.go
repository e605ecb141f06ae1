package dga

import "math"

// symbols is the size of the character model's alphabet: the label
// boundary, a-z, 0-9, and one symbol for the hyphen and any other byte.
const symbols = 38

// Feature indexes into a feature vector.
const (
	fCost         = iota // mean character cost, bits per transition
	fTotalCost           // character cost of the whole label, bits
	fLength              // label length, bytes
	fEntropy             // Shannon entropy of the label's characters, bits
	fDigitShare          // share of digits
	fVowelShare          // share of vowels (a e i o u)
	fConsonantRun        // longest run of consonants
	numFeatures
)

// featureNames are the names of the features, in index order.
var featureNames = [numFeatures]string{
	"cost", "total_cost", "length", "entropy", "digit_share", "vowel_share", "consonant_run",
}

// symbol maps a byte of a label to its symbol, folding case.
func symbol(c byte) int {
	switch {
	case 'a' <= c && c <= 'z':
		return int(c-'a') + 1
	case 'A' <= c && c <= 'Z':
		return int(c-'A') + 1
	case '0' <= c && c <= '9':
		return int(c-'0') + 27
	}
	return 37
}

// cell is the index of the transition a, b -> c in a trigram table.
func cell(a, b, c int) int { return (a*symbols+b)*symbols + c }

// extract computes the feature vector of label with the trigram costs in
// table (-log2 P(c | a b), indexed by cell). It does not allocate.
func extract(label string, table []float32) [numFeatures]float64 {
	var f [numFeatures]float64
	var counts [symbols]uint16
	var cost float64
	var digits, vowels, run, maxRun int
	a, b := 0, 0
	for i := 0; i < len(label); i++ {
		c := symbol(label[i])
		counts[c]++
		cost += float64(table[cell(a, b, c)])
		a, b = b, c
		switch {
		case c >= 27 && c <= 36:
			digits++
			run = 0
		case isVowel(c):
			vowels++
			run = 0
		case c <= 26:
			run++
			maxRun = max(maxRun, run)
		default:
			run = 0
		}
	}
	cost += float64(table[cell(a, b, 0)])

	n := float64(len(label))
	f[fCost] = cost / (n + 1)
	f[fTotalCost] = cost
	f[fLength] = n
	f[fEntropy] = entropy(counts[:], n)
	f[fDigitShare] = float64(digits) / n
	f[fVowelShare] = float64(vowels) / n
	f[fConsonantRun] = float64(maxRun)
	return f
}

// isVowel reports whether symbol c is a, e, i, o or u.
func isVowel(c int) bool {
	return c == 1 || c == 5 || c == 9 || c == 15 || c == 21
}

func entropy(counts []uint16, n float64) float64 {
	var h float64
	for _, k := range counts {
		if k > 0 {
			p := float64(k) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}
