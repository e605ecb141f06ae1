package feed

import (
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// feedDir holds real published feeds. lab/data/SOURCES.md gives their origin,
// version and row counts.
const feedDir = "../../lab/data/feeds"

func parseFeedFile(t testing.TB, file string, format Format, opts Options) *Result {
	t.Helper()
	f, err := os.Open(filepath.Join(feedDir, file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := Parse(f, format, opts)
	if err != nil {
		t.Fatalf("Parse(%s) error: %v", file, err)
	}
	return res
}

// feedCounts sums the rules of a result by shape.
type feedCounts struct {
	names, wildcards, exact, addresses int
	actions                            map[Action]int
}

func countRules(res *Result) feedCounts {
	c := feedCounts{actions: make(map[Action]int)}
	for _, r := range res.Rules {
		c.actions[r.Action]++
		switch {
		case r.Trigger != QName:
			if r.Trigger == ResponseIP && r.Prefix.IsSingleIP() {
				c.addresses++
			}
		case r.Wildcard:
			c.wildcards++
		case r.Subdomains:
			c.names++
		default:
			c.exact++
		}
	}
	return c
}

// ruleIndex maps each rule's name, or address for address rules, to the
// rule.
func ruleIndex(res *Result) map[string]Rule {
	m := make(map[string]Rule, len(res.Rules))
	for _, r := range res.Rules {
		key := r.Name
		if key == "" {
			key = r.Prefix.String()
		}
		if r.Wildcard {
			key = "*." + key
		}
		m[key] = r
	}
	return m
}

func TestRealFeeds(t *testing.T) {
	cases := []struct {
		file    string
		format  Format
		opts    Options
		lines   int
		rules   int
		counts  feedCounts // actions is compared when set
		unsup   int
		bad     int
		present []string
		absent  []string
	}{
		{
			file: "urlhaus-filter-hosts.txt", format: Hosts, lines: 2695, rules: 2689,
			counts:  feedCounts{names: 2689, actions: map[Action]int{Block: 2689}},
			present: []string{"0022a601.pphost.net.", "1-engineer.ru.", "111.190.202.64.host.secureserver.net."},
		},
		{
			file: "urlhaus-filter-domains.txt", format: Domains, lines: 25774, rules: 25768,
			counts:  feedCounts{names: 2689, addresses: 23079, actions: map[Action]int{Block: 25768}},
			present: []string{"0daydreams.net.", "1.0.209.238/32", "1.117.77.166/32"},
		},
		{
			file: "urlhaus-filter-agh.txt", format: AdGuard, lines: 25774, rules: 25768,
			counts:  feedCounts{names: 2689, addresses: 23079, actions: map[Action]int{Block: 25768}},
			present: []string{"038d159d-b3bc-44dd-a0c4-bec68c0c4123.random.bb2023.duckdns.org.", "1.0.209.238/32"},
		},
		{
			file: "urlhaus-filter-online.txt", format: AdGuard, lines: 6369, rules: 2853, unsup: 3510,
			counts:  feedCounts{names: 619, addresses: 2234, actions: map[Action]int{Block: 2853}},
			present: []string{"0022a601.pphost.net.", "1.izumisv1.cc.", "1.1.109.99/32"},
			// Listed only with URL paths, or with the $all modifier.
			absent: []string{"2024.sci-hub.se.", "wegrowcoaching.com.", "abcocomputers.com."},
		},
		{
			file: "urlhaus-filter-rpz.conf", format: RPZ, lines: 2700, rules: 2689,
			counts:  feedCounts{exact: 2689, actions: map[Action]int{NXDomain: 2689}},
			present: []string{"0022a601.pphost.net.", "zyzzyva.pipesnmetals.com."},
		},
		{
			file: "hagezi-tif-mini-rpz-slice.txt", format: RPZ, lines: 160, rules: 144,
			counts:  feedCounts{exact: 72, wildcards: 72, actions: map[Action]int{NXDomain: 144}},
			present: []string{"file.edunet.ac.", "*.file.edunet.ac.", "fuel.ac.", "*.fuel.ac."},
		},
		{
			file: "phishing-database-domains-active-slice.txt", format: Domains, lines: 209, rules: 209,
			counts:  feedCounts{names: 193, addresses: 16, actions: map[Action]int{Block: 209}},
			present: []string{"000-0.000webhostapp.com.", "000jq3q.rxportalhosting.com.", "100.42.48.198/32"},
		},
		{
			file: "threatfox-domains-by-family.csv", format: CSV, opts: Options{CSVCategoryColumn: 1},
			lines: 15216, rules: 15210, bad: 5,
			counts:  feedCounts{names: 15208, addresses: 2, actions: map[Action]int{Block: 15210}},
			present: []string{"hungrustrang.com.", "qfseven7ht.top.", "wanted12-62000.portmap.host.", "104.199.150.188/32"},
			absent:  []string{"winvohost@ddns.net."},
		},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			res := parseFeedFile(t, tc.file, tc.format, tc.opts)
			if res.Lines != tc.lines {
				t.Errorf("Lines = %d, want %d", res.Lines, tc.lines)
			}
			if len(res.Rules) != tc.rules {
				t.Errorf("%d rules, want %d", len(res.Rules), tc.rules)
			}
			if res.Unsupported != tc.unsup {
				t.Errorf("Unsupported = %d, want %d", res.Unsupported, tc.unsup)
			}
			if res.BadCount != tc.bad {
				t.Errorf("BadCount = %d, want %d: %q", res.BadCount, tc.bad, badReasons(res))
			}
			if res.Duplicates != 0 {
				t.Errorf("Duplicates = %d, want 0", res.Duplicates)
			}
			// Every line is a rule, a comment, unsupported or malformed.
			if got := tc.rules + res.Comments + res.Unsupported + res.BadCount; got != res.Lines && tc.format != RPZ {
				t.Errorf("rules+comments+unsupported+bad = %d, want Lines %d", got, res.Lines)
			}
			got := countRules(res)
			if got.names != tc.counts.names || got.exact != tc.counts.exact || got.wildcards != tc.counts.wildcards || got.addresses != tc.counts.addresses {
				t.Errorf("names/exact/wildcards/addresses = %d/%d/%d/%d, want %d/%d/%d/%d",
					got.names, got.exact, got.wildcards, got.addresses,
					tc.counts.names, tc.counts.exact, tc.counts.wildcards, tc.counts.addresses)
			}
			if !maps.Equal(got.actions, tc.counts.actions) {
				t.Errorf("actions = %v, want %v", got.actions, tc.counts.actions)
			}
			data, err := os.ReadFile(filepath.Join(feedDir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			compareScan(t, data, tc.format, tc.opts, res, nil)
			index := ruleIndex(res)
			for _, key := range tc.present {
				if _, ok := index[key]; !ok {
					t.Errorf("%s has no rule for %s", tc.file, key)
				}
			}
			for _, key := range tc.absent {
				if _, ok := index[key]; ok {
					t.Errorf("%s has a rule for %s, want none", tc.file, key)
				}
			}
		})
	}
}

func TestRealThreatFoxCategories(t *testing.T) {
	res := parseFeedFile(t, "threatfox-domains-by-family.csv", CSV, Options{CSVCategoryColumn: 1})
	index := ruleIndex(res)
	for name, family := range map[string]string{
		"hungrustrang.com.":         "IcedID",
		"qfseven7ht.top.":           "CryptBot",
		"cazador2000.no-ip.biz.":    "CyberGate",
		"rakovinnae.website.":       "IcedID Downloader",
		"h4rrypott3r.no-ip.biz.":    "",
		"ppzo3687.b-cdn.net.":       "Other Malware",
		"ancjrljxpmegbstgwrxo.com.": "Zloader",
	} {
		r, ok := index[name]
		if !ok {
			t.Errorf("no rule for %s", name)
			continue
		}
		if family != "" && r.Category != family {
			t.Errorf("%s category = %q, want %q", name, r.Category, family)
		}
		if r.Category == "" {
			t.Errorf("%s has no category", name)
		}
	}
	// Rows whose first column is no name: two "user@host" forms, two bare
	// numbers and a "host=>port" pair.
	var badLines []int
	for _, b := range res.Bad {
		badLines = append(badLines, b.Line)
	}
	if want := []int{1114, 2495, 3234, 7983, 14082}; !slices.Equal(badLines, want) {
		t.Errorf("malformed lines %v, want %v", badLines, want)
	}
	families := make(map[string]bool)
	for _, r := range res.Rules {
		families[r.Category] = true
	}
	if len(families) != 64 {
		t.Errorf("%d families, want 64", len(families))
	}
}

// TestRealURLhausFormatsAgree checks that the hosts, domains, AdGuard and RPZ
// editions of the same URLhaus list give the same names. The lists match
// subdomains too, the RPZ edition only the exact names.
func TestRealURLhausFormatsAgree(t *testing.T) {
	editions := []struct {
		file   string
		format Format
	}{
		{"urlhaus-filter-hosts.txt", Hosts},
		{"urlhaus-filter-domains.txt", Domains},
		{"urlhaus-filter-agh.txt", AdGuard},
		{"urlhaus-filter-rpz.conf", RPZ},
	}
	names := make([][]string, len(editions))
	addresses := make(map[string][]netip.Prefix)
	for i, e := range editions {
		res := parseFeedFile(t, e.file, e.format, Options{})
		for _, r := range res.Rules {
			switch r.Trigger {
			case QName:
				names[i] = append(names[i], r.Name)
				if wantSub := e.format != RPZ; r.Subdomains != wantSub || r.Wildcard {
					t.Errorf("%s: %s has Subdomains %v Wildcard %v, want Subdomains %v", e.file, r.Name, r.Subdomains, r.Wildcard, wantSub)
				}
			case ResponseIP:
				addresses[e.file] = append(addresses[e.file], r.Prefix)
			}
		}
		slices.Sort(names[i])
	}
	for i := 1; i < len(editions); i++ {
		if !slices.Equal(names[0], names[i]) {
			t.Errorf("%s names differ from %s: %d against %d", editions[i].file, editions[0].file, len(names[i]), len(names[0]))
		}
	}
	if len(names[0]) != 2689 {
		t.Errorf("%d names, want 2689", len(names[0]))
	}
	for _, list := range addresses {
		slices.SortFunc(list, netip.Prefix.Compare)
	}
	if len(addresses["urlhaus-filter-domains.txt"]) != 23079 {
		t.Errorf("%d addresses in the domains edition, want 23079", len(addresses["urlhaus-filter-domains.txt"]))
	}
	if !slices.Equal(addresses["urlhaus-filter-domains.txt"], addresses["urlhaus-filter-agh.txt"]) {
		t.Error("domains and AdGuard editions give different addresses")
	}
}

func TestRealFeedsDetect(t *testing.T) {
	want := map[string]Format{
		"urlhaus-filter-hosts.txt":                   Hosts,
		"urlhaus-filter-domains.txt":                 Domains,
		"urlhaus-filter-agh.txt":                     AdGuard,
		"urlhaus-filter-online.txt":                  AdGuard,
		"urlhaus-filter-rpz.conf":                    RPZ,
		"hagezi-tif-mini-rpz-slice.txt":              RPZ,
		"phishing-database-domains-active-slice.txt": Domains,
		"threatfox-domains-by-family.csv":            CSV,
	}
	entries, err := os.ReadDir(feedDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		format, ok := want[e.Name()]
		if !ok {
			t.Errorf("%s: no expected format; add the file to this test and to TestRealFeeds", e.Name())
			continue
		}
		data, err := os.ReadFile(filepath.Join(feedDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if got := Detect(data); got != format {
			t.Errorf("Detect(%s) = %v, want %v", e.Name(), got, format)
		}
	}
}
