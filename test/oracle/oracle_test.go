// Package oracle checks the lab's expected answers against an independent
// resolver: Unbound from Debian, run as a plain iterator (no validator,
// because the lab is unsigned) with QNAME minimisation, pointed at the lab
// root hints. A row where Unbound's reply differs is either a generator
// bug, to be fixed in lab/internal/gen, or a known difference listed in
// exceptions with its reason.
//
// Unbound sends queries to authoritative servers on port 53 only, so the
// lab must run with port offset 0. The test starts its own lab in a
// temporary directory, or uses the running lab in $BULWARK_LAB.
package oracle

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"bulwark/test/labkit"
)

// unboundAddr is where the test's Unbound listens.
const unboundAddr = "127.0.0.1:5399"

// Query timeouts. Unbound gives up on silent and lame authorities only
// after its own retries, so SERVFAIL rows get a longer budget.
const (
	queryTimeout    = 10 * time.Second
	servfailTimeout = 60 * time.Second
	noReplyTimeout  = 15 * time.Second
	workers         = 8
)

// noReply is the outcome of a query that Unbound never replies to.
const noReply = "no reply"

// exception is a row where Unbound's answer differs from expected.tsv for
// a known reason; the test checks that Unbound's outcome is still one of
// Outcomes (rcode names or noReply).
type exception struct {
	Outcomes []string
	Reason   string
}

// exceptions is keyed by "name type". Both were seen with Unbound 1.17.1
// from Debian 12.
var exceptions = map[string]exception{
	"www.lab-silent.net. A": {
		Outcomes: []string{noReply},
		Reason: "the zone's only name server never replies; Unbound gives up after about " +
			"5 seconds but drops the SERVFAIL instead of sending it (its log counts the " +
			"reply as dropped)",
	},
	"www.lab-manyns.org. A": {
		Outcomes: []string{"NOERROR", "SERVFAIL"},
		Reason: "six of the eight NS names are NXDOMAIN; Unbound stops a query after more " +
			"than 5 NXDOMAIN answers for name server lookups (its log says \"request has " +
			"exceeded the maximum number of nxdomain nameserver lookups (5) with 6\") and " +
			"counts A and AAAA separately, so it fails whenever its first random picks are " +
			"three bad names",
	},
}

func TestUnboundAnswersMatchExpected(t *testing.T) {
	lab := openLab(t)
	rows, err := labkit.ReadExpected(lab.Info.Expected)
	if err != nil {
		t.Fatal(err)
	}

	startUnbound(t, lab)
	results := queryRows(rows)
	for i, row := range rows {
		checkRow(t, row, results[i])
	}
}

// openLab starts a lab with offset 0, or opens the one in $BULWARK_LAB.
func openLab(t *testing.T) *labkit.Lab {
	t.Helper()
	if dir := os.Getenv("BULWARK_LAB"); dir != "" {
		lab, err := labkit.Open(dir)
		if err != nil {
			t.Fatalf("open lab from BULWARK_LAB: %v", err)
		}
		if lab.Info.PortOffset != 0 {
			t.Fatalf("BULWARK_LAB=%s has port offset %d; the Unbound oracle needs offset 0, "+
				"because Unbound sends queries to authoritative servers on port 53 only",
				dir, lab.Info.PortOffset)
		}
		return lab
	}

	lab, err := labkit.Up(t.TempDir(), 0)
	if err != nil {
		t.Fatalf("start lab: %v", err)
	}
	t.Cleanup(func() {
		if err := lab.Down(); err != nil {
			t.Errorf("stop lab: %v", err)
		}
	})
	return lab
}

// result is Unbound's reply to one row, or the error of the exchange.
type result struct {
	msg *dns.Msg
	err error
}

// queryRows sends every row's question to Unbound from a few workers and
// returns the replies in row order.
func queryRows(rows []labkit.Row) []result {
	results := make([]result, len(rows))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				results[i] = query(rows[i])
			}
		}()
	}
	for i := range rows {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return results
}

// query sends one question over UDP with a 4096-byte EDNS buffer and
// repeats it over TCP when the reply is truncated.
func query(row labkit.Row) result {
	msg := new(dns.Msg)
	msg.SetQuestion(row.Name, row.QType())
	msg.SetEdns0(4096, false)

	timeout := queryTimeout
	if row.Rcode == "SERVFAIL" {
		timeout = servfailTimeout
	}
	if ex, ok := exceptions[row.Name+" "+row.Type]; ok && contains(ex.Outcomes, noReply) {
		timeout = noReplyTimeout
	}
	client := &dns.Client{Net: "udp", Timeout: timeout}
	resp, _, err := client.Exchange(msg, unboundAddr)
	if err == nil && resp.Truncated {
		client.Net = "tcp"
		resp, _, err = client.Exchange(msg, unboundAddr)
	}
	return result{msg: resp, err: err}
}

