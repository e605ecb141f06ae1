package integration

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"bulwark/internal/autotrust"
	"bulwark/internal/feed"
	"bulwark/internal/xfr"
	"bulwark/test/labkit"

	"github.com/miekg/dns"
)

// Names and sizes of the kill -9 test. The list and the zone are large
// enough that writing a copy takes a moment.
const (
	killListName  = "killnine-list"
	killListNames = 100_000
	killRPZName   = "killnine-rpz"
	killRPZZone   = "rpz.killnine.test."
	killRPZNames  = 20_000
	// killPrimaryAddr is the loopback address of the test's Knot DNS
	// primary; the RPZ transfer test uses 127.53.5.1.
	killPrimaryAddr = "127.53.5.2"
)

// listServer serves a domain list that changes at every request and
// records the SHA-256 of every version it sent.
type listServer struct {
	mu       sync.Mutex
	version  int
	sent     map[[32]byte]int
	etags    map[string]bool
	requests atomic.Int64
}

func (s *listServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var b bytes.Buffer
	s.mu.Lock()
	s.version++
	v := s.version
	fmt.Fprintf(&b, "# killnine list version %d\nstable.killnine-list.test\n", v)
	for i := range killListNames {
		fmt.Fprintf(&b, "v%d-n%d.killnine-list.test\n", v, i)
	}
	etag := fmt.Sprintf(`"v%d"`, v)
	s.sent[sha256.Sum256(b.Bytes())] = v
	s.etags[etag] = true
	s.mu.Unlock()
	s.requests.Add(1)
	w.Header().Set("ETag", etag)
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.Write(b.Bytes())
}

// versionOf returns the version whose content is data, or 0 when no
// response had that content.
func (s *listServer) versionOf(data []byte) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent[sha256.Sum256(data)]
}

func (s *listServer) sentETag(etag string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.etags[etag]
}

// startKillPrimary starts knotd as the primary of killRPZZone on
// killPrimaryAddr at primaryPort, with killRPZNames records, NOTIFY to the
// resolver on dnsPort, and TSIG key "killnine-key" with secret.
func startKillPrimary(t *testing.T, dir string, primaryPort, dnsPort int, secret string) *knotPrimary {
	t.Helper()
	k := &knotPrimary{dir: dir, log: filepath.Join(dir, "knot.log"), socket: filepath.Join(dir, "knot.sock")}
	if err := os.MkdirAll(filepath.Join(dir, "db"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`server:
    rundir: %[1]q
    listen: "%[2]s@%[3]d"
control:
    listen: %[4]q
log:
  - target: "stderr"
    any: "notice"
database:
    storage: "%[1]s/db"
key:
  - id: "killnine-key"
    algorithm: "hmac-sha256"
    secret: %[5]q
remote:
  - id: "bulwark"
    address: "127.0.0.1@%[6]d"
    via: "%[2]s"
    key: "killnine-key"
acl:
  - id: "transfer"
    address: "127.0.0.0/8"
    key: "killnine-key"
    action: "transfer"
template:
  - id: "default"
    storage: %[1]q
    zonefile-sync: -1
    zonefile-load: "whole"
    journal-content: "changes"
zone:
  - domain: %[7]q
    file: "zone.rpz"
    notify: "bulwark"
    acl: "transfer"
`, dir, killPrimaryAddr, primaryPort, k.socket, secret, dnsPort, killRPZZone)
	var zone strings.Builder
	zone.WriteString("$ORIGIN " + killRPZZone + "\n$TTL 60\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns\n")
	for i := range killRPZNames {
		fmt.Fprintf(&zone, "n%d.killnine-rpz CNAME .\n", i)
	}
	for name, text := range map[string]string{"knot.conf": conf, "zone.rpz": zone.String()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	logFile, err := os.Create(k.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	k.cmd = exec.Command("knotd", "-c", filepath.Join(dir, "knot.conf"))
	k.cmd.Stdout, k.cmd.Stderr = logFile, logFile
	if err := k.cmd.Start(); err != nil {
		t.Fatalf("start knotd: %v", err)
	}
	t.Cleanup(func() {
		if err := labkit.StopProcess(k.cmd); err != nil {
			t.Errorf("knotd did not stop cleanly: %v", err)
		}
	})
	client := &dns.Client{Timeout: time.Second}
	q := new(dns.Msg)
	q.SetQuestion(killRPZZone, dns.TypeSOA)
	addr := net.JoinHostPort(killPrimaryAddr, strconv.Itoa(primaryPort))
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if r, _, err := client.Exchange(q, addr); err == nil && r.Rcode == dns.RcodeSuccess {
			return k
		}
	}
	t.Fatalf("knotd does not serve %s within 15s; log:\n%s", killRPZZone, readText(t, k.log))
	return nil
}

// killConfig is the config of the kill -9 test: the lab config on dnsPort
// with an RFC 5011 state file, the downloaded list and the transferred
// zone.
type killConfig struct {
	path, base     string
	listURL        string
	anchor, list   string
	rpzCopy        string
	primary        string
	secret         string
	reconfigurings int
}

// write writes the config with a new query string in the list URL, so that
// the next SIGHUP downloads the list again.
func (c *killConfig) write(t *testing.T) {
	t.Helper()
	c.reconfigurings++
	lists := fmt.Sprintf(`  lists:
    - name: %s
      url: %s?config=%d
      file: %s
      format: domains
      category: malware
      refresh: 1m
    - name: %s
      file: %s
      format: rpz
      category: malware
      zone: %s
      primaries: ["%s"]
      tsig:
        name: killnine-key
        secret: %s
`, killListName, c.listURL, c.reconfigurings, c.list, killRPZName, c.rpzCopy, killRPZZone, c.primary, c.secret)
	text := strings.Replace(c.base, "  lists:\n", lists, 1)
	text = strings.Replace(text, "dnssec:\n", "dnssec:\n  auto_trust_anchor_file: "+c.anchor+"\n", 1)
	// Bulwark may read the config at any time: replace it whole.
	tmp := c.path + ".new"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, c.path); err != nil {
		t.Fatal(err)
	}
}

// stateFiles are the files the kill -9 test checks, in the state directory.
func (c *killConfig) stateFiles() []string {
	return []string{c.anchor, c.list, c.list + ".http.json", c.rpzCopy}
}

// tempFiles returns the temporary files of atomicfile in dir, by the PID
// in their name, ".NAME.tmp-PID-RANDOM".
func tempFiles(t *testing.T, dir string) map[string]int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, e := range entries {
		_, rest, ok := strings.Cut(e.Name(), ".tmp-")
		if !ok || !strings.HasPrefix(e.Name(), ".") {
			continue
		}
		digits, _, _ := strings.Cut(rest, "-")
		pid, _ := strconv.Atoi(digits)
		out[e.Name()] = pid
	}
	return out
}

