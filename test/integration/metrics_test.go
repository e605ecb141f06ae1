package integration

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

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

// TestMetricsCountAKnownWorkload sends a known number of queries over UDP
// and DoT and checks that the counters grew by that much.
func TestMetricsCountAKnownWorkload(t *testing.T) {
	before := scrape(t)
	const udpQueries, dotQueries, nxQueries = 15, 5, 4
	c := &dns.Client{Timeout: 5 * time.Second}
	for i := range udpQueries {
		name := lab.Info.Policy.CleanName
		if i < nxQueries {
			name = "nx" + strconv.Itoa(i) + "." + name
		}
		if _, _, err := c.Exchange(dnsQuery(name, dns.TypeA, false), lab.Info.ResolverAddress); err != nil {
			t.Fatal(err)
		}
	}
	for range dotQueries {
		exchangeDoT(t, lab.Info.DoTAddress, "", dnsQuery(lab.Info.Policy.CleanName, dns.TypeA, false))
	}
	after := scrape(t)
	delta := func(key string) float64 { return after[key] - before[key] }
	for _, tt := range []struct {
		key  string
		want float64
	}{
		{`bulwark_queries_total{transport="udp"}`, udpQueries},
		{`bulwark_queries_total{transport="dot"}`, dotQueries},
		{`bulwark_responses_total{rcode="NXDOMAIN"}`, nxQueries},
		{`bulwark_responses_total{rcode="NOERROR"}`, udpQueries + dotQueries - nxQueries},
	} {
		if got := delta(tt.key); got != tt.want {
			t.Errorf("%s grew by %v, want %v", tt.key, got, tt.want)
		}
	}
	hits, misses := delta(`bulwark_answer_cache_lookups_total{result="hit"}`), delta(`bulwark_answer_cache_lookups_total{result="miss"}`)
	if hits+misses != udpQueries+dotQueries {
		t.Errorf("cache hits %v and misses %v, want %d in all", hits, misses, udpQueries+dotQueries)
	}
	for key := range after {
		if strings.Contains(key, "127.0.0.1") {
			t.Errorf("metric %s names a client address", key)
		}
	}
	if after[`bulwark_policy_list_rules{category="malware",list="urlhaus-hosts"}`] == 0 {
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
