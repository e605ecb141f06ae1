package integration

import (
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
)

// publishedZone is the RPZ zone the publishing resolver serves.
const publishedZone = "rpz.bulwark.test"

// publisher is a second resolver that publishes an RPZ zone of the
// indicators in file on primaryPort.
type publisher struct {
	file        string
	log         string
	primaryPort int
}

// startPublisher starts a resolver from the lab config that publishes the
// indicators of names on port+161 and sends NOTIFY to notifyPort.
func startPublisher(t *testing.T, notifyPort int, names ...string) *publisher {
	t.Helper()
	dir := t.TempDir()
	p := &publisher{file: filepath.Join(dir, "indicators.csv"), log: filepath.Join(dir, "publisher.log"), primaryPort: port + 161}
	p.write(t, names...)
	extra := fmt.Sprintf(`share:
  publish:
    listen: 127.0.0.1:%d
    allow_transfer: [127.0.0.0/8]
    notify: ["127.0.0.1:%d"]
    zones:
      - name: %s
        indicators: %s
        ttl: 30s
`, p.primaryPort, notifyPort, publishedZone, p.file)
	path := filepath.Join(dir, "publisher.yaml")
	writeDerivedConfig(t, path, port+160, extra)
	cmd, err := labkit.StartBulwark(binary, path, net.JoinHostPort(resolver, strconv.Itoa(port+160)), p.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := labkit.StopProcess(cmd); err != nil {
			t.Errorf("publishing resolver did not stop cleanly: %v", err)
		}
	})
	mustWait(t, 10*time.Second, "the primary to serve the zone", func() bool {
		r, err := kdig("127.0.0.1", p.primaryPort, publishedZone, "SOA")
		return err == nil && r.Status == "NOERROR" && len(r.Answer) == 1
	})
	return p
}

// write replaces the indicator file with names, as a CSV with a header.
// The modification time moves on by a second so that a rewrite within the
// same second is seen as a change.
func (p *publisher) write(t *testing.T, names ...string) {
	t.Helper()
	text := "domain,category,reason\n"
	for _, n := range names {
		text += n + ",malware,integration test\n"
	}
	if err := os.WriteFile(p.file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	mod := time.Now().Add(time.Duration(len(names)) * time.Second)
	os.Chtimes(p.file, mod, mod)
}

// serial returns the zone's serial at the primary.
func (p *publisher) serial(t *testing.T) uint32 {
	t.Helper()
	r, err := kdig("127.0.0.1", p.primaryPort, publishedZone, "SOA")
	if err != nil || len(r.Answer) != 1 {
		t.Fatalf("SOA query to the primary: %v %v", r, err)
	}
	fields := strings.Fields(r.Answer[0].String())
	n, _ := strconv.ParseUint(fields[6], 10, 32)
	return uint32(n)
}

// mustWait fails the test when cond does not hold within limit.
func mustWait(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	if _, ok := waitFor(limit, cond); !ok {
		t.Fatalf("timed out after %s waiting for %s", limit, what)
	}
}

// transferNames runs kdig AXFR or IXFR=serial against the primary and
// returns the owner names of its CNAME records, in order.
func transferNames(t *testing.T, p *publisher, qtype string) (string, []string) {
	t.Helper()
	out, err := exec.Command("kdig", "@127.0.0.1", "-p", strconv.Itoa(p.primaryPort), "+timeout=5", "+retry=0", publishedZone, qtype).CombinedOutput()
	if err != nil {
		t.Fatalf("kdig %s: %v\n%s", qtype, err, out)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 5 && f[3] == "CNAME" {
			names = append(names, strings.TrimSuffix(f[0], "."+publishedZone+"."))
		}
	}
	return string(out), names
}

func TestRPZPrimaryKdig(t *testing.T) {
	p := startPublisher(t, port+169, "bad.example.com", "evil.example.net")
	out, names := transferNames(t, p, "AXFR")
	want := "bad.example.com,*.bad.example.com,evil.example.net,*.evil.example.net"
	if got := strings.Join(names, ","); !sameSet(got, want) {
		t.Errorf("AXFR CNAME owners = %s, want %s\n%s", got, want, out)
	}

	before := p.serial(t)
	p.write(t, "bad.example.com", "new.example.org")
	mustWait(t, 10*time.Second, "a new serial", func() bool { return p.serial(t) != before })
	out, names = transferNames(t, p, "IXFR="+strconv.FormatUint(uint64(before), 10))
	// kdig prints an IXFR as the removed then the added records.
	want = "evil.example.net,*.evil.example.net,new.example.org,*.new.example.org"
	if got := strings.Join(names, ","); !sameSet(got, want) {
		t.Errorf("IXFR from %d CNAME owners = %s, want %s\n%s", before, got, want, out)
	}
	if !strings.Contains(out, "IXFR") {
		t.Errorf("kdig IXFR output does not show an incremental transfer:\n%s", out)
	}
}

// sameSet reports whether two comma-separated lists hold the same items.
func sameSet(a, b string) bool {
	x, y := strings.Split(a, ","), strings.Split(b, ",")
	if len(x) != len(y) {
		return false
	}
	seen := map[string]int{}
	for _, s := range x {
		seen[s]++
	}
	for _, s := range y {
		seen[s]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}
