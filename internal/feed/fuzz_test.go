package feed

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// fuzzSeeds returns short inputs for format: tricky lines and the start of
// the real feeds in that format.
func fuzzSeeds(t *testing.F, format Format, files ...string) [][]byte {
	seeds := [][]byte{
		nil,
		[]byte("\ufeff\r\n"),
		[]byte("bücher.example\n*.wild.example\n192.0.2.1\n2001:db8::/32\nA..B\n"),
		[]byte("0.0.0.0 a.example b.example # c\n::1 localhost\n0.0.0.0 0.0.0.0\n"),
		[]byte("||a.example^$important\n@@|b.example^\n||1.2.3.4^\n##.ad\n/re/\n||x/y^\n"),
		[]byte("input,class\n\"a.example\",\"X\"\n\"open,\n"),
		[]byte(rpzHeader + "a CNAME .\n*.b CNAME *.\n32.4.3.2.1.rpz-ip CNAME rpz-drop.\n128.1.zz.db8.2001.rpz-nsip A 192.0.2.1\n" +
			"ns.rpz-nsdname CNAME rpz-passthru.\nt TXT ( \"x\"\n \"y\" )\n$ORIGIN s\n$TTL 1h\n$INCLUDE f\n"),
	}
	for _, file := range files {
		data, err := os.ReadFile(filepath.Join(feedDir, file))
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, data[:min(len(data), maxFuzzInput)])
	}
	return seeds
}

// checkResult fails t unless res is consistent and every rule is valid: a
// canonical name for name triggers, a masked prefix of at least one bit for
// address triggers.
func checkResult(t *testing.T, res *Result, err error, format Format) {
	t.Helper()
	if err != nil && format != RPZ {
		t.Fatalf("Parse error for format %v: %v", format, err)
	}
	if res == nil {
		t.Fatal("Parse returned a nil result")
	}
	if res.BadCount < len(res.Bad) || len(res.Bad) > maxBadLines {
		t.Errorf("BadCount %d with %d bad lines kept", res.BadCount, len(res.Bad))
	}
	for _, b := range res.Bad {
		if b.Line < 1 || b.Line > res.Lines || len(b.Text) > maxBadTextBytes || b.Reason == "" {
			t.Errorf("bad line %+v of %d lines", b, res.Lines)
		}
	}
	for _, r := range res.Rules {
		if r.Line < 1 || r.Line > res.Lines {
			t.Errorf("rule %s on line %d of %d", ruleString(r), r.Line, res.Lines)
		}
		if r.Action < Block || r.Action > LocalData {
			t.Errorf("rule %s has action %d", ruleString(r), r.Action)
		}
		if (r.Action == LocalData) != (len(r.Data) > 0) {
			t.Errorf("rule %s: action %v with %d records", ruleString(r), r.Action, len(r.Data))
		}
		if r.Subdomains && r.Wildcard {
			t.Errorf("rule %s has both Subdomains and Wildcard", ruleString(r))
		}
		switch r.Trigger {
		case QName, NSDName:
			if reason := checkCanonical(r.Name, r.Wildcard && format == RPZ); reason != "" {
				t.Errorf("rule %s: name %q: %s", ruleString(r), r.Name, reason)
			}
			if r.Prefix.IsValid() {
				t.Errorf("name rule %s has a prefix", ruleString(r))
			}
		case ClientIP, ResponseIP, NSIP:
			p := r.Prefix
			if !p.IsValid() || p.Bits() < 1 || p != p.Masked() || p.Addr().Zone() != "" {
				t.Errorf("address rule %s has an invalid prefix", ruleString(r))
			}
			if r.Name != "" {
				t.Errorf("address rule %s has a name", ruleString(r))
			}
		default:
			t.Errorf("rule %s has trigger %d", ruleString(r), r.Trigger)
		}
	}
}

// checkCanonical returns what is wrong with a canonical rule name, or "".
// The root name is valid only for an RPZ wildcard.
func checkCanonical(name string, rootAllowed bool) string {
	if name == "." {
		if rootAllowed {
			return ""
		}
		return "root name"
	}
	if !strings.HasSuffix(name, ".") {
		return "no trailing dot"
	}
	if len(name) > maxNameBytes+1 {
		return "too long"
	}
	for label := range strings.SplitSeq(name[:len(name)-1], ".") {
		if label == "" || len(label) > maxLabelBytes {
			return "bad label length"
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return "invalid character"
			}
		}
	}
	if _, ok := dns.IsDomainName(name); !ok {
		return "rejected by dns.IsDomainName"
	}
	return ""
}

