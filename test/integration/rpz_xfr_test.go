package integration

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
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

// Addresses of the RPZ transfer test. The Knot DNS primary listens on
// 127.53.5.1; the resolvers use the lab config's listeners, moved to their
// own ports.
const (
	xfrPrimaryAddr = "127.53.5.1"
	xfrPrimaryPort = 6253
	xfrZone        = "rpz.lab-xfr.test."
	xfrList        = "rpz-xfr"
	// Resolver receiving the zone, its admin API, and the resolver with a
	// wrong TSIG secret and its admin API.
	xfrDNSPort, xfrAdminPort           = 6250, 6251
	xfrWrongKeyPort, xfrWrongAdminPort = 6252, 6254
	// xfrStranger is a loopback address that is no primary of the zone.
	xfrStranger = "127.0.0.9"
)

// xfrState is the part of a list state the test reads from the admin API.
type xfrState struct {
	Name     string `json:"name"`
	Rules    int    `json:"rules"`
	Error    string `json:"error"`
	Transfer *struct {
		Serial           uint32 `json:"serial"`
		HasCopy          bool   `json:"has_copy"`
		Type             string `json:"last_transfer_type"`
		LastTransfer     string `json:"last_transfer"`
		Error            string `json:"error"`
		NotifiesAccepted int    `json:"notifies_accepted"`
	} `json:"transfer"`
}

// knotPrimary is a knotd process started by the test.
type knotPrimary struct {
	dir, log, socket string
	cmd              *exec.Cmd
}

