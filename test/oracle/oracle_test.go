// Package oracle checks the lab's expected answers against an independent
// resolver: Unbound from Debian, run as a validating iterator with QNAME
// minimisation, pointed at the lab root hints and given the lab root's
// trust anchor. A row where Unbound's reply differs in rcode, answer, AD
// bit or Extended DNS Error is either a generator bug, to be fixed in
// lab/internal/gen, or a known difference listed in exceptions with its
// reason.
//
// Unbound sends queries to authoritative servers on port 53 only, so a
// lab with port offset 0 is checked by plain iteration from the root
// hints. For a lab with another offset, Unbound gets a stub zone with the
// lab port for every zone that a lab process loads. It then reaches every
// zone directly, so only the rows of loaded zones are checked, and the
// special cases whose point is a broken delegation are skipped. The test
// starts its own lab with offset 0 in a temporary directory, or uses the
// running lab in $BULWARK_LAB.
package oracle

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"bulwark/lab/labspec"
	"bulwark/test/labkit"
)

// unboundBasePort is where the test's Unbound listens, shifted by the
// lab's port offset so that tests on labs with different offsets can run
// at once.
const unboundBasePort = 5399

// unboundAddr is where the test's Unbound listens; startUnbound sets it.
var unboundAddr = "127.0.0.1:5399"

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

// exceptions is keyed by "name type". An outcome is an rcode name, or an
// rcode with the AD bit and EDE code as fullOutcome prints it, such as
// "NOERROR ad=1 ede=-". All were seen with Unbound 1.17.1 from Debian 12.
var exceptions = map[string]exception{
	"www.nsec3-iter200.lab-dnssec.net. TXT": {
		Outcomes: []string{"NOERROR ad=0 ede=-"},
		Reason: "Unbound treats NSEC3 with 200 iterations as insecure (its limit for a " +
			"256-bit key is 150) but sends no EDE 27, which it does not implement",
	},
	"nx.nsec3-iter200.lab-dnssec.net. A": {
		Outcomes: []string{"NXDOMAIN ad=0 ede=-"},
		Reason:   "as for the NODATA row: insecure, but no EDE 27",
	},
	"www.rsasha1.lab-dnssec.net. A": {
		Outcomes: []string{"NOERROR ad=1 ede=-"},
		Reason:   "Unbound still validates RSASHA1 (algorithm 5); Bulwark does not implement it",
	},
	"www.rsasha1-nsec3.lab-dnssec.net. A": {
		Outcomes: []string{"NOERROR ad=1 ede=-"},
		Reason:   "Unbound still validates RSASHA1-NSEC3-SHA1 (algorithm 7); Bulwark does not implement it",
	},
	"www.rsa512.lab-dnssec.net. A": {
		Outcomes: []string{"NOERROR ad=1 ede=-"},
		Reason:   "Unbound has no minimum RSA key size and validates the 512-bit key; Bulwark requires 1024 bits",
	},
	"www.ds-sha1.lab-dnssec.net. A": {
		Outcomes: []string{"NOERROR ad=1 ede=-"},
		Reason:   "Unbound accepts a DS with digest type 1 (SHA-1) when it is the only one; Bulwark does not",
	},
	"www.ds-gost.lab-dnssec.net. A": {
		Outcomes: []string{"NOERROR ad=0 ede=-"},
		Reason:   "Unbound treats the zone as insecure, as Bulwark does, but sends no EDE 2",
	},
	"nx.nsec-gap.lab-dnssec.net. A": {
		Outcomes: []string{"SERVFAIL ad=0 ede=6"},
		Reason: "the only NSEC in the reply does not cover the name; Unbound calls that " +
			"DNSSEC Bogus (EDE 6), the lab expects NSEC Missing (EDE 12)",
	},
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

	stubs := startUnbound(t, lab)
	if stubs {
		rows = loadedZoneRows(rows, lab.Info.DNSSECZone)
		t.Logf("lab has port offset %d: Unbound uses stub zones, so only the %d rows of loaded zones are checked",
			lab.Info.PortOffset, len(rows))
	}
	results := queryRows(rows)
	for i, row := range rows {
		checkRow(t, row, results[i])
	}
}

