package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bulwark/test/labkit"
)

// labNames returns n names of the lab that resolve NOERROR with an A
// record, so that a name no longer blocked gets a real answer.
func labNames(t *testing.T, n int) []string {
	t.Helper()
	rows, err := labkit.ReadExpected(lab.Info.Expected)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	seen := map[string]bool{}
	for _, r := range rows {
		name := strings.TrimSuffix(r.Name, ".")
		if r.Type == "A" && r.Rcode == "NOERROR" && r.Value != "-" && !seen[name] && strings.Count(name, ".") >= 1 {
			seen[name] = true
			names = append(names, name)
			if len(names) == n {
				return names
			}
		}
	}
	t.Fatalf("the lab has %d names with an A record, want %d", len(names), n)
	return nil
}

// startUnbound runs Unbound on 127.0.0.1:unboundPort, forwarding to the
// lab resolver and loading the published zone as an RPZ from the primary.
// It returns the log path.
func startUnbound(t *testing.T, unboundPort, primaryPort int) string {
	t.Helper()
	if _, err := exec.LookPath("unbound"); err != nil {
		t.Fatalf("unbound is not installed: run make deps: %v", err)
	}
	dir := t.TempDir()
	logPath := filepath.Join(dir, "unbound.log")
	conf := fmt.Sprintf(`server:
	interface: 127.0.0.1@%[1]d
	port: %[1]d
	do-daemonize: no
	username: ""
	chroot: ""
	directory: "%[2]s"
	pidfile: ""
	use-syslog: no
	logfile: "%[3]s"
	verbosity: 2
	module-config: "respip iterator"
	access-control: 127.0.0.0/8 allow
	do-not-query-localhost: no
	do-ip6: no
	num-threads: 1
	so-reuseport: no
forward-zone:
	name: "."
	forward-addr: 127.0.0.1@%[4]d
rpz:
	name: %[5]s
	primary: 127.0.0.1@%[6]d
	allow-notify: 127.0.0.1
	zonefile: "%[2]s/rpz.zone"
	rpz-log: yes
`, unboundPort, dir, logPath, port, publishedZone, primaryPort)
	path := filepath.Join(dir, "unbound.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("unbound-checkconf", path).CombinedOutput(); err != nil {
		t.Fatalf("unbound-checkconf: %v\n%s", err, out)
	}
	cmd := exec.Command("unbound", "-d", "-c", path)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := labkit.StopProcess(cmd); err != nil {
			t.Logf("unbound stop: %v", err)
		}
	})
	return logPath
}

// unboundBlocks reports whether Unbound answers name with the RPZ
// NXDOMAIN, and the rcode it gave.
func unboundBlocks(t *testing.T, unboundPort int, name string) (bool, string) {
	t.Helper()
	r, err := kdig("127.0.0.1", unboundPort, name, "A")
	if err != nil {
		return false, err.Error()
	}
	return r.Status == "NXDOMAIN", r.Status
}

// TestRPZPrimaryUnbound checks that Unbound, as a secondary of the RPZ
// zone Bulwark publishes, blocks a listed name, and that an added and a
// removed indicator reach it by NOTIFY and IXFR within seconds.
func TestRPZPrimaryUnbound(t *testing.T) {
	names := labNames(t, 3)
	listed, added, unlisted := names[0], names[1], names[2]
	unboundPort := port + 162
	p := startPublisher(t, unboundPort, listed)
	logPath := startUnbound(t, unboundPort, p.primaryPort)

	if _, ok := waitFor(15*time.Second, func() bool { b, _ := unboundBlocks(t, unboundPort, listed); return b }); !ok {
		log, _ := os.ReadFile(logPath)
		t.Fatalf("Unbound does not block %s within 15s\n%s", listed, log)
	}
	if blocked, rcode := unboundBlocks(t, unboundPort, added); blocked {
		t.Fatalf("Unbound blocks %s (%s) before it is listed", added, rcode)
	}
	if blocked, rcode := unboundBlocks(t, unboundPort, unlisted); blocked || rcode != "NOERROR" {
		t.Fatalf("Unbound answers %s with %s, want NOERROR from the lab", unlisted, rcode)
	}

	// Add one indicator and remove the first: NOTIFY, then IXFR.
	p.write(t, added)
	took, ok := waitFor(10*time.Second, func() bool {
		a, _ := unboundBlocks(t, unboundPort, added)
		l, _ := unboundBlocks(t, unboundPort, listed)
		return a && !l
	})
	if !ok {
		log, _ := os.ReadFile(logPath)
		t.Fatalf("after the change Unbound does not block %s and unblock %s within 10s\n%s", added, listed, log)
	}
	t.Logf("the change reached Unbound in %s", took.Round(10*time.Millisecond))
	if blocked, rcode := unboundBlocks(t, unboundPort, listed); blocked || rcode != "NOERROR" {
		t.Errorf("removed indicator %s answers %s, want NOERROR from the lab", listed, rcode)
	}

	// The change went by IXFR, pushed by NOTIFY: well before the SOA
	// refresh timer of 300s.
	log, _ := os.ReadFile(p.log)
	if !strings.Contains(string(log), "type=IXFR") {
		t.Errorf("the publisher's log shows no IXFR:\n%s", log)
	}
}
