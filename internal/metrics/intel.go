package metrics

import (
	"bulwark/internal/intel/events"
	"bulwark/internal/intel/traffic"

	"github.com/prometheus/client_golang/prometheus"
)

// IntelStats are the counters of the traffic analysis: its event queue
// and its engine.
type IntelStats struct {
	Queue  events.Stats
	Engine traffic.Stats
}

var (
	intelEventsDesc = prometheus.NewDesc("bulwark_intel_events_total",
		"Client queries offered to the traffic analysis, by result: queued, dropped because the queue was full, or skipped because the query could not be parsed.",
		[]string{"result"}, nil)
	intelTableFullDesc = prometheus.NewDesc("bulwark_intel_table_full_total",
		"Events or names left out because a bounded table of the traffic analysis was full, by table: window (domains per window), unique (names of the unique-response detector), spike (baselines), tunnel (domains of the tunnel tracker), clients (clients evicted from the DGA client table).",
		[]string{"table"}, nil)
	intelFindingsDesc = prometheus.NewDesc("bulwark_intel_findings_total",
		"Findings of the traffic analysis, by detector.", []string{"detector"}, nil)
	intelNODDomainsDesc = prometheus.NewDesc("bulwark_intel_nod_domains",
		"Registered domains in the NOD seen-set; an underestimate by its false positives.", nil, nil)
	intelNODFillDesc = prometheus.NewDesc("bulwark_intel_nod_fill_ratio",
		"Share of the NOD seen-set's bits that are set; its false-positive rate is about this to the power of its hash count.", nil, nil)
	intelPopularDesc = prometheus.NewDesc("bulwark_intel_popularity_domains",
		"Registered domains in the popularity history.", nil, nil)
	intelSaveFailedDesc = prometheus.NewDesc("bulwark_intel_state_save_failures_total",
		"Saves of the NOD or popularity state file that failed.", nil, nil)
)

// intelCollector reads the traffic analysis counters at each scrape.
type intelCollector struct{ stats func() IntelStats }

func (c intelCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{intelEventsDesc, intelTableFullDesc, intelFindingsDesc,
		intelNODDomainsDesc, intelNODFillDesc, intelPopularDesc, intelSaveFailedDesc} {
		ch <- d
	}
}

func (c intelCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	counter(ch, intelEventsDesc, st.Queue.Queued, "queued")
	counter(ch, intelEventsDesc, st.Queue.Dropped, "dropped")
	counter(ch, intelEventsDesc, st.Queue.Skipped, "skipped")
	e := st.Engine
	counter(ch, intelTableFullDesc, e.WindowDropped, "window")
	counter(ch, intelTableFullDesc, e.UniqueDropped, "unique")
	counter(ch, intelTableFullDesc, e.SpikeDropped, "spike")
	counter(ch, intelTableFullDesc, e.TunnelDropped, "tunnel")
	counter(ch, intelTableFullDesc, e.DGAClientsEvicted, "clients")
	for i, name := range traffic.Detectors {
		if i < len(e.Findings) {
			counter(ch, intelFindingsDesc, e.Findings[i], name)
		}
	}
	gauge(ch, intelNODDomainsDesc, float64(e.NOD.Domains))
	gauge(ch, intelNODFillDesc, e.NOD.FillRatio)
	gauge(ch, intelPopularDesc, float64(e.PopularDomains))
	counter(ch, intelSaveFailedDesc, e.SaveFailed)
}
