package gen

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"bulwark/lab/labspec"
)

const testDataDir = "../../data"

// generateTo generates the default lab into dir.
func generateTo(t *testing.T, dir string) *Lab {
	t.Helper()
	l, err := Generate(Options{DataDir: testDataDir, OutDir: dir, PortOffset: 100, ExtraTLDs: DefaultExtraTLDs})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if err := l.Write(); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return l
}

// hashTree returns the SHA-256 of every file below dir, by relative path.
func hashTree(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out[rel] = sha256.Sum256(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestGenerateIsDeterministic(t *testing.T) {
	dir := t.TempDir()
	generateTo(t, dir)
	first := hashTree(t, dir)
	generateTo(t, dir)
	second := hashTree(t, dir)

	if len(first) != len(second) {
		t.Fatalf("second generation wrote %d files, first wrote %d", len(second), len(first))
	}
	for path, sum := range first {
		if second[path] != sum {
			t.Errorf("file %s differs between two generations", path)
		}
	}
}

func TestGenerateSizes(t *testing.T) {
	dir := t.TempDir()
	l := generateTo(t, dir)
	info := readInfo(t, dir)

	if info.PopularZones < 2000 {
		t.Errorf("popular zones = %d, want at least 2000", info.PopularZones)
	}
	if len(info.Servers) < 20 {
		t.Errorf("server addresses = %d, want at least 20", len(info.Servers))
	}
	if len(l.queries) < minQueries {
		t.Errorf("queries.txt has %d lines, want at least %d", len(l.queries), minQueries)
	}
	if info.AuthPort != 153 || info.ResolverPort != 5400 {
		t.Errorf("ports = %d and %d, want 153 and 5400 for offset 100", info.AuthPort, info.ResolverPort)
	}
	if info.DeepChainCuts < 4 {
		t.Errorf("deep chain has %d cuts below the TLD, want at least 4", info.DeepChainCuts)
	}
}

func readInfo(t *testing.T, dir string) labspec.Info {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, labspec.InfoFile))
	if err != nil {
		t.Fatal(err)
	}
	var info labspec.Info
	if err := json.Unmarshal(data, &info); err != nil {
		t.Fatal(err)
	}
	return info
}

func TestInfoNamesSpecialCases(t *testing.T) {
	dir := t.TempDir()
	generateTo(t, dir)
	info := readInfo(t, dir)

	names := map[string]string{
		"qmin_deep_name": info.QminDeepName, "qmin_log": info.QminLog,
		"nxns_attack_name": info.NXNSAttackName, "nxns_victim_log": info.NXNSVictimLog,
		"negative_ttl_name": info.NegativeTTLName, "big_txt_name": info.BigTXTName,
		"dname_name": info.DNAMEName, "cycle_name": info.CycleName,
		"ent_nxdomain_name": info.ENTNXDOMAINName, "lame_name": info.LameName,
		"partly_lame_name": info.PartlyLameName, "silent_name": info.SilentName,
		"truncate_udp_name": info.TruncateUDPName, "noglue_name": info.NoGlueName,
		"partly_broken_ns_name": info.PartlyBrokenNSName, "ipv6_only_name": info.IPv6OnlyName,
		"slow_name": info.SlowName, "wildcard_name": info.WildcardName, "ent_name": info.ENTName,
		"sub_delegation_name": info.SubDelegationName, "cname_chain_name": info.CNAMEChainName,
		"public_suffix_ent": info.PublicSuffixENT,
	}
	for key, value := range names {
		if value == "" {
			t.Errorf("lab.json key %s is empty", key)
		}
	}
}

func TestExpectedRowsForSpecialCases(t *testing.T) {
	l, err := Generate(Options{DataDir: testDataDir, OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]expectedRow{}
	for _, r := range l.expected {
		rows[r.Name+" "+dns.Type(r.Type).String()] = r
	}

	tests := []struct {
		key   string
		rcode int
		ede   int
		value string
	}{
		{"www.lab-lame.com. A", dns.RcodeServerFailure, 22, "-"},
		{"www.lab-silent.net. A", dns.RcodeServerFailure, 22, "-"},
		{"www.lab-cycle-a.com. A", dns.RcodeServerFailure, 22, "-"},
		{"www.sub.lab-noglue.org. A", dns.RcodeServerFailure, 22, "-"},
		{"www.d0.lab-nxns.com. A", dns.RcodeServerFailure, 22, "-"},
		{"nonexistent.lab-negttl.org. A", dns.RcodeNameError, -1, "-"},
		{"static.lab-wild.com. A", dns.RcodeSuccess, -1, "-"},
		{"old.lab-dname.net. DNAME", dns.RcodeSuccess, -1, "new.lab-dname.net."},
		{"www.old.lab-dname.net. A", dns.RcodeSuccess, -1, hashIPv4("www.new.lab-dname.net.")},
		{"anything.lab-wild.com. A", dns.RcodeSuccess, -1, hashIPv4("*.lab-wild.com.")},
		{"foo.static.lab-wild.com. A", dns.RcodeNameError, -1, "-"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			row, ok := rows[tt.key]
			if !ok {
				t.Fatalf("expected.tsv has no row %s", tt.key)
			}
			if row.Rcode != tt.rcode || row.EDE != tt.ede || row.Value != tt.value {
				t.Errorf("row %s = rcode %d, ede %d, value %q; want %d, %d, %q",
					tt.key, row.Rcode, row.EDE, row.Value, tt.rcode, tt.ede, tt.value)
			}
		})
	}
}

