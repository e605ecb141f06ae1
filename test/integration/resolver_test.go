package integration

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"bulwark/lab/labspec"
	"bulwark/test/labkit"

	"github.com/miekg/dns"
)

// clientTimeout is how long a client waits: every response, including
// SERVFAIL for broken zones, must come before it.
const clientTimeout = 5 * time.Second

func TestExpectedRows(t *testing.T) {
	rows, err := labkit.ReadExpected(lab.Info.Expected)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) < 300 {
		t.Fatalf("expected.tsv has %d rows, want at least 300", len(rows))
	}
	var wg sync.WaitGroup
	work := make(chan labkit.Row)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for row := range work {
				checkRow(t, row)
			}
		}()
	}
	for _, row := range rows {
		work <- row
	}
	close(work)
	wg.Wait()
}

func checkRow(t *testing.T, row labkit.Row) {
	t.Helper()
	// AD in the query asks for the AD bit in the response (RFC 6840
	// section 5.7) without DO, so the answer section stays comparable.
	r, err := kdig(resolver, port, row.Name, row.Type, "+edns", "+adflag")
	if err != nil {
		t.Errorf("%s %s: %v", row.Name, row.Type, err)
		return
	}
	where := row.Name + " " + row.Type

	if r.Elapsed > clientTimeout {
		t.Errorf("%s: answered after %s, want before %s", where, r.Elapsed, clientTimeout)
	}
	if r.Status != row.Rcode {
		t.Errorf("%s: rcode %s, want %s\n%s", where, r.Status, row.Rcode, r.Output)
		return
	}
	if r.flag("ad") != row.AD {
		t.Errorf("%s: AD %v, want %v", where, r.flag("ad"), row.AD)
	}
	if r.EDE != row.EDE {
		t.Errorf("%s: EDE %d, want %d\n%s", where, r.EDE, row.EDE, r.Output)
	}

	values := answerValues(r.Answer, row.QType())
	if row.Value == "-" {
		if len(values) > 0 {
			t.Errorf("%s: answer %v, want none", where, values)
		}
		return
	}
	for _, v := range values {
		if strings.EqualFold(v, row.Value) {
			return
		}
	}
	t.Errorf("%s: answer %v does not contain %q\n%s", where, values, row.Value, r.Output)
}

// answerValues returns the values of the answer records of type qtype.
func answerValues(rrs []dns.RR, qtype uint16) []string {
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == qtype {
			out = append(out, labkit.ShortValue(rr))
		}
	}
	return out
}

func TestNegativeCaching(t *testing.T) {
	name := lab.Info.NegativeTTLName
	first, err := kdig(resolver, port, name, "A")
	if err != nil {
		t.Fatal(err)
	}
	if first.Status != "NXDOMAIN" {
		t.Fatalf("%s: rcode %s, want NXDOMAIN", name, first.Status)
	}
	soa := findSOA(t, first)
	if soa.Hdr.Ttl > uint32(lab.Info.NegativeTTL) {
		t.Errorf("SOA TTL %d, want at most the SOA MINIMUM %d (RFC 2308 section 5)", soa.Hdr.Ttl, lab.Info.NegativeTTL)
	}
	time.Sleep(2100 * time.Millisecond) // let the cached TTL count down
	second, err := kdig(resolver, port, name, "A")
	if err != nil {
		t.Fatal(err)
	}
	if second.Status != "NXDOMAIN" {
		t.Fatalf("%s from cache: rcode %s, want NXDOMAIN", name, second.Status)
	}
	soa2 := findSOA(t, second)
	if soa2.Hdr.Ttl >= soa.Hdr.Ttl || soa.Hdr.Ttl-soa2.Hdr.Ttl > 4 {
		t.Errorf("cached SOA TTL %d after about 2s, want 1 to 4 below %d", soa2.Hdr.Ttl, soa.Hdr.Ttl)
	}
}

func findSOA(t *testing.T, r *kdigResult) *dns.SOA {
	t.Helper()
	for _, rr := range r.Authority {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa
		}
	}
	t.Fatalf("no SOA in the authority section (RFC 2308 section 6)\n%s", r.Output)
	return nil
}

