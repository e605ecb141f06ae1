package rpzgen

import (
	"bytes"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func testConfig(names int) Config {
	return Config{Names: names, Seed: DefaultSeed, Origin: "rpz.bench.", LocalNames: 20, Passthru: 30, Sample: 500, Unlisted: 50}
}

func writeZone(t *testing.T, cfg Config) ([]byte, *Summary) {
	t.Helper()
	var buf bytes.Buffer
	sum, err := WriteZone(&buf, cfg)
	if err != nil {
		t.Fatalf("WriteZone(%+v) = %v", cfg, err)
	}
	return buf.Bytes(), sum
}

func TestWriteZoneDeterministic(t *testing.T) {
	a, _ := writeZone(t, testConfig(5000))
	b, _ := writeZone(t, testConfig(5000))
	if !bytes.Equal(a, b) {
		t.Errorf("two zones of the same config differ")
	}
	other := testConfig(5000)
	other.Seed = 2
	c, _ := writeZone(t, other)
	if bytes.Equal(a, c) {
		t.Errorf("zones of seeds 1 and 2 are equal")
	}
}

// TestWriteZoneParses reads the zone back with miekg/dns and counts every
// kind of record.
func TestWriteZoneParses(t *testing.T) {
	const names = 20_000
	data, sum := writeZone(t, testConfig(names))
	if got := int64(len(data)); sum.Bytes != got {
		t.Errorf("Summary.Bytes = %d, want %d", sum.Bytes, got)
	}
	counts := map[string]int{}
	owners := map[string]bool{}
	zp := dns.NewZoneParser(bytes.NewReader(data), "", "rpz.zone")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		owner := strings.TrimSuffix(rr.Header().Name, "rpz.bench.")
		kind := dns.TypeToString[rr.Header().Rrtype]
		if cname, isCNAME := rr.(*dns.CNAME); isCNAME {
			kind += " " + cname.Target
			if owners[owner] {
				t.Errorf("owner %q has two CNAME records", owner)
			}
			owners[owner] = true
		}
		if strings.HasPrefix(owner, "*.") {
			kind = "wildcard " + kind
		}
		counts[kind]++
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("zone does not parse: %v", err)
	}
	want := map[string]int{
		"SOA": 1, "NS": 1,
		"CNAME .":             names - names/WildcardEvery,
		"wildcard CNAME .":    names / WildcardEvery,
		"CNAME rpz-passthru.": 30,
		"A":                   20,
		"AAAA":                10,
		"TXT":                 4,
	}
	for kind, n := range want {
		if counts[kind] != n {
			t.Errorf("%d %s records, want %d", counts[kind], kind, n)
		}
	}
	if len(counts) != len(want) {
		t.Errorf("record kinds %v, want only %v", counts, want)
	}
}

func TestNamesValidAndDistinct(t *testing.T) {
	const n = 100_000
	g := NewNames(n, DefaultSeed)
	seen := map[string]bool{}
	for tr, ok := g.Next(); ok; tr, ok = g.Next() {
		if seen[tr.Name] {
			t.Fatalf("name %q generated twice", tr.Name)
		}
		seen[tr.Name] = true
		if len(tr.Name) > MaxNameLength {
			t.Errorf("name %q is %d bytes, want at most %d", tr.Name, len(tr.Name), MaxNameLength)
		}
		if _, ok := dns.IsDomainName(tr.Name + ".rpz.bench."); !ok {
			t.Errorf("name %q is not a valid domain name", tr.Name)
		}
		for _, label := range strings.Split(tr.Name, ".") {
			if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
				t.Errorf("name %q has the invalid host label %q", tr.Name, label)
			}
		}
	}
	if len(seen) != n {
		t.Errorf("%d names, want %d", len(seen), n)
	}
	for _, name := range g.Unlisted(1000) {
		for anc := name; ; {
			if seen[anc] {
				t.Errorf("Unlisted name %q is covered by the trigger %q", name, anc)
			}
			i := strings.IndexByte(anc, '.')
			if i < 0 {
				break
			}
			anc = anc[i+1:]
		}
	}
}

func TestSummaryProbes(t *testing.T) {
	_, sum := writeZone(t, testConfig(10_000))
	if len(sum.Listed) != 500 {
		t.Errorf("%d listed names, want 500", len(sum.Listed))
	}
	exact, wildcard := map[string]bool{}, map[string]bool{}
	g := NewNames(10_000, DefaultSeed)
	for tr, ok := g.Next(); ok; tr, ok = g.Next() {
		if tr.Wildcard {
			wildcard[tr.Name] = true
		} else {
			exact[tr.Name] = true
		}
	}
	below := 0
	for _, name := range sum.Listed {
		_, parent, _ := strings.Cut(name, ".")
		switch {
		case exact[name]:
		case wildcard[parent]:
			below++
		default:
			t.Errorf("listed name %q is neither a trigger nor below a wildcard", name)
		}
	}
	if below != 100 {
		t.Errorf("%d of the listed names are below wildcards, want 100", below)
	}
	if !strings.HasPrefix(sum.BelowLastWildcard, "www.") || !strings.HasSuffix(sum.BelowLastWildcard, "."+sum.LastWildcard) {
		t.Errorf("BelowLastWildcard = %q, want www. below %q", sum.BelowLastWildcard, sum.LastWildcard)
	}
	if len(sum.Unlisted) != 50 || len(sum.Passthru) != 30 {
		t.Errorf("%d unlisted and %d passthru names, want 50 and 30", len(sum.Unlisted), len(sum.Passthru))
	}
	for _, r := range sum.Local {
		if !strings.HasSuffix(r.Name, ".internal") {
			t.Errorf("local-data name %q is not below internal.", r.Name)
		}
	}
}

func TestWriteZoneInvalidConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Names: 0, Origin: "rpz.bench."},
		{Names: 10, Origin: "rpz.bench"},
		{Names: 10, Origin: strings.Repeat("a", 60) + "."},
	} {
		if _, err := WriteZone(&bytes.Buffer{}, cfg); err == nil {
			t.Errorf("WriteZone(names %d, origin %q) = nil error, want an error", cfg.Names, cfg.Origin)
		}
	}
}