// checkStateFiles checks that every state file is absent or complete,
// parsing each with the functions Bulwark reads it with at start. It
// works on copies, since autotrust.Load removes temporary files itself.
// It returns the list version and the zone serial found, 0 when absent.
func checkStateFiles(t *testing.T, c *killConfig, lists *listServer) (listVersion int, serial uint32) {
	t.Helper()
	scratch := t.TempDir()
	read := func(path string) ([]byte, bool) {
		data, err := os.ReadFile(path)
		if os.IsNotExist(err) {
			return nil, false
		}
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		return data, true
	}

	if data, ok := read(c.anchor); ok {
		cp := filepath.Join(scratch, "root.state")
		os.WriteFile(cp, data, 0o644)
		st, err := autotrust.Load(cp)
		if err != nil {
			t.Errorf("trust anchor state after kill -9: autotrust.Load = %v\n%s", err, data)
		} else if len(st.TrustAnchors()) == 0 {
			t.Errorf("trust anchor state after kill -9 has no anchor:\n%s", data)
		}
	}

	if data, ok := read(c.list); ok {
		listVersion = lists.versionOf(data)
		if listVersion == 0 {
			t.Errorf("list copy after kill -9 (%d bytes) matches no version the server sent", len(data))
		}
		rules := countRules(t, data, "domains", feed.Options{})
		if rules != killListNames+1 {
			t.Errorf("list copy after kill -9 parses to %d rules, want %d", rules, killListNames+1)
		}
	}

	if data, ok := read(c.list + ".http.json"); ok {
		var v struct {
			ETag string `json:"etag"`
		}
		if err := json.Unmarshal(data, &v); err != nil {
			t.Errorf("list validators after kill -9: %v\n%q", err, data)
		} else if !lists.sentETag(v.ETag) {
			t.Errorf("list validators after kill -9 name ETag %q, which the server never sent", v.ETag)
		}
	}

	if data, ok := read(c.rpzCopy); ok {
		cp := filepath.Join(scratch, "rpz.copy")
		os.WriteFile(cp, data, 0o600)
		copyHeader, err := xfr.ReadCopy(cp, killRPZZone)
		if err != nil {
			t.Errorf("zone copy after kill -9: xfr.ReadCopy = %v", err)
			return listVersion, 0
		}
		serial = copyHeader.SOA.Serial
		// Serial 1 has killRPZNames names, and each later one adds one.
		want := killRPZNames + int(serial) - 1
		rules := countRules(t, data, "rpz", feed.Options{Origin: killRPZZone})
		if rules != want {
			t.Errorf("zone copy of serial %d after kill -9 parses to %d rules, want %d", serial, rules, want)
		}
	}
	return listVersion, serial
}

