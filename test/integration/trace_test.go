package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"bulwark/internal/trace"
	"bulwark/test/labkit"

	"github.com/miekg/dns"
)

// traceListName is the list of the trace tests' derived config, which
// blocks the CNAME target of the traced name.
const traceListName = "trace-block"

// traceCase is the traced name: a name in the unsigned zone of the
// cname-unsigned case whose CNAME leads into the signed zone of the nsec
// case, and the facts a trace of it must show.
type traceCase struct {
	name, target string
	// signedZone is the zone of the target and keyTags the key tags of
	// its DNSKEYs, computed from the lab's zone file.
	signedZone string
	keyTags    []uint16
}

// readZone parses the lab's zone file of zone.
func readZone(t *testing.T, zone string) []dns.RR {
	t.Helper()
	path := filepath.Join(lab.Info.ZoneDir, strings.TrimSuffix(zone, ".")+".zone")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rrs []dns.RR
	zp := dns.NewZoneParser(f, zone, path)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return rrs
}

// newTraceCase reads the traced name, its CNAME target and the target
// zone's key tags from lab.json and the zone files.
func newTraceCase(t *testing.T) traceCase {
	t.Helper()
	from := dnssecCase(t, "cname-unsigned").Zone
	tc := traceCase{name: "www." + from}
	for _, rr := range readZone(t, from) {
		if c, ok := rr.(*dns.CNAME); ok && strings.EqualFold(c.Hdr.Name, tc.name) {
			tc.target = dns.CanonicalName(c.Target)
		}
	}
	if tc.target == "" {
		t.Fatalf("zone %s has no CNAME at %s", from, tc.name)
	}
	for _, c := range lab.Info.DNSSECCases {
		if c.Signed && dns.IsSubDomain(c.Zone, tc.target) {
			tc.signedZone = c.Zone
		}
	}
	if tc.signedZone == "" {
		t.Fatalf("CNAME target %s is in no signed DNSSEC case zone", tc.target)
	}
	for _, rr := range readZone(t, tc.signedZone) {
		if k, ok := rr.(*dns.DNSKEY); ok && strings.EqualFold(k.Hdr.Name, tc.signedZone) {
			tc.keyTags = append(tc.keyTags, k.KeyTag())
		}
	}
	if len(tc.keyTags) == 0 {
		t.Fatalf("zone file of %s has no DNSKEY", tc.signedZone)
	}
	return tc
}

// writeTraceConfig writes a config derived from the lab's that listens
// on dnsPort, adds extra, and puts first among the lists a lawful list,
// which every flavour applies, blocking target.
func writeTraceConfig(t *testing.T, dnsPort int, target, extra string) string {
	t.Helper()
	dir := t.TempDir()
	listFile := filepath.Join(dir, "trace-block.txt")
	writeFile(t, listFile, strings.TrimSuffix(target, ".")+"\n")
	path := filepath.Join(dir, "trace.yaml")
	writeDerivedConfig(t, path, dnsPort, extra)
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	list := fmt.Sprintf("  lists:\n    - name: %s\n      file: %s\n      format: domains\n      category: lawful\n", traceListName, listFile)
	if !bytes.Contains(text, []byte("\n  lists:\n")) {
		t.Fatalf("lab config %s has no policy.lists", lab.Info.BulwarkConfig)
	}
	text = bytes.Replace(text, []byte("  lists:\n"), []byte(list), 1)
	writeFile(t, path, string(text))
	return path
}

var labAddrRe = regexp.MustCompile(`127\.53\.\d+\.\d+:` + `\d+`)