func TestBigTXTNeedsTCP(t *testing.T) {
	msg := new(dns.Msg)
	msg.SetQuestion("big.lab-bigtxt.com.", dns.TypeTXT)
	msg.Answer = []dns.RR{bigTXT("big.lab-bigtxt.com.")}
	wire, err := msg.Pack()
	if err != nil {
		t.Fatal(err)
	}
	if len(wire) <= 1232 {
		t.Errorf("big TXT reply is %d bytes, want more than 1232 so UDP truncates", len(wire))
	}
}

func TestQueriesAvoidSpecialCases(t *testing.T) {
	l, err := Generate(Options{DataDir: testDataDir, OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range l.queries {
		if strings.Contains(q.Name, "lab-") || strings.HasSuffix(q.Name, "."+qminTLD) {
			t.Fatalf("queries.txt contains %s %s, which reaches a special case or a stub", q.Name, dns.Type(q.Type))
		}
	}
}

func TestCheckFindsAncestorOnSameInstance(t *testing.T) {
	l, err := Generate(Options{DataDir: testDataDir, OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	sld := l.byInst[knotSLD]
	sld.Zones = append(sld.Zones, l.zones["com."])

	errs := l.checkAncestors()
	if len(errs) == 0 {
		t.Fatal("checkAncestors found no error after adding com. to the SLD instance")
	}
	if !strings.Contains(errs[0].Error(), "its ancestor com.") {
		t.Errorf("checkAncestors error = %q, want one naming com. as ancestor", errs[0])
	}
}

// testZone builds a small zone for lookup tests.
func testZone(t *testing.T, records ...string) *Zone {
	t.Helper()
	z := newZone("example.", "test")
	for _, r := range records {
		rec, err := dns.NewRR(r)
		if err != nil {
			t.Fatal(err)
		}
		z.Add(rec)
	}
	return z
}

func TestZoneLookup(t *testing.T) {
	z := testZone(t,
		"example. 300 IN SOA ns. host. 1 2 3 4 5",
		"www.example. 300 IN A 198.18.0.1",
		"alias.example. 300 IN CNAME www.example.",
		"a.b.example. 300 IN A 198.18.0.2",
		"*.wild.example. 300 IN A 198.18.0.3",
		"x.y.wild.example. 300 IN A 198.18.0.4",
		"old.example. 300 IN DNAME new.example.",
	)
	tests := []struct {
		name  string
		qtype uint16
		kind  lookupKind
		next  string
	}{
		{"www.example.", dns.TypeA, kindAnswer, ""},
		{"www.example.", dns.TypeMX, kindNoData, ""},
		{"alias.example.", dns.TypeA, kindAlias, "www.example."},
		{"alias.example.", dns.TypeCNAME, kindAnswer, ""},
		{"b.example.", dns.TypeA, kindNoData, ""},
		{"none.example.", dns.TypeA, kindNXDomain, ""},
		{"foo.wild.example.", dns.TypeA, kindAnswer, ""},
		{"foo.wild.example.", dns.TypeTXT, kindNoData, ""},
		{"y.wild.example.", dns.TypeA, kindNoData, ""},
		{"z.y.wild.example.", dns.TypeA, kindNXDomain, ""},
		{"a.old.example.", dns.TypeA, kindAlias, "a.new.example."},
		{"old.example.", dns.TypeDNAME, kindAnswer, ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %s", tt.name, dns.Type(tt.qtype)), func(t *testing.T) {
			got := z.lookup(tt.name, tt.qtype)
			if got.kind != tt.kind || got.next != tt.next {
				t.Errorf("lookup(%s, %s) = kind %d next %q, want kind %d next %q",
					tt.name, dns.Type(tt.qtype), got.kind, got.next, tt.kind, tt.next)
			}
		})
	}
}

func TestWildcardAnswerUsesQueryName(t *testing.T) {
	z := testZone(t, "*.example. 300 IN A 198.18.0.3")
	got := z.lookup("foo.example.", dns.TypeA)
	if len(got.answer) != 1 || got.answer[0].Header().Name != "foo.example." {
		t.Errorf("wildcard answer = %v, want one record owned by foo.example.", got.answer)
	}
}

func TestRegisteredDomain(t *testing.T) {
	tests := []struct {
		name string
		want string
	}{
		{"google.com.", "google.com."},
		{"maps.google.com.", "google.com."},
		{"news.bbc.co.uk.", "bbc.co.uk."},
		{"github.io.", "github.io."},
		{"user.github.io.", "github.io."},
		{"foo.blogspot.com.", "blogspot.com."},
		{"s3.amazonaws.com.", "amazonaws.com."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := registeredDomain(tt.name)
			if err != nil {
				t.Fatalf("registeredDomain(%q) error = %v", tt.name, err)
			}
			if got != tt.want {
				t.Errorf("registeredDomain(%q) = %q, want %q", tt.name, got, tt.want)
			}
		})
	}
}

func TestRegisteredDomainRejectsSuffix(t *testing.T) {
	for _, name := range []string{"co.uk.", "com."} {
		if got, err := registeredDomain(name); err == nil {
			t.Errorf("registeredDomain(%q) = %q, want an error for a public suffix", name, got)
		}
	}
}
