package xfr

import (
	"github.com/miekg/dns"
)

// journalEntry is the change from serial From to serial To: the records removed
// and added, without SOA records.
type journalEntry struct {
	From, To uint32
	Deleted  []dns.RR
	Added    []dns.RR
}

// journal keeps the latest diffs of a zone for IXFR (RFC 1995), oldest
// first, bounded by a count of diffs and a count of records over all of
// them. It is not safe for concurrent use: the zone guards it.
type journal struct {
	diffs      []journalEntry
	records    int
	maxDiffs   int
	maxRecords int
}

// add appends d and drops the oldest diffs past the bounds. A diff larger
// than maxRecords on its own empties the journal, so the next IXFR from
// before it falls back to AXFR.
func (j *journal) add(d journalEntry) {
	j.diffs = append(j.diffs, d)
	j.records += len(d.Deleted) + len(d.Added)
	for len(j.diffs) > 0 && (len(j.diffs) > j.maxDiffs || j.records > j.maxRecords) {
		j.records -= len(j.diffs[0].Deleted) + len(j.diffs[0].Added)
		j.diffs[0] = journalEntry{}
		j.diffs = j.diffs[1:]
	}
}

// since returns the diffs that lead from serial to the newest, and false
// when the journal does not reach back to serial.
func (j *journal) since(serial uint32) ([]journalEntry, bool) {
	for i, d := range j.diffs {
		if d.From == serial {
			return j.diffs[i:], true
		}
	}
	return nil, false
}
