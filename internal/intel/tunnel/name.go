// Package tunnel scores DNS traffic for signs of tunnelling: data encoded
// into query names under one registered domain. Names scores single query
// names; Tracker scores the traffic of each registered domain over a time
// window, as later stages of the query pipeline feed it. See docs/intel.md
// for the indicators and their measured rates.
package tunnel

import (
	"math"
	"strconv"
	"strings"

	"bulwark/internal/intel/detect"
)

// Threshold is the score at and above which a name or a domain's traffic
// is malicious.
const Threshold = 0.5

// Limits of the name indicators. A label of 63 bytes, the DNS maximum, or
// a subdomain part of 160 bytes alone score 1.
const (
	labelStart   = 24  // label length that starts to count
	labelFull    = 56  // label length that alone scores 1
	subStart     = 48  // subdomain length that starts to count
	subFull      = 160 // subdomain length that alone scores 1
	entropyStart = 3.8 // bits per character that start to count
	entropyFull  = 5.0 // bits per character that alone score 1
	// entropyMinLength is the shortest subdomain part whose entropy
	// counts: a string of n bytes has at most log2(n) bits of entropy.
	entropyMinLength = 24
	// encodedMinLength is the shortest label whose alphabet counts.
	encodedMinLength = 16
)

// Alphabet is the encoding that a label's characters fit.
type Alphabet int

// Alphabets, from the narrowest. A label of letters only, or of letters
// with a few digits spread like words, is AlphabetText.
const (
	AlphabetText   Alphabet = iota
	AlphabetHex             // 0-9 a-f with digits and letters mixed
	AlphabetBase32          // a-z 2-7 of one case, digits mixed in
	AlphabetBase64          // both cases and digits, or + / =
	AlphabetBinary          // bytes outside letters, digits, - and _
)

var alphabetNames = [...]string{"text", "hex", "base32", "base64", "binary"}

// String returns the alphabet's name as reasons print it.
func (a Alphabet) String() string { return alphabetNames[a] }

// Names scores single query names for tunnelling. The zero value is ready
// to use and safe for concurrent use.
type Names struct{}

// Name returns "tunnel".
func (Names) Name() string { return "tunnel" }

// Threshold returns Threshold.
func (Names) Threshold() float64 { return Threshold }

// nameStats are the measurements of the part of a query name left of its
// registered domain.
type nameStats struct {
	labels, length    int
	longest           string
	entropy           float64
	alphabet          Alphabet
	encodedLabelBytes int // length of the longest label with alphabet
}

// Score scores the labels of qname left of its registered domain; a name
// without any, such as "example.com", scores 0. Letter case counts: a
// stub resolver sends the case that the tunnel client wrote.
func (n Names) Score(qname string) detect.Result {
	p := detect.Split(qname)
	if p.Sub == "" {
		return detect.Result{Reason: "name " + strconv.Quote(qname) + " has no labels below its registered domain"}
	}
	st := measure(p.Sub)
	s := st.score()
	return detect.Result{Score: s, Malicious: s >= Threshold, Reason: st.reason(p.Registered, s)}
}

// measure takes the measurements of sub, a dot-separated list of labels.
func measure(sub string) nameStats {
	st := nameStats{labels: 1}
	var counts [256]uint32
	start := 0
	for i := 0; i <= len(sub); i++ {
		if i < len(sub) && sub[i] != '.' {
			counts[sub[i]]++
			st.length++
			continue
		}
		label := sub[start:i]
		if len(label) > len(st.longest) {
			st.longest = label
		}
		// Bytes that no host name has count at any length.
		a := classify(label)
		counts := len(label) >= encodedMinLength || a == AlphabetBinary || a == AlphabetBase64 && hasSpecial(label)
		if counts && a > AlphabetText &&
			(a > st.alphabet || a == st.alphabet && len(label) > st.encodedLabelBytes) {
			st.alphabet, st.encodedLabelBytes = a, len(label)
		}
		if i < len(sub) {
			st.labels++
		}
		start = i + 1
	}
	st.entropy = entropy(&counts, st.length)
	return st
}

