package integration

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"bulwark/lab/labspec"
	"bulwark/test/labkit"

	"github.com/miekg/dns"
)

// dnssecCase returns the lab's DNSSEC scenario named name.
func dnssecCase(t *testing.T, name string) labspec.DNSSECCase {
	t.Helper()
	for _, c := range lab.Info.DNSSECCases {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("lab.json has no DNSSEC case %q", name)
	return labspec.DNSSECCase{}
}

// checkDNSSECQuery sends q with the AD bit and checks rcode, AD and EDE.
func checkDNSSECQuery(t *testing.T, addr string, port int, q labspec.DNSSECQuery) {
	t.Helper()
	r, err := kdig(addr, port, q.Name, q.Type, "+edns", "+adflag")
	if err != nil {
		t.Errorf("%s %s: %v", q.Name, q.Type, err)
		return
	}
	if r.Status != q.Rcode {
		t.Errorf("%s %s: rcode %s, want %s\n%s", q.Name, q.Type, r.Status, q.Rcode, r.Output)
	}
	if r.flag("ad") != q.AD {
		t.Errorf("%s %s: AD %v, want %v", q.Name, q.Type, r.flag("ad"), q.AD)
	}
	if r.EDE != q.EDE {
		t.Errorf("%s %s: EDE %d, want %d\n%s", q.Name, q.Type, r.EDE, q.EDE, r.Output)
	}
}

func TestDNSSECRecordsOnlyWithDO(t *testing.T) {
	c := dnssecCase(t, "alg13")
	name := "www." + c.Zone
	withDO, err := kdig(resolver, port, name, "A", "+dnssec")
	if err != nil {
		t.Fatal(err)
	}
	if !withDO.flag("ad") || !hasRR(withDO.Answer, dns.TypeRRSIG) {
		t.Errorf("with DO: AD %v, answer %v; want AD and an RRSIG", withDO.flag("ad"), withDO.Answer)
	}
	plain, err := kdig(resolver, port, name, "A", "+edns", "+noadflag")
	if err != nil {
		t.Fatal(err)
	}
	if plain.flag("ad") || hasRR(plain.Answer, dns.TypeRRSIG) {
		t.Errorf("without DO or AD: AD %v, answer %v; want neither AD nor RRSIG", plain.flag("ad"), plain.Answer)
	}

	neg, err := kdig(resolver, port, "nx."+c.Zone, "A", "+dnssec")
	if err != nil {
		t.Fatal(err)
	}
	if neg.Status != "NXDOMAIN" || !neg.flag("ad") {
		t.Errorf("negative with DO: %s AD %v, want NXDOMAIN with AD", neg.Status, neg.flag("ad"))
	}
	if !hasRR(neg.Authority, dns.TypeNSEC) && !hasRR(neg.Authority, dns.TypeNSEC3) || !hasRR(neg.Authority, dns.TypeRRSIG) {
		t.Errorf("negative with DO: authority %v, want the signed NSEC or NSEC3 proof", neg.Authority)
	}
}

func hasRR(rrs []dns.RR, t uint16) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype == t {
			return true
		}
	}
	return false
}

func TestCheckingDisabledReturnsBogusData(t *testing.T) {
	c := dnssecCase(t, "bad-sig")
	q := c.Queries[0]
	r, err := kdig(resolver, port, q.Name, q.Type, "+edns", "+cd")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != "NOERROR" || len(r.Answer) == 0 || r.flag("ad") {
		t.Errorf("bogus name with CD: %s, answer %v, AD %v; want NOERROR with the data and no AD\n%s", r.Status, r.Answer, r.flag("ad"), r.Output)
	}
	// Without CD the same name is still SERVFAIL: the CD answer is not
	// cached for other clients.
	r, err = kdig(resolver, port, q.Name, q.Type, "+edns")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != "SERVFAIL" || r.EDE != q.EDE {
		t.Errorf("bogus name without CD: %s EDE %d, want SERVFAIL EDE %d", r.Status, r.EDE, q.EDE)
	}
}