// checkTraceText checks the facts of tc in a text trace.
func checkTraceText(t *testing.T, tc traceCase, text string) {
	t.Helper()
	addrs := labAddrRe.FindAllString(text, -1)
	if len(addrs) == 0 {
		t.Errorf("trace names no lab server address (127.53.x.y):\n%s", text)
	}
	for _, a := range addrs {
		if _, p, _ := net.SplitHostPort(a); p != strconv.Itoa(lab.Info.AuthPort) {
			t.Errorf("trace names server %s, want port %d", a, lab.Info.AuthPort)
		}
	}
	for _, tag := range tc.keyTags {
		if want := fmt.Sprintf("key tag %d alg", tag); !strings.Contains(text, want) {
			t.Errorf("trace lacks %q of a DNSKEY of %s", want, tc.signedZone)
		}
	}
	wantSteps := []string{
		"CNAME " + tc.name + " -> " + tc.target,
		"DNSKEY of " + tc.signedZone,
		"list " + traceListName + " (category lawful) matched qname trigger " + tc.target,
		"answer: NXDOMAIN",
	}
	for _, want := range wantSteps {
		if !strings.Contains(text, want) {
			t.Errorf("trace lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("trace:\n%s", text)
	}
}

// checkTraceReport checks the facts of tc in a JSON trace whose queries
// went to at least minServers servers.
func checkTraceReport(t *testing.T, tc traceCase, rep trace.Report, minServers int) {
	t.Helper()
	if rep.Name != tc.name || rep.Type != "A" {
		t.Errorf("report of %s %s, want %s A", rep.Name, rep.Type, tc.name)
	}
	if !rep.Answer.Blocked || rep.Answer.Rcode != "NXDOMAIN" || rep.Answer.EDE == nil || rep.Answer.EDE.Code != 16 {
		t.Errorf("answer %+v, want a blocked NXDOMAIN with EDE 16 (Censored)", rep.Answer)
	}
	var matched, secureSig bool
	servers := map[string]bool{}
	for _, s := range rep.Steps {
		switch {
		case s.Kind == trace.KindPolicy && s.Result == "matched":
			matched = s.List == traceListName && s.Trigger == tc.target && s.Match == "qname"
		case s.Kind == trace.KindRRSIG && s.Name == tc.target && s.Type == "A":
			secureSig = s.Result == "valid" && s.Signer == tc.signedZone
		case s.Kind == trace.KindQuery:
			servers[s.Server] = true
		}
	}
	if !matched {
		t.Errorf("no policy step of list %s matching %s", traceListName, tc.target)
	}
	if !secureSig {
		t.Errorf("no valid RRSIG over %s A by %s", tc.target, tc.signedZone)
	}
	if len(servers) < minServers {
		t.Errorf("queries went to %d servers, want at least %d", len(servers), minServers)
	}
	for s := range servers {
		if !labAddrRe.MatchString(s) {
			t.Errorf("query to %s, which is not a lab server", s)
		}
	}
}

func TestTraceCommand(t *testing.T) {
	tc := newTraceCase(t)
	cfg := writeTraceConfig(t, port+84, tc.target, "")

	// Flags after the name, and no flavour: the first listener's
	// (unfiltered) applies the lawful list.
	out, err := exec.Command(binary, "trace", tc.name, "A", "-config", cfg).CombinedOutput()
	if err != nil {
		t.Fatalf("bulwark trace %s: %v\n%s", tc.name, err, out)
	}
	text := string(out)
	if !strings.Contains(text, "flavour unfiltered") {
		t.Errorf("trace is not of the first listener's flavour unfiltered:\n%.300s", text)
	}
	checkTraceText(t, tc, text)

	out, err = exec.Command(binary, "trace", "-config", cfg, "-json", "-flavour", "protective", tc.name).Output()
	if err != nil {
		t.Fatalf("bulwark trace -json %s: %v\n%s", tc.name, err, out)
	}
	var rep trace.Report
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("trace -json output is not a report: %v\n%.500s", err, out)
	}
	if rep.Flavour != "protective" {
		t.Errorf("JSON trace flavour %q, want protective", rep.Flavour)
	}
	// A fresh cache: the root, TLD and zone servers are asked.
	checkTraceReport(t, tc, rep, 3)
}

func TestTraceCommandErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"trace", "www.example.com"}, "missing -config"},
		{[]string{"trace", "-config", lab.Info.BulwarkConfig}, "missing name"},
		{[]string{"trace", "-config", lab.Info.BulwarkConfig, "www.example.com", "NOPE"}, `unknown type "NOPE"`},
		{[]string{"trace", "-config", lab.Info.BulwarkConfig, "-flavour", "nosuch", "www.example.com"}, `unknown flavour "nosuch"`},
	} {
		out, err := exec.Command(binary, tt.args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), tt.want) {
			t.Errorf("bulwark %s = %v\n%s\nwant an error with %q", strings.Join(tt.args, " "), err, out, tt.want)
		}
	}
}

// traceBulwark starts a resolver on the trace config with the admin API,
// and returns its DNS port and the API's base URL.
func traceBulwark(t *testing.T, tc traceCase) (int, string) {
	t.Helper()
	dnsPort, adminPort := port+84, port+85
	cfg := writeTraceConfig(t, dnsPort, tc.target, fmt.Sprintf("admin:\n  listen: 127.0.0.1:%d\n", adminPort))
	cmd, err := labkit.StartBulwark(binary, cfg, net.JoinHostPort(resolver, strconv.Itoa(dnsPort)), filepath.Join(t.TempDir(), "trace.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := labkit.StopProcess(cmd); err != nil {
			t.Errorf("resolver with the API did not stop cleanly: %v", err)
		}
	})
	return dnsPort, fmt.Sprintf("http://127.0.0.1:%d", adminPort)
}

func getText(t *testing.T, u string) string {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, body)
	}
	return string(body)
}

