package integration

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"bulwark/test/labkit"

	"github.com/miekg/dns"
)

// intelNode is a Bulwark of its own with the traffic analysis on, on
// ports port+150 to port+152.
type intelNode struct {
	dns, metrics, admin string
	cfg, dir            string
}

// intelConfig turns the analysis on with a window of 2 seconds, no NOD
// warm-up, state files in dir, and NXDOMAIN thresholds that a burst of
// 80 queries crosses.
func intelConfig(dir string) string {
	return fmt.Sprintf(`intel:
  enabled: true
  window: 2s
  save_interval: 1s
  nod:
    state_file: %s
    warm_up: 0s
  popularity:
    state_file: %s
  nxdomain:
    min_queries: 20
    min_distinct: 10
`, filepath.Join(dir, "nod.state"), filepath.Join(dir, "popularity.json"))
}

func newIntelNode(t *testing.T) intelNode {
	t.Helper()
	n := intelNode{
		dns:     net.JoinHostPort(resolver, strconv.Itoa(port+150)),
		metrics: "127.0.0.1:" + strconv.Itoa(port+151),
		admin:   "127.0.0.1:" + strconv.Itoa(port+152),
		dir:     t.TempDir(),
	}
	n.cfg = filepath.Join(n.dir, "intel.yaml")
	writeDerivedConfig(t, n.cfg, port+150, "admin:\n  listen: "+n.admin+"\n"+intelConfig(n.dir))
	replaceInFile(t, n.cfg, "  listen: 127.0.0.1:0\n", "  listen: "+n.metrics+"\n")
	return n
}

// start runs the node until stop is called or the test ends.
func (n intelNode) start(t *testing.T, logName string) (stop func()) {
	t.Helper()
	cmd, err := labkit.StartBulwark(binary, n.cfg, n.dns, filepath.Join(n.dir, logName))
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			if err := labkit.StopProcess(cmd); err != nil {
				t.Errorf("stop bulwark: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	return stop
}

// kdigA queries name A at addr with kdig and fails the test unless the
// answer is NOERROR.
func kdigA(t *testing.T, addr, name string) {
	t.Helper()
	host, p, _ := net.SplitHostPort(addr)
	out, err := exec.Command("kdig", "@"+host, "-p", p, "+timeout=5", "+retry=1", name, "A").CombinedOutput()
	if err != nil {
		t.Fatalf("kdig %s: %v\n%s", name, err, out)
	}
	if !strings.Contains(string(out), "status: NOERROR") {
		t.Fatalf("kdig %s: want status NOERROR, got\n%s", name, out)
	}
}

// intelFinding is the part of a finding the test checks.
type intelFinding struct {
	Detector  string  `json:"detector"`
	Domain    string  `json:"domain"`
	Score     float64 `json:"score"`
	Malicious bool    `json:"malicious"`
	Reason    string  `json:"reason"`
}

func (n intelNode) findings(t *testing.T) []intelFinding {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + n.admin + "/v1/intel/findings")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/intel/findings: %s", resp.Status)
	}
	var out []intelFinding
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("GET /v1/intel/findings: %v", err)
	}
	return out
}

func findingFor(list []intelFinding, detector, domain string) (intelFinding, bool) {
	for _, f := range list {
		if f.Detector == detector && f.Domain == domain {
			return f, true
		}
	}
	return intelFinding{}, false
}

// waitFinding polls the admin API for up to 15 seconds, 2 windows and
// more, until a finding of detector for domain is listed.
func (n intelNode) waitFinding(t *testing.T, detector, domain string) (intelFinding, []intelFinding) {
	t.Helper()
	var list []intelFinding
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		list = n.findings(t)
		if f, ok := findingFor(list, detector, domain); ok {
			return f, list
		}
	}
	t.Fatalf("no %s finding for %s within 15s; findings: %+v", detector, domain, list)
	return intelFinding{}, nil
}

// randomNXBurst sends count queries for random names under zone, one at a
// time, and returns how many were answered NXDOMAIN.
func randomNXBurst(t *testing.T, addr, zone string, count int) int {
	t.Helper()
	client := &dns.Client{Timeout: 3 * time.Second}
	nx := 0
	for range count {
		m := new(dns.Msg)
		m.SetQuestion(fmt.Sprintf("q%012x.%s", rand.Uint64()>>16, zone), dns.TypeA)
		r, _, err := client.Exchange(m, addr)
		if err == nil && r.Rcode == dns.RcodeNameError {
			nx++
		}
	}
	return nx
}

func TestIntelFindsNewDomainsAndNXDomainBurst(t *testing.T) {
	n := newIntelNode(t)
	stop := n.start(t, "intel.log")

	// Domains this node has never resolved, from the lab's popular zones.
	kdigA(t, n.dns, "feedly.com")
	kdigA(t, n.dns, "www.nginx.org")
	if nx := randomNXBurst(t, n.dns, "lab-negttl.org.", 80); nx < 70 {
		t.Fatalf("random names under lab-negttl.org: %d of 80 NXDOMAIN, want at least 70", nx)
	}

	nod, list := n.waitFinding(t, "nod", "feedly.com")
	if nod.Malicious || !strings.Contains(nod.Reason, "newly observed") {
		t.Errorf("NOD finding for feedly.com = %+v, want not malicious with a reason", nod)
	}
	if _, ok := findingFor(list, "nod", "nginx.org"); !ok {
		t.Errorf("no NOD finding for nginx.org; findings: %+v", list)
	}
	flood, _ := n.waitFinding(t, "nxdomain", "lab-negttl.org")
	if !flood.Malicious || flood.Score < 0.5 || !strings.Contains(flood.Reason, "NXDOMAIN") {
		t.Errorf("NXDOMAIN finding = %+v, want malicious with score at least 0.5", flood)
	}
	if _, ok := findingFor(list, "nod", "lab-negttl.org"); ok {
		t.Error("NOD finding for lab-negttl.org, whose names were all NXDOMAIN")
	}

	if got := guardScrapeSum(t, n.metrics, `bulwark_intel_findings_total{detector="nod"}`); got < 2 {
		t.Errorf("bulwark_intel_findings_total{detector=\"nod\"} = %g, want at least 2", got)
	}
	if got := guardScrapeSum(t, n.metrics, `bulwark_intel_findings_total{detector="nxdomain"}`); got < 1 {
		t.Errorf("bulwark_intel_findings_total{detector=\"nxdomain\"} = %g, want at least 1", got)
	}
	if got := guardScrapeSum(t, n.metrics, `bulwark_intel_events_total{result="queued"}`); got < 82 {
		t.Errorf("bulwark_intel_events_total{result=\"queued\"} = %g, want at least 82", got)
	}
	if got := guardScrapeSum(t, n.metrics, "bulwark_intel_nod_domains"); got < 2 {
		t.Errorf("bulwark_intel_nod_domains = %g, want at least 2", got)
	}

	// A restart loads the saved seen-set: a domain resolved before is
	// not new, one never resolved is.
	stop()
	for _, name := range []string{"nod.state", "popularity.json"} {
		if _, err := os.Stat(filepath.Join(n.dir, name)); err != nil {
			t.Errorf("state file after stop: %v", err)
		}
	}
	n.start(t, "intel-restarted.log")
	kdigA(t, n.dns, "feedly.com")
	kdigA(t, n.dns, "wikipedia.org")
	_, list = n.waitFinding(t, "nod", "wikipedia.org")
	if f, ok := findingFor(list, "nod", "feedly.com"); ok {
		t.Errorf("NOD finding for feedly.com after the restart: %+v, want none since it was seen before", f)
	}
}
