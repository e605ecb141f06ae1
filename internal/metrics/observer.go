package metrics

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"bulwark/internal/exchange"
	"bulwark/internal/observe"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// MaxFlavourLabels caps the flavour label values of bulwark_queries_total,
// and later names count as "other". Flavour names come from the config and
// one policy holds at most 255, so only reloads with new names reach it.
const MaxFlavourLabels = 256

// MaxServerLabels caps the server label values of the upstream metrics:
// the first MaxServerLabels authoritative server addresses that Bulwark
// queries get a label of their own, and later ones count as "other". The
// root and TLD servers, which resolutions start with, usually come first.
const MaxServerLabels = 128

// otherLabel is the label value of the types, flavours and servers past
// their caps.
const otherLabel = "other"

// latencyBuckets are the upper bounds, in seconds, of the client query
// latency histogram: from an answer cache hit (tens of microseconds) to a
// resolution that meets slow or silent servers (seconds).
var latencyBuckets = []float64{
	0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// rttBuckets are the upper bounds, in seconds, of the upstream round-trip
// time histogram: from a server on the same network to the exchange
// timeout.
var rttBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
}

var (
	queriesDesc = prometheus.NewDesc("bulwark_queries_total",
		"Client queries, by transport, flavour, qtype and the rcode of the response (none when no response was sent).",
		[]string{"transport", "flavour", "qtype", "rcode"}, nil)
	upstreamFailuresDesc = prometheus.NewDesc("bulwark_upstream_failures_total",
		"Queries to authoritative servers that failed, by server address and kind of failure.",
		[]string{"server", "kind"}, nil)
)

// Observer counts client queries and queries to authoritative servers. It
// implements observe.Observer, and prometheus.Collector for the counters
// it keeps itself. Counting a client query takes a few atomic adds and
// neither allocates nor locks.
type Observer struct {
	flavourMu sync.Mutex
	// flavours maps flavour names to their counters. It is replaced, never
	// changed in place, so readers need no lock.
	flavours atomic.Pointer[map[string]*flavourCounts]
	other    *flavourCounts

	latency    [observe.TransportCount][2]prometheus.Observer
	latencyVec *prometheus.HistogramVec

	serverMu     sync.RWMutex
	servers      map[netip.Addr]*serverStats
	otherServers *serverStats
	rttVec       *prometheus.HistogramVec
}

// flavourCounts counts the queries of one flavour.
type flavourCounts struct {
	n [observe.TransportCount][qtypeCount][rcodeCount]atomic.Uint64
}

// serverStats holds the metrics of one server address.
type serverStats struct {
	label    string
	rtt      prometheus.Observer
	failures [failureKindCount]atomic.Uint64
}

// NewObserver returns an Observer with no counts.
func NewObserver() *Observer {
	o := &Observer{
		other:   &flavourCounts{},
		servers: map[netip.Addr]*serverStats{},
		latencyVec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "bulwark_query_duration_seconds",
			Help:    "Time from reading a client query to its response being ready, by transport and whether the answer cache had it (hit) or it was resolved (miss).",
			Buckets: latencyBuckets,
		}, []string{"transport", "cache"}),
		rttVec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "bulwark_upstream_rtt_seconds",
			Help:    "Round-trip time of queries to authoritative servers that got a response, by server address.",
			Buckets: rttBuckets,
		}, []string{"server"}),
	}
	empty := map[string]*flavourCounts{}
	o.flavours.Store(&empty)
	for t := range observe.TransportCount {
		o.latency[t][0] = o.latencyVec.WithLabelValues(t.String(), "miss")
		o.latency[t][1] = o.latencyVec.WithLabelValues(t.String(), "hit")
	}
	o.otherServers = &serverStats{label: otherLabel, rtt: o.rttVec.WithLabelValues(otherLabel)}
	return o
}

