package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"bulwark/test/labkit"
)

// The tests of this file use ports port+180 to port+189.

// zoneTransfer is one kdig AXFR or IXFR of a published zone.
type zoneTransfer struct {
	out string
	// serials are the SOA serials in the order kdig printed them.
	serials []uint32
	// owners are the owners of the CNAME records, without the zone.
	owners []string
	// ns counts the NS records, which only a whole-zone transfer has.
	ns int
}

// transferZone runs kdig AXFR, or IXFR=serial with qtype "IXFR=N",
// against the primary on primaryPort.
func transferZone(t *testing.T, primaryPort int, zone, qtype string) zoneTransfer {
	t.Helper()
	out, err := exec.Command("kdig", "@127.0.0.1", "-p", strconv.Itoa(primaryPort), "+timeout=5", "+retry=0", zone, qtype).CombinedOutput()
	if err != nil {
		t.Fatalf("kdig %s %s: %v\n%s", zone, qtype, err, out)
	}
	tr := zoneTransfer{out: string(out)}
	for _, line := range strings.Split(tr.out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 7 && f[3] == "SOA":
			n, err := strconv.ParseUint(f[6], 10, 32)
			if err != nil {
				t.Fatalf("kdig %s %s: invalid SOA serial in %q", zone, qtype, line)
			}
			tr.serials = append(tr.serials, uint32(n))
		case len(f) == 5 && f[3] == "CNAME":
			tr.owners = append(tr.owners, strings.TrimSuffix(f[0], "."+zone+"."))
		case len(f) == 5 && f[3] == "NS":
			tr.ns++
		}
	}
	if len(tr.serials) == 0 {
		t.Fatalf("kdig %s %s: no SOA record in the output\n%s", zone, qtype, tr.out)
	}
	return tr
}

// zoneSerial returns the serial of zone in the SOA record the primary on
// primaryPort sends, and false when the response has none.
func zoneSerial(primaryPort int, zone string) (uint32, bool) {
	r, err := kdig("127.0.0.1", primaryPort, zone, "SOA")
	if err != nil || r.Status != "NOERROR" || len(r.Answer) != 1 {
		return 0, false
	}
	f := strings.Fields(r.Answer[0].String())
	if len(f) < 7 {
		return 0, false
	}
	n, err := strconv.ParseUint(f[6], 10, 32)
	return uint32(n), err == nil
}

// rpzOwners returns the owners an RPZ zone has for names: each name and
// its wildcard.
func rpzOwners(names ...string) []string {
	var out []string
	for _, n := range names {
		out = append(out, n, "*."+n)
	}
	slices.Sort(out)
	return out
}

func sortedOwners(tr zoneTransfer) []string {
	out := slices.Clone(tr.owners)
	slices.Sort(out)
	return out
}

// newer reports whether serial b is newer than a in RFC 1982 arithmetic.
func newer(a, b uint32) bool {
	d := b - a
	return d != 0 && d < 1<<31
}