// loadedZoneRows drops the rows of the special cases (names with "lab-"),
// whose delegations a stub-zone Unbound bypasses, except those of the
// DNSSEC zone, whose zones are all loaded.
func loadedZoneRows(rows []labkit.Row, dnssecZone string) []labkit.Row {
	var out []labkit.Row
	for _, row := range rows {
		if !strings.Contains(row.Name, "lab-") || dns.IsSubDomain(dnssecZone, row.Name) {
			out = append(out, row)
		}
	}
	return out
}

// openLab starts a lab with offset 0, or opens the one in $BULWARK_LAB.
func openLab(t *testing.T) *labkit.Lab {
	t.Helper()
	if dir := os.Getenv("BULWARK_LAB"); dir != "" {
		lab, err := labkit.Open(dir)
		if err != nil {
			t.Fatalf("open lab from BULWARK_LAB: %v", err)
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
				results[i] = query(rows[i], unboundAddr)
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

// query sends one question with the DO bit to server over UDP with a
// 4096-byte EDNS buffer and repeats it over TCP when the reply is
// truncated.
func query(row labkit.Row, server string) result {
	msg := new(dns.Msg)
	msg.SetQuestion(row.Name, row.QType())
	msg.SetEdns0(4096, true)

	timeout := queryTimeout
	if row.Rcode == "SERVFAIL" {
		timeout = servfailTimeout
	}
	if ex, ok := exceptions[row.Name+" "+row.Type]; ok && contains(ex.Outcomes, noReply) {
		timeout = noReplyTimeout
	}
	client := &dns.Client{Net: "udp", Timeout: timeout}
	resp, _, err := client.Exchange(msg, server)
	if err == nil && resp.Truncated {
		client.Net = "tcp"
		resp, _, err = client.Exchange(msg, server)
	}
	return result{msg: resp, err: err}
}

// checkRow compares one reply with its row, or with the row's exception.
func checkRow(t *testing.T, row labkit.Row, res result) {
	t.Helper()
	key := row.Name + " " + row.Type
	if ex, ok := exceptions[key]; ok {
		got := outcome(res)
		if !contains(ex.Outcomes, got) && !contains(ex.Outcomes, fullOutcome(res)) {
			t.Errorf("%s: Unbound outcome = %s, want one of %q (known exception: %s)", key, fullOutcome(res), ex.Outcomes, ex.Reason)
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

	if res.msg.AuthenticatedData != row.AD {
		t.Errorf("%s: Unbound AD = %v, want %v", key, res.msg.AuthenticatedData, row.AD)
	}
	// Unbound's EDE codes for unreachable authorities vary with what it
	// tried, so EDE 22 rows are compared by rcode only.
	if got := edeCode(res.msg); got != row.EDE && row.EDE != labspec.EDENoReachableAuthority {
		t.Errorf("%s: Unbound EDE = %d, want %d", key, got, row.EDE)
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

// fullOutcome prints the rcode, AD bit and EDE code of a reply, such as
// "SERVFAIL ad=0 ede=6", or what outcome returns for a failed exchange.
func fullOutcome(res result) string {
	if res.err != nil {
		return outcome(res)
	}
	ad := 0
	if res.msg.AuthenticatedData {
		ad = 1
	}
	ede := "-"
	if code := edeCode(res.msg); code >= 0 {
		ede = fmt.Sprint(code)
	}
	return fmt.Sprintf("%s ad=%d ede=%s", dns.RcodeToString[res.msg.Rcode], ad, ede)
}

// edeCode returns the first Extended DNS Error code of msg, or -1.
func edeCode(msg *dns.Msg) int {
	opt := msg.IsEdns0()
	if opt == nil {
		return -1
	}
	for _, o := range opt.Option {
		if e, ok := o.(*dns.EDNS0_EDE); ok {
			return int(e.InfoCode)
		}
	}
	return -1
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

// startUnbound installs Unbound when missing, starts it with a validating
// config for the lab and stops it when the test ends. It reports whether
// Unbound uses stub zones, which it does for labs with a port offset.
func startUnbound(t *testing.T, lab *labkit.Lab) bool {
	t.Helper()
	bin := findUnbound(t)
	dir := t.TempDir()
	unboundAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(unboundBasePort+lab.Info.PortOffset))
	stubs := lab.Info.PortOffset != 0
	// With stub zones, the stub for the root takes the place of the root
	// hints, whose addresses carry no port.
	hints := lab.Info.RootHints
	if stubs {
		hints = ""
	}
	config := unboundConfig(dir, hints, lab.Info.TrustAnchorDS)
	if stubs {
		zones, err := stubZones(lab.Info)
		if err != nil {
			t.Fatal(err)
		}
		config += zones
	}
	launchUnbound(t, bin, dir, config, unboundAddr, true)
	return stubs
}

// launchUnbound writes config into dir, starts Unbound with it, stops it
// when the test ends and waits until it replies on addr. With needRoot
// set, it waits for a NOERROR reply to ". NS", which needs the lab's root
// servers; otherwise any reply will do.
func launchUnbound(t *testing.T, bin, dir, config, addr string, needRoot bool) {
	t.Helper()
	conf := filepath.Join(dir, "unbound.conf")
	if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
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

	if err := waitForUnbound(addr, needRoot); err != nil {
		out, _ := os.ReadFile(logPath)
		t.Fatalf("unbound did not answer on %s: %v\nlog:\n%s", addr, err, out)
	}
}

// zoneLine matches a zone name in a Knot DNS ("- domain:") or NSD
// ("name:") config.
var zoneLine = regexp.MustCompile(`(?m)^\s*(?:- domain|name): "([^"]+)"`)

// stubZones returns an Unbound stub-zone clause for every zone a lab
// process loads, with the addresses of every process that loads it and
// the lab's port.
func stubZones(info *labkit.Info) (string, error) {
	addrs := map[string][]string{}
	for _, in := range info.Instances {
		// The 2018 root servers load another root zone.
		if in.Program == labspec.ProgramStub || in.Role == labspec.RoleRoot2018 {
			continue
		}
		conf, err := os.ReadFile(in.Config)
		if err != nil {
			return "", fmt.Errorf("read config of %s: %w", in.Name, err)
		}
		for _, m := range zoneLine.FindAllSubmatch(conf, -1) {
			zone := string(m[1])
			addrs[zone] = append(addrs[zone], in.Addresses[0])
		}
	}
	zones := make([]string, 0, len(addrs))
	for z := range addrs {
		zones = append(zones, z)
	}
	sort.Strings(zones)
	var b strings.Builder
	for _, z := range zones {
		fmt.Fprintf(&b, "stub-zone:\n\tname: %q\n", z)
		for _, a := range addrs[z] {
			fmt.Fprintf(&b, "\tstub-addr: %s@%d\n", a, info.AuthPort)
		}
	}
	return b.String(), nil
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

// unboundConfig returns the server and remote-control clauses of the
// Unbound config: a validator with the lab root's DS as trust anchor
// (RFC 5011 tracking off), logging why replies are bogus.
func unboundConfig(dir, hints, anchor string) string {
	host, port, _ := net.SplitHostPort(unboundAddr)
	rootHints := ""
	if hints != "" {
		rootHints = fmt.Sprintf("root-hints: %q", hints)
	}
	return fmt.Sprintf(`server:
	interface: %s@%s
	port: %s
	do-ip4: yes
	do-ip6: yes
	do-udp: yes
	do-tcp: yes
	access-control: 127.0.0.0/8 allow
	do-not-query-localhost: no
	%s
	trust-anchor-file: %q
	module-config: "validator iterator"
	val-log-level: 2
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
`, host, port, port, rootHints, anchor, dir)
}

// waitForUnbound polls until Unbound at addr replies to ". NS", with
// NOERROR when needRoot is set.
func waitForUnbound(addr string, needRoot bool) error {
	deadline := time.Now().Add(20 * time.Second)
	msg := new(dns.Msg)
	msg.SetQuestion(".", dns.TypeNS)
	client := &dns.Client{Timeout: time.Second}
	for {
		resp, _, err := client.Exchange(msg, addr)
		if err == nil && (resp.Rcode == dns.RcodeSuccess || !needRoot) {
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
