package integration

import (
	"encoding/json"
	"io"
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
)

// protective returns the address and port of the lab's protective listener.
func protective(t *testing.T) (string, int) {
	t.Helper()
	host, portText, err := net.SplitHostPort(lab.Info.Policy.ProtectiveAddress)
	if err != nil {
		t.Fatalf("lab.json policy.protective_address %q: %v", lab.Info.Policy.ProtectiveAddress, err)
	}
	p, err := net.LookupPort("udp", portText)
	if err != nil {
		t.Fatal(err)
	}
	return host, p
}

// blockText returns the JSON text of a blocked answer's EDE.
func blockText(t *testing.T, r *kdigResult) map[string]any {
	t.Helper()
	i := strings.Index(r.Output, ";; EDE: 15 (Blocked): '")
	if i < 0 {
		return nil
	}
	rest := r.Output[i+len(";; EDE: 15 (Blocked): '"):]
	end := strings.Index(rest, "'\n")
	if end < 0 {
		return nil
	}
	var text map[string]any
	if err := json.Unmarshal([]byte(rest[:end]), &text); err != nil {
		t.Errorf("EDE text %q is not JSON: %v", rest[:end], err)
	}
	return text
}

func TestPolicyTriggers(t *testing.T) {
	p := lab.Info.Policy
	addr, protectivePort := protective(t)
	for _, tt := range []struct {
		name    string
		qtype   string
		blocked bool
		list    string
		rcode   string // on the unfiltered listener
	}{
		{p.ListedName, "A", true, "urlhaus-hosts", "NXDOMAIN"},
		{"sub." + p.ListedName, "A", true, "urlhaus-hosts", "NXDOMAIN"},
		{p.CNAMEToListed, "A", true, "urlhaus-hosts", "NXDOMAIN"},
		{p.ListedAddressName, "A", true, "urlhaus-domains", "NOERROR"},
		{p.AllowedName, "A", false, "", "NXDOMAIN"},
		{p.CNAMEToAllowed, "A", false, "", "NXDOMAIN"},
		{p.CleanName, "A", false, "", "NOERROR"},
		{"000-0.000webhostapp.com.", "A", true, "phishing", "NXDOMAIN"},
		{"x.fuel.ac.", "A", true, "hagezi-rpz", "NXDOMAIN"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := kdig(addr, protectivePort, tt.name, tt.qtype, "+edns")
			if err != nil {
				t.Fatal(err)
			}
			if tt.blocked {
				if r.Status != "NXDOMAIN" || r.EDE != 15 {
					t.Fatalf("protective: %s EDE %d, want NXDOMAIN with EDE 15\n%s", r.Status, r.EDE, r.Output)
				}
				text := blockText(t, r)
				if text["list"] != tt.list || text["category"] == nil || text["o"] != "Bulwark lab" {
					t.Errorf("protective: EDE text %v, want list %q, its category and the operator", text, tt.list)
				}
			} else if r.EDE == 15 {
				t.Errorf("protective: blocked (EDE 15), want it allowed\n%s", r.Output)
			}

			u, err := kdig(resolver, port, tt.name, tt.qtype, "+edns")
			if err != nil {
				t.Fatal(err)
			}
			if u.Status != tt.rcode || u.EDE == 15 {
				t.Errorf("unfiltered: %s EDE %d, want %s without a block", u.Status, u.EDE, tt.rcode)
			}
		})
	}
}

func TestBlockedAnswerOverTCP(t *testing.T) {
	addr, protectivePort := protective(t)
	r, err := kdig(addr, protectivePort, lab.Info.Policy.ListedName, "AAAA", "+edns", "+tcp")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != "NXDOMAIN" || r.EDE != 15 {
		t.Errorf("over TCP: %s EDE %d, want NXDOMAIN with EDE 15", r.Status, r.EDE)
	}
}

