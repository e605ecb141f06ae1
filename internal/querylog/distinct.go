package querylog

import (
	"math"
	"slices"
)

// distinctExact is how many pseudonyms a row keeps. Up to this many
// distinct clients the count is exact; past it the row keeps only the
// smallest pseudonyms and estimates the count from them.
const distinctExact = 64

// distinct counts the distinct client pseudonyms of one row in bounded
// memory. It keeps the smallest distinctExact pseudonyms seen, sorted
// (a k-minimum-values sketch). Pseudonyms are SipHash-2-4 outputs, so
// they are spread uniformly over the uint64 range: when the
// k-th smallest of n uniform values is v, n is about (k-1)·2⁶⁴/v. The
// relative standard error of that estimate is about 1/√(k-2), 13% at 64.
type distinct struct {
	smallest []uint64
}

// add records one pseudonym.
func (d *distinct) add(p uint64) {
	full := len(d.smallest) == distinctExact
	if full && p >= d.smallest[distinctExact-1] {
		return
	}
	i, found := slices.BinarySearch(d.smallest, p)
	if found {
		return
	}
	if full {
		d.smallest = d.smallest[:distinctExact-1]
	}
	d.smallest = slices.Insert(d.smallest, i, p)
}

// count returns the number of distinct pseudonyms: exact below
// distinctExact, estimated at or above it.
func (d *distinct) count() int {
	n := len(d.smallest)
	if n < distinctExact {
		return n
	}
	kth := float64(d.smallest[n-1]) + 1
	estimate := float64(n-1) * math.Exp2(64) / kth
	return max(n, int(math.Round(estimate)))
}
