package querylog

import (
	"bufio"
	"cmp"
	"encoding/json"
	"slices"
	"time"
)

// aggregateKey is one row of the aggregates.
type aggregateKey struct {
	flavour, qname string
	qtype          uint16
	rcode          string
}

// aggregateRow counts the queries of a row and its distinct clients.
type aggregateRow struct {
	queries uint64
	clients distinct
}

// aggregator counts the rows of the current interval. MaxRows bounds the
// rows, and each row keeps at most distinctExact pseudonyms.
type aggregator struct {
	minClients, maxRows int
	file                *periodFile

	start time.Time // of the current interval; zero before the first query
	rows  map[aggregateKey]*aggregateRow
	// notCounted is the number of queries of the interval left out at
	// maxRows.
	notCounted uint64
}

func newAggregator(cfg Config) *aggregator {
	return &aggregator{
		minClients: cfg.MinClients, maxRows: cfg.MaxRows,
		file: &periodFile{dir: cfg.Directory, prefix: aggregatesPrefix, period: cfg.Interval},
		rows: map[aggregateKey]*aggregateRow{},
	}
}

// due reports whether the current interval has ended at now.
func (a *aggregator) due(now time.Time) bool {
	return !a.start.IsZero() && !a.file.periodStart(now).Equal(a.start)
}

// add counts one query of client pseudonym at now. The caller writes the
// previous interval first when due(now).
func (a *aggregator) add(now time.Time, key aggregateKey, pseudonym uint64) {
	if a.start.IsZero() {
		a.start = a.file.periodStart(now)
	}
	row := a.rows[key]
	if row == nil {
		if len(a.rows) >= a.maxRows {
			a.notCounted++
			return
		}
		row = &aggregateRow{}
		a.rows[key] = row
	}
	row.queries++
	row.clients.add(pseudonym)
}

// aggregateLine is one row as written.
type aggregateLine struct {
	Start   string `json:"start"`
	End     string `json:"end"`
	Flavour string `json:"flavour"`
	QName   string `json:"qname"`
	QType   string `json:"qtype"`
	Rcode   string `json:"rcode,omitempty"`
	Queries uint64 `json:"queries"`
	Clients int    `json:"clients"`
}

// write appends the rows of the current interval that have at least
// minClients distinct clients to the interval's file, in a stable order,
// and then drops the counts and pseudonyms of the interval. end is the end of
// the interval, or the time of shutdown. It returns the rows written and
// left out.
func (a *aggregator) write(end time.Time) (written, belowK int, err error) {
	if a.start.IsZero() {
		return 0, 0, nil
	}
	keys := make([]aggregateKey, 0, len(a.rows))
	for k, row := range a.rows {
		if row.clients.count() >= a.minClients {
			keys = append(keys, k)
		}
	}
	belowK = len(a.rows) - len(keys)
	slices.SortFunc(keys, compareKeys)

	var bw *bufio.Writer
	if len(keys) > 0 {
		bw, err = a.file.writer(a.start)
	}
	if err == nil && bw != nil {
		enc := json.NewEncoder(bw)
		for _, k := range keys {
			row := a.rows[k]
			err = enc.Encode(aggregateLine{
				Start: timeText(a.start), End: timeText(end),
				Flavour: k.flavour, QName: k.qname, QType: qtypeName(k.qtype), Rcode: k.rcode,
				Queries: row.queries, Clients: row.clients.count(),
			})
			if err != nil {
				break
			}
		}
		err = cmp.Or(err, a.file.close())
	}
	a.rows = map[aggregateKey]*aggregateRow{}
	a.start, a.notCounted = time.Time{}, 0
	return len(keys), belowK, err
}

func compareKeys(x, y aggregateKey) int {
	return cmp.Or(
		cmp.Compare(x.flavour, y.flavour), cmp.Compare(x.qname, y.qname),
		cmp.Compare(x.qtype, y.qtype), cmp.Compare(x.rcode, y.rcode),
	)
}