func TestCacheHitCountsTTLDown(t *testing.T) {
	name := lab.Info.CNAMEChainName
	first, err := kdig(resolver, port, name, "A")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2100 * time.Millisecond) // let the cached TTLs count down
	second, err := kdig(resolver, port, name, "A")
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Answer) == 0 || len(first.Answer) != len(second.Answer) {
		t.Fatalf("answers differ: %v then %v", first.Answer, second.Answer)
	}
	for i := range first.Answer {
		a, b := first.Answer[i].Header().Ttl, second.Answer[i].Header().Ttl
		if b >= a || a-b > 4 {
			t.Errorf("record %d TTL %d then %d after about 2s, want 1 to 4 lower", i, a, b)
		}
	}
}

func TestCNAMEChainAcrossZones(t *testing.T) {
	name := lab.Info.CNAMEChainName
	r, err := kdig(resolver, port, name, "A")
	if err != nil {
		t.Fatal(err)
	}
	zones := map[string]bool{}
	cnames := 0
	for _, rr := range r.Answer {
		if c, ok := rr.(*dns.CNAME); ok {
			cnames++
			zones[registered(c.Hdr.Name)] = true
			zones[registered(c.Target)] = true
		}
	}
	if cnames < 2 || len(zones) < 3 {
		t.Errorf("%s: %d CNAMEs across %d zones, want at least 2 across 3\n%s", name, cnames, len(zones), r.Output)
	}
	if len(answerValues(r.Answer, dns.TypeA)) == 0 {
		t.Errorf("%s: no A record at the end of the chain\n%s", name, r.Output)
	}
}

// registered returns the last two labels of name, enough to tell the lab's
// zones apart.
func registered(name string) string {
	labels := dns.SplitDomainName(name)
	if len(labels) < 2 {
		return name
	}
	return strings.Join(labels[len(labels)-2:], ".")
}

func TestQNAMEMinimisationSeenByServers(t *testing.T) {
	// A resolver with an empty cache, so that it has to ask the TLD.
	addr := freshBulwark(t)
	name := lab.Info.QminDeepName
	before := readLog(t, lab.Info.QminLog)
	r, err := kdig(addr, port+90, name, "A")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != "NOERROR" {
		t.Fatalf("%s: rcode %s, want NOERROR", name, r.Status)
	}
	seen := readLog(t, lab.Info.QminLog)[len(before):]
	if len(seen) == 0 {
		t.Fatalf("the servers of %s logged no query for %s", lab.Info.QminTLD, name)
	}
	for _, q := range seen {
		if dns.CountLabel(q) > dns.CountLabel(lab.Info.QminTLD)+1 {
			t.Errorf("the servers of %s received %q, want only one label below the TLD (RFC 9156)", lab.Info.QminTLD, q)
		}
	}
}

// freshBulwark starts a second resolver on the lab config, listening on the
// lab's resolver port plus 90, and stops it when the test ends.
func freshBulwark(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fresh.yaml")
	writeDerivedConfig(t, path, port+90, "")
	addr := net.JoinHostPort(resolver, strconv.Itoa(port+90))
	cmd, err := labkit.StartBulwark(binary, path, addr, filepath.Join(t.TempDir(), "fresh.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := labkit.StopProcess(cmd); err != nil {
			t.Errorf("second resolver did not stop cleanly: %v", err)
		}
	})
	return resolver
}