func TestTraceAPI(t *testing.T) {
	tc := newTraceCase(t)
	_, api := traceBulwark(t, tc)

	text := getText(t, api+"/v1/trace?format=text&name="+url.QueryEscape(tc.name))
	checkTraceText(t, tc, text)

	// Flush the zone of both cases, so that the next trace validates the
	// signed zone again.
	zone := dns.CanonicalName(lab.Info.DNSSECZone)
	resp, err := http.Post(api+"/v1/cache/flush", "application/json", strings.NewReader(fmt.Sprintf(`{"zone": %q}`, zone)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("flush of zone %s: %d, want 200", zone, resp.StatusCode)
	}
	var rep trace.Report
	getJSON(t, api+"/v1/trace?type=A&flavour=protective&name="+url.QueryEscape(tc.name), &rep)
	if rep.Flavour != "protective" {
		t.Errorf("trace flavour %q, want protective", rep.Flavour)
	}
	checkTraceReport(t, tc, rep, 1)

	// A third trace runs on the server's cache, which the second one
	// filled: its CNAME comes from the cache without a query.
	rep = trace.Report{}
	getJSON(t, api+"/v1/trace?name="+url.QueryEscape(tc.name), &rep)
	var cnameCached, cnameQueried bool
	for _, s := range rep.Steps {
		cnameCached = cnameCached || s.Kind == trace.KindCache && s.Name == tc.name && s.Type == "CNAME"
		cnameQueried = cnameQueried || s.Kind == trace.KindQuery && s.Name == tc.name
	}
	if !cnameCached || cnameQueried {
		t.Errorf("second trace: CNAME from the cache %v, queried %v; want from the cache only", cnameCached, cnameQueried)
	}
}

// cacheView is the part of GET /v1/cache that the test reads.
type cacheView struct {
	Name   string `json:"name"`
	RRsets []struct {
		Type     string   `json:"type"`
		Rank     string   `json:"rank"`
		TTL      uint32   `json:"ttl"`
		Security string   `json:"security"`
		Records  []string `json:"records"`
	} `json:"rrsets"`
	Negative []struct {
		Type  string `json:"type"`
		Rcode string `json:"rcode"`
		TTL   uint32 `json:"ttl"`
	} `json:"negative"`
	Answers []struct {
		Type string `json:"type"`
		DO   bool   `json:"do"`
		AD   bool   `json:"ad"`
		TTL  uint32 `json:"ttl"`
	} `json:"answers"`
}

func TestCacheAPI(t *testing.T) {
	tc := newTraceCase(t)
	dnsPort, api := traceBulwark(t, tc)
	secure := dnssecCase(t, "alg13").Queries[0] // www A, secure
	if _, err := kdig(resolver, dnsPort, secure.Name, "A", "+dnssec"); err != nil {
		t.Fatal(err)
	}
	if _, err := kdig(resolver, dnsPort, secure.Name, "TXT"); err != nil { // NODATA
		t.Fatal(err)
	}

	var view cacheView
	getJSON(t, api+"/v1/cache?name="+url.QueryEscape(secure.Name), &view)
	if len(view.RRsets) != 1 || view.RRsets[0].Type != "A" || view.RRsets[0].Rank != "answer" ||
		view.RRsets[0].Security != "secure" || view.RRsets[0].TTL == 0 || len(view.RRsets[0].Records) == 0 {
		t.Errorf("cached RRsets of %s = %+v, want one secure answer A RRset with a TTL left", secure.Name, view.RRsets)
	}
	if len(view.Negative) != 1 || view.Negative[0].Type != "TXT" || view.Negative[0].Rcode != "NOERROR" {
		t.Errorf("cached negative answers = %+v, want a TXT NODATA", view.Negative)
	}
	var sawDO bool
	for _, a := range view.Answers {
		if a.Type == "A" && a.DO {
			sawDO = true
			if !a.AD || a.TTL == 0 {
				t.Errorf("cached DO answer %+v, want AD and a TTL left", a)
			}
		}
	}
	if !sawDO {
		t.Errorf("cached answers = %+v, want the A response to the DO query", view.Answers)
	}

	body := fmt.Sprintf(`{"name": %q}`, secure.Name)
	resp, err := http.Post(api+"/v1/cache/flush", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var flushed struct {
		Removed int `json:"entries_removed"`
	}
	json.NewDecoder(resp.Body).Decode(&flushed)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || flushed.Removed < 4 {
		t.Errorf("flush of %s: %d with %d entries removed, want 200 and at least 4", secure.Name, resp.StatusCode, flushed.Removed)
	}
	view = cacheView{}
	getJSON(t, api+"/v1/cache?name="+url.QueryEscape(secure.Name), &view)
	if len(view.RRsets)+len(view.Negative)+len(view.Answers) != 0 {
		t.Errorf("after the flush, cache of %s = %+v, want empty", secure.Name, view)
	}
	// The zone's own data stays: only the name was flushed.
	view = cacheView{}
	getJSON(t, api+"/v1/cache?name="+url.QueryEscape(dnssecCase(t, "alg13").Zone), &view)
	if len(view.RRsets) == 0 {
		t.Errorf("after flushing %s, nothing is cached for its zone", secure.Name)
	}
}
