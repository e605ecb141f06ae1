// Package detect defines what the name-scoring threat detectors of
// internal/intel return, and splits a query name into the parts they score.
// It holds no model: the detectors live in the packages dga and tunnel, and
// deciding what to do with a malicious verdict is left to their callers.
package detect

import (
	"strings"

	"golang.org/x/net/publicsuffix"
)

// Result is the outcome of scoring one name or one domain's traffic.
type Result struct {
	// Score is in [0, 1]; higher means more likely malicious.
	Score float64
	// Malicious is Score >= the detector's threshold.
	Malicious bool
	// Reason is one short sentence on what drove the score, naming the
	// label and the measured values, for logs and block explanations.
	Reason string
}

// Detector scores single query names. Implementations are safe for
// concurrent use.
type Detector interface {
	// Name returns the detector's name, as the -detector flag takes it.
	Name() string
	// Threshold returns the score at and above which a name is malicious.
	Threshold() float64
	// Score scores one query name, with or without the trailing dot.
	Score(qname string) Result
}

// Parts are a query name split at its registered domain. All fields are
// substrings of the name given to Split, in its original case.
type Parts struct {
	// Sub is the part left of the registered domain, without the final
	// dot: "a.b" for "a.b.example.co.uk"; empty when there is none.
	Sub string
	// Label is the registered-domain label: "example" for
	// "a.b.example.co.uk"; empty when the name is itself a public suffix.
	Label string
	// Suffix is the public suffix: "co.uk".
	Suffix string
	// Registered is Label and Suffix joined: "example.co.uk"; empty when
	// Label is.
	Registered string
}

// Split splits qname at its public suffix, using the Public Suffix List
// compiled into golang.org/x/net/publicsuffix, private domains such as
// dyndns.org included, because DGA families register under those too.
// A trailing dot is ignored. The list lookup is case-sensitive, so Split
// matches the suffix on a lowercased copy only when qname has uppercase
// letters.
func Split(qname string) Parts {
	name := strings.TrimSuffix(qname, ".")
	lower := name
	if hasUpper(name) {
		lower = strings.ToLower(name)
	}
	suffix, _ := publicsuffix.PublicSuffix(lower)
	if len(suffix) >= len(name) {
		return Parts{Suffix: name}
	}
	p := Parts{Suffix: name[len(name)-len(suffix):]}
	rest := name[:len(name)-len(suffix)-1]
	p.Registered = name[strings.LastIndexByte(rest, '.')+1:]
	if i := strings.LastIndexByte(rest, '.'); i >= 0 {
		p.Sub, p.Label = rest[:i], rest[i+1:]
	} else {
		p.Label = rest
	}
	return p
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}