// countRules parses data in format as the policy loader does and returns
// the rules found.
func countRules(t *testing.T, data []byte, format string, opts feed.Options) int {
	t.Helper()
	f, err := feed.ParseFormat(format)
	if err != nil {
		t.Fatal(err)
	}
	rules := 0
	if _, err := feed.Scan(bytes.NewReader(data), f, opts, func(*feed.Rule) { rules++ }); err != nil {
		t.Errorf("parse %s copy: %v", format, err)
	}
	return rules
}

// churn keeps Bulwark rewriting its state files until stop closes. Every
// 200 ms it adds a name to the zone, which Knot DNS announces with NOTIFY.
// Every 400 ms it writes a config with a new list URL and sends SIGHUP,
// which downloads the list again.
func churn(t *testing.T, k *knotPrimary, c *killConfig, proc *os.Process, added *atomic.Int64, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for ; !closed(stop); <-tick.C {
			n := added.Load()
			name := fmt.Sprintf("added-%d.killnine-rpz.%s", n, killRPZZone)
			cmds := [][]string{{"zone-begin", killRPZZone}, {"zone-set", killRPZZone, name, "60", "CNAME", "."}, {"zone-commit", killRPZZone}}
			ok := true
			for _, args := range cmds {
				if out, err := exec.Command("knotc", append([]string{"-s", k.socket}, args...)...).CombinedOutput(); err != nil {
					t.Errorf("knotc %v: %v\n%s", args, err, out)
					ok = false
					break
				}
			}
			if !ok {
				return
			}
			added.Add(1)
		}
	}()
	go func() {
		defer wg.Done()
		tick := time.NewTicker(400 * time.Millisecond)
		defer tick.Stop()
		for ; !closed(stop); <-tick.C {
			c.write(t)
			proc.Signal(syscall.SIGHUP)
		}
	}()
	return &wg
}

