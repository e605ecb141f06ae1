package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"bulwark/internal/intel/indicator"
	"bulwark/internal/intel/misp"
	"bulwark/internal/intel/stix"
	"bulwark/internal/intel/taxii/taxiitest"
	"bulwark/test/labkit"
)

// sourcesNode is a Bulwark that pulls a TAXII collection and a MISP feed
// from a feed server of the test: DNS on port+163, admin API on port+164,
// metrics on port+165, and the feed server on port+166.
type sourcesNode struct {
	dns, admin, metrics, feeds string
	cfg, dir                   string
}

// startFeedServer serves, on addr until the test ends, a TAXII 2.1 API
// root under /api1/ and a MISP feed directory under /misp/.
func startFeedServer(t *testing.T, addr string, taxiiSrv *taxiitest.Server, mispDir string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("feed server: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/taxii2/", taxiiSrv)
	mux.Handle(taxiitest.RootPath, taxiiSrv)
	mux.Handle("/misp/", http.StripPrefix("/misp/", http.FileServer(http.Dir(mispDir))))
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
}

// taxiiObjects returns the objects of a STIX bundle of names, the
// identity of its creator first.
func taxiiObjects(t *testing.T, names ...string) []json.RawMessage {
	t.Helper()
	var ins []indicator.Indicator
	for _, n := range names {
		ins = append(ins, indicator.Indicator{Name: n, Category: "phishing", Confidence: 90, FirstSeen: time.Now().Add(-time.Hour)})
	}
	data, err := stix.Encode(ins, stix.Operator{Name: "Lab CERT"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var b struct {
		Objects []json.RawMessage `json:"objects"`
	}
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatal(err)
	}
	return b.Objects
}

func newSourcesNode(t *testing.T) sourcesNode {
	t.Helper()
	n := sourcesNode{
		dns:     net.JoinHostPort(resolver, strconv.Itoa(port+163)),
		admin:   "127.0.0.1:" + strconv.Itoa(port+164),
		metrics: "127.0.0.1:" + strconv.Itoa(port+165),
		feeds:   "127.0.0.1:" + strconv.Itoa(port+166),
		dir:     t.TempDir(),
	}
	token := filepath.Join(n.dir, "taxii.token")
	if err := os.WriteFile(token, []byte("lab-t0ken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	extra := fmt.Sprintf(`admin:
  listen: %s
share:
  taxii_state_file: %s
  sources:
    - name: cert-taxii
      type: taxii
      url: http://%s/api1/
      collection: lab-domains
      trust: 85
      mode: enforce
      token_file: %s
    - name: peer-misp
      type: misp
      url: http://%s/misp/
      trust: 40
`, n.admin, filepath.Join(n.dir, "taxii-state.json"), n.feeds, token, n.feeds)
	n.cfg = filepath.Join(n.dir, "sources.yaml")
	writeDerivedConfig(t, n.cfg, port+163, extra)
	replaceInFile(t, n.cfg, "  listen: 127.0.0.1:0\n", "  listen: "+n.metrics+"\n")
	return n
}

func (n sourcesNode) start(t *testing.T, logName string) (stop func()) {
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

// sourceReport is the part of GET /v1/intel/sources the test checks.
type sourceReport struct {
	Name      string `json:"name"`
	Trust     int    `json:"trust"`
	Mode      string `json:"mode"`
	Pulls     int    `json:"pulls"`
	Failures  int    `json:"failures"`
	LastError string `json:"last_error"`
	LastBatch *struct {
		Items      int `json:"items"`
		Indicators []struct {
			Name       string   `json:"name"`
			Source     string   `json:"source"`
			Trust      int      `json:"trust"`
			Mode       string   `json:"mode"`
			Provenance []string `json:"provenance"`
		} `json:"indicators"`
	} `json:"last_batch"`
}

func (n sourcesNode) sources(t *testing.T) map[string]sourceReport {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + n.admin + "/v1/intel/sources")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/intel/sources: %s", resp.Status)
	}
	var list []sourceReport
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatalf("GET /v1/intel/sources: %v", err)
	}
	out := map[string]sourceReport{}
	for _, s := range list {
		out[s.Name] = s
	}
	return out
}

// waitPulled polls the admin API for up to 20 seconds until every source
// in names has a batch, and returns the reports.
func (n sourcesNode) waitPulled(t *testing.T, names ...string) map[string]sourceReport {
	t.Helper()
	var got map[string]sourceReport
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		got = n.sources(t)
		done := true
		for _, name := range names {
			if got[name].LastBatch == nil {
				done = false
			}
		}
		if done {
			return got
		}
	}
	t.Fatalf("sources %v not pulled within 20s: %+v", names, got)
	return nil
}

// checkBatch fails unless the source's batch holds exactly want, each
// indicator tagged with the source, its trust and its mode.
func checkBatch(t *testing.T, r sourceReport, trust int, mode string, want ...string) {
	t.Helper()
	if r.Trust != trust || r.Mode != mode {
		t.Errorf("source %s: trust %d mode %q, want %d %q", r.Name, r.Trust, r.Mode, trust, mode)
	}
	var got []string
	for _, in := range r.LastBatch.Indicators {
		got = append(got, in.Name)
		if in.Source != r.Name || in.Trust != trust || in.Mode != mode {
			t.Errorf("source %s: indicator %s has source %q trust %d mode %q, want %s %d %q",
				r.Name, in.Name, in.Source, in.Trust, in.Mode, r.Name, trust, mode)
		}
		if len(in.Provenance) == 0 || !strings.HasPrefix(in.Provenance[0], r.Name) {
			t.Errorf("source %s: indicator %s has provenance %v, want it to name the source", r.Name, in.Name, in.Provenance)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") || r.LastBatch.Items != len(want) {
		t.Errorf("source %s: batch %v (%d items), want %v", r.Name, got, r.LastBatch.Items, want)
	}
}

func TestIntelSourcesImportTAXIIAndMISP(t *testing.T) {
	n := newSourcesNode(t)
	taxiiSrv := taxiitest.New("lab-t0ken")
	taxiiSrv.PageSize = 2 // three objects take two pages
	added := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	for i, obj := range taxiiObjects(t, "login-bank.example.", "pay-update.example.") {
		taxiiSrv.Add("lab-domains", obj, added.Add(time.Duration(i)*time.Second))
	}
	mispDir := filepath.Join(n.dir, "misp")
	mispIns := []indicator.Indicator{
		{Name: "c2-node.example.", Category: "c2", Reason: "beacon seen by the peer", LastSeen: added},
		{Name: "dropper.example.", Category: "malware", LastSeen: added},
	}
	if _, err := misp.WriteFeed(mispDir, mispIns, misp.Export{Org: misp.Org{Name: "Peer CERT"}, Info: "lab export", Time: added}); err != nil {
		t.Fatal(err)
	}
	startFeedServer(t, n.feeds, taxiiSrv, mispDir)
	stop := n.start(t, "sources.log")

	got := n.waitPulled(t, "cert-taxii", "peer-misp")
	checkBatch(t, got["cert-taxii"], 85, "enforce", "login-bank.example.", "pay-update.example.")
	checkBatch(t, got["peer-misp"], 40, "audit", "c2-node.example.", "dropper.example.")
	for _, name := range []string{"cert-taxii", "peer-misp"} {
		if r := got[name]; r.Failures != 0 || r.LastError != "" {
			t.Errorf("source %s: %d failures, last error %q, want none", name, r.Failures, r.LastError)
		}
	}
	if v := guardScrapeSum(t, n.metrics, `bulwark_intel_source_pulls_total{result="success",source="cert-taxii"}`); v != 1 {
		t.Errorf(`bulwark_intel_source_pulls_total{source="cert-taxii",result="success"} = %g, want 1`, v)
	}
	if v := guardScrapeSum(t, n.metrics, `bulwark_intel_source_items{source="peer-misp"}`); v != 2 {
		t.Errorf(`bulwark_intel_source_items{source="peer-misp"} = %g, want 2`, v)
	}
	if v := guardScrapeSum(t, n.metrics, `bulwark_intel_source_last_success_timestamp_seconds{source="cert-taxii"}`); v < float64(added.Unix()) {
		t.Errorf("last success of cert-taxii = %g, want a time after the test started", v)
	}

	// A restart reads the state file and asks the TAXII server only for
	// objects added after the last one it received.
	stop()
	if _, err := os.Stat(filepath.Join(n.dir, "taxii-state.json")); err != nil {
		t.Fatalf("TAXII state file after the first pull: %v", err)
	}
	for _, obj := range taxiiObjects(t, "new-phish.example.") {
		taxiiSrv.Add("lab-domains", obj, added.Add(time.Minute))
	}
	n.start(t, "sources-restarted.log")
	got = n.waitPulled(t, "cert-taxii")
	checkBatch(t, got["cert-taxii"], 85, "enforce", "new-phish.example.")
	reqs := taxiiSrv.Requests()
	last := reqs[len(reqs)-1]
	// The identity object and two indicators were added at seconds 0 to 2.
	wantAfter := "added_after=" + strings.ReplaceAll(added.Add(2*time.Second).Format(time.RFC3339), ":", "%3A")
	if !strings.Contains(last, wantAfter) {
		t.Errorf("TAXII request after the restart = %s, want %s", last, wantAfter)
	}
}

func TestPublishListenFailureStopsStart(t *testing.T) {
	// The feed server's port, free between tests, is taken here.
	taken := "127.0.0.1:" + strconv.Itoa(port+166)
	ln, err := net.Listen("tcp", taken)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "publish-taken.yaml")
	writeDerivedConfig(t, cfg, port+163, fmt.Sprintf(`share:
  publish:
    listen: %s
    allow_transfer: [127.0.0.0/8]
    zones:
      - name: rpz.replay.example
        indicators: %s
`, taken, filepath.Join(dir, "indicators.csv")))
	cmd := exec.Command(binary, "serve", "-config", cfg)
	done := make(chan error, 1)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("bulwark serve with share.publish.listen on a taken port exited 0; output:\n%s", out.String())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("bulwark serve with share.publish.listen on a taken port still ran after 20s; output:\n%s", out.String())
	}
	if s := out.String(); !strings.Contains(s, "cannot start") || !strings.Contains(s, "share.publish.listen") || !strings.Contains(s, taken) {
		t.Errorf("output = %s, want a cannot start line naming share.publish.listen and %s", s, taken)
	}
}
