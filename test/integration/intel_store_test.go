package integration

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// storeNode is an intelNode on ports port+153 to port+156 with the
// candidate store on: one malicious finding of score 0.9 or more blocks.
type storeNode struct {
	intelNode
	// protective is the listener of the protective flavour.
	page, protective string
}

func newStoreNode(t *testing.T) storeNode {
	t.Helper()
	n := storeNode{intelNode: intelNode{
		dns:     net.JoinHostPort(resolver, strconv.Itoa(port+153)),
		metrics: "127.0.0.1:" + strconv.Itoa(port+154),
		admin:   "127.0.0.1:" + strconv.Itoa(port+155),
		dir:     t.TempDir(),
	}, page: "127.0.0.1:" + strconv.Itoa(port+156), protective: "127.0.0.2:" + strconv.Itoa(port+153)}
	n.cfg = filepath.Join(n.dir, "store.yaml")
	storeCfg := intelConfig(n.dir) + "  store:\n    enabled: true\n    state_file: " + filepath.Join(n.dir, "store.json") +
		"\n    auto_block_score: 0.9\n    min_findings: 1\n    blocking_detectors: [nxdomain, tunnel]\n    action: nxdomain\n    publish_interval: 500ms\n"
	writeDerivedConfig(t, n.cfg, port+153, "admin:\n  listen: "+n.admin+"\n"+storeCfg)
	replaceInFile(t, n.cfg, "  listen: 127.0.0.1:0\n", "  listen: "+n.metrics+"\n")
	replaceInFile(t, n.cfg, "  block_page:\n", "  block_page:\n    listen: "+n.page+"\n    review_file: "+filepath.Join(n.dir, "reviews.jsonl")+"\n")
	return n
}

// storeEntry is the part of an entry the test checks.
type storeEntry struct {
	Name      string `json:"name"`
	State     string `json:"state"`
	Category  string `json:"category"`
	DecidedBy string `json:"decided_by"`
	History   []struct {
		Kind   string `json:"kind"`
		Source string `json:"source"`
		To     string `json:"to"`
	} `json:"history"`
}

func (n storeNode) entry(t *testing.T, name string) (storeEntry, int) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + n.admin + "/v1/intel/entries/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e storeEntry
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
			t.Fatal(err)
		}
	}
	return e, resp.StatusCode
}

func (n storeNode) decide(t *testing.T, action, name, by string) storeEntry {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"name": name, "by": by, "note": "integration test"})
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Post("http://"+n.admin+"/v1/intel/"+action, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/intel/%s: %s", action, resp.Status)
	}
	var e storeEntry
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	return e
}

// kdigBlocked reports whether kdig gets the block answer for name: an
// NXDOMAIN with EDE 15 (Blocked) whose text names the store's list.
func kdigBlocked(t *testing.T, addr, name string) (bool, string) {
	t.Helper()
	host, p, _ := net.SplitHostPort(addr)
	out, err := exec.Command("kdig", "@"+host, "-p", p, "+timeout=3", "+retry=1", "+edns", name, "A").CombinedOutput()
	if err != nil {
		t.Fatalf("kdig %s: %v\n%s", name, err, out)
	}
	text := string(out)
	return strings.Contains(text, "status: NXDOMAIN") && strings.Contains(text, "EDE: 15") &&
		strings.Contains(text, "intel-malware"), text
}

