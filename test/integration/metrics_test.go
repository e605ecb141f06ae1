package integration

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"bulwark/lab/labspec"

	"github.com/miekg/dns"
)

// scrape returns the samples of the lab resolver's metrics, keyed by the
// metric name with its labels as the text format writes them.
func scrape(t *testing.T) map[string]float64 {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + lab.Info.MetricsAddress + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	samples := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	return samples
}

// sample is one line of the text format: a metric name and its labels.
type sample struct {
	name   string
	labels map[string]string
}

// parseSample splits a key of scrape into the metric name and its labels.
// Label values in Bulwark's metrics hold no quote, comma or brace.
func parseSample(t *testing.T, key string) sample {
	t.Helper()
	s := sample{labels: map[string]string{}}
	name, rest, ok := strings.Cut(key, "{")
	s.name = name
	if !ok {
		return s
	}
	for _, pair := range strings.Split(strings.TrimSuffix(rest, "}"), ",") {
		k, v, ok := strings.Cut(pair, "=")
		if !ok {
			t.Fatalf("metrics sample %q: label %q has no value", key, pair)
		}
		s.labels[k] = strings.Trim(v, `"`)
	}
	return s
}

// sumDelta returns how much the samples of metric name whose labels
// include want grew between before and after.
func sumDelta(t *testing.T, before, after map[string]float64, name string, want map[string]string) float64 {
	t.Helper()
	total := 0.0
	for key, v := range after {
		s := parseSample(t, key)
		if s.name != name {
			continue
		}
		matches := true
		for k, w := range want {
			if s.labels[k] != w {
				matches = false
			}
		}
		if matches {
			total += v - before[key]
		}
	}
	return total
}

// workload sends queries and tallies them by the labels that
// bulwark_queries_total should count them under.
type workload struct {
	t *testing.T
	// counts is keyed by transport, flavour, qtype and rcode.
	counts map[[4]string]float64
	total  float64
}

// send sends m over transport ("udp", "tcp" or "dot") to the unfiltered
// or the protective flavour and tallies the response.
func (w *workload) send(transport, flavour string, m *dns.Msg) *dns.Msg {
	w.t.Helper()
	var r *dns.Msg
	if transport == "dot" {
		sni := ""
		if flavour == "protective" {
			sni = labspec.ProtectiveSNI
		}
		r = exchangeDoT(w.t, lab.Info.DoTAddress, sni, m)
	} else {
		addr := lab.Info.ResolverAddress
		if flavour == "protective" {
			addr = lab.Info.Policy.ProtectiveAddress
		}
		c := &dns.Client{Net: transport, Timeout: 10 * time.Second}
		var err error
		if r, _, err = c.Exchange(m, addr); err != nil {
			w.t.Fatalf("%s %s %s to %s: %v", transport, m.Question[0].Name, dns.TypeToString[m.Question[0].Qtype], addr, err)
		}
	}
	qtype := dns.TypeToString[m.Question[0].Qtype]
	if m.Question[0].Qtype == dns.TypeNULL {
		qtype = "other"
	}
	w.counts[[4]string{transport, flavour, qtype, dns.RcodeToString[r.Rcode]}]++
	w.total++
	return r
}

