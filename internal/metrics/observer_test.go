package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"bulwark/internal/cache"
	"bulwark/internal/exchange"
	"bulwark/internal/observe"
	"bulwark/internal/pipeline"
	"bulwark/internal/policy"
	"bulwark/internal/resolver"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// answerAll is a resolver that answers every question with one A record.
type answerAll struct{}

func (answerAll) Resolve(ctx context.Context, name string, qtype uint16) resolver.Result {
	rr, _ := dns.NewRR(name + " 300 IN A 192.0.2.1")
	return resolver.Result{Answer: []dns.RR{rr}}
}

// blockingPipeline returns a pipeline whose flavour "protective" blocks
// bad.example with the list urlhaus, after it has answered one blocked
// query by resolution and one from the answer cache.
func blockingPipeline() *pipeline.Pipeline {
	c := cache.New(cache.Config{MaxBytes: 1 << 20, MaxTTL: time.Hour})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := pipeline.New(pipeline.Config{BufferSize: 1232, ClientTimeout: time.Second, MaxResolutions: 4}, c, answerAll{}, log, nil)
	urlhaus := &policy.List{Name: "urlhaus", Category: policy.CategoryMalware,
		Verdicts: []policy.Verdict{{Action: policy.NXDomain}},
		Set:      policy.Compile([]policy.Rule{{Name: "bad.example.", Match: policy.Exact}})}
	p.SetPolicy(policy.NewSnapshot(1, []*policy.Flavour{policy.NewFlavour("protective", []*policy.List{urlhaus})}),
		pipeline.BlockConfig{})
	m := new(dns.Msg)
	m.SetQuestion("bad.example.", dns.TypeA)
	pkt, _ := m.Pack()
	client := netip.MustParseAddr("192.0.2.200")
	p.HandleSlow(pkt, true, 0, client)
	p.HandleFast(pkt, nil, true, 0, client)
	return p
}

// packet returns a query for name and qtype, or its response with rcode.
func packet(t testing.TB, qtype uint16, rcode int, response bool) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("www.example.", qtype)
	if response {
		m.Response, m.Rcode = true, rcode
	}
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return wire
}

// testObserver returns an Observer that has seen a few client queries and
// upstream exchanges.
func testObserver() *Observer {
	o := NewObserver()
	m := new(dns.Msg)
	m.SetQuestion("www.example.", dns.TypeA)
	q, _ := m.Pack()
	m.Response = true
	r, _ := m.Pack()
	o.ClientQuery(&observe.Query{Transport: observe.UDP, FlavourName: "unfiltered", Query: q, Response: r,
		Received: time.Now(), Duration: 80 * time.Microsecond, Cached: true})
	server := netip.MustParseAddrPort("192.0.2.53:53")
	o.UpstreamQuery(&observe.Upstream{Server: server, RTT: 3 * time.Millisecond, Response: new(dns.Msg)})
	o.UpstreamQuery(&observe.Upstream{Server: server, RTT: time.Second, Err: exchange.ErrTimeout})
	return o
}