// waitBlocked polls kdig every 100ms for up to limit and returns how long
// the block took to appear.
func waitBlocked(t *testing.T, addr, name string, want bool, limit time.Duration) (time.Duration, string) {
	t.Helper()
	start := time.Now()
	var out string
	for time.Since(start) < limit {
		var blocked bool
		if blocked, out = kdigBlocked(t, addr, name); blocked == want {
			return time.Since(start), out
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: blocked is not %v after %s; last answer:\n%s", name, want, limit, out)
	return 0, ""
}

func TestIntelStoreBlocksReviewsAndPersists(t *testing.T) {
	n := newStoreNode(t)
	stop := n.start(t, "store.log")
	const domain = "lab-negttl.org"

	if blocked, out := kdigBlocked(t, n.protective, "www."+domain+"."); blocked {
		t.Fatalf("blocked before any finding:\n%s", out)
	}
	if nx := randomNXBurst(t, n.dns, domain+".", 80); nx < 70 {
		t.Fatalf("random names under %s: %d of 80 NXDOMAIN, want at least 70", domain, nx)
	}
	n.waitFinding(t, "nxdomain", domain)
	// The finding is made when the window closes; the block must follow
	// within 5 seconds of it being listed.
	t.Cleanup(func() {
		if t.Failed() {
			for _, path := range []string{"/v1/policy/check?name=www." + domain, "/v1/policy/lists"} {
				if resp, err := http.Get("http://" + n.admin + path); err == nil {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					t.Logf("GET %s: %s", path, body)
				}
			}
			logText, _ := os.ReadFile(filepath.Join(n.dir, "store.log"))
			for _, line := range strings.Split(string(logText), "\n") {
				if strings.Contains(line, "intel") || strings.Contains(line, "policy") {
					t.Log(line)
				}
			}
		}
	})
	took, out := waitBlocked(t, n.protective, "www."+domain+".", true, 5*time.Second)
	t.Logf("blocked %s after the finding was listed", took)
	if !strings.Contains(out, "blocked automatically as") {
		t.Errorf("EDE text has no reason from the finding:\n%s", out)
	}
	e, status := n.entry(t, domain)
	// The burst's traffic also makes a tunnel finding, which may be the
	// strongest evidence.
	if status != http.StatusOK || e.State != "auto_blocked" || (e.Category != "nxdomain" && e.Category != "tunnel") {
		t.Fatalf("entry = %+v (HTTP %d), want auto_blocked nxdomain or tunnel", e, status)
	}
	if !hasEvent(e, "finding", "detector:nxdomain") || !hasEvent(e, "transition", "detector:nxdomain") {
		t.Errorf("history = %+v, want the nxdomain finding and the transition it caused", e.History)
	}

	// A block page report sends the block back to review.
	resp, err := http.PostForm("http://"+n.page+"/report", url.Values{"name": {"www." + domain}, "comment": {"my site"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /report: %s", resp.Status)
	}
	if e, _ := n.entry(t, domain); e.State != "review" {
		t.Errorf("after a report: state %s, want review", e.State)
	}
	waitBlocked(t, n.protective, "www."+domain+".", false, 5*time.Second)

	// The operator confirms, then rejects.
	if e := n.decide(t, "confirm", domain, "alice"); e.State != "confirmed" || e.DecidedBy != "alice" {
		t.Errorf("confirm: %+v, want confirmed by alice", e)
	}
	waitBlocked(t, n.protective, "www."+domain+".", true, 5*time.Second)
	if e := n.decide(t, "reject", domain, "bob"); e.State != "rejected" {
		t.Errorf("reject: %+v, want rejected", e)
	}
	waitBlocked(t, n.protective, "www."+domain+".", false, 5*time.Second)

	// The store survives a restart, with the decision and its history.
	stop()
	n.start(t, "store-restarted.log")
	e, status = n.entry(t, domain)
	if status != http.StatusOK || e.State != "rejected" || e.DecidedBy != "bob" {
		t.Errorf("after restart: %+v (HTTP %d), want rejected by bob", e, status)
	}
	var kinds []string
	for _, h := range e.History {
		kinds = append(kinds, h.Kind)
	}
	if !strings.Contains(strings.Join(kinds, ","), "report") {
		t.Errorf("history after restart = %v, want the report kept", kinds)
	}
	if blocked, out := kdigBlocked(t, n.protective, "www."+domain+"."); blocked {
		t.Errorf("a rejected entry blocks after the restart:\n%s", out)
	}
}

func hasEvent(e storeEntry, kind, source string) bool {
	for _, h := range e.History {
		if h.Kind == kind && h.Source == source {
			return true
		}
	}
	return false
}