// startKnotPrimary writes a Knot DNS config and the RPZ zone into dir and
// starts knotd as the zone's primary. It signs transfers and NOTIFY with
// secret, sends NOTIFY to the resolver on xfrDNSPort from its own address,
// and keeps a journal so that it serves IXFR.
func startKnotPrimary(t *testing.T, dir, secret string, listed []string) *knotPrimary {
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
    any: "info"
database:
    storage: "%[1]s/db"
key:
  - id: "xfr-key"
    algorithm: "hmac-sha256"
    secret: %[5]q
remote:
  - id: "bulwark"
    address: "127.0.0.1@%[6]d"
    via: "%[2]s"
    key: "xfr-key"
acl:
  - id: "transfer"
    address: "127.0.0.0/8"
    key: "xfr-key"
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
`, dir, xfrPrimaryAddr, xfrPrimaryPort, k.socket, secret, xfrDNSPort, xfrZone)
	zone := "$ORIGIN " + xfrZone + "\n$TTL 60\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns\n"
	for _, name := range listed {
		zone += name + xfrZone + " CNAME .\n"
	}
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("knot.conf", conf)
	write("zone.rpz", zone)

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
	q.SetQuestion(xfrZone, dns.TypeSOA)
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if r, _, err := client.Exchange(q, net.JoinHostPort(xfrPrimaryAddr, strconv.Itoa(xfrPrimaryPort))); err == nil && r.Rcode == dns.RcodeSuccess {
			return k
		}
	}
	t.Fatalf("knotd does not serve %s within 15s; log:\n%s", xfrZone, readText(t, k.log))
	return nil
}

// change applies one transaction to the zone with knotc: set adds
// blocking records, unset removes them. Knot DNS raises the serial and
// sends NOTIFY.
func (k *knotPrimary) change(t *testing.T, set, unset []string) {
	t.Helper()
	knotc := func(args ...string) {
		out, err := exec.Command("knotc", append([]string{"-s", k.socket}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("knotc %v: %v\n%s", args, err, out)
		}
	}
	knotc("zone-begin", xfrZone)
	for _, name := range set {
		knotc("zone-set", xfrZone, name+xfrZone, "60", "CNAME", ".")
	}
	for _, name := range unset {
		knotc("zone-unset", xfrZone, name+xfrZone, "CNAME")
	}
	knotc("zone-commit", xfrZone)
}

func readText(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// startXFRBulwark starts a resolver from the lab config, with the
// transferred list in the protective flavour, its copy in file, and the
// admin API on adminPort.
func startXFRBulwark(t *testing.T, dir string, dnsPort, adminPort int, file, secret string) string {
	t.Helper()
	path := filepath.Join(dir, "bulwark.yaml")
	writeDerivedConfig(t, path, dnsPort, fmt.Sprintf("admin:\n  listen: 127.0.0.1:%d\n", adminPort))
	cfg := readText(t, path)
	list := fmt.Sprintf(`  lists:
    - name: %s
      file: %s
      format: rpz
      category: malware
      zone: %s
      primaries: ["%s:%d"]
      tsig:
        name: xfr-key
        secret: %s
`, xfrList, file, xfrZone, xfrPrimaryAddr, xfrPrimaryPort, secret)
	if !strings.Contains(cfg, "  lists:\n") {
		t.Fatalf("lab config %s has no policy.lists", lab.Info.BulwarkConfig)
	}
	cfg = strings.Replace(cfg, "  lists:\n", list, 1)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "bulwark.log")
	cmd, err := labkit.StartBulwark(binary, path, net.JoinHostPort(resolver, strconv.Itoa(dnsPort)), logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := labkit.StopProcess(cmd); err != nil {
			t.Errorf("resolver on port %d did not stop cleanly: %v", dnsPort, err)
		}
	})
	return logPath
}

// xfrListState returns the state of the transferred list from the admin
// API on adminPort.
func xfrListState(t *testing.T, adminPort int) xfrState {
	t.Helper()
	var lists []xfrState
	getJSON(t, fmt.Sprintf("http://127.0.0.1:%d/v1/policy/lists", adminPort), &lists)
	for _, l := range lists {
		if l.Name == xfrList {
			if l.Transfer == nil {
				t.Fatalf("list %s has no transfer state", xfrList)
			}
			return l
		}
	}
	t.Fatalf("no list %s in the admin API", xfrList)
	return xfrState{}
}

// waitFor polls cond every 100ms until it holds or timeout passes, and
// returns how long it took and whether it held.
func waitFor(timeout time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < timeout {
		if cond() {
			return time.Since(start), true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start), cond()
}

// blockedBy reports whether the protective listener on port blocks name
// with the transferred list, and the kdig result.
func blockedBy(t *testing.T, port int, name string) (bool, *kdigResult) {
	t.Helper()
	r, err := kdig("127.0.0.2", port, name, "A", "+edns")
	if err != nil {
		t.Fatal(err)
	}
	return r.Status == "NXDOMAIN" && r.EDE == 15 && strings.Contains(r.Output, `"list":"`+xfrList+`"`), r
}

// xfrNames returns two lab names that resolve and that no lab list
// blocks: the lab's clean name, and the first plain A row of the expected
// answers outside the special zones.
func xfrNames(t *testing.T) (string, string) {
	t.Helper()
	rows, err := labkit.ReadExpected(lab.Info.Expected)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Type == "A" && r.Rcode == "NOERROR" && r.EDE < 0 && !strings.Contains(r.Name, "lab-") && r.Name != lab.Info.Policy.CleanName {
			return lab.Info.Policy.CleanName, r.Name
		}
	}
	t.Fatal("no plain A row in expected.tsv")
	return "", ""
}

// sendNotify sends a NOTIFY for zone over UDP from the address from to the
// resolver on port, and returns the response's rcode.
func sendNotify(t *testing.T, from, zone string, port int) int {
	t.Helper()
	m := new(dns.Msg)
	m.SetNotify(zone)
	client := &dns.Client{Timeout: 2 * time.Second, Dialer: &net.Dialer{
		Timeout: 2 * time.Second, LocalAddr: &net.UDPAddr{IP: net.ParseIP(from)},
	}}
	r, _, err := client.Exchange(m, net.JoinHostPort(resolver, strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("NOTIFY for %s from %s: %v", zone, from, err)
	}
	return r.Rcode
}

// TestRPZTransfer runs a Knot DNS primary of an RPZ zone and a resolver
// that receives it by AXFR, then by IXFR on NOTIFY while a query load
// runs, and checks NOTIFY from strangers and a wrong TSIG secret.
func TestRPZTransfer(t *testing.T) {
	dir := t.TempDir()
	first, second := xfrNames(t)
	withDot := func(name string) string { return strings.TrimSuffix(name, ".") + "." }
	secretBytes := make([]byte, 32)
	rand.Read(secretBytes)
	secret := base64.StdEncoding.EncodeToString(secretBytes)
	knot := startKnotPrimary(t, filepath.Join(dir, "knot"), secret, []string{withDot(first)})

	resolverDir := filepath.Join(dir, "resolver")
	os.MkdirAll(resolverDir, 0o755)
	copyPath := filepath.Join(resolverDir, "rpz-xfr.rpz")
	if blocked, _ := blockedBy(t, port, second); blocked {
		t.Fatalf("%s is blocked before the test lists it", second)
	}
	logPath := startXFRBulwark(t, resolverDir, xfrDNSPort, xfrAdminPort, copyPath, secret)

	// The first copy arrives by AXFR.
	took, ok := waitFor(10*time.Second, func() bool {
		st := xfrListState(t, xfrAdminPort)
		return st.Transfer.HasCopy && st.Rules == 1
	})
	st := xfrListState(t, xfrAdminPort)
	if !ok || st.Transfer.Serial != 1 || st.Transfer.Type != "AXFR" || st.Error != "" {
		t.Fatalf("after %v: list state %+v transfer %+v, want serial 1 by AXFR with 1 rule\n%s", took, st, st.Transfer, readText(t, logPath))
	}
	if blocked, r := blockedBy(t, xfrDNSPort, first); !blocked {
		t.Fatalf("%s after the AXFR: %s EDE %d, want blocked by %s\n%s", first, r.Status, r.EDE, xfrList, r.Output)
	}
	if blocked, r := blockedBy(t, xfrDNSPort, second); blocked || r.Status != "NOERROR" {
		t.Fatalf("%s after the AXFR: %s EDE %d, want NOERROR", second, r.Status, r.EDE)
	}

	// The change reaches the resolver by NOTIFY and IXFR while dnsperf
	// replays the lab's queries through the protective listener.
	perf := exec.Command("dnsperf", "-s", "127.0.0.2", "-p", strconv.Itoa(xfrDNSPort),
		"-d", lab.Info.Queries, "-l", "4", "-Q", "500", "-t", "5")
	var perfOut strings.Builder
	perf.Stdout, perf.Stderr = &perfOut, &perfOut
	if err := perf.Start(); err != nil {
		t.Fatalf("start dnsperf: %v", err)
	}
	time.Sleep(time.Second)
	changed := time.Now()
	knot.change(t, []string{withDot(second)}, []string{withDot(first)})
	took, ok = waitFor(5*time.Second, func() bool {
		b2, _ := blockedBy(t, xfrDNSPort, second)
		b1, r1 := blockedBy(t, xfrDNSPort, first)
		return b2 && !b1 && r1.Status == "NOERROR"
	})
	if !ok {
		t.Errorf("%v after the change, %s is not blocked or %s does not resolve\n%s", took, second, first, readText(t, logPath))
	}
	t.Logf("the change was served %v after knotc zone-commit", time.Since(changed).Round(time.Millisecond))
	perfErr := perf.Wait()
	checkNoDroppedQueries(t, perfErr, perfOut.String())

	st = xfrListState(t, xfrAdminPort)
	if st.Transfer.Serial != 2 || st.Transfer.Type != "IXFR" || st.Transfer.NotifiesAccepted < 1 {
		t.Errorf("transfer state %+v, want serial 2 by IXFR after a NOTIFY", st.Transfer)
	}
	if knotLog := readText(t, knot.log); !strings.Contains(knotLog, "IXFR, outgoing") || !strings.Contains(knotLog, "serial 1 -> 2") {
		t.Errorf("Knot DNS log shows no outgoing IXFR from serial 1 to 2:\n%s", knotLog)
	}

	// NOTIFY from an address that is no primary, or for another zone, is
	// refused and counted.
	if rcode := sendNotify(t, xfrStranger, xfrZone, xfrDNSPort); rcode != dns.RcodeRefused {
		t.Errorf("NOTIFY from %s: %s, want REFUSED", xfrStranger, dns.RcodeToString[rcode])
	}
	if rcode := sendNotify(t, xfrPrimaryAddr, "other.lab-xfr.test.", xfrDNSPort); rcode != dns.RcodeNotAuth {
		t.Errorf("NOTIFY for another zone: %s, want NOTAUTH", dns.RcodeToString[rcode])
	}
	if rcode := sendNotify(t, xfrPrimaryAddr, xfrZone, xfrDNSPort); rcode != dns.RcodeRefused {
		t.Errorf("unsigned NOTIFY from the primary's address: %s, want REFUSED (the zone has a key)", dns.RcodeToString[rcode])
	}
	var notifies struct {
		Accepted int            `json:"accepted"`
		Refused  map[string]int `json:"refused"`
	}
	getJSON(t, fmt.Sprintf("http://127.0.0.1:%d/v1/policy/notify", xfrAdminPort), &notifies)
	if notifies.Refused["address"] != 1 || notifies.Refused["unknown_zone"] != 1 || notifies.Refused["tsig"] != 1 || notifies.Accepted < 1 {
		t.Errorf("NOTIFY counters %+v, want 1 refused by address, zone and TSIG, and Knot's accepted", notifies)
	}

	// A resolver with a wrong secret starts from a copy of the copy: it
	// serves it and reports the TSIG failure.
	wrongDir := filepath.Join(dir, "wrong-key")
	os.MkdirAll(wrongDir, 0o755)
	wrongCopy := filepath.Join(wrongDir, "rpz-xfr.rpz")
	if err := os.WriteFile(wrongCopy, []byte(readText(t, copyPath)), 0o644); err != nil {
		t.Fatal(err)
	}
	wrongSecret := base64.StdEncoding.EncodeToString([]byte("not the secret of the primary"))
	wrongLog := startXFRBulwark(t, wrongDir, xfrWrongKeyPort, xfrWrongAdminPort, wrongCopy, wrongSecret)
	took, ok = waitFor(10*time.Second, func() bool { return xfrListState(t, xfrWrongAdminPort).Error != "" })
	st = xfrListState(t, xfrWrongAdminPort)
	if !ok || !strings.Contains(st.Error, "TSIG") || !strings.Contains(st.Error, xfrPrimaryAddr) {
		t.Errorf("after %v: wrong-key list error %q, want a TSIG failure naming the primary\n%s", took, st.Error, readText(t, wrongLog))
	}
	if st.Transfer.Serial != 2 || !st.Transfer.HasCopy || st.Rules != 1 {
		t.Errorf("wrong-key list state %+v transfer %+v, want the copy of serial 2 still loaded", st, st.Transfer)
	}
	if blocked, r := blockedBy(t, xfrWrongKeyPort, second); !blocked {
		t.Errorf("wrong-key resolver: %s %s EDE %d, want blocked by the copy it started with", second, r.Status, r.EDE)
	}
	if !strings.Contains(readText(t, wrongLog), "zone refresh failed") {
		t.Errorf("wrong-key resolver log has no refresh failure:\n%s", readText(t, wrongLog))
	}
	t.Logf("wrong-key error: %s", st.Error)
}

// checkNoDroppedQueries checks that dnsperf got a response to every query
// it sent.
func checkNoDroppedQueries(t *testing.T, err error, out string) {
	t.Helper()
	if err != nil {
		t.Fatalf("dnsperf: %v\n%s", err, out)
	}
	fields := map[string]string{}
	for _, m := range dnsperfLine.FindAllStringSubmatch(out, -1) {
		fields[m[1]] = m[2]
	}
	sent := strings.Fields(fields["Queries sent"])
	completed := strings.Fields(fields["Queries completed"])
	if len(sent) == 0 || len(completed) == 0 || sent[0] != completed[0] {
		t.Errorf("dnsperf sent %v, completed %v, want every query answered\n%s", sent, completed, out)
	}
	t.Logf("dnsperf during the transfer: sent %s, response codes %s", fields["Queries sent"], fields["Response codes"])
}