// TestPolicyAPIAndReload checks the "why is this blocked" lookup and the
// list states on a resolver with the API on, then adds a listed name to
// the lab's allowlist and reloads: the name is answered again, with no
// restart.
func TestPolicyAPIAndReload(t *testing.T) {
	p := lab.Info.Policy
	allow, err := os.ReadFile(p.AllowFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.WriteFile(p.AllowFile, allow, 0o644) })

	dnsPort, api := adminBulwark(t)
	var check struct {
		Blocked bool   `json:"blocked"`
		List    string `json:"list"`
	}
	getJSON(t, api+"/v1/policy/check?flavour=protective&name="+p.ListedName, &check)
	if !check.Blocked || check.List != "urlhaus-hosts" {
		t.Errorf("check %s: %+v, want blocked by urlhaus-hosts", p.ListedName, check)
	}
	var lists []struct {
		Name  string `json:"name"`
		Rules int    `json:"rules"`
		Error string `json:"error"`
	}
	getJSON(t, api+"/v1/policy/lists", &lists)
	if len(lists) != len(p.Lists)+1 {
		t.Errorf("%d lists, want %d (the feeds and the allowlist)", len(lists), len(p.Lists)+1)
	}
	for _, l := range lists {
		if l.Rules == 0 || l.Error != "" {
			t.Errorf("list %s: %d rules, error %q", l.Name, l.Rules, l.Error)
		}
	}

	// The second resolver's protective listener is 127.0.0.2 on dnsPort.
	before, err := kdig("127.0.0.2", dnsPort, p.ListedName, "A", "+edns")
	if err != nil {
		t.Fatal(err)
	}
	if before.EDE != 15 {
		t.Fatalf("before the reload: not blocked\n%s", before.Output)
	}
	if err := os.WriteFile(p.AllowFile, append(allow, []byte(strings.TrimSuffix(p.ListedName, ".")+"\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(api+"/v1/policy/reload", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reload: %d", resp.StatusCode)
	}
	r, err := kdig("127.0.0.2", dnsPort, p.ListedName, "A", "+edns")
	if err != nil {
		t.Fatal(err)
	}
	if r.EDE == 15 {
		t.Errorf("after allowlisting and reload: still blocked\n%s", r.Output)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// TestReloadUnderLoad replays the lab's query list through the protective
// listener of a second resolver while its lists are reloaded every 300ms,
// and checks that every query is answered.
func TestReloadUnderLoad(t *testing.T) {
	dnsPort, api := adminBulwark(t)
	done := make(chan struct{})
	reloads := 0
	go func() {
		defer close(done)
		for range 12 {
			time.Sleep(300 * time.Millisecond)
			resp, err := http.Post(api+"/v1/policy/reload", "application/json", nil)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					reloads++
				}
			}
		}
	}()
	out, err := exec.Command("dnsperf", "-s", "127.0.0.2", "-p", strconv.Itoa(dnsPort),
		"-d", lab.Info.Queries, "-l", "4", "-Q", "1000", "-t", "5").CombinedOutput()
	<-done
	if err != nil {
		t.Fatalf("dnsperf: %v\n%s", err, out)
	}
	fields := map[string]string{}
	for _, m := range dnsperfLine.FindAllStringSubmatch(string(out), -1) {
		fields[m[1]] = m[2]
	}
	sent := strings.Fields(fields["Queries sent"])
	completed := strings.Fields(fields["Queries completed"])
	if len(sent) == 0 || len(completed) == 0 || sent[0] != completed[0] {
		t.Errorf("dnsperf sent %v, completed %v, want every query answered\n%s", sent, completed, out)
	}
	if reloads < 10 {
		t.Errorf("%d reloads succeeded during the replay, want 12", reloads)
	}
	t.Logf("%d reloads; dnsperf sent %s, response codes %s", reloads, fields["Queries sent"], fields["Response codes"])
}

// TestClientSubnetFlavour gives the loopback clients the protective flavour
// on a resolver whose 127.0.0.1 listener is unfiltered.
func TestClientSubnetFlavour(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "clients.yaml")
	dnsPort := port + 94
	writeDerivedConfig(t, path, dnsPort, "")
	cfg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(cfg), "policy:\n", "policy:\n  clients:\n    - subnet: 127.0.0.0/8\n      flavour: protective\n", 1)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, err := labkit.StartBulwark(binary, path, net.JoinHostPort(resolver, strconv.Itoa(dnsPort)), filepath.Join(dir, "clients.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := labkit.StopProcess(cmd); err != nil {
			t.Errorf("resolver did not stop cleanly: %v", err)
		}
	}()
	for _, extra := range [][]string{{"+edns"}, {"+edns", "+tcp"}} {
		r, err := kdig(resolver, dnsPort, lab.Info.Policy.ListedName, "A", extra...)
		if err != nil {
			t.Fatal(err)
		}
		if r.EDE != 15 {
			t.Errorf("%v: listed name from a protective subnet on the unfiltered listener: %s EDE %d, want EDE 15", extra, r.Status, r.EDE)
		}
	}
}

// TestBlockPage runs the block page of a second resolver and asks it about
// a listed name, then reports the block as a mistake.
func TestBlockPage(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "page.yaml")
	dnsPort, pagePort := port+95, port+96
	writeDerivedConfig(t, path, dnsPort, "")
	cfg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	review := filepath.Join(dir, "review.jsonl")
	page := "127.0.0.9:" + strconv.Itoa(pagePort)
	text := strings.Replace(string(cfg), "  block_page:\n", "  block_page:\n    listen: "+page+"\n    review_file: "+review+"\n", 1)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, err := labkit.StartBulwark(binary, path, net.JoinHostPort(resolver, strconv.Itoa(dnsPort)), filepath.Join(dir, "page.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := labkit.StopProcess(cmd); err != nil {
			t.Errorf("resolver did not stop cleanly: %v", err)
		}
	}()
	listed := strings.TrimSuffix(lab.Info.Policy.ListedName, ".")
	req, _ := http.NewRequest(http.MethodGet, "http://"+page+"/", nil)
	req.Host = listed
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "urlhaus-hosts") {
		t.Errorf("block page for %s: %d, want 403 naming urlhaus-hosts:\n%s", listed, resp.StatusCode, body)
	}
	form := strings.NewReader("name=" + listed + "&comment=false+positive")
	req, _ = http.NewRequest(http.MethodPost, "http://"+page+"/report", form)
	req.Host = listed
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("report: %d", resp.StatusCode)
	}
	queued, err := os.ReadFile(review)
	if err != nil || !strings.Contains(string(queued), `"list":"urlhaus-hosts"`) || !strings.Contains(string(queued), "false positive") {
		t.Errorf("review queue %q (%v), want the report", queued, err)
	}
}
