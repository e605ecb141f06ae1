package metrics

import (
	"bulwark/internal/intel/sources"
	"bulwark/internal/xfr"

	"github.com/prometheus/client_golang/prometheus"
)

// PrimaryStats are the counters of the RPZ primary and the state of its
// zones.
type PrimaryStats struct {
	Counters xfr.PrimaryStats
	Zones    []xfr.ZoneStats
}

var (
	primaryRequestsDesc = prometheus.NewDesc("bulwark_xfr_primary_requests_total",
		"Requests the RPZ primary answered, by kind (soa, axfr, ixfr, ixfr_full for an IXFR answered with the whole zone because the journal did not reach back) and result (ok, or failed when a transfer broke off).",
		[]string{"kind", "result"}, nil)
	primaryRefusedDesc = prometheus.NewDesc("bulwark_xfr_primary_refused_total",
		"Requests the RPZ primary refused or rejected, by reason: unsupported, zone, address, tsig, transport, format, qtype, unloaded.",
		[]string{"reason"}, nil)
	primaryNotifyDesc = prometheus.NewDesc("bulwark_xfr_primary_notify_total",
		"NOTIFY messages of the RPZ primary by result: acked by a secondary, or failed after every retry.",
		[]string{"result"}, nil)
	primarySerialsDesc = prometheus.NewDesc("bulwark_xfr_primary_serials_total",
		"New serials of the published zones, over all zones.", nil, nil)
	primarySerialDesc = prometheus.NewDesc("bulwark_xfr_primary_zone_serial",
		"Current SOA serial of a published zone.", []string{"zone"}, nil)
	primaryRecordsDesc = prometheus.NewDesc("bulwark_xfr_primary_zone_records",
		"Records of a published zone, without its SOA and NS.", []string{"zone"}, nil)
)

// primaryCollector reads the RPZ primary's counters at each scrape.
type primaryCollector struct{ stats func() PrimaryStats }

func (c primaryCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{primaryRequestsDesc, primaryRefusedDesc, primaryNotifyDesc,
		primarySerialsDesc, primarySerialDesc, primaryRecordsDesc} {
		ch <- d
	}
}

func (c primaryCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	p := st.Counters
	counter(ch, primaryRequestsDesc, p.SOA, "soa", "ok")
	counter(ch, primaryRequestsDesc, p.AXFR-p.AXFRFailed, "axfr", "ok")
	counter(ch, primaryRequestsDesc, p.AXFRFailed, "axfr", "failed")
	counter(ch, primaryRequestsDesc, p.IXFR-p.IXFRFailed, "ixfr", "ok")
	counter(ch, primaryRequestsDesc, p.IXFRFailed, "ixfr", "failed")
	counter(ch, primaryRequestsDesc, p.IXFRFallback-p.IXFRFallbackFailed, "ixfr_full", "ok")
	counter(ch, primaryRequestsDesc, p.IXFRFallbackFailed, "ixfr_full", "failed")
	for _, reason := range xfr.RefusalReasons {
		counter(ch, primaryRefusedDesc, p.RefusedBy[reason], reason)
	}
	counter(ch, primaryNotifyDesc, p.NotifyAcked, "acked")
	counter(ch, primaryNotifyDesc, p.NotifyFailed, "failed")
	counter(ch, primarySerialsDesc, p.Serials)
	for _, z := range st.Zones {
		gauge(ch, primarySerialDesc, float64(z.Serial), z.Name)
		gauge(ch, primaryRecordsDesc, float64(z.Records), z.Name)
	}
}

var (
	sourcePullsDesc = prometheus.NewDesc("bulwark_intel_source_pulls_total",
		"Pulls of an indicator source (share.sources) by result: success or failure.",
		[]string{"source", "result"}, nil)
	sourceLastSuccessDesc = prometheus.NewDesc("bulwark_intel_source_last_success_timestamp_seconds",
		"Unix time of the last successful pull of an indicator source; 0 before the first.",
		[]string{"source"}, nil)
	sourceItemsDesc = prometheus.NewDesc("bulwark_intel_source_items",
		"Indicators of the last successful pull of a source.", []string{"source"}, nil)
	sourceItemsTotalDesc = prometheus.NewDesc("bulwark_intel_source_items_total",
		"Indicators received from a source over all pulls.", []string{"source"}, nil)
	sourceSkippedDesc = prometheus.NewDesc("bulwark_intel_source_skipped_items",
		"Objects, rows or attributes of the last successful pull of a source that were not taken: invalid, of other types, or dropped beyond the bound of a pull.",
		[]string{"source"}, nil)
)

// sourcesCollector reads the state of the indicator sources at each
// scrape.
type sourcesCollector struct{ stats func() []sources.Status }

func (c sourcesCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{sourcePullsDesc, sourceLastSuccessDesc, sourceItemsDesc,
		sourceItemsTotalDesc, sourceSkippedDesc} {
		ch <- d
	}
}

func (c sourcesCollector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.stats() {
		counter(ch, sourcePullsDesc, st.Pulls-st.Failures, st.Name, "success")
		counter(ch, sourcePullsDesc, st.Failures, st.Name, "failure")
		last := 0.0
		if !st.LastSuccess.IsZero() {
			last = float64(st.LastSuccess.UnixNano()) / 1e9
		}
		gauge(ch, sourceLastSuccessDesc, last, st.Name)
		gauge(ch, sourceItemsDesc, float64(st.Items), st.Name)
		counter(ch, sourceItemsTotalDesc, st.ItemsTotal, st.Name)
		gauge(ch, sourceSkippedDesc, float64(st.Skipped+st.Truncated), st.Name)
	}
}
