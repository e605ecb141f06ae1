package traffic

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// cluster describes the recent NXDOMAIN domains of one client.
type cluster struct {
	n      int
	window time.Duration
	// suffixes are the distinct suffixes, most frequent first, and
	// suffixCounts their domains.
	suffixes     []string
	suffixCounts []int

	minLen, maxLen int
	meanScore      float64
	meanLen, lenCV float64
	// medianLen and medianScore are the medians of the label lengths and
	// name scores, and lenTolerance and scoreTolerance how far from them
	// a matching domain may be.
	medianLen, lenTolerance     float64
	medianScore, scoreTolerance float64

	byScore, byShape, byLength bool
}

// Matching a domain against a cluster uses the common rule for outliers:
// a median ± 3 scaled median absolute deviations, where 1.4826 times the
// MAD estimates the standard deviation of a normal distribution. A few
// typos among a DGA's names do not move the median or the MAD. Label lengths are whole
// numbers and often mostly equal, which makes the MAD 0, so the length
// range is at least a quarter of the median each side. The slacks keep
// a range of identical values from being a single point: one character
// of length, and a quarter of the name score's scale.
const (
	madScale    = 1.4826
	madFactor   = 3
	lengthSlack = 1
	scoreSlack  = 0.25
)

// passes reports whether the cluster is large and uniform enough to call
// the client DGA-like.
func (cl *cluster) passes(minDomains int) bool {
	return cl.n >= minDomains && (cl.byScore || cl.byShape || cl.byLength)
}

// matches reports whether a registered domain with the given suffix,
// label length and name score has the structure of the cluster:
//   - a suffix that at least two of the cluster's domains share;
//   - a label length that is no outlier of the cluster;
//   - a name score no lower than the cluster's outliers', and, when the
//     cluster passed on the name score, at least clusterMinScore.
//
// A higher score is no reason to doubt a name. The typos of an infected
// host's user, and the sites it visits, fail on the suffix or the score
// unless they look as random as the DGA's names.
func (cl *cluster) matches(suffix string, length int, score float64) bool {
	if math.Abs(float64(length)-cl.medianLen) > cl.lenTolerance {
		return false
	}
	if score < cl.medianScore-cl.scoreTolerance || (cl.byScore && score < clusterMinScore) {
		return false
	}
	i := slices.Index(cl.suffixes, suffix)
	return i >= 0 && cl.suffixCounts[i] >= 2
}

// matchesOwn reports whether an unseen NXDOMAIN domain of the cluster's
// own client belongs to it: as matches, but without a shared suffix when
// the cluster passed on the name score and the domain's score reaches
// clusterMinScore by itself. Families that spread their names over many
// suffixes share few of them, and a typo of the client's user scores too
// low to pass. Resolved domains, the candidate command servers, still
// need the shared suffix.
func (cl *cluster) matchesOwn(suffix string, length int, score float64) bool {
	if cl.matches(suffix, length, score) {
		return true
	}
	return cl.byScore && score >= clusterMinScore && score >= cl.medianScore-cl.scoreTolerance &&
		math.Abs(float64(length)-cl.medianLen) <= cl.lenTolerance
}

// measureCluster computes the cluster of c's domains queried at or after
// since. The suffixes and the ranges that matches uses are computed only
// for a cluster that passes with minDomains.
func measureCluster(c *clientEntry, since int64, window time.Duration, minDomains int) cluster {
	cl := cluster{window: window, minLen: math.MaxInt}
	var lens, scores [clusterCap]float64
	var suffixes [clusterCap]string
	var sumScore, sumLen, sumLen2 float64
	for i := range c.domains {
		d := &c.domains[i]
		if d.at < since {
			continue
		}
		l, s := float64(d.length), float64(d.score)
		lens[cl.n], scores[cl.n], suffixes[cl.n] = l, s, d.suffix()
		cl.n++
		sumScore += s
		sumLen += l
		sumLen2 += l * l
		cl.minLen, cl.maxLen = min(cl.minLen, int(d.length)), max(cl.maxLen, int(d.length))
	}

	if cl.n == 0 {
		return cluster{}
	}
	n := float64(cl.n)
	cl.meanScore, cl.meanLen = sumScore/n, sumLen/n
	cl.lenCV = math.Sqrt(max(0, sumLen2/n-cl.meanLen*cl.meanLen)) / max(cl.meanLen, 1)
	cl.byScore = cl.meanScore >= clusterMinScore
	cl.byShape = cl.lenCV <= clusterMaxLengthCV
	cl.byLength = cl.meanLen >= clusterMinMeanLength
	if !cl.passes(minDomains) {
		return cl
	}
	cl.suffixes, cl.suffixCounts = rankSuffixes(suffixes[:cl.n])
	cl.medianLen, cl.lenTolerance = robustRange(lens[:cl.n])
	cl.lenTolerance = max(cl.lenTolerance, cl.medianLen/4) + lengthSlack
	cl.medianScore, cl.scoreTolerance = robustRange(scores[:cl.n])
	cl.scoreTolerance += scoreSlack
	return cl
}

// robustRange returns the median of v and madFactor scaled median
// absolute deviations. It reorders v.
func robustRange(v []float64) (med, tolerance float64) {
	med = median(v)
	for i := range v {
		v[i] = math.Abs(v[i] - med)
	}
	return med, madFactor * madScale * median(v)
}

// median returns the median of v, which it sorts.
func median(v []float64) float64 {
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// rankSuffixes returns the distinct suffixes of a cluster's domains,
// most frequent first, and their counts. It sorts suffixes.
func rankSuffixes(suffixes []string) ([]string, []int) {
	slices.Sort(suffixes)
	var out []string
	var counts []int
	for i, s := range suffixes {
		if i > 0 && s == suffixes[i-1] {
			counts[len(counts)-1]++
			continue
		}
		out, counts = append(out, s), append(counts, 1)
	}
	// Insertion sort by count, stable, so equal counts stay in name
	// order: a cluster has at most clusterCap suffixes.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && counts[j] > counts[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
			counts[j], counts[j-1] = counts[j-1], counts[j]
		}
	}
	return out, counts
}

// suffixText names the cluster's suffixes: ".com", ".com (8 of 9) and 1
// other suffix", or ".com (5 of 9) and 3 other suffixes".
func (cl *cluster) suffixText() string {
	if len(cl.suffixes) == 1 {
		return "." + cl.suffixes[0]
	}
	others := "other suffixes"
	if len(cl.suffixes) == 2 {
		others = "other suffix"
	}
	return fmt.Sprintf(".%s (%d of %d) and %d %s", cl.suffixes[0], cl.suffixCounts[0], cl.n, len(cl.suffixes)-1, others)
}

// uniformText names the tests the cluster passed.
func (cl *cluster) uniformText() string {
	var parts []string
	if cl.byScore {
		parts = append(parts, fmt.Sprintf("name score (at least %.2f)", clusterMinScore))
	}
	if cl.byShape {
		parts = append(parts, fmt.Sprintf("label length spread %.2f (at most %.2f)", cl.lenCV, clusterMaxLengthCV))
	}
	if cl.byLength {
		parts = append(parts, fmt.Sprintf("mean label length %.1f (at least %d)", cl.meanLen, clusterMinMeanLength))
	}
	return strings.Join(parts, " and ")
}