// TestIntelPublishNODAndStoreZones serves the newly observed domains and
// the store's blocking entries as RPZ zones and transfers both with kdig,
// whole and by IXFR after a change.
func TestIntelPublishNODAndStoreZones(t *testing.T) {
	const nodZone, storeZone = "nod.bulwark.test", "store.bulwark.test"
	primaryPort := port + 181
	n := intelNode{
		dns:   net.JoinHostPort(resolver, strconv.Itoa(port+180)),
		admin: "127.0.0.1:" + strconv.Itoa(port+182),
		dir:   t.TempDir(),
	}
	n.cfg = filepath.Join(n.dir, "publish.yaml")
	extra := "admin:\n  listen: " + n.admin + "\n" + intelConfig(n.dir) +
		"  store:\n    enabled: true\n    state_file: " + filepath.Join(n.dir, "store.json") +
		"\n    auto_block_score: 0.9\n    min_findings: 1\n    blocking_detectors: [nxdomain]\n    publish_interval: 500ms\n" +
		fmt.Sprintf(`share:
  publish:
    listen: 127.0.0.1:%d
    allow_transfer: [127.0.0.0/8]
    state_file: %s
    zones:
      - name: %s
        from: nod:10m
        ttl: 30s
      - name: %s
        from: store
        ttl: 30s
`, primaryPort, filepath.Join(n.dir, "serials.json"), nodZone, storeZone)
	writeDerivedConfig(t, n.cfg, port+180, extra)
	n.start(t, "publish.log")
	mustWait(t, 10*time.Second, "the primary to serve both zones", func() bool {
		_, nodOK := zoneSerial(primaryPort, nodZone)
		_, storeOK := zoneSerial(primaryPort, storeZone)
		return nodOK && storeOK
	})

	// Newly observed domains: one, then a second by IXFR.
	kdigA(t, n.dns, "feedly.com")
	mustWait(t, 15*time.Second, "feedly.com in the NOD zone", func() bool {
		return slices.Contains(transferZone(t, primaryPort, nodZone, "AXFR").owners, "feedly.com")
	})
	first := transferZone(t, primaryPort, nodZone, "AXFR")
	if got, want := sortedOwners(first), rpzOwners("feedly.com"); !slices.Equal(got, want) {
		t.Errorf("AXFR of %s: CNAME owners %v, want %v\n%s", nodZone, got, want, first.out)
	}
	if first.ns != 1 || len(first.serials) != 2 || first.serials[0] != first.serials[1] {
		t.Errorf("AXFR of %s: %d NS, SOA serials %v; want 1 NS between two equal SOA records\n%s",
			nodZone, first.ns, first.serials, first.out)
	}
	kdigA(t, n.dns, "www.nginx.org")
	mustWait(t, 15*time.Second, "a new serial of the NOD zone", func() bool {
		s, ok := zoneSerial(primaryPort, nodZone)
		return ok && s != first.serials[0]
	})
	ixfr := transferZone(t, primaryPort, nodZone, "IXFR="+strconv.FormatUint(uint64(first.serials[0]), 10))
	if got, want := sortedOwners(ixfr), rpzOwners("nginx.org"); !slices.Equal(got, want) {
		t.Errorf("IXFR of %s from %d: CNAME owners %v, want only the added %v\n%s", nodZone, first.serials[0], got, want, ixfr.out)
	}
	if ixfr.ns != 0 || !slices.Contains(ixfr.serials, first.serials[0]) {
		t.Errorf("IXFR of %s from %d: %d NS, SOA serials %v; want an incremental transfer from %d\n%s",
			nodZone, first.serials[0], ixfr.ns, ixfr.serials, first.serials[0], ixfr.out)
	}

	// The store: an NXDOMAIN flood blocks its domain automatically, then
	// an operator confirms a new domain, which an IXFR carries.
	const flooded = "lab-negttl.org"
	if nx := randomNXBurst(t, n.dns, flooded+".", 80); nx < 70 {
		t.Fatalf("random names under %s: %d of 80 NXDOMAIN, want at least 70", flooded, nx)
	}
	mustWait(t, 20*time.Second, flooded+" in the store zone", func() bool {
		return slices.Contains(transferZone(t, primaryPort, storeZone, "AXFR").owners, flooded)
	})
	blocked := transferZone(t, primaryPort, storeZone, "AXFR")
	if got, want := sortedOwners(blocked), rpzOwners(flooded); !slices.Equal(got, want) {
		t.Errorf("AXFR of %s: CNAME owners %v, want %v\n%s", storeZone, got, want, blocked.out)
	}
	if e := decideEntry(t, n.admin, "confirm", "feedly.com"); e.State != "confirmed" {
		t.Fatalf("confirm feedly.com: state %q, want confirmed", e.State)
	}
	mustWait(t, 10*time.Second, "a new serial of the store zone", func() bool {
		s, ok := zoneSerial(primaryPort, storeZone)
		return ok && s != blocked.serials[0]
	})
	ixfr = transferZone(t, primaryPort, storeZone, "IXFR="+strconv.FormatUint(uint64(blocked.serials[0]), 10))
	if got, want := sortedOwners(ixfr), rpzOwners("feedly.com"); !slices.Equal(got, want) {
		t.Errorf("IXFR of %s from %d: CNAME owners %v, want only the confirmed %v\n%s", storeZone, blocked.serials[0], got, want, ixfr.out)
	}
	if ixfr.ns != 0 {
		t.Errorf("IXFR of %s from %d: %d NS records, want an incremental transfer\n%s", storeZone, blocked.serials[0], ixfr.ns, ixfr.out)
	}
}

