package oracle

import (
	"encoding/xml"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"bulwark/lab/labspec"
	"bulwark/test/labkit"
)

// Ports of the two Unbound processes of the 2018 root check, shifted by
// the lab's port offset.
const (
	root2018UnboundBasePort    = 5397
	root2018BadUnboundBasePort = 5398
)

// root2018Exceptions are the 2018 root questions where Unbound 1.17.1
// differs from lab.json, keyed by "name type", with the EDE it gives.
var root2018Exceptions = map[string]struct {
	EDEs   []int
	Reason string
}{
	". DNSKEY": {EDEs: []int{6, 9}, Reason: "on the corrupted copy Unbound calls the root DNSKEY " +
		"RRset whose only KSK signature fails \"DNSKEY Missing\" (EDE 9) when it is the first " +
		"question, and DNSSEC Bogus (EDE 6) once priming has failed"},
}

// TestUnboundValidatesRoot2018 points a validating Unbound, with its
// clock set inside the signature validity of the 2018 root zone and the
// KSK-2010 as trust anchor, at each lab copy of that zone and checks the
// questions lab.json lists for it.
func TestUnboundValidatesRoot2018(t *testing.T) {
	lab := openLab(t)
	r := lab.Info.Root2018
	if r == nil {
		t.Fatal("lab.json has no root2018 section")
	}
	anchor, err := anchorFromXML(r.TrustAnchorXML)
	if err != nil {
		t.Fatal(err)
	}
	when, err := time.Parse(time.RFC3339, r.ValidationTime)
	if err != nil {
		t.Fatalf("invalid root2018 validation_time %q: %v", r.ValidationTime, err)
	}
	bin := findUnbound(t)

	copies := []struct {
		name    string
		server  string
		port    int
		queries []labspec.DNSSECQuery
	}{
		{"exact copy", r.Address, root2018UnboundBasePort, r.Queries},
		{"corrupted copy", r.BadAddress, root2018BadUnboundBasePort, r.BadQueries},
	}
	for _, c := range copies {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			anchorFile := filepath.Join(dir, "root.ds")
			if err := os.WriteFile(anchorFile, []byte(anchor+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port+lab.Info.PortOffset))
			launchUnbound(t, bin, dir, root2018Config(dir, addr, anchorFile, c.server, when), addr, false)
			for _, q := range c.queries {
				checkRoot2018(t, addr, q)
			}
		})
	}
}

func checkRoot2018(t *testing.T, addr string, q labspec.DNSSECQuery) {
	t.Helper()
	key := q.Name + " " + q.Type
	row := labkit.Row{Name: q.Name, Type: q.Type, Rcode: q.Rcode}
	res := query(row, addr)
	if res.err != nil {
		t.Errorf("%s: query Unbound: %v", key, res.err)
		return
	}
	if got := dns.RcodeToString[res.msg.Rcode]; got != q.Rcode {
		t.Errorf("%s: Unbound rcode = %s, want %s", key, got, q.Rcode)
	}
	if res.msg.AuthenticatedData != q.AD {
		t.Errorf("%s: Unbound AD = %v, want %v", key, res.msg.AuthenticatedData, q.AD)
	}
	want := []int{q.EDE}
	if ex, ok := root2018Exceptions[key]; ok && q.EDE >= 0 {
		want = ex.EDEs
	}
	if got := edeCode(res.msg); !slices.Contains(want, got) {
		t.Errorf("%s: Unbound EDE = %d, want one of %v", key, got, want)
	}
}

// root2018Config returns an Unbound config that reaches the 2018 root
// only through a stub zone for "." at server (host:port) and validates as
// if the time were when.
func root2018Config(dir, addr, anchorFile, server string, when time.Time) string {
	host, port, _ := net.SplitHostPort(addr)
	serverHost, serverPort, _ := net.SplitHostPort(server)
	return fmt.Sprintf(`server:
	interface: %s@%s
	port: %s
	access-control: 127.0.0.0/8 allow
	do-not-query-localhost: no
	trust-anchor-file: %q
	val-override-date: %q
	module-config: "validator iterator"
	val-log-level: 2
	ede: yes
	username: ""
	chroot: ""
	directory: %q
	use-syslog: no
	logfile: ""
	verbosity: 1
	num-threads: 1
	so-reuseport: no
stub-zone:
	name: "."
	stub-addr: %s@%s
remote-control:
	control-enable: no
`, host, port, port, anchorFile, when.UTC().Format("20060102150405"), dir, serverHost, serverPort)
}

// anchorFromXML reads an RFC 7958 trust anchor file and returns its first
// KeyDigest as a DS record line.
func anchorFromXML(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var ta struct {
		Zone    string `xml:"Zone"`
		Digests []struct {
			KeyTag     int    `xml:"KeyTag"`
			Algorithm  int    `xml:"Algorithm"`
			DigestType int    `xml:"DigestType"`
			Digest     string `xml:"Digest"`
		} `xml:"KeyDigest"`
	}
	if err := xml.Unmarshal(data, &ta); err != nil {
		return "", fmt.Errorf("parse trust anchor %s: %w", path, err)
	}
	if len(ta.Digests) == 0 {
		return "", fmt.Errorf("trust anchor %s has no KeyDigest", path)
	}
	d := ta.Digests[0]
	return fmt.Sprintf("%s IN DS %d %d %d %s", strings.TrimSpace(ta.Zone), d.KeyTag, d.Algorithm, d.DigestType, d.Digest), nil
}