// TestKeyTrapBounded floods the resolver with names of the KeyTrap zone.
// Its DNSKEY RRset holds many keys with one key tag, and its answers carry
// many signatures that name it. Each query must get SERVFAIL within the
// client timeout, with EDE 6 (DNSSEC Bogus), or 22 (No Reachable
// Authority) when the attacker's own server is held down, while a secure
// control name keeps resolving.
func TestKeyTrapBounded(t *testing.T) {
	c := dnssecCase(t, "keytrap")
	control := dnssecCase(t, "alg15").Queries[0]
	if _, err := kdig(resolver, port, control.Name, control.Type); err != nil {
		t.Fatal(err) // warm the control name's chain of trust
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	start := time.Now()
	cpuBefore := processCPU(t, bulwarkPID)
	for client := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				name := fmt.Sprintf("r%d-%d.%s", client, i, c.Zone)
				r, err := kdig(resolver, port, name, "A", "+edns")
				switch {
				case err != nil:
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
				case r.Status != "SERVFAIL" || r.EDE != 6 && r.EDE != 22 || r.Elapsed > clientTimeout:
					// EDE 22: on a loaded machine the zone's server can
					// time out while the resolver validates, and is then
					// held down; the answer is still a bounded SERVFAIL.
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s: %s EDE %d after %s", name, r.Status, r.EDE, r.Elapsed))
					mu.Unlock()
				}
			}
		}()
	}
	var slowest time.Duration
	for i := 0; i < 10; i++ {
		r, err := kdig(resolver, port, fmt.Sprintf("c%d.%s", i, parentOf(control.Name)), "A", "+edns", "+adflag")
		if err != nil {
			t.Fatalf("control query during the attack: %v", err)
		}
		slowest = max(slowest, r.Elapsed)
		if r.Status == "SERVFAIL" {
			t.Errorf("control query during the attack: SERVFAIL\n%s", r.Output)
		}
	}
	wg.Wait()
	cpu := processCPU(t, bulwarkPID) - cpuBefore
	t.Logf("400 KeyTrap queries from 20 clients took %s and %s of resolver CPU (%s per query); slowest control query %s",
		time.Since(start).Round(time.Millisecond), cpu, cpu/400, slowest)
	// Without the caps, one query would try every key of the zone against
	// every signature: about 320 x 220 verifications, seconds of CPU.
	if cpu/400 > 50*time.Millisecond {
		t.Errorf("resolver CPU per KeyTrap query %s, want under 50ms", cpu/400)
	}
	if slowest > time.Second {
		t.Errorf("slowest control query took %s during the attack, want under 1s", slowest)
	}
	if len(failures) > 0 {
		t.Errorf("%d of 400 KeyTrap queries were not SERVFAIL with EDE 6 or 22 within %s; first: %s", len(failures), clientTimeout, failures[0])
	}
}