// writeDerivedConfig writes to path the lab config with its plain
// listeners moved from port to newPort and its encrypted ones dropped, so
// that a second resolver can run beside the one under test, and extra
// appended.
func writeDerivedConfig(t *testing.T, path string, newPort int, extra string) {
	t.Helper()
	cfg, err := os.ReadFile(lab.Info.BulwarkConfig)
	if err != nil {
		t.Fatal(err)
	}
	text := string(cfg)
	for _, host := range []string{"127.0.0.1", "127.0.0.2"} {
		listen := host + ":" + strconv.Itoa(port) + "\n"
		if host == "127.0.0.1" && !strings.Contains(text, listen) {
			t.Fatalf("lab config does not listen on %s", listen)
		}
		text = strings.Replace(text, listen, host+":"+strconv.Itoa(newPort)+"\n", 1)
	}
	// The metrics listener and the encrypted listeners would clash with
	// the lab's resolver.
	text = strings.Replace(text, "  listen: "+lab.Info.MetricsAddress+"\n", "  listen: 127.0.0.1:0\n", 1)
	if begin, end := strings.Index(text, labspec.EncryptedBegin), strings.Index(text, labspec.EncryptedEnd); begin >= 0 && end > begin {
		text = text[:begin] + text[end:]
	}
	if err := os.WriteFile(path, []byte(text+extra), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readLog returns the qnames of a lab query log: lines of
// "unix_seconds proto qname qtype".
func readLog(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open query log: %v", err)
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 {
			names = append(names, strings.ToLower(fields[2]))
		}
	}
	return names
}

func TestTruncationAndTCP(t *testing.T) {
	name := lab.Info.BigTXTName
	tests := []struct {
		name    string
		args    []string
		wantTC  bool
		wantTXT int
	}{
		{"udp 1232", []string{"+edns", "+bufsize=1232", "+ignore"}, true, 0},
		{"udp 4096 capped", []string{"+edns", "+bufsize=4096", "+ignore"}, true, 0},
		{"tcp", []string{"+tcp"}, false, lab.Info.BigTXTStrings},
		{"udp then tcp", []string{"+edns", "+bufsize=1232"}, false, lab.Info.BigTXTStrings},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := kdig(resolver, port, name, "TXT", tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if r.flag("tc") != tt.wantTC {
				t.Errorf("TC %v, want %v\n%s", r.flag("tc"), tt.wantTC, r.Output)
			}
			strings := 0
			for _, rr := range r.Answer {
				if txt, ok := rr.(*dns.TXT); ok {
					strings += len(txt.Txt)
				}
			}
			if strings != tt.wantTXT {
				t.Errorf("%d TXT strings, want %d", strings, tt.wantTXT)
			}
		})
	}
}

func TestNXNSAttackBounded(t *testing.T) {
	before := len(readLog(t, lab.Info.NXNSVictimLog))
	names := lab.Info.NXNSAttackNames
	if len(names) == 0 {
		names = []string{lab.Info.NXNSAttackName}
	}
	r, err := kdig(resolver, port, names[0], "A")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != "SERVFAIL" {
		t.Errorf("%s: rcode %s, want SERVFAIL", names[0], r.Status)
	}
	got := len(readLog(t, lab.Info.NXNSVictimLog)) - before
	if got > 10 {
		t.Errorf("victim zone received %d queries for one client query to %d NS names, want at most 10", got, lab.Info.NXNSNSCount)
	}
}

func TestQuestionCaseEchoed(t *testing.T) {
	mixed := "WwW." + strings.ToUpper(lab.Info.CNAMEChainName[4:5]) + lab.Info.CNAMEChainName[5:]
	c := dns.Client{Timeout: clientTimeout}
	for range 2 { // a miss, then a hit
		q := new(dns.Msg)
		q.SetQuestion(mixed, dns.TypeA)
		r, _, err := c.Exchange(q, net.JoinHostPort(resolver, strconv.Itoa(port)))
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Question[0].Name; got != mixed {
			t.Errorf("question %q, want the client's case %q", got, mixed)
		}
		if len(r.Answer) == 0 {
			t.Errorf("no answer for %s", mixed)
		}
	}
}

func TestMalformedPacketsOverUDP(t *testing.T) {
	tests := []struct {
		name      string
		hex       string
		wantRcode int
	}{
		{"two questions", "1234010000020000000000000161076578616d706c6500000100010162076578616d706c650000010001", dns.RcodeFormatError},
		{"opcode 15", "345678000001000000000000076578616d706c650000010001", dns.RcodeNotImplemented},
		{"two OPT records", "456701000001000000000002076578616d706c65000001000100002904d000000000000000002904d0000000000000", dns.RcodeFormatError},
		{"EDNS version 1", "567801000001000000000001076578616d706c65000001000100002904d0000100000000", dns.RcodeBadVers},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkt, _ := hex.DecodeString(tt.hex)
			c, err := net.Dial("udp", net.JoinHostPort(resolver, strconv.Itoa(port)))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(clientTimeout))
			c.Write(pkt)
			buf := make([]byte, 4096)
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("no response: %v", err)
			}
			rcode := int(buf[3] & 0x0f)
			if m := new(dns.Msg); m.Unpack(buf[:n]) == nil {
				rcode = m.Rcode
			}
			if rcode != tt.wantRcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[rcode], dns.RcodeToString[tt.wantRcode])
			}
		})
	}
	if r, err := kdig(resolver, port, ".", "NS"); err != nil || r.Status != "NOERROR" {
		t.Errorf("control query after malformed packets: %v %+v", err, r)
	}
}