func TestClientQueryLabels(t *testing.T) {
	o := NewObserver()
	now := time.Now()
	for _, q := range []observe.Query{
		{Transport: observe.UDP, FlavourName: "unfiltered", Query: packet(t, dns.TypeA, 0, false),
			Response: packet(t, dns.TypeA, dns.RcodeSuccess, true), Cached: true},
		{Transport: observe.UDP, FlavourName: "unfiltered", Query: packet(t, dns.TypeA, 0, false),
			Response: packet(t, dns.TypeA, dns.RcodeSuccess, true), Cached: true},
		{Transport: observe.DoT, FlavourName: "protective", Query: packet(t, dns.TypeAAAA, 0, false),
			Response: packet(t, dns.TypeAAAA, dns.RcodeNameError, true)},
		{Transport: observe.DoH, FlavourName: "protective", Query: packet(t, dns.TypeNULL, 0, false),
			Response: packet(t, dns.TypeNULL, dns.RcodeRefused, true)},
		{Transport: observe.TCP, FlavourName: "protective", Query: packet(t, dns.TypeHTTPS, 0, false)},
		{Transport: observe.DoQ, FlavourName: "", Query: []byte{1, 2, 3}},
	} {
		q.Received, q.Duration = now, time.Millisecond
		o.ClientQuery(&q)
	}
	want := `
# HELP bulwark_queries_total Client queries, by transport, flavour, qtype and the rcode of the response (none when no response was sent).
# TYPE bulwark_queries_total counter
bulwark_queries_total{flavour="none",qtype="other",rcode="none",transport="doq"} 1
bulwark_queries_total{flavour="protective",qtype="AAAA",rcode="NXDOMAIN",transport="dot"} 1
bulwark_queries_total{flavour="protective",qtype="HTTPS",rcode="none",transport="tcp"} 1
bulwark_queries_total{flavour="protective",qtype="other",rcode="REFUSED",transport="doh"} 1
bulwark_queries_total{flavour="unfiltered",qtype="A",rcode="NOERROR",transport="udp"} 2
`
	if err := testutil.CollectAndCompare(o, strings.NewReader(want), "bulwark_queries_total"); err != nil {
		t.Error(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(o)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	for _, f := range families {
		if f.GetName() != "bulwark_query_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			key := ""
			for _, l := range m.GetLabel() {
				key += l.GetName() + "=" + l.GetValue() + " "
			}
			counts[strings.TrimSpace(key)] = m.GetHistogram().GetSampleCount()
		}
	}
	for key, n := range map[string]uint64{
		"cache=hit transport=udp":  2,
		"cache=miss transport=dot": 1,
		"cache=miss transport=doh": 1,
		"cache=miss transport=tcp": 0, // no response, no latency
	} {
		if counts[key] != n {
			t.Errorf("latency samples {%s} = %d, want %d", key, counts[key], n)
		}
	}
}

func TestQtypeIndex(t *testing.T) {
	for _, tt := range []struct {
		name string
		msg  []byte
		want string
	}{
		{"A", packet(t, dns.TypeA, 0, false), "A"},
		{"CAA", packet(t, dns.TypeCAA, 0, false), "CAA"},
		{"unlisted type", packet(t, dns.TypeNULL, 0, false), "other"},
		{"short", []byte{0, 1}, "other"},
		{"no question", make([]byte, 12), "other"},
		{"truncated name", packet(t, dns.TypeA, 0, false)[:14], "other"},
	} {
		if got := qtypeNames[qtypeIndex(tt.msg)]; got != tt.want {
			t.Errorf("%s: qtype %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestClientQueryDoesNotAllocate(t *testing.T) {
	o := NewObserver()
	q := &observe.Query{Transport: observe.UDP, FlavourName: "unfiltered",
		Query: packet(t, dns.TypeA, 0, false), Response: packet(t, dns.TypeA, 0, true),
		Received: time.Now(), Duration: time.Millisecond, Cached: true}
	o.ClientQuery(q)
	if allocs := testing.AllocsPerRun(100, func() { o.ClientQuery(q) }); allocs != 0 {
		t.Errorf("ClientQuery made %.1f allocations, want 0", allocs)
	}
}

// timeoutError is a net.Error that timed out, as a deadline gives.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func TestUpstreamFailureKinds(t *testing.T) {
	refused := &net.OpError{Op: "read", Net: "udp", Err: errors.New("connection refused")}
	for _, tt := range []struct {
		name string
		u    observe.Upstream
		want string
	}{
		{"answer", observe.Upstream{Response: new(dns.Msg)}, ""},
		{"SERVFAIL", observe.Upstream{Response: &dns.Msg{MsgHdr: dns.MsgHdr{Rcode: dns.RcodeServerFailure}}}, "servfail"},
		{"REFUSED", observe.Upstream{Response: &dns.Msg{MsgHdr: dns.MsgHdr{Rcode: dns.RcodeRefused}}}, "refused"},
		{"timeout", observe.Upstream{Err: fmt.Errorf("query x: %w", exchange.ErrTimeout)}, "timeout"},
		{"deadline", observe.Upstream{Err: context.DeadlineExceeded}, "timeout"},
		{"net timeout", observe.Upstream{Err: fmt.Errorf("read: %w", timeoutError{})}, "timeout"},
		{"canceled", observe.Upstream{Err: context.Canceled}, "canceled"},
		{"malformed", observe.Upstream{Err: exchange.ErrMalformed}, "malformed"},
		{"forbidden", observe.Upstream{Err: exchange.ErrForbidden}, "forbidden"},
		{"network", observe.Upstream{Err: fmt.Errorf("query x: %w", refused)}, "network"},
		{"other", observe.Upstream{Err: errors.New("strange")}, "other"},
	} {
		kind, failed := classifyFailure(&tt.u)
		got := ""
		if failed {
			got = failureKindNames[kind]
		}
		if got != tt.want {
			t.Errorf("%s: kind %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestUpstreamServerCap(t *testing.T) {
	o := NewObserver()
	for i := range MaxServerLabels + 10 {
		server := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)}), 53)
		o.UpstreamQuery(&observe.Upstream{Server: server, RTT: time.Millisecond, Response: new(dns.Msg)})
		o.UpstreamQuery(&observe.Upstream{Server: server, Err: exchange.ErrTimeout})
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(o)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		servers := map[string]float64{}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() != "server" {
					continue
				}
				if f.GetName() == "bulwark_upstream_rtt_seconds" {
					servers[l.GetValue()] += float64(m.GetHistogram().GetSampleCount())
				} else {
					servers[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
		if len(servers) == 0 {
			continue
		}
		if len(servers) != MaxServerLabels+1 {
			t.Errorf("%s has %d server labels, want %d and other", f.GetName(), len(servers), MaxServerLabels)
		}
		if servers["other"] != 10 {
			t.Errorf("%s{server=\"other\"} = %v, want 10", f.GetName(), servers["other"])
		}
		if servers["192.0.0.0"] != 1 {
			t.Errorf("%s{server=\"192.0.0.0\"} = %v, want 1", f.GetName(), servers["192.0.0.0"])
		}
	}
}

func TestUpstreamMetrics(t *testing.T) {
	want := `
# HELP bulwark_upstream_failures_total Queries to authoritative servers that failed, by server address and kind of failure.
# TYPE bulwark_upstream_failures_total counter
bulwark_upstream_failures_total{kind="timeout",server="192.0.2.53"} 1
`
	if err := testutil.CollectAndCompare(testObserver(), strings.NewReader(want), "bulwark_upstream_failures_total"); err != nil {
		t.Error(err)
	}
}

// TestUpstreamSpoofedCounted checks that responses dropped for a wrong
// client cookie count once each, beside the outcome of their query.
func TestUpstreamSpoofedCounted(t *testing.T) {
	o := NewObserver()
	server := netip.MustParseAddrPort("192.0.2.53:53")
	o.UpstreamQuery(&observe.Upstream{Server: server, RTT: time.Millisecond, Response: new(dns.Msg), Spoofed: 2})
	o.UpstreamQuery(&observe.Upstream{Server: server, Err: exchange.ErrTimeout, Spoofed: 1})
	want := `
# HELP bulwark_upstream_failures_total Queries to authoritative servers that failed, by server address and kind of failure.
# TYPE bulwark_upstream_failures_total counter
bulwark_upstream_failures_total{kind="spoofed",server="192.0.2.53"} 3
bulwark_upstream_failures_total{kind="timeout",server="192.0.2.53"} 1
`
	if err := testutil.CollectAndCompare(o, strings.NewReader(want), "bulwark_upstream_failures_total"); err != nil {
		t.Error(err)
	}
}