// publishedEntry is the part of a store entry this file checks.
type publishedEntry struct {
	Name  string `json:"name"`
	State string `json:"state"`
}

// decideEntry confirms or rejects name through the admin API at admin.
func decideEntry(t *testing.T, admin, action, name string) publishedEntry {
	t.Helper()
	body := fmt.Sprintf(`{"name": %q, "by": "integration-test", "note": "published zone test"}`, name)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Post("http://"+admin+"/v1/intel/"+action, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST /v1/intel/%s: %v", action, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/intel/%s %s: %s: %s", action, body, resp.Status, out)
	}
	var e publishedEntry
	if err := json.Unmarshal(out, &e); err != nil {
		t.Fatalf("POST /v1/intel/%s %s: %v: %s", action, body, err, out)
	}
	return e
}

// loggedSerial matches the serial of a "zone updated" log line, in the
// text or the JSON log format.
var loggedSerial = regexp.MustCompile(`zone updated.*?"?serial"?[=:](\d+)`)

// newestLoggedSerial returns the newest serial of the "zone updated" lines
// of the log at path.
func newestLoggedSerial(t *testing.T, path string) uint32 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var newest uint32
	found := false
	for _, m := range loggedSerial.FindAllStringSubmatch(string(data), -1) {
		n, err := strconv.ParseUint(m[1], 10, 32)
		if err != nil {
			t.Fatalf("%s: invalid serial %q", path, m[1])
		}
		if !found || newer(newest, uint32(n)) {
			newest, found = uint32(n), true
		}
	}
	if !found {
		t.Fatalf("%s has no zone updated line with a serial", path)
	}
	return newest
}

// serialNode is a resolver publishing one zone of an indicator file with a
// serial state file and a handover socket, on ports port+184 and port+185.
type serialNode struct {
	cfg, dir, indicators, serials, handover string
	dns                                     string
	primaryPort                             int
}

func newSerialNode(t *testing.T) serialNode {
	t.Helper()
	dir := t.TempDir()
	n := serialNode{
		cfg: filepath.Join(dir, "serial.yaml"), dir: dir,
		indicators: filepath.Join(dir, "indicators.csv"), serials: filepath.Join(dir, "serials.json"),
		handover: filepath.Join(dir, "handover.sock"),
		dns:      net.JoinHostPort(resolver, strconv.Itoa(port+184)), primaryPort: port + 185,
	}
	writeDerivedConfig(t, n.cfg, port+184, fmt.Sprintf(`share:
  publish:
    listen: 127.0.0.1:%d
    allow_transfer: [127.0.0.0/8]
    state_file: %s
    zones:
      - name: %s
        indicators: %s
        ttl: 30s
`, n.primaryPort, n.serials, publishedZone, n.indicators))
	replaceInFile(t, n.cfg, "server:\n", "server:\n  handover_socket: "+n.handover+"\n")
	return n
}

