package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"bulwark/test/labkit"

	"github.com/miekg/dns"
)

// guardConfig lowers the guard's thresholds so that a flood of a few
// hundred queries a second, for a few seconds, is enough to protect a zone.
const guardConfig = `guard:
  window: 2s
  min_miss_rate: 50
  failure_ratio: 0.7
  hold: 3s
  max_hold: 3s
  probe_rate: 2
`

// guardNode is a Bulwark of its own for a guard test, with its DNS,
// metrics and admin addresses.
type guardNode struct {
	dns, metrics, admin string
}

// startGuardNode starts a Bulwark with guardConfig on ports port+120 to
// port+122 and stops it at the end of the test.
func startGuardNode(t *testing.T) guardNode {
	t.Helper()
	n := guardNode{
		dns:     net.JoinHostPort(resolver, strconv.Itoa(port+120)),
		metrics: "127.0.0.1:" + strconv.Itoa(port+121),
		admin:   "127.0.0.1:" + strconv.Itoa(port+122),
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "guard.yaml")
	writeDerivedConfig(t, path, port+120, "admin:\n  listen: "+n.admin+"\n"+guardConfig)
	replaceInFile(t, path, "  listen: 127.0.0.1:0\n", "  listen: "+n.metrics+"\n")
	cmd, err := labkit.StartBulwark(binary, path, n.dns, filepath.Join(dir, "guard.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { labkit.StopProcess(cmd) })
	return n
}

// guardFlood sends random names under zone to addr at about qps queries a
// second for d, from one socket, and returns the queries sent.
func guardFlood(t *testing.T, addr, zone string, qps int, d time.Duration) int {
	t.Helper()
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Error(err) // runs on a goroutine of its own
		return 0
	}
	defer conn.Close()
	go func() { // drain the responses so the socket buffer never fills
		buf := make([]byte, 4096)
		for {
			if _, err := conn.Read(buf); err != nil {
				return
			}
		}
	}()
	const tick = 10 * time.Millisecond
	perTick := max(1, qps*int(tick)/int(time.Second))
	sent := 0
	m := new(dns.Msg)
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(tick) {
		for range perTick {
			m.SetQuestion(fmt.Sprintf("r%x.%s", rand.Uint64(), zone), dns.TypeA)
			m.Id = dns.Id()
			wire, err := m.Pack()
			if err != nil {
				t.Error(err) // runs on a goroutine of its own
				return sent
			}
			if _, err := conn.Write(wire); err == nil {
				sent++
			}
		}
	}
	return sent
}

// protectedZones returns the zones that the node's admin API lists.
func protectedZones(t *testing.T, n guardNode) []string {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + n.admin + "/v1/guard/protected")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/guard/protected: %s", resp.Status)
	}
	var list []struct {
		Zone string `json:"zone"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatalf("GET /v1/guard/protected: %v", err)
	}
	var zones []string
	for _, p := range list {
		zones = append(zones, p.Zone)
	}
	return zones
}

// scrapeSum returns the sum of the samples of the named metrics at addr.
func guardScrapeSum(t *testing.T, addr string, names ...string) float64 {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	total := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, name := range names {
			if rest, ok := strings.CutPrefix(line, name); ok && (rest[0] == ' ' || rest[0] == '{') {
				v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
				if err != nil {
					t.Fatalf("metrics line %q: %v", line, err)
				}
				total += v
			}
		}
	}
	return total
}

// upstreamQueries returns the queries the node has sent to authoritative
// servers: those answered, counted by the RTT histogram, and those failed.
func guardUpstreamQueries(t *testing.T, n guardNode) float64 {
	return guardScrapeSum(t, n.metrics, "bulwark_upstream_rtt_seconds_count", "bulwark_upstream_failures_total")
}

// query sends one query for name and qtype to addr.
func guardQuery(t *testing.T, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.SetEdns0(1232, true)
	r, _, err := (&dns.Client{Timeout: 5 * time.Second}).Exchange(m, addr)
	if err != nil {
		t.Fatalf("query %s %s: %v", name, dns.TypeToString[qtype], err)
	}
	return r
}

func guardEDEText(m *dns.Msg) string {
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				return e.ExtraText
			}
		}
	}
	return ""
}

func TestGuardRandomSubdomainFlood(t *testing.T) {
	tests := []struct {
		name string
		zone string
		// other is a name of another zone, never queried before the flood.
		other string
		// signed zones answer random names NXDOMAIN from NSEC records,
		// so they are never protected.
		signed bool
	}{
		{"unsigned", lab.Info.NegativeTTLZone, "x.com.", false},
		{"signed", "", lab.Info.DNSSECZone, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := startGuardNode(t)
			zone := tt.zone
			if tt.signed {
				zone = signedNXDomainZone(t, n)
			}
			checkFlood(t, n, zone, tt.other, tt.signed)
		})
	}
}

// signedNXDomainZone returns a signed popular zone of the lab without a
// wildcard at the apex, where a random name is a validated NXDOMAIN.
func signedNXDomainZone(t *testing.T, n guardNode) string {
	t.Helper()
	for _, zone := range lab.Info.SignedPopular {
		r := guardQuery(t, n.dns, "no-such-name."+zone, dns.TypeA)
		if r.Rcode == dns.RcodeNameError && r.AuthenticatedData {
			return zone
		}
	}
	t.Fatalf("no signed popular zone answers a random name with a validated NXDOMAIN")
	return ""
}

func checkFlood(t *testing.T, n guardNode, zone, other string, signed bool) {
	// The zone's SOA is cached before the flood, and www resolves, so
	// the guard knows that it exists.
	if r := guardQuery(t, n.dns, zone, dns.TypeSOA); r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		t.Fatalf("%s SOA before the flood: rcode %s, %d answers, want NOERROR with the SOA", zone, dns.RcodeToString[r.Rcode], len(r.Answer))
	}
	known := "www." + zone
	if r := guardQuery(t, n.dns, known, dns.TypeA); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("%s A before the flood: rcode %s, want NOERROR", known, dns.RcodeToString[r.Rcode])
	}

	// First half of the flood: the zone becomes protected.
	var sent atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		sent.Add(int64(guardFlood(t, n.dns, zone, 400, 3*time.Second)))
	}()
	time.Sleep(1500 * time.Millisecond)
	zones := protectedZones(t, n)
	switch {
	case !signed && !slices.Contains(zones, zone):
		t.Errorf("protected zones during the flood = %v, want %s", zones, zone)
	case signed && len(zones) > 0:
		t.Errorf("protected zones during the flood = %v, want none: NSEC records answer it", zones)
	}
	want := 1.0
	if signed {
		want = 0
	}
	if v := guardScrapeSum(t, n.metrics, "bulwark_guard_zones_protected"); v != want {
		t.Errorf("bulwark_guard_zones_protected = %v during the flood, want %v", v, want)
	}

	// Second half: upstream queries stay near the probe budget while the
	// flood goes on, and the rest of the resolver works.
	before := guardUpstreamQueries(t, n)
	start := time.Now()
	if r := guardQuery(t, n.dns, zone, dns.TypeSOA); r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		t.Errorf("cached %s SOA during the flood: rcode %s, %d answers, want NOERROR with the SOA", zone, dns.RcodeToString[r.Rcode], len(r.Answer))
	}
	if r := guardQuery(t, n.dns, other, dns.TypeSOA); r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		t.Errorf("%s SOA of another zone during the flood: rcode %s, %d answers, want NOERROR", other, dns.RcodeToString[r.Rcode], len(r.Answer))
	}
	// A type of the known name that is not cached goes to the servers,
	// protected or not.
	if r := guardQuery(t, n.dns, known, dns.TypeTXT); r.Rcode != dns.RcodeSuccess {
		t.Errorf("%s TXT during the flood: rcode %s, EDE %q, want NOERROR: the name is known to exist", known, dns.RcodeToString[r.Rcode], guardEDEText(r))
	}
	random := "guard-check." + zone
	r := guardQuery(t, n.dns, random, dns.TypeA)
	switch {
	case signed && r.Rcode != dns.RcodeNameError:
		t.Errorf("%s A during the flood of a signed zone: rcode %s, want NXDOMAIN from NSEC records", random, dns.RcodeToString[r.Rcode])
	case !signed && (r.Rcode != dns.RcodeServerFailure || !strings.Contains(guardEDEText(r), zone)):
		t.Errorf("%s A during the flood: rcode %s, EDE %q, want SERVFAIL with an EDE naming %s", random, dns.RcodeToString[r.Rcode], guardEDEText(r), zone)
	}
	<-done
	elapsed := time.Since(start).Seconds()
	grown := guardUpstreamQueries(t, n) - before
	// Probes at 2 a second, the query for the other zone and its chain
	// (a few dozen at most), and slack for the queries of the flood
	// admitted before protection that ended in this interval.
	if limit := 2*elapsed + 60; grown > limit {
		t.Errorf("upstream queries grew by %v in %.1fs of a protected flood of %d queries, want at most %.0f", grown, elapsed, sent.Load(), limit)
	}
	if !signed {
		if shed := guardScrapeSum(t, n.metrics, "bulwark_guard_upstream_shed_total"); shed < 100 {
			t.Errorf("bulwark_guard_upstream_shed_total = %v after the flood, want at least 100", shed)
		}
		if local := guardScrapeSum(t, n.metrics, "bulwark_guard_local_answers_total"); local < 100 {
			t.Errorf("bulwark_guard_local_answers_total = %v after the flood, want at least 100", local)
		}
	}

	if signed {
		return
	}
	// Protection ends after the window and the hold, with the sweep.
	deadline := time.Now().Add(12 * time.Second)
	for slices.Contains(protectedZones(t, n), zone) {
		if time.Now().After(deadline) {
			t.Fatalf("%s still protected 12s after the flood, want the hold of 3s over", zone)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if v := guardScrapeSum(t, n.metrics, "bulwark_guard_zones_protected"); v != 0 {
		t.Errorf("bulwark_guard_zones_protected = %v after the flood, want 0", v)
	}
	after := "after-flood." + zone
	if r := guardQuery(t, n.dns, after, dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("%s A after protection ended: rcode %s, EDE %q, want NXDOMAIN from the zone", after, dns.RcodeToString[r.Rcode], guardEDEText(r))
	}
}

// replaceInFile replaces the first old in the file at path with new.
func replaceInFile(t *testing.T, path, old, new string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s does not contain %q", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(data), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}
