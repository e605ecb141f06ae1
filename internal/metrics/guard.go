package metrics

import (
	"bulwark/internal/guard"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	guardProtectedDesc = prometheus.NewDesc("bulwark_guard_zones_protected",
		"Zones protected now against a random-subdomain or NXDOMAIN flood.", nil, nil)
	guardLocalDesc = prometheus.NewDesc("bulwark_guard_local_answers_total",
		"Resolutions answered SERVFAIL by the guard because a query to the zone's servers was shed.", nil, nil)
	guardShedDesc = prometheus.NewDesc("bulwark_guard_upstream_shed_total",
		"Queries to authoritative servers not sent, by reason: the zone is protected, or too many queries to it are in flight.",
		[]string{"reason"}, nil)
)

// guardCollector reads the guard's counters at each scrape.
type guardCollector struct{ stats func() guard.Stats }

func (c guardCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- guardProtectedDesc
	ch <- guardLocalDesc
	ch <- guardShedDesc
}

func (c guardCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	gauge(ch, guardProtectedDesc, float64(st.Protected))
	counter(ch, guardLocalDesc, st.LocalAnswers)
	counter(ch, guardShedDesc, st.ShedProtected, "protected")
	counter(ch, guardShedDesc, st.ShedInFlight, "in_flight")
}