// TestKillNineKeepsStateFiles kills the resolver with SIGKILL at random
// moments while it rewrites its RFC 5011 state file, a downloaded list and
// its validators, and the copy of a zone received by IXFR. After each kill
// every state file is absent or complete, the next start removes the
// temporary files of the killed process and serves from the files kept.
// BULWARK_KILL_RESTARTS sets the number of kills, 10 by default.
func TestKillNineKeepsStateFiles(t *testing.T) {
	kills := 10
	if s := os.Getenv("BULWARK_KILL_RESTARTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("invalid BULWARK_KILL_RESTARTS %q: give a number of kills of at least 1", s)
		}
		kills = n
	}
	dnsPort, listPort, primaryPort := port+132, port+133, port+134
	dir := t.TempDir()
	stateDir := filepath.Join(dir, "state")
	if err := os.Mkdir(stateDir, 0o755); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	secret := base64.StdEncoding.EncodeToString(key)
	k := startKillPrimary(t, filepath.Join(dir, "knot"), primaryPort, dnsPort, secret)

	lists := &listServer{sent: map[[32]byte]int{}, etags: map[string]bool{}}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(listPort)))
	if err != nil {
		t.Fatal(err)
	}
	httpServer := &http.Server{Handler: lists}
	go httpServer.Serve(ln)
	defer httpServer.Close()

	basePath := filepath.Join(dir, "base.yaml")
	writeDerivedConfig(t, basePath, dnsPort, "")
	c := &killConfig{
		path: filepath.Join(dir, "killnine.yaml"), base: readText(t, basePath),
		listURL: fmt.Sprintf("http://127.0.0.1:%d/list.txt", listPort),
		anchor:  filepath.Join(stateDir, "root.state"), list: filepath.Join(stateDir, "list.txt"),
		rpzCopy: filepath.Join(stateDir, "rpz.copy"), primary: net.JoinHostPort(killPrimaryAddr, strconv.Itoa(primaryPort)),
		secret: secret,
	}
	if !strings.Contains(c.base, "  lists:\n") || !strings.Contains(c.base, "dnssec:\n") {
		t.Fatalf("lab config %s has no policy.lists or dnssec section", lab.Info.BulwarkConfig)
	}
	c.write(t)
	addr := net.JoinHostPort(resolver, strconv.Itoa(dnsPort))

	var added atomic.Int64
	tempsSeen := 0
	for round := range kills + 1 {
		logPath := filepath.Join(dir, fmt.Sprintf("bulwark-%d.log", round))
		// The copies kept by the killed process; the new one may write
		// others just after its start.
		kept := map[string]bool{}
		for _, path := range c.stateFiles() {
			_, err := os.Stat(path)
			kept[path] = err == nil
		}
		cmd, err := labkit.StartBulwark(binary, c.path, addr, logPath)
		if err != nil {
			t.Fatalf("start %d after kill -9: %v\n%s", round, err, readText(t, logPath))
		}
		checkRestart(t, c, cmd.Process.Pid, kept, logPath)
		if round == kills {
			if err := labkit.StopProcess(cmd); err != nil {
				t.Errorf("last resolver did not stop cleanly: %v", err)
			}
			if left := tempFiles(t, stateDir); len(left) > 0 {
				t.Errorf("temporary files left after a clean stop: %v", left)
			}
			break
		}

		// Every third round starts without a trust anchor state, so the
		// start seeds it and the probe 10 s later rewrites it. Those
		// rounds last long enough for the probe.
		stop := make(chan struct{})
		wg := churn(t, k, c, cmd.Process, &added, stop)
		wait := time.Duration(200+mathrand.IntN(3000)) * time.Millisecond
		if round%3 == 2 {
			wait = time.Duration(9500+mathrand.IntN(2000)) * time.Millisecond
		}
		time.Sleep(wait)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		close(stop)
		wg.Wait()

		temps := tempFiles(t, stateDir)
		tempsSeen += len(temps)
		version, serial := checkStateFiles(t, c, lists)
		t.Logf("kill %d after %.1fs: list version %d, zone serial %d, %d temporary files left", round+1, wait.Seconds(), version, serial, len(temps))
		if t.Failed() {
			t.Fatalf("state files broken after kill %d; log in %s", round+1, logPath)
		}
		if round%3 == 1 {
			os.Remove(c.anchor)
		}
	}
	t.Logf("%d kills: %d list downloads, %d zone changes, %d temporary files left by killed processes",
		kills, lists.requests.Load(), added.Load(), tempsSeen)
	if lists.requests.Load() < int64(kills) {
		t.Errorf("list downloads = %d, want at least one per start (%d)", lists.requests.Load(), kills)
	}
	if added.Load() < int64(kills) {
		t.Errorf("zone changes = %d, want at least %d", added.Load(), kills)
	}
}

// checkRestart checks a start after kill -9: the temporary files of killed
// processes are removed, kdig gets a validated answer, and the list and
// zone copies that were kept on disk block their names.
func checkRestart(t *testing.T, c *killConfig, pid int, kept map[string]bool, logPath string) {
	t.Helper()
	dir := filepath.Dir(c.list)
	// Lists downloaded at start remove leftovers just after the start.
	var stale []string
	waitFor(5*time.Second, func() bool {
		stale = stale[:0]
		for name, p := range tempFiles(t, dir) {
			if p != pid {
				stale = append(stale, name)
			}
		}
		return len(stale) == 0
	})
	if len(stale) > 0 {
		t.Errorf("temporary files of killed processes still there 5s after the start: %v; log in %s", stale, logPath)
	}

	dnsPort := port + 132
	r, err := kdig(resolver, dnsPort, ".", "SOA", "+adflag")
	switch {
	case err != nil:
		t.Errorf("kdig after restart: %v", err)
	case r.Status != "NOERROR" || !r.flag("ad"):
		t.Errorf("kdig . SOA after restart = %s, flags %v; want NOERROR with ad\n%s", r.Status, r.Flags, r.Output)
	}
	blocked := func(name string) {
		r, err := kdig("127.0.0.2", dnsPort, name, "A", "+edns")
		if err != nil {
			t.Errorf("kdig %s after restart: %v", name, err)
			return
		}
		if r.EDE < 0 {
			t.Errorf("kdig %s on the protective listener after restart = %s with no EDE, want a block\n%s", name, r.Status, r.Output)
		}
	}
	// Both names are in every version, so a download that replaces the
	// copy just after the start does not change the outcome.
	if kept[c.list] {
		blocked("stable.killnine-list.test.")
	}
	if kept[c.rpzCopy] {
		blocked("n7.killnine-rpz.")
	}
}