// ClientQuery counts q by transport, flavour, qtype and rcode, and records
// its latency when it got a response.
func (o *Observer) ClientQuery(q *observe.Query) {
	if q.Transport >= observe.TransportCount {
		return
	}
	o.flavourCounts(q.FlavourName).n[q.Transport][qtypeIndex(q.Query)][rcodeIndex(q.Response)].Add(1)
	if q.Response != nil && !q.Received.IsZero() {
		cached := 0
		if q.Cached {
			cached = 1
		}
		o.latency[q.Transport][cached].Observe(q.Duration.Seconds())
	}
}

// flavourCounts returns the counters of the flavour named name, adding
// them on its first query.
func (o *Observer) flavourCounts(name string) *flavourCounts {
	if c, ok := (*o.flavours.Load())[name]; ok {
		return c
	}
	o.flavourMu.Lock()
	defer o.flavourMu.Unlock()
	old := *o.flavours.Load()
	if c, ok := old[name]; ok {
		return c
	}
	if len(old) >= MaxFlavourLabels {
		return o.other
	}
	m := make(map[string]*flavourCounts, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	c := &flavourCounts{}
	m[name] = c
	o.flavours.Store(&m)
	return c
}

// UpstreamQuery records the round-trip time of u when it got a response,
// and counts its failure when it failed. Each response dropped for a wrong
// client cookie counts as a failure of kind spoofed, even when the genuine
// response came after it.
func (o *Observer) UpstreamQuery(u *observe.Upstream) {
	s := o.server(u.Server.Addr())
	if u.Err == nil {
		s.rtt.Observe(u.RTT.Seconds())
	}
	if kind, failed := classifyFailure(u); failed {
		s.failures[kind].Add(1)
	}
	if u.Spoofed > 0 {
		s.failures[failureSpoofed].Add(uint64(u.Spoofed))
	}
}

// server returns the metrics of addr, adding them on its first query while
// fewer than MaxServerLabels servers have labels.
func (o *Observer) server(addr netip.Addr) *serverStats {
	addr = addr.Unmap()
	o.serverMu.RLock()
	s, ok := o.servers[addr]
	full := len(o.servers) >= MaxServerLabels
	o.serverMu.RUnlock()
	if ok {
		return s
	}
	if full {
		return o.otherServers
	}
	o.serverMu.Lock()
	defer o.serverMu.Unlock()
	if s, ok := o.servers[addr]; ok {
		return s
	}
	if len(o.servers) >= MaxServerLabels {
		return o.otherServers
	}
	label := addr.String()
	s = &serverStats{label: label, rtt: o.rttVec.WithLabelValues(label)}
	o.servers[addr] = s
	return s
}

// Describe sends the descriptions of the Observer's metrics.
func (o *Observer) Describe(ch chan<- *prometheus.Desc) {
	ch <- queriesDesc
	ch <- upstreamFailuresDesc
	o.latencyVec.Describe(ch)
	o.rttVec.Describe(ch)
}

// Collect sends the counters that are not zero and every histogram.
func (o *Observer) Collect(ch chan<- prometheus.Metric) {
	for name, c := range *o.flavours.Load() {
		c.collect(ch, flavourLabel(name))
	}
	o.other.collect(ch, otherLabel)

	o.serverMu.RLock()
	servers := make([]*serverStats, 0, len(o.servers)+1)
	for _, s := range o.servers {
		servers = append(servers, s)
	}
	o.serverMu.RUnlock()
	for _, s := range append(servers, o.otherServers) {
		for kind := range failureKindCount {
			if n := s.failures[kind].Load(); n > 0 {
				ch <- prometheus.MustNewConstMetric(upstreamFailuresDesc, prometheus.CounterValue,
					float64(n), s.label, failureKindNames[kind])
			}
		}
	}
	o.latencyVec.Collect(ch)
	o.rttVec.Collect(ch)
}

func (c *flavourCounts) collect(ch chan<- prometheus.Metric, flavour string) {
	for t := range observe.TransportCount {
		for qt := range qtypeCount {
			for rc := range rcodeCount {
				if n := c.n[t][qt][rc].Load(); n > 0 {
					ch <- prometheus.MustNewConstMetric(queriesDesc, prometheus.CounterValue, float64(n),
						t.String(), flavour, qtypeNames[qt], rcodeLabel(rc))
				}
			}
		}
	}
}

// flavourLabel returns the label value of a flavour name: a query served
// before any policy was installed has no flavour.
func flavourLabel(name string) string {
	if name == "" {
		return "none"
	}
	return name
}

// countedQtypes are the query types counted under their own names; the
// others count as "other". qtypeNames follows their order, then "other".
var countedQtypes = []uint16{
	dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypeMX, dns.TypeNS,
	dns.TypePTR, dns.TypeSOA, dns.TypeSRV, dns.TypeTXT, dns.TypeNAPTR,
	dns.TypeDS, dns.TypeDNSKEY, dns.TypeSVCB, dns.TypeHTTPS, dns.TypeCAA,
	dns.TypeANY,
}

// qtypeCount is the number of qtype label values, "other" included.
const qtypeCount = 17

var qtypeNames = func() [qtypeCount]string {
	var names [qtypeCount]string
	for i, t := range countedQtypes {
		names[i] = dns.TypeToString[t]
	}
	names[qtypeCount-1] = otherLabel
	return names
}()

// qtypeIndex returns the index in qtypeNames of the qtype of the first
// question of msg, or that of "other" when msg has no question it can
// read.
func qtypeIndex(msg []byte) int {
	if len(msg) < 12 || msg[4] == 0 && msg[5] == 0 {
		return qtypeCount - 1
	}
	off := 12
	for off < len(msg) && msg[off] != 0 {
		if msg[off]&0xC0 != 0 {
			return qtypeCount - 1 // a query's question has no pointer
		}
		off += int(msg[off]) + 1
	}
	if off+3 > len(msg) {
		return qtypeCount - 1
	}
	qtype := uint16(msg[off+1])<<8 | uint16(msg[off+2])
	for i, t := range countedQtypes {
		if t == qtype {
			return i
		}
	}
	return qtypeCount - 1
}

// rcodeCount is the number of rcode label values: the 16 values of the
// header's 4-bit RCODE and "none" for queries without a response.
const rcodeCount = 17

// rcodeIndex returns the 4-bit RCODE of resp, or 16 when there is no
// response.
func rcodeIndex(resp []byte) int {
	if len(resp) < 4 {
		return rcodeCount - 1
	}
	return int(resp[3] & 0x0F)
}

func rcodeLabel(i int) string {
	if i == rcodeCount-1 {
		return "none"
	}
	return rcodeName(i)
}

// failureKind is the kind of failure of a query to an authoritative server.
type failureKind uint8

const (
	failureTimeout failureKind = iota
	failureNetwork
	failureMalformed
	failureForbidden
	failureCanceled
	failureOther
	failureServfail
	failureRefused
	failureSpoofed
	failureKindCount
)

var failureKindNames = [failureKindCount]string{
	"timeout", "network", "malformed", "forbidden", "canceled", "other", "servfail", "refused",
	"spoofed",
}

// classifyFailure returns the kind of failure of u, and false when u got a
// response that is not SERVFAIL or REFUSED.
func classifyFailure(u *observe.Upstream) (failureKind, bool) {
	err := u.Err
	var netErr net.Error
	switch {
	case err == nil && u.Response == nil:
		return 0, false
	case err == nil && u.Response.Rcode == dns.RcodeServerFailure:
		return failureServfail, true
	case err == nil && u.Response.Rcode == dns.RcodeRefused:
		return failureRefused, true
	case err == nil:
		return 0, false
	case errors.Is(err, exchange.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return failureTimeout, true
	case errors.Is(err, context.Canceled):
		return failureCanceled, true
	case errors.Is(err, exchange.ErrMalformed):
		return failureMalformed, true
	case errors.Is(err, exchange.ErrForbidden):
		return failureForbidden, true
	case errors.As(err, &netErr) && netErr.Timeout():
		return failureTimeout, true
	case errors.As(err, &netErr):
		return failureNetwork, true
	}
	return failureOther, true
}