// checkRow compares one reply with its row, or with the row's exception.
func checkRow(t *testing.T, row labkit.Row, res result) {
	t.Helper()
	key := row.Name + " " + row.Type
	if ex, ok := exceptions[key]; ok {
		got := outcome(res)
		if !contains(ex.Outcomes, got) {
			t.Errorf("%s: Unbound outcome = %s, want one of %q (known exception: %s)", key, got, ex.Outcomes, ex.Reason)
		}
		return
	}
	if res.err != nil {
		t.Errorf("%s: query Unbound: %v", key, res.err)
		return
	}
	gotRcode := dns.RcodeToString[res.msg.Rcode]
	if gotRcode != row.Rcode {
		t.Errorf("%s: Unbound rcode = %s, want %s", key, gotRcode, row.Rcode)
		return
	}

	values := answerValues(res.msg, row.QType())
	switch {
	case row.Value == "-" && len(values) > 0:
		t.Errorf("%s: Unbound answer = %q, want no %s records", key, values, row.Type)
	case row.Value != "-" && !contains(values, row.Value):
		t.Errorf("%s: Unbound answer = %q, want it to contain %q", key, values, row.Value)
	}
}

// outcome names the rcode of a reply, noReply for a timeout, or the error.
func outcome(res result) string {
	var netErr net.Error
	switch {
	case errors.As(res.err, &netErr) && netErr.Timeout():
		return noReply
	case res.err != nil:
		return res.err.Error()
	}
	return dns.RcodeToString[res.msg.Rcode]
}

// answerValues returns the answer records of qtype as dig +short prints
// them.
func answerValues(msg *dns.Msg, qtype uint16) []string {
	var out []string
	for _, rr := range msg.Answer {
		if rr.Header().Rrtype == qtype {
			out = append(out, labkit.ShortValue(rr))
		}
	}
	sort.Strings(out)
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// startUnbound installs Unbound when missing, starts it with an iterator
// only config for the lab and stops it when the test ends.
func startUnbound(t *testing.T, lab *labkit.Lab) {
	t.Helper()
	bin := findUnbound(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "unbound.conf")
	if err := os.WriteFile(conf, []byte(unboundConfig(dir, lab.Info.RootHints)), 0o644); err != nil {
		t.Fatal(err)
	}

	logPath := filepath.Join(dir, "unbound.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-d", "-p", "-c", conf)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start unbound: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		logFile.Close()
	})

	if err := waitForUnbound(); err != nil {
		out, _ := os.ReadFile(logPath)
		t.Fatalf("unbound did not answer on %s: %v\nlog:\n%s", unboundAddr, err, out)
	}
}

// findUnbound returns the unbound binary, installing the Debian package
// when it is missing.
func findUnbound(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"unbound", "/usr/sbin/unbound"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Log("unbound not found; installing the Debian package")
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "unbound"}} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("apt-get %v: %v\n%s", args, err, out)
		}
	}
	return "/usr/sbin/unbound"
}

func unboundConfig(dir, hints string) string {
	host, port, _ := net.SplitHostPort(unboundAddr)
	return fmt.Sprintf(`server:
	interface: %s@%s
	port: %s
	do-ip4: yes
	do-ip6: yes
	do-udp: yes
	do-tcp: yes
	access-control: 127.0.0.0/8 allow
	do-not-query-localhost: no
	root-hints: %q
	module-config: "iterator"
	qname-minimisation: yes
	ede: yes
	username: ""
	chroot: ""
	directory: %q
	use-syslog: no
	logfile: ""
	verbosity: 1
	num-threads: 1
	so-reuseport: no
remote-control:
	control-enable: no
`, host, port, port, hints, dir)
}

// waitForUnbound polls until Unbound resolves the root NS RRset, which
// needs the lab root servers.
func waitForUnbound() error {
	deadline := time.Now().Add(20 * time.Second)
	msg := new(dns.Msg)
	msg.SetQuestion(".", dns.TypeNS)
	client := &dns.Client{Timeout: time.Second}
	for {
		resp, _, err := client.Exchange(msg, unboundAddr)
		if err == nil && resp.Rcode == dns.RcodeSuccess {
			return nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("rcode %s", dns.RcodeToString[resp.Rcode])
			}
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}