// adminBulwark starts a second resolver from the lab config with the
// administration API on, and returns the DNS port and the API's base URL.
func adminBulwark(t *testing.T) (int, string) {
	t.Helper()
	dnsPort, adminPort := port+91, port+92
	path := filepath.Join(t.TempDir(), "admin.yaml")
	writeDerivedConfig(t, path, dnsPort, fmt.Sprintf("admin:\n  listen: 127.0.0.1:%d\n", adminPort))
	cmd, err := labkit.StartBulwark(binary, path, net.JoinHostPort(resolver, strconv.Itoa(dnsPort)), filepath.Join(t.TempDir(), "admin.log"))
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

func TestNegativeTrustAnchorAtRunTime(t *testing.T) {
	dnsPort, api := adminBulwark(t)
	c := dnssecCase(t, "bad-sig")
	q := c.Queries[0]
	checkDNSSECQuery(t, resolver, dnsPort, q) // SERVFAIL, and now cached

	body := fmt.Sprintf(`{"domain": %q, "lifetime": "10m"}`, c.Zone)
	resp, err := http.Post(api+"/v1/dnssec/negative-trust-anchors", "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("add negative trust anchor: %d %s", resp.StatusCode, msg)
	}
	r, err := kdig(resolver, dnsPort, q.Name, q.Type, "+edns", "+adflag")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != "NOERROR" || r.flag("ad") || len(r.Answer) == 0 {
		t.Errorf("under the negative trust anchor: %s AD %v answer %v, want NOERROR with data and no AD\n%s", r.Status, r.flag("ad"), r.Answer, r.Output)
	}
	// Names outside the anchor are still validated.
	checkDNSSECQuery(t, resolver, dnsPort, dnssecCase(t, "expired").Queries[0])

	req, _ := http.NewRequest(http.MethodDelete, api+"/v1/dnssec/negative-trust-anchors/"+c.Zone, nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("remove negative trust anchor: %d", resp.StatusCode)
	}
	checkDNSSECQuery(t, resolver, dnsPort, q)
}

// TestRoot2018 runs Bulwark on the real signed root zone of 2018-01-29 with
// the 2010 root key as trust anchor and the validation time pinned inside
// the signatures' validity, then on a copy with one signature byte changed.
func TestRoot2018(t *testing.T) {
	r := lab.Info.Root2018
	if r == nil {
		t.Fatal("lab.json has no root2018 section")
	}
	for _, tt := range []struct {
		name    string
		config  string
		port    int
		queries []labspec.DNSSECQuery
	}{
		{"good", r.Config, r.ResolverPort, r.Queries},
		{"changed signature", r.BadConfig, r.BadResolverPort, r.BadQueries},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.queries) == 0 {
				t.Fatal("no queries for this root copy in lab.json")
			}
			addr := net.JoinHostPort(resolver, strconv.Itoa(tt.port))
			cmd, err := labkit.StartBulwark(binary, tt.config, addr, filepath.Join(t.TempDir(), "root2018.log"))
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := labkit.StopProcess(cmd); err != nil {
					t.Errorf("resolver did not stop cleanly: %v", err)
				}
			}()
			for _, q := range tt.queries {
				checkDNSSECQuery(t, resolver, tt.port, q)
			}
		})
	}
}

// TestTrustAnchorStateFile starts a resolver that keeps its root trust
// anchor in an RFC 5011 state file, and checks that the first probe of the
// root's DNSKEY RRset turns the seeded DS record into the key it matches.
func TestTrustAnchorStateFile(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "root.state")
	dnsPort := port + 93
	path := filepath.Join(dir, "autotrust.yaml")
	writeDerivedConfig(t, path, dnsPort, "")
	cfg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(cfg), "dnssec:\n", "dnssec:\n  auto_trust_anchor_file: "+state+"\n", 1)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, err := labkit.StartBulwark(binary, path, net.JoinHostPort(resolver, strconv.Itoa(dnsPort)), filepath.Join(dir, "autotrust.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := labkit.StopProcess(cmd); err != nil {
			t.Errorf("resolver did not stop cleanly: %v", err)
		}
	}()
	seeded, err := os.ReadFile(state)
	if err != nil {
		t.Fatalf("state file not written at start: %v", err)
	}
	if !strings.Contains(string(seeded), " DS ") {
		t.Fatalf("seeded state has no DS record:\n%s", seeded)
	}
	// The first probe runs 10 seconds after start.
	deadline := time.Now().Add(30 * time.Second)
	for {
		data, err := os.ReadFile(state)
		if err == nil && strings.Contains(string(data), " DNSKEY 257 ") && strings.Contains(string(data), "state=valid") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("state file after 30s still holds no valid DNSKEY:\n%s\nlog in %s", data, filepath.Join(dir, "autotrust.log"))
		}
		time.Sleep(500 * time.Millisecond)
	}
	checkDNSSECQuery(t, resolver, dnsPort, dnssecCase(t, "alg13").Queries[0])
}

