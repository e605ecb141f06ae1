package metrics

import (
	"bulwark/internal/intel/indicator"
	"bulwark/internal/intel/store"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	storeEntriesDesc = prometheus.NewDesc("bulwark_intel_store_entries",
		"Entries of the candidate store, by state: observed, suspicious, auto_blocked, review, confirmed or rejected.",
		[]string{"state"}, nil)
	storeEvictedDesc = prometheus.NewDesc("bulwark_intel_store_evicted_total",
		"Entries of the candidate store dropped at intel.store.max_entries to make room for new names.", nil, nil)
	storeDroppedDesc = prometheus.NewDesc("bulwark_intel_store_evidence_dropped_total",
		"Findings and indicators about new names lost because the candidate store was full of entries it keeps.", nil, nil)
)

// storeStates are the states reported, so that each has a series from the
// first scrape.
var storeStates = []indicator.State{
	indicator.Observed, indicator.Suspicious, indicator.AutoBlocked,
	indicator.Review, indicator.Confirmed, indicator.Rejected,
}

// storeCollector reads the candidate store's counters at each scrape.
type storeCollector struct{ counters func() store.Counters }

func (c storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- storeEntriesDesc
	ch <- storeEvictedDesc
	ch <- storeDroppedDesc
}

func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.counters()
	for _, state := range storeStates {
		gauge(ch, storeEntriesDesc, float64(st.States[state]), string(state))
	}
	counter(ch, storeEvictedDesc, st.Evicted)
	counter(ch, storeDroppedDesc, st.Dropped)
}