// write replaces the indicator file with names, moving its modification
// time on so that a rewrite within one second is seen.
func (n serialNode) write(t *testing.T, names ...string) {
	t.Helper()
	text := "domain,category,reason\n"
	for _, name := range names {
		text += name + ",malware,serial test\n"
	}
	if err := os.WriteFile(n.indicators, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	mod := time.Now().Add(time.Duration(len(names)) * time.Second)
	if err := os.Chtimes(n.indicators, mod, mod); err != nil {
		t.Fatal(err)
	}
}

// waitOwners waits until an AXFR of the zone has exactly the owners of
// names and returns it.
func (n serialNode) waitOwners(t *testing.T, names ...string) zoneTransfer {
	t.Helper()
	want := rpzOwners(names...)
	var tr zoneTransfer
	mustWait(t, 15*time.Second, fmt.Sprintf("the zone to hold %v", names), func() bool {
		if _, ok := zoneSerial(n.primaryPort, publishedZone); !ok {
			return false
		}
		tr = transferZone(t, n.primaryPort, publishedZone, "AXFR")
		return slices.Equal(sortedOwners(tr), want)
	})
	return tr
}

// TestRPZPrimarySerialAcrossRestarts checks that a handover and a restart
// serve serials newer than every serial served before, even one ahead of
// the clock, and that an IXFR from an earlier process's serial gets the
// whole zone.
func TestRPZPrimarySerialAcrossRestarts(t *testing.T) {
	n := newSerialNode(t)
	n.write(t, "old-one.example", "old-two.example")
	oldDone := startWatched(t, n.cfg, n.dns, filepath.Join(n.dir, "old.log"))
	first := n.waitOwners(t, "old-one.example", "old-two.example")

	// Two changes within a second or two, so the old process's serial
	// may run ahead of the clock.
	n.write(t, "old-one.example")
	n.write(t, "old-three.example")
	oldLast := n.waitOwners(t, "old-three.example").serials[0]
	if !newer(first.serials[0], oldLast) {
		t.Fatalf("serial after changes = %d, want newer than %d", oldLast, first.serials[0])
	}

	// Handover: the new process serves other records.
	n.write(t, "new-one.example")
	stopNext := startHandover(t, n.cfg, filepath.Join(n.dir, "new.log"))
	select {
	case <-oldDone:
	case <-time.After(30 * time.Second):
		t.Fatalf("old process still runs 30s after the handover began")
	}
	// The old process may have taken serials after oldLast, for
	// new-one.example, before it stopped: its log lists them all.
	oldFinal := newestLoggedSerial(t, filepath.Join(n.dir, "old.log"))
	if !newer(oldLast, oldFinal) && oldFinal != oldLast {
		t.Fatalf("old process's newest logged serial %d is older than %d it served", oldFinal, oldLast)
	}
	handed := n.waitOwners(t, "new-one.example")
	if !newer(oldFinal, handed.serials[0]) {
		t.Errorf("serial after the handover = %d, want newer than the old process's %d", handed.serials[0], oldFinal)
	}

	// An IXFR from the old process's serial gets the whole zone, with the
	// new records.
	ixfr := transferZone(t, n.primaryPort, publishedZone, "IXFR="+strconv.FormatUint(uint64(oldLast), 10))
	if got, want := sortedOwners(ixfr), rpzOwners("new-one.example"); !slices.Equal(got, want) {
		t.Errorf("IXFR from the old serial %d: CNAME owners %v, want the whole new zone %v\n%s", oldLast, got, want, ixfr.out)
	}
	if ixfr.ns != 1 || ixfr.serials[0] != handed.serials[0] {
		t.Errorf("IXFR from the old serial %d: %d NS, serials %v; want the whole zone at %d\n%s",
			oldLast, ixfr.ns, ixfr.serials, handed.serials[0], ixfr.out)
	}
	if err := stopNext(); err != nil {
		t.Errorf("new process did not stop cleanly: %v", err)
	}

	// A restart after a process whose serial ran a day ahead of the clock,
	// as after a clock that was corrected backwards.
	ahead := uint32(time.Now().Add(24 * time.Hour).Unix())
	seed := fmt.Sprintf(`{"generation": 7, "zones": {%q: {"serial": %d, "generation": 7}}}`, publishedZone+".", ahead)
	if err := os.WriteFile(n.serials, []byte(seed), 0o644); err != nil {
		t.Fatal(err)
	}
	n.write(t, "restart-one.example")
	restarted, err := labkit.StartBulwark(binary, n.cfg, n.dns, filepath.Join(n.dir, "restart.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := labkit.StopProcess(restarted); err != nil {
			t.Errorf("restarted process did not stop cleanly: %v", err)
		}
	})
	after := n.waitOwners(t, "restart-one.example")
	if !newer(ahead, after.serials[0]) {
		t.Errorf("serial after the restart = %d, want newer than the %d served a day ahead of the clock", after.serials[0], ahead)
	}
}