// classify returns the narrowest alphabet that label fits.
func classify(label string) Alphabet {
	var lower, upper, digits, hexLetters, base32Digits, special int
	for i := 0; i < len(label); i++ {
		switch c := label[i]; {
		case 'a' <= c && c <= 'z':
			lower++
			if c <= 'f' {
				hexLetters++
			}
		case 'A' <= c && c <= 'Z':
			upper++
			if c <= 'F' {
				hexLetters++
			}
		case '0' <= c && c <= '9':
			digits++
			if '2' <= c && c <= '7' {
				base32Digits++
			}
		case c == '+' || c == '/' || c == '=':
			special++
		case c == '-' || c == '_':
		default:
			return AlphabetBinary
		}
	}
	letters := lower + upper
	switch {
	case special > 0 || lower > 0 && upper > 0 && (digits > 0 || min(lower, upper) >= 4):
		return AlphabetBase64
	case digits > 0 && letters > 0 && hexLetters == letters:
		return AlphabetHex
	case base32Digits > 0 && base32Digits == digits && letters > 0 && digits*8 >= len(label):
		return AlphabetBase32
	}
	return AlphabetText
}

// hasSpecial reports whether label has a byte of base64 that no host
// name has: + / or =.
func hasSpecial(label string) bool {
	return strings.ContainsAny(label, "+/=")
}

func entropy(counts *[256]uint32, n int) float64 {
	var h float64
	for _, k := range counts {
		if k > 0 {
			p := float64(k) / float64(n)
			h -= p * math.Log2(p)
		}
	}
	return h
}

// ramp maps v linearly from [start, full] onto [0, 1], clamped.
func ramp(v, start, full float64) float64 {
	return min(1, max(0, (v-start)/(full-start)))
}

// indicators returns the score of each indicator in [0, 1], in the order
// long label, long name, entropy, encoding, many labels.
func (st *nameStats) indicators() [5]float64 {
	var s [5]float64
	s[0] = ramp(float64(len(st.longest)), labelStart, labelFull)
	s[1] = ramp(float64(st.length), subStart, subFull)
	if st.length >= entropyMinLength {
		s[2] = ramp(st.entropy, entropyStart, entropyFull)
	}
	switch {
	case st.alphabet == AlphabetBinary:
		s[3] = 0.9
	case st.alphabet == AlphabetBase64 && st.encodedLabelBytes < encodedMinLength:
		// A short label with + / or =, which no host name has.
		s[3] = 0.6
	case st.alphabet > AlphabetText:
		s[3] = 0.3 + 0.6*ramp(float64(st.encodedLabelBytes), encodedMinLength, 40)
	}
	// Many labels alone are weak: CDN and mail names have four or five.
	s[4] = 0.4 * ramp(float64(st.labels), 4, 8)
	return s
}

// score combines the indicators as independent pieces of evidence:
// 1 - the product of (1 - each).
func (st *nameStats) score() float64 {
	rest := 1.0
	for _, s := range st.indicators() {
		rest *= 1 - s
	}
	return 1 - rest
}

// reason writes what was measured, for example: under "t.example":
// label "dIUEABDE..." 63 characters of base32, 4 labels, 230 characters,
// entropy 4.9 bits; score 0.99 (threshold 0.50).
func (st *nameStats) reason(registered string, score float64) string {
	var buf [224]byte
	b := append(buf[:0], "under "...)
	b = strconv.AppendQuote(b, registered)
	b = append(b, ": longest label "...)
	if len(st.longest) > 24 {
		b = append(strconv.AppendQuote(b, st.longest[:24]), "..."...)
	} else {
		b = strconv.AppendQuote(b, st.longest)
	}
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(st.longest)), 10)
	b = append(b, " characters"...)
	if st.alphabet > AlphabetText {
		b = append(b, ", a label of "...)
		b = strconv.AppendInt(b, int64(st.encodedLabelBytes), 10)
		b = append(b, " in "...)
		b = append(b, st.alphabet.String()...)
	}
	b = append(b, ", "...)
	b = strconv.AppendInt(b, int64(st.labels), 10)
	if st.labels == 1 {
		b = append(b, " label, "...)
	} else {
		b = append(b, " labels, "...)
	}
	b = strconv.AppendInt(b, int64(st.length), 10)
	b = append(b, " characters, entropy "...)
	b = strconv.AppendFloat(b, st.entropy, 'f', 1, 64)
	b = append(b, " bits; score "...)
	b = strconv.AppendFloat(b, score, 'f', 2, 64)
	b = append(b, " (threshold "...)
	b = strconv.AppendFloat(b, Threshold, 'f', 2, 64)
	b = append(b, ')')
	return string(b)
}

var _ detect.Detector = Names{}