var dnsperfLine = regexp.MustCompile(`(?m)^\s*(Queries sent|Queries completed|Response codes):\s*(.*)$`)

func TestDnsperfReplay(t *testing.T) {
	out, err := exec.Command("dnsperf", "-s", resolver, "-p", strconv.Itoa(port),
		"-d", lab.Info.Queries, "-n", "1", "-q", "100", "-t", "5").CombinedOutput()
	if err != nil {
		t.Fatalf("dnsperf: %v\n%s", err, out)
	}
	fields := map[string]string{}
	for _, m := range dnsperfLine.FindAllStringSubmatch(string(out), -1) {
		fields[m[1]] = m[2]
	}
	sent := strings.Fields(fields["Queries sent"])
	done := strings.Fields(fields["Queries completed"])
	if len(sent) == 0 || len(done) == 0 || sent[0] != done[0] {
		t.Errorf("dnsperf sent %v, completed %v, want all completed\n%s", sent, done, out)
	}
	if strings.Contains(fields["Response codes"], "SERVFAIL") {
		t.Errorf("dnsperf saw SERVFAIL: %s", fields["Response codes"])
	}
	t.Logf("dnsperf: sent %s, response codes: %s", fields["Queries sent"], fields["Response codes"])
}

// TestDNAMESynthesis checks that a name under a cached DNAME gets the DNAME,
// a CNAME synthesised with the DNAME's TTL (RFC 6672 sections 3.1 and 3.4)
// and the target's address.
func TestDNAMESynthesis(t *testing.T) {
	if _, err := kdig(resolver, port, lab.Info.DNAMEName, "A"); err != nil {
		t.Fatal(err)
	}
	name := "mail." + lab.Info.DNAMEOwner
	r, err := kdig(resolver, port, name, "A")
	if err != nil {
		t.Fatal(err)
	}
	var dname *dns.DNAME
	var cname *dns.CNAME
	for _, rr := range r.Answer {
		switch rr := rr.(type) {
		case *dns.DNAME:
			dname = rr
		case *dns.CNAME:
			cname = rr
		}
	}
	if dname == nil || cname == nil {
		t.Fatalf("%s: answer lacks the DNAME or the synthesised CNAME\n%s", name, r.Output)
	}
	if want := "mail." + lab.Info.DNAMETarget; !strings.EqualFold(cname.Hdr.Name, name) || !strings.EqualFold(cname.Target, want) {
		t.Errorf("CNAME %s -> %s, want %s -> %s", cname.Hdr.Name, cname.Target, name, want)
	}
	if cname.Hdr.Ttl != dname.Hdr.Ttl {
		t.Errorf("synthesised CNAME TTL %d, want the DNAME's %d", cname.Hdr.Ttl, dname.Hdr.Ttl)
	}
	if len(answerValues(r.Answer, dns.TypeA)) != 1 {
		t.Errorf("%s: want one A record after the CNAME\n%s", name, r.Output)
	}
}