// TestDNSSECCasesColdAndWarm sends every DNSSEC scenario question to a fresh
// resolver twice: once resolved and validated, once from the caches.
func TestDNSSECCasesColdAndWarm(t *testing.T) {
	addr := freshBulwark(t)
	for round := range 2 {
		for _, c := range lab.Info.DNSSECCases {
			for _, q := range c.Queries {
				t.Run(fmt.Sprintf("%s/round%d/%s_%s", c.Name, round, q.Name, q.Type), func(t *testing.T) {
					checkDNSSECQuery(t, addr, port+90, q)
				})
			}
		}
	}
}

// TestClockFile runs the 2018 root with the resolver's clock read from a
// file, as libfaketime writes it, then moves the file past the signatures'
// expiry: cached data expires with the same clock and new answers fail with
// Signature Expired.
func TestClockFile(t *testing.T) {
	r := lab.Info.Root2018
	if r == nil {
		t.Fatal("lab.json has no root2018 section")
	}
	cfg, err := os.ReadFile(r.Config)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	clockPath := filepath.Join(dir, "clock")
	if err := os.WriteFile(clockPath, []byte("@2018-02-01 12:00:00\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	text := string(cfg)
	i := strings.Index(text, "  fixed_validation_time:")
	if i < 0 {
		t.Fatalf("%s has no fixed_validation_time line", r.Config)
	}
	text = text[:i] + "  clock_file: " + clockPath + "\n"
	path := filepath.Join(dir, "clock.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, err := labkit.StartBulwark(binary, path, net.JoinHostPort(resolver, strconv.Itoa(r.ResolverPort)), filepath.Join(dir, "clock.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := labkit.StopProcess(cmd); err != nil {
			t.Errorf("resolver did not stop cleanly: %v", err)
		}
	}()
	checkDNSSECQuery(t, resolver, r.ResolverPort, labspec.DNSSECQuery{Name: ".", Type: "DNSKEY", Rcode: "NOERROR", AD: true, EDE: -1})

	if err := os.WriteFile(clockPath, []byte("@2018-03-01 12:00:00\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the file is checked every 100ms
	checkDNSSECQuery(t, resolver, r.ResolverPort, labspec.DNSSECQuery{Name: ".", Type: "DNSKEY", Rcode: "SERVFAIL", AD: false, EDE: 7})
}

// processCPU returns the user and system CPU time a process has used, from
// /proc/PID/stat.
func processCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The command name may hold spaces: fields count from after its ")".
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	if len(fields) < 13 {
		t.Fatalf("short /proc/%d/stat: %q", pid, data)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("/proc/%d/stat: bad utime or stime in %q", pid, data)
	}
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond
}

// TestNSECAnswers checks the answers that the fast path makes from cached
// NSEC records (the root's) and NSEC3 records (those of signed popular
// zones): NXDOMAIN, and answers expanded from a wildcard. They come
// without a resolution, carry what the client asked for, pass delv's
// validation from the lab's trust anchor, and leave a name that a list
// blocks to the list.
func TestNSECAnswers(t *testing.T) {
	anchor := delvAnchor(t)
	zones := []string{".", ""}
	for _, zone := range lab.Info.SignedPopular {
		r, err := kdig(resolver, port, "nsec-answers-probe."+zone, "A", "+dnssec")
		if err == nil && r.Status == "NXDOMAIN" && r.flag("ad") {
			zones[1] = zone
			break
		}
	}
	if zones[1] == "" {
		t.Fatal("no signed popular zone answers a random name with a validated NXDOMAIN")
	}
	tag := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	for _, zone := range zones {
		t.Run(zone, func(t *testing.T) {
			// A name below a name that the servers denied falls in the
			// same NSEC span, or has that name as its next closer name
			// (NSEC3): the index holds the proof.
			var denied []string
			for i := range 10 {
				name := fmt.Sprintf("nsec-%s-%d.%s", tag, i, strings.TrimPrefix(zone, "."))
				r, err := kdig(resolver, port, name, "A", "+dnssec")
				if err != nil {
					t.Fatal(err)
				}
				if r.Status != "NXDOMAIN" || !r.flag("ad") {
					t.Fatalf("%s: %s AD %v, want a validated NXDOMAIN", name, r.Status, r.flag("ad"))
				}
				denied = append(denied, name)
			}
			before := scrape(t)
			for i, name := range denied {
				name = "fast." + name
				r, extra := kdigAlternating(t, resolver, port, i, name)
				if r.Status != "NXDOMAIN" || len(r.Answer) != 0 || !hasRR(r.Authority, dns.TypeSOA) {
					t.Errorf("%s %v: %s, answer %v, authority %v; want NXDOMAIN with the SOA", name, extra, r.Status, r.Answer, r.Authority)
				}
				proof := hasRR(r.Authority, dns.TypeRRSIG) && (hasRR(r.Authority, dns.TypeNSEC) || hasRR(r.Authority, dns.TypeNSEC3))
				if do := i%2 == 0; proof != do || r.flag("ad") != do {
					t.Errorf("%s %v: signed proof %v, AD %v; want both %v\n%s", name, extra, proof, r.flag("ad"), do, r.Output)
				}
			}
			checkNoResolution(t, before, len(denied))

			for _, name := range denied[:4] {
				name = "delv." + name
				out, err := exec.Command("delv", "@"+resolver, "-p", strconv.Itoa(port), "-a", anchor, name, "A").CombinedOutput()
				if err != nil && !strings.Contains(string(out), "ncache nxdomain") {
					t.Fatalf("delv %s: %v\n%s", name, err, out)
				}
				if !strings.Contains(string(out), "negative response, fully validated") || !strings.Contains(string(out), "NXDOMAIN") {
					t.Errorf("delv %s: want a fully validated NXDOMAIN\n%s", name, out)
				}
			}
		})
	}

	t.Run("wildcard", func(t *testing.T) {
		zone := signedWildcardZone(t, tag)
		// A name expanded from the wildcard teaches the index the
		// wildcard's RRset and the span that covers the name. A name
		// below it has that name as its next closer name, so the same
		// span proves it.
		var expanded []string
		for i := range 10 {
			name := fmt.Sprintf("wild-%s-%d.%s", tag, i, zone)
			r, err := kdig(resolver, port, name, "A", "+dnssec")
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != "NOERROR" || !r.flag("ad") || !hasRR(r.Answer, dns.TypeA) {
				t.Fatalf("%s: %s AD %v, answer %v; want a validated A from the wildcard", name, r.Status, r.flag("ad"), r.Answer)
			}
			expanded = append(expanded, name)
		}
		before := scrape(t)
		for i, name := range expanded {
			name = "fast." + name
			r, extra := kdigAlternating(t, resolver, port, i, name)
			if r.Status != "NOERROR" || !hasRR(r.Answer, dns.TypeA) || r.Answer[0].Header().Name != name {
				t.Errorf("%s %v: %s, answer %v; want NOERROR with an A owned by the name", name, extra, r.Status, r.Answer)
			}
			do := i%2 == 0
			signed := hasRR(r.Answer, dns.TypeRRSIG) && (hasRR(r.Authority, dns.TypeNSEC) || hasRR(r.Authority, dns.TypeNSEC3))
			if signed != do || r.flag("ad") != do {
				t.Errorf("%s %v: RRSIG and proof %v, AD %v; want both %v\n%s", name, extra, signed, r.flag("ad"), do, r.Output)
			}
		}
		checkNoResolution(t, before, len(expanded))
		for _, name := range expanded[:3] {
			name = "delv." + name
			out, err := exec.Command("delv", "@"+resolver, "-p", strconv.Itoa(port), "-a", anchor, name, "A").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "; fully validated") {
				t.Errorf("delv %s: %v, want a fully validated answer\n%s", name, err, out)
			}
		}
	})

	t.Run("listed", func(t *testing.T) {
		// The unfiltered listener teaches the index the spans around a
		// listed name; below it, the protective listener must still
		// answer from the list.
		listed := lab.Info.Policy.ListedName
		for _, name := range []string{"nsec-" + tag + "." + listed, "nsec2-" + tag + "." + listed} {
			if r, err := kdig(resolver, port, name, "A", "+edns"); err != nil || r.Status != "NXDOMAIN" {
				t.Fatalf("unfiltered %s: %v %v, want NXDOMAIN", name, r, err)
			}
		}
		addr, protectivePort := protective(t)
		name := "nsec3-" + tag + "." + listed
		r, err := kdig(addr, protectivePort, name, "A", "+edns")
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != "NXDOMAIN" || r.EDE != 15 {
			t.Errorf("protective %s: %s EDE %d, want the list's NXDOMAIN with EDE 15\n%s", name, r.Status, r.EDE, r.Output)
		}
	})
}

// kdigAlternating asks name for A records with DNSSEC records when i is
// even, and when i is odd without EDNS and without the AD flag, as a plain
// stub would. It returns the response and the kdig options used.
func kdigAlternating(t *testing.T, resolver string, port, i int, name string) (*kdigResult, []string) {
	t.Helper()
	extra := []string{"+dnssec"}
	if i%2 == 1 {
		extra = []string{"+noedns", "+noadflag"}
	}
	r, err := kdig(resolver, port, name, "A", extra...)
	if err != nil {
		t.Fatal(err)
	}
	return r, extra
}

// checkNoResolution checks that n queries sent since the metrics before
// were scraped were all answered from NSEC records, with no resolution.
func checkNoResolution(t *testing.T, before map[string]float64, n int) {
	t.Helper()
	after := scrape(t)
	const answers, misses = "bulwark_nsec_answers_total", `bulwark_answer_cache_lookups_total{result="miss"}`
	if grown := after[answers] - before[answers]; grown < float64(n) {
		t.Errorf("%s grew by %v for %d queries, want at least %d", answers, grown, n, n)
	}
	if grown := after[misses] - before[misses]; grown != 0 {
		t.Errorf("%s grew by %v, want 0: every query was answered without a resolution", misses, grown)
	}
}

// signedWildcardZone returns a signed popular zone of the lab whose
// random names a validated wildcard answers.
func signedWildcardZone(t *testing.T, tag string) string {
	t.Helper()
	for _, zone := range lab.Info.SignedPopular {
		name := "wild-probe-" + tag + "." + zone
		r, err := kdig(resolver, port, name, "A", "+dnssec")
		if err != nil || r.Status != "NOERROR" || !r.flag("ad") {
			continue
		}
		for _, rr := range r.Answer {
			if sig, ok := rr.(*dns.RRSIG); ok && int(sig.Labels) < dns.CountLabel(name) {
				return zone
			}
		}
	}
	t.Fatal("no signed popular zone answers a random name from a validated wildcard")
	return ""
}

// delvAnchor writes the lab's root DS as a delv trust anchor file and
// returns its path.
func delvAnchor(t *testing.T) string {
	t.Helper()
	text, err := os.ReadFile(lab.Info.TrustAnchorDS)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("trust-anchors {\n")
	for _, line := range strings.Split(string(text), "\n") {
		rr, err := dns.NewRR(line)
		if err != nil {
			t.Fatalf("%s: %v", lab.Info.TrustAnchorDS, err)
		}
		if ds, ok := rr.(*dns.DS); ok {
			fmt.Fprintf(&b, "  . static-ds %d %d %d %q;\n", ds.KeyTag, ds.Algorithm, ds.DigestType, ds.Digest)
		}
	}
	b.WriteString("};\n")
	path := filepath.Join(t.TempDir(), "anchor.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
