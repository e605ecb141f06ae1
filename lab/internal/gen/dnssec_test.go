package gen

import (
	"bufio"
	"bytes"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"bulwark/lab/labspec"
)

func TestForceKeyTag(t *testing.T) {
	r := rng("test", "force-key-tag")
	for _, tag := range []uint16{0, 1, 4711, 65535} {
		modulus := make([]byte, 128)
		for i := range modulus {
			modulus[i] = byte(r.IntN(256))
		}
		key := &dns.DNSKEY{Hdr: dns.RR_Header{Name: "example.", Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET},
			Flags: dns.ZONE, Protocol: 3, Algorithm: dns.RSASHA256}
		if err := forceKeyTag(key, modulus, tag); err != nil {
			t.Fatalf("forceKeyTag(%d): %v", tag, err)
		}
		if got := key.KeyTag(); got != tag {
			t.Errorf("key tag = %d, want %d", got, tag)
		}
	}
}

func TestSigningCoversRootAndTLDs(t *testing.T) {
	l, err := Generate(Options{DataDir: testDataDir, OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if !l.zones["."].Secure() {
		t.Error("root zone is not secure")
	}
	for _, tld := range l.tlds {
		if !l.zones[tld].Secure() {
			t.Errorf("TLD %s is not secure", tld)
		}
	}

	signed, nsec3 := 0, 0
	signers := map[string]int{}
	for _, pz := range l.popular {
		s := pz.Zone.Signing
		if s == nil {
			continue
		}
		signed++
		signers[s.Signer]++
		if s.NSEC3 {
			nsec3++
			if s.Iterations != 0 {
				t.Errorf("popular zone %s uses %d NSEC3 iterations, want 0", pz.Zone.Name, s.Iterations)
			}
		}
	}
	share := 100 * signed / len(l.popular)
	if share < 5 || share > 20 {
		t.Errorf("%d%% of popular zones are signed, want 5%% to 20%%", share)
	}
	if nsec3 == 0 || nsec3 == signed {
		t.Errorf("%d of %d signed popular zones use NSEC3, want some but not all", nsec3, signed)
	}
	for _, s := range []string{signerKnot, signerBind, signerLDNS} {
		if signers[s] == 0 {
			t.Errorf("no popular zone is signed by %s", s)
		}
	}
}

func TestSignedZoneParentsAreSigned(t *testing.T) {
	l, err := Generate(Options{DataDir: testDataDir, OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, z := range l.sortedZones() {
		if z.Signing != nil && z.parent != nil && z.parent.Signing == nil {
			t.Errorf("signed zone %s has the unsigned parent %s", z.Name, z.parent.Name)
		}
	}
}

func TestExpectedRowsForDNSSECCases(t *testing.T) {
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
		ad    bool
		ede   int
	}{
		{". SOA", dns.RcodeSuccess, true, -1},
		{"nonexistent-tld-lab. A", dns.RcodeNameError, true, -1},
		{"www.lab-lame.com. A", dns.RcodeServerFailure, false, 22},
		{"www.alg13.lab-dnssec.net. A", dns.RcodeSuccess, true, -1},
		{"nx.alg16.lab-dnssec.net. A", dns.RcodeNameError, true, -1},
		{"foo.w.nsec3.lab-dnssec.net. A", dns.RcodeSuccess, true, -1},
		{"www.insecure.optout.lab-dnssec.net. A", dns.RcodeSuccess, false, -1},
		{"nx.nsec3-iter200.lab-dnssec.net. A", dns.RcodeNameError, false, 27},
		{"www.rsasha1.lab-dnssec.net. A", dns.RcodeSuccess, false, 1},
		{"www.ds-gost.lab-dnssec.net. A", dns.RcodeSuccess, false, 2},
		{"www.expired.lab-dnssec.net. A", dns.RcodeServerFailure, false, 7},
		{"www.notyet.lab-dnssec.net. A", dns.RcodeServerFailure, false, 8},
		{"www.dnskey-missing.lab-dnssec.net. A", dns.RcodeServerFailure, false, 9},
		{"www.rrsig-missing.lab-dnssec.net. A", dns.RcodeServerFailure, false, 10},
		{"www.no-zone-bit.lab-dnssec.net. A", dns.RcodeServerFailure, false, 11},
		{"nx.nsec-missing.lab-dnssec.net. A", dns.RcodeServerFailure, false, 12},
		{"r1.keytrap.lab-dnssec.net. A", dns.RcodeServerFailure, false, 6},
		{"www.cname-unsigned.lab-dnssec.net. A", dns.RcodeSuccess, false, -1},
		{"www.cname-signed.lab-dnssec.net. A", dns.RcodeSuccess, true, -1},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			row, ok := rows[tt.key]
			if !ok {
				t.Fatalf("expected.tsv has no row %s", tt.key)
			}
			if row.Rcode != tt.rcode || row.AD != tt.ad || row.EDE != tt.ede {
				t.Errorf("row %s = rcode %d, ad %v, ede %d; want %d, %v, %d",
					tt.key, row.Rcode, row.AD, row.EDE, tt.rcode, tt.ad, tt.ede)
			}
		})
	}
}

func TestInfoListsDNSSECCases(t *testing.T) {
	dir := t.TempDir()
	generateTo(t, dir)
	info := readInfo(t, dir)

	if len(info.DNSSECCases) < 25 {
		t.Errorf("lab.json lists %d DNSSEC cases, want at least 25", len(info.DNSSECCases))
	}
	for _, c := range info.DNSSECCases {
		if len(c.Queries) == 0 {
			t.Errorf("DNSSEC case %s has no queries", c.Name)
		}
		if !dns.IsSubDomain(info.DNSSECZone, c.Zone) {
			t.Errorf("DNSSEC case %s zone %s is not below %s", c.Name, c.Zone, info.DNSSECZone)
		}
	}
	if info.Root2018 == nil || len(info.Root2018.Queries) == 0 || len(info.Root2018.BadQueries) == 0 {
		t.Fatalf("lab.json root2018 = %+v, want queries for both copies", info.Root2018)
	}
	if info.TrustAnchorXML == "" || info.TrustAnchorDS == "" {
		t.Errorf("lab.json trust anchor paths are empty")
	}
}

func TestCopyRoot2018(t *testing.T) {
	in := strings.Join([]string{
		".\t86400\tIN\tSOA\ta.root-servers.net. nstld.verisign-grs.com. 2018012900 1800 900 604800 86400",
		".\t172800\tIN\tRRSIG\tDNSKEY 8 0 172800 20180211000000 20180121000000 19036 . AAECAwQFBgcI",
		"a.root-servers.net.\t518400\tIN\tA\t198.41.0.4",
		"a.root-servers.net.\t518400\tIN\tAAAA\t2001:503:ba3e::2:30",
		"com.\t172800\tIN\tNS\ta.gtld-servers.net.",
	}, "\n") + "\n"

	for _, corrupt := range []bool{false, true} {
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		if err := copyRoot2018(strings.NewReader(in), w, "127.53.4.1", corrupt); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		text := out.String()
		if !strings.Contains(text, "a.root-servers.net.\t518400\tIN\tA\t127.53.4.1\n") {
			t.Errorf("corrupt=%v: glue A not rewritten:\n%s", corrupt, text)
		}
		if strings.Contains(text, "AAAA") {
			t.Errorf("corrupt=%v: AAAA glue kept:\n%s", corrupt, text)
		}
		if !strings.Contains(text, "com.\t172800\tIN\tNS\ta.gtld-servers.net.\n") {
			t.Errorf("corrupt=%v: NS line changed:\n%s", corrupt, text)
		}
		if got := strings.Contains(text, "AAECAwQFBgcI"); got == corrupt {
			t.Errorf("corrupt=%v: original DNSKEY signature present = %v", corrupt, got)
		}
	}
}

// TestSignLab signs a generated lab with the real signers and checks the
// signed zone files of some DNSSEC cases.
func TestSignLab(t *testing.T) {
	for _, tool := range []string{"dnssec-signzone", "ldns-signzone", "ldns-keygen", "keymgr"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (lab/deps.sh installs it): %v", tool, err)
		}
	}
	dir := t.TempDir()
	generateTo(t, dir)
	now := time.Now()
	if err := Sign(dir, now, slog.New(slog.NewTextHandler(os.Stderr, nil))); err != nil {
		t.Fatal(err)
	}

	anchor, err := os.ReadFile(filepath.Join(dir, labspec.RootDSFile))
	if err != nil {
		t.Fatal(err)
	}
	config, err := os.ReadFile(filepath.Join(dir, labspec.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(config), "dnssec:\n  trust_anchors:\n    - \""+strings.TrimSpace(string(anchor))+"\"") {
		t.Errorf("bulwark.yaml lacks the anchor %q:\n%s", anchor, config)
	}

	zone := func(name string) []dns.RR {
		t.Helper()
		rrs, err := readZoneFile(filepath.Join(dir, zonesDir, name+".zone"), name+".")
		if err != nil {
			t.Fatal(err)
		}
		return rrs
	}

	t.Run("alg13 verifies", func(t *testing.T) {
		rrs := zone("alg13.lab-dnssec.net")
		if err := verifyRRset(rrs, "www.alg13.lab-dnssec.net.", dns.TypeA, now); err != nil {
			t.Error(err)
		}
	})
	t.Run("bad-sig fails", func(t *testing.T) {
		rrs := zone("bad-sig.lab-dnssec.net")
		if err := verifyRRset(rrs, "www.bad-sig.lab-dnssec.net.", dns.TypeA, now); err == nil {
			t.Error("corrupted RRSIG over www A verifies")
		}
	})
	t.Run("expired signatures", func(t *testing.T) {
		for _, r := range zone("expired.lab-dnssec.net") {
			if sig, ok := r.(*dns.RRSIG); ok && sig.ValidityPeriod(now) {
				t.Fatalf("RRSIG %s is valid now", sig)
			}
		}
	})
	t.Run("rrsig-missing", func(t *testing.T) {
		for _, r := range zone("rrsig-missing.lab-dnssec.net") {
			if isRRSIGOver(r, "www.rrsig-missing.lab-dnssec.net.", "A") {
				t.Fatalf("RRSIG over www A is still there: %s", r)
			}
		}
	})
	t.Run("no-zone-bit", func(t *testing.T) {
		flags := map[uint16]int{}
		for _, r := range zone("no-zone-bit.lab-dnssec.net") {
			if k, ok := r.(*dns.DNSKEY); ok {
				flags[k.Flags]++
			}
		}
		if flags[dns.SEP] != 1 || flags[dns.ZONE] != 1 {
			t.Errorf("DNSKEY flags = %v, want one key with 1 and one with 256", flags)
		}
	})
	t.Run("keytrap", func(t *testing.T) {
		tags := map[uint16]int{}
		sigs := 0
		for _, r := range zone("keytrap.lab-dnssec.net") {
			if k, ok := r.(*dns.DNSKEY); ok {
				tags[k.KeyTag()]++
			}
			if isRRSIGOver(r, "*.keytrap.lab-dnssec.net.", "A") {
				sigs++
			}
		}
		most := 0
		for _, n := range tags {
			most = max(most, n)
		}
		if most < keyTrapKeys {
			t.Errorf("at most %d DNSKEYs share a key tag, want at least %d", most, keyTrapKeys)
		}
		if sigs != keyTrapSigs {
			t.Errorf("%d RRSIGs over the wildcard A, want %d", sigs, keyTrapSigs)
		}
	})
}

// verifyRRset checks the RRSIGs over owner/t in rrs with the zone's
// DNSKEYs and returns an error unless one verifies at now.
func verifyRRset(rrs []dns.RR, owner string, t uint16, now time.Time) error {
	var set []dns.RR
	var sigs []*dns.RRSIG
	keys := map[uint16][]*dns.DNSKEY{}
	for _, r := range rrs {
		switch v := r.(type) {
		case *dns.DNSKEY:
			keys[v.KeyTag()] = append(keys[v.KeyTag()], v)
		case *dns.RRSIG:
			if v.Hdr.Name == owner && v.TypeCovered == t {
				sigs = append(sigs, v)
			}
		}
		if r.Header().Name == owner && r.Header().Rrtype == t {
			set = append(set, r)
		}
	}
	var last error = errNoSignature
	for _, sig := range sigs {
		for _, k := range keys[sig.KeyTag] {
			if err := sig.Verify(k, set); err != nil {
				last = err
				continue
			}
			if !sig.ValidityPeriod(now) {
				last = errOutsideValidity
				continue
			}
			return nil
		}
	}
	return last
}

var (
	errNoSignature     = errors.New("no RRSIG with a matching DNSKEY")
	errOutsideValidity = errors.New("RRSIG verifies but is outside its validity period")
)