// TestServingDuringAttack floods the resolver for a few seconds with random
// names under the NXNS attack zone, the silent zone and the cycle, and checks
// that a control name still resolves within the client timeout meanwhile
// and that the process still answers afterwards.
func TestServingDuringAttack(t *testing.T) {
	var lines []string
	zones := []string{parentOf(lab.Info.NXNSAttackName), parentOf(lab.Info.SilentName), parentOf(lab.Info.CycleName)}
	for i := range 3000 {
		lines = append(lines, fmt.Sprintf("r%05d.%s A", i, zones[i%len(zones)]))
	}
	path := filepath.Join(t.TempDir(), "attack.txt")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	flood := exec.Command("dnsperf", "-s", resolver, "-p", strconv.Itoa(port),
		"-d", path, "-l", "4", "-Q", "500", "-t", "5")
	if err := flood.Start(); err != nil {
		t.Fatalf("start dnsperf: %v", err)
	}
	defer flood.Wait()

	time.Sleep(time.Second) // let the flood build up
	control := "www." + registered(lab.Info.CNAMEChainName)
	for i := range 3 {
		r, err := kdig(resolver, port, fmt.Sprintf("c%d.%s", i, control), "A")
		if err != nil {
			t.Fatalf("control query during the flood: %v", err)
		}
		if r.Status == "SERVFAIL" || r.Elapsed > clientTimeout {
			t.Errorf("control query during the flood: %s after %s, want an answer within %s", r.Status, r.Elapsed, clientTimeout)
		}
	}
	if err := flood.Wait(); err != nil {
		t.Fatalf("dnsperf: %v", err)
	}
	if r, err := kdig(resolver, port, control, "A"); err != nil || r.Status != "NOERROR" {
		t.Errorf("control query after the flood: %v %+v", err, r)
	}
}

// parentOf returns name without its first label.
func parentOf(name string) string {
	labels := dns.SplitDomainName(name)
	return strings.Join(labels[1:], ".") + "."
}

// upstreamQueries returns the queries sent to authoritative servers so far:
// those that got a response plus those that failed, from the metrics.
func upstreamQueries(t *testing.T) float64 {
	t.Helper()
	var total float64
	for key, v := range scrape(t) {
		name := parseSample(t, key).name
		if name == "bulwark_upstream_rtt_seconds_count" || name == "bulwark_upstream_failures_total" {
			total += v
		}
	}
	return total
}

// TestTsuNAMECycleBounded asks for many names in the two zones whose
// delegations depend on each other (the TsuNAME pattern). Every answer must
// be a SERVFAIL within the client timeout, and the resolver must remember
// the failed zones for resolver.failure_ttl instead of walking the cycle
// again for each client query.
func TestTsuNAMECycleBounded(t *testing.T) {
	if len(lab.Info.CycleNames) < 2 {
		t.Fatalf("lab.json lists %d cycle names, want the names of both zones", len(lab.Info.CycleNames))
	}
	const clients, perClient = 10, 20
	// One query per zone first, one at a time, so that the flood starts
	// with both failures known; concurrent first queries would each walk
	// the cycle.
	start := time.Now()
	for _, name := range lab.Info.CycleNames[:2] {
		if _, err := kdig(resolver, port, "warm."+parentOf(name), "A"); err != nil {
			t.Fatal(err)
		}
	}
	before := upstreamQueries(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perClient {
				zone := parentOf(lab.Info.CycleNames[(c+i)%len(lab.Info.CycleNames)])
				name := fmt.Sprintf("tsu%d-%d.%s", c, i, zone)
				r, err := kdig(resolver, port, name, "A")
				mu.Lock()
				switch {
				case err != nil:
					failures = append(failures, err.Error())
				case r.Status != "SERVFAIL" || r.Elapsed > clientTimeout:
					failures = append(failures, fmt.Sprintf("%s: %s after %s", name, r.Status, r.Elapsed))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	sent := upstreamQueries(t) - before
	for _, f := range failures {
		t.Error(f)
	}
	// Walking the cycle once took 8 to 19 queries to the com and net
	// servers here. The failures are held for failure_ttl (5s in the lab
	// config), so the flood should send none until they expire, and then
	// each client may walk the cycle once more. Without the hold, each of
	// the 200 client queries would walk it: over 1,500 queries.
	expiries := int(elapsed / (5 * time.Second))
	limit := float64(10 + 30*clients*expiries)
	t.Logf("%d queries for names in the cycle took %s and sent %.0f upstream queries (limit %.0f)",
		clients*perClient, elapsed.Round(time.Millisecond), sent, limit)
	if sent > limit {
		t.Errorf("%.0f upstream queries for %d client queries, want at most %.0f", sent, clients*perClient, limit)
	}
}