// TestMetricsCountAKnownWorkload sends queries of known transports,
// flavours and qtypes, some blocked by a list and some answered from the
// answer cache, and checks that the counters grew by exactly the
// workload's counts.
func TestMetricsCountAKnownWorkload(t *testing.T) {
	nonce := strconv.FormatInt(time.Now().UnixNano(), 36)
	clean, listed := lab.Info.Policy.CleanName, lab.Info.Policy.ListedName
	w := &workload{t: t, counts: map[[4]string]float64{}}
	before := scrape(t)

	// New names, asked twice each: a miss, then an answer cache hit.
	const nxNames = 4
	for round := range 2 {
		for i := range nxNames {
			name := "nx" + strconv.Itoa(i) + "-" + nonce + "." + clean
			if r := w.send("udp", "unfiltered", dnsQuery(name, dns.TypeA, false)); r.Rcode != dns.RcodeNameError {
				t.Fatalf("round %d: %s got %s, want NXDOMAIN", round, name, dns.RcodeToString[r.Rcode])
			}
		}
	}
	// Known qtypes over each transport, and one type counted as other.
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypeTXT, dns.TypeNULL} {
		w.send("udp", "unfiltered", dnsQuery(clean, qtype, false))
		w.send("tcp", "unfiltered", dnsQuery(clean, qtype, false))
	}
	for range 3 {
		w.send("dot", "unfiltered", dnsQuery(clean, dns.TypeA, false))
	}
	// Blocked names, resolved once and then served from the cache, over
	// two transports of the protective flavour.
	const blockedQueries = 6
	for range 2 {
		for _, name := range []string{listed, lab.Info.Policy.CNAMEToListed} {
			w.send("udp", "protective", dnsQuery(name, dns.TypeA, false))
		}
		w.send("dot", "protective", dnsQuery(listed, dns.TypeAAAA, false))
	}
	const allowedQueries = 2
	for range allowedQueries {
		w.send("udp", "protective", dnsQuery(lab.Info.Policy.AllowedName, dns.TypeA, false))
	}
	// The server counts a query after sending its response, so the last
	// counts may lag the client by a moment.
	after := scrape(t)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); after = scrape(t) {
		if sumDelta(t, before, after, "bulwark_queries_total", nil) >= w.total {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	for labels, want := range w.counts {
		got := sumDelta(t, before, after, "bulwark_queries_total", map[string]string{
			"transport": labels[0], "flavour": labels[1], "qtype": labels[2], "rcode": labels[3],
		})
		if got != want {
			t.Errorf("bulwark_queries_total%v grew by %v, want %v", labels, got, want)
		}
	}
	if got := sumDelta(t, before, after, "bulwark_queries_total", nil); got != w.total {
		t.Errorf("bulwark_queries_total grew by %v in all, want %v", got, w.total)
	}
	if got := sumDelta(t, before, after, "bulwark_responses_total", map[string]string{"rcode": "NXDOMAIN"}); got < nxNames*2 {
		t.Errorf("bulwark_responses_total{rcode=\"NXDOMAIN\"} grew by %v, want at least %d", got, nxNames*2)
	}
	hits := sumDelta(t, before, after, "bulwark_answer_cache_lookups_total", map[string]string{"result": "hit"})
	misses := sumDelta(t, before, after, "bulwark_answer_cache_lookups_total", map[string]string{"result": "miss"})
	if hits+misses != w.total {
		t.Errorf("cache hits %v and misses %v, want %v in all", hits, misses, w.total)
	}
	if hits < nxNames {
		t.Errorf("cache hits grew by %v, want at least the %d repeated new names", hits, nxNames)
	}
	udpHits := sumDelta(t, before, after, "bulwark_query_duration_seconds_count", map[string]string{"transport": "udp", "cache": "hit"})
	udpAll := sumDelta(t, before, after, "bulwark_query_duration_seconds_count", map[string]string{"transport": "udp"})
	if udpHits < nxNames {
		t.Errorf("UDP latency samples of cache hits grew by %v, want at least %d", udpHits, nxNames)
	}
	var udpQueries float64
	for labels, n := range w.counts {
		if labels[0] == "udp" {
			udpQueries += n
		}
	}
	if udpAll != udpQueries {
		t.Errorf("UDP latency samples grew by %v, want %v", udpAll, udpQueries)
	}

	blocked := sumDelta(t, before, after, "bulwark_policy_actions_total", nil) -
		sumDelta(t, before, after, "bulwark_policy_actions_total", map[string]string{"action": "allow"})
	if blocked != blockedQueries {
		t.Errorf("blocking policy actions grew by %v, want %d (half of them from the answer cache)", blocked, blockedQueries)
	}
	allowed := sumDelta(t, before, after, "bulwark_policy_actions_total", map[string]string{"action": "allow", "list": "lab-allow"})
	if allowed != allowedQueries {
		t.Errorf("bulwark_policy_actions_total{list=\"lab-allow\",action=\"allow\"} grew by %v, want %d", allowed, allowedQueries)
	}
	checkLabels(t, after)
}

// TestMetricsCountUpstreamServers checks that the upstream metrics name
// lab server addresses only.
func TestMetricsCountUpstreamServers(t *testing.T) {
	nonce := strconv.FormatInt(time.Now().UnixNano(), 36)
	c := &dns.Client{Timeout: 10 * time.Second}
	if _, _, err := c.Exchange(dnsQuery("up-"+nonce+"."+lab.Info.Policy.CleanName, dns.TypeA, false), lab.Info.ResolverAddress); err != nil {
		t.Fatal(err)
	}
	labAddrs := map[string]bool{}
	for _, s := range lab.Info.Servers {
		labAddrs[s.Address] = true
	}
	responses := 0.0
	for key, v := range scrape(t) {
		s := parseSample(t, key)
		server, ok := s.labels["server"]
		if !ok {
			continue
		}
		if !labAddrs[server] && server != "other" {
			t.Errorf("%s names %s, which is no lab server address", key, server)
		}
		if s.name == "bulwark_upstream_rtt_seconds_count" {
			responses += v
		}
	}
	if responses == 0 {
		t.Error("bulwark_upstream_rtt_seconds counts no response from any lab server")
	}
}

// TestMetricsCountSecureValidations resolves new questions in a signed
// lab zone and checks that each resolution counts as secure. They ask
// types of private use at an existing name, for NODATA answers: a new
// name that cached NSEC records prove absent would be answered without a
// resolution, as a cached answer is, and so not counted.
func TestMetricsCountSecureValidations(t *testing.T) {
	zone := ""
	for _, c := range lab.Info.DNSSECCases {
		if c.Signed && strings.HasPrefix(c.Name, "alg13") {
			zone = c.Zone
		}
	}
	if zone == "" {
		t.Fatal("lab.json has no signed DNSSEC case alg13")
	}
	// A type of its own for each run, so that no run finds the answers
	// of another in the cache.
	first := uint16(65280 + time.Now().UnixNano()%200)
	name := "www." + zone
	before := scrape(t)
	const names = 3
	c := &dns.Client{Timeout: 10 * time.Second}
	for i := range uint16(names) {
		r, _, err := c.Exchange(dnsQuery(name, first+i, true), lab.Info.ResolverAddress)
		if err != nil {
			t.Fatal(err)
		}
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 || !r.AuthenticatedData {
			t.Fatalf("%s TYPE%d: %s with %d answers and AD %v, want NODATA with AD", name, first+i, dns.RcodeToString[r.Rcode], len(r.Answer), r.AuthenticatedData)
		}
	}
	after := scrape(t)
	for result, want := range map[string]float64{"secure": names, "insecure": 0, "bogus": 0, "indeterminate": 0} {
		key := `bulwark_dnssec_validations_total{result="` + result + `"}`
		if got := after[key] - before[key]; got != want {
			t.Errorf("%s grew by %v, want %v", key, got, want)
		}
	}
}

// checkLabels fails for any label value that holds the address of the
// test's client.
func checkLabels(t *testing.T, samples map[string]float64) {
	t.Helper()
	for key := range samples {
		for name, value := range parseSample(t, key).labels {
			if strings.Contains(value, "127.0.0.1") || strings.Contains(value, "127.0.0.2") {
				t.Errorf("metric %s: label %s holds a client address", key, name)
			}
		}
	}
	if samples[`bulwark_policy_list_rules{category="malware",list="urlhaus-hosts"}`] == 0 {
		t.Error("no rules reported for the urlhaus-hosts list")
	}
}

func TestHealthAndReadinessEndpoints(t *testing.T) {
	c := &http.Client{Timeout: 5 * time.Second}
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := c.Get("http://" + lab.Info.MetricsAddress + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s on a running resolver: %s, want 200", path, resp.Status)
		}
	}
}