// maxFuzzInput is the largest input the fuzz targets parse. The fuzzer
// minimizes each new input with a number of runs that grows with the square
// of its size, and fuzzes nothing meanwhile: with inputs of up to 4 KB, a
// 30 s run stalled for more than 10 s. Longer inputs only repeat lines, and
// the short line limit of fuzzParse covers lines longer than the read buffer.
const maxFuzzInput = 512

// fuzzParse parses data with the default options and with a short line
// limit, which also exercises lines longer than the read buffer.
func fuzzParse(t *testing.T, data []byte, format Format, opts Options) {
	if len(data) > maxFuzzInput {
		return
	}
	res, err := Parse(bytes.NewReader(data), format, opts)
	checkResult(t, res, err, format)
	compareScan(t, data, format, opts, res, err)
	opts.MaxLineBytes = 40
	res, err = Parse(bytes.NewReader(data), format, opts)
	checkResult(t, res, err, format)
}

func FuzzParseHosts(f *testing.F) {
	for _, s := range fuzzSeeds(f, Hosts, "urlhaus-filter-hosts.txt") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzParse(t, data, Hosts, Options{})
	})
}

func FuzzParseDomains(f *testing.F) {
	for _, s := range fuzzSeeds(f, Domains, "urlhaus-filter-domains.txt", "phishing-database-domains-active-slice.txt") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzParse(t, data, Domains, Options{})
	})
}

func FuzzParseAdGuard(f *testing.F) {
	for _, s := range fuzzSeeds(f, AdGuard, "urlhaus-filter-agh.txt", "urlhaus-filter-online.txt") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzParse(t, data, AdGuard, Options{})
	})
}

func FuzzParseRPZ(f *testing.F) {
	for _, s := range fuzzSeeds(f, RPZ, "urlhaus-filter-rpz.conf", "hagezi-tif-mini-rpz-slice.txt") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzParse(t, data, RPZ, Options{})
		fuzzParse(t, data, RPZ, Options{Origin: "rpz.example."})
		if len(data) <= maxFuzzInput {
			compareActionCNAME(t, data, Options{Origin: "rpz.example."})
		}
	})
}

func FuzzParseCSV(f *testing.F) {
	for _, s := range fuzzSeeds(f, CSV, "threatfox-domains-by-family.csv") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzParse(t, data, CSV, Options{CSVCategoryColumn: 1})
	})
}

// compareScan checks that Scan passes the rules that Parse returns, which
// are res and err. Scan drops no duplicate names, and it accepts a local
// data rule for an RPZ owner with an earlier policy record, which Parse
// reports as a conflicting line.
func compareScan(t *testing.T, data []byte, format Format, opts Options, res *Result, err error) {
	t.Helper()
	var scanned, triggers []string
	var lines []int
	scanRes, scanErr := Scan(bytes.NewReader(data), format, opts, func(r *Rule) {
		scanned = append(scanned, ruleString(*r))
		bare := *r
		bare.Category = ""
		triggers = append(triggers, ruleString(bare))
		lines = append(lines, r.Line)
	})
	if (err == nil) != (scanErr == nil) {
		t.Fatalf("Parse error %v, Scan error %v", err, scanErr)
	}
	if len(scanRes.Rules) != 0 {
		t.Errorf("Scan stored %d rules, want none", len(scanRes.Rules))
	}
	parsed := make(map[string]bool, len(res.Rules))
	// parsedTriggers holds the rules without their category: Parse drops
	// a later rule for the same trigger and action as a duplicate,
	// whatever its category, and Scan passes it.
	parsedTriggers := make(map[string]bool, len(res.Rules))
	for _, r := range res.Rules {
		parsed[ruleString(r)] = true
		r.Category = ""
		parsedTriggers[ruleString(r)] = true
	}
	seen := make(map[string]bool, len(scanned))
	for i, r := range scanned {
		seen[r] = true
		if parsed[r] || parsedTriggers[triggers[i]] {
			continue
		}
		conflict := false
		for _, bad := range res.Bad {
			conflict = conflict || bad.Line == lines[i] && strings.HasPrefix(bad.Reason, "conflicting policy")
		}
		if !conflict && len(res.Bad) < maxBadLines {
			t.Errorf("Scan passed %s, which Parse did not return", r)
		}
	}
	for r := range parsed {
		if !seen[r] {
			t.Errorf("Parse returned %s, which Scan did not pass", r)
		}
	}
	if scanRes.Lines != res.Lines || scanRes.Comments != res.Comments || scanRes.Unsupported != res.Unsupported {
		t.Errorf("Scan counted %d lines, %d comments, %d unsupported; Parse %d, %d, %d",
			scanRes.Lines, scanRes.Comments, scanRes.Unsupported, res.Lines, res.Comments, res.Unsupported)
	}
	if scanRes.BadCount > res.BadCount {
		t.Errorf("Scan found %d malformed lines, Parse %d", scanRes.BadCount, res.BadCount)
	}
}