// TestIntelStoreSurvivesHandover checks that a handover keeps the store
// entries that the old process had not saved yet. The old process saves
// them on the new one's prepare request, the new one loads them, and the
// old one's stop does not overwrite the new one's file. The save interval
// is an hour, so only the handover saves. Ports port+186 and port+187.
func TestIntelStoreSurvivesHandover(t *testing.T) {
	const flooded = "lab-negttl.org"
	dir := t.TempDir()
	cfg := filepath.Join(dir, "handover.yaml")
	dnsAddr := net.JoinHostPort(resolver, strconv.Itoa(port+186))
	admin := "127.0.0.1:" + strconv.Itoa(port+187)
	stateFile := filepath.Join(dir, "store.json")
	intel := strings.Replace(intelConfig(dir), "save_interval: 1s", "save_interval: 1h", 1)
	writeDerivedConfig(t, cfg, port+186, "admin:\n  listen: "+admin+"\n"+intel+
		"  store:\n    enabled: true\n    state_file: "+stateFile+
		"\n    min_findings: 1\n    blocking_detectors: [nxdomain]\n")
	replaceInFile(t, cfg, "server:\n", "server:\n  handover_socket: "+filepath.Join(dir, "handover.sock")+"\n")

	oldDone := startWatched(t, cfg, dnsAddr, filepath.Join(dir, "old.log"))
	if nx := randomNXBurst(t, dnsAddr, flooded+".", 80); nx < 70 {
		t.Fatalf("random names under %s: %d of 80 NXDOMAIN, want at least 70", flooded, nx)
	}
	mustWait(t, 20*time.Second, flooded+" in the old process's store", func() bool {
		return storeHasEntry(admin, flooded)
	})
	if _, err := os.Stat(stateFile); err == nil {
		t.Fatalf("%s written before the handover, with a save interval of an hour", stateFile)
	}

	stopNext := startHandover(t, cfg, filepath.Join(dir, "new.log"))
	select {
	case <-oldDone:
	case <-time.After(30 * time.Second):
		t.Fatal("old process still runs 30s after the handover began")
	}
	if !storeHasEntry(admin, flooded) {
		t.Errorf("new process's store has no entry for %s, which the old process made", flooded)
	}
	if err := stopNext(); err != nil {
		t.Fatalf("stop the new process: %v", err)
	}
	data, err := os.ReadFile(stateFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), flooded) {
		t.Errorf("%s after the new process stopped has no entry for %s", stateFile, flooded)
	}
}

// storeHasEntry reports whether the admin API at admin lists an entry for
// name.
func storeHasEntry(admin, name string) bool {
	resp, err := http.Get("http://" + admin + "/v1/intel/entries/" + name)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// startWatched starts Bulwark on cfg with its log at logPath, and returns a
// channel closed once the process has exited. Cleanup kills a process that
// still runs.
func startWatched(t *testing.T, cfg, dnsAddr, logPath string) <-chan struct{} {
	t.Helper()
	cmd, err := labkit.StartBulwark(binary, cfg, dnsAddr, logPath)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			cmd.Process.Kill()
			<-done
		}
	})
	return done
}

// startHandover starts bulwark serve -handover on cfg with its log at
// logPath. stop ends the process the first time it is called, and
// cleanup calls it.
func startHandover(t *testing.T, cfg, logPath string) (stop func() error) {
	t.Helper()
	cmd := exec.Command(binary, "serve", "-config", cfg, "-handover")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logFile.Close() })
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	var stopErr error
	stop = func() error {
		once.Do(func() { stopErr = labkit.StopProcess(cmd) })
		return stopErr
	}
	t.Cleanup(func() { stop() })
	return stop
}
