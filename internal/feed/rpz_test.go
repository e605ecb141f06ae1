package feed

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// rpzHeader is a zone start with relative owners under the zone name set in
// the options. It is three lines long.
const rpzHeader = "$TTL 300\n@ SOA ns.rpz.example. admin.rpz.example. 1 3600 600 86400 60\n  NS ns.rpz.example.\n"

var rpzOpts = Options{Origin: "rpz.example"}

func TestParseRPZ(t *testing.T) {
	runParseCases(t, RPZ, []parseCase{
		{
			name: "actions",
			input: rpzHeader +
				"bad.example CNAME .\n*.bad.example CNAME .\nnodata.example CNAME *.\nok.example CNAME rpz-passthru.\n" +
				"drop.example CNAME rpz-drop.\ntcp.example CNAME rpz-tcp-only.\nlegacy.example CNAME legacy.example.\n" +
				"UPPER.Example CNAME RPZ-DROP.\n",
			opts: rpzOpts,
			rules: []string{
				"qname bad.example. nxdomain",
				"qname bad.example. wild nxdomain",
				"qname nodata.example. nodata",
				"qname ok.example. passthru",
				"qname drop.example. drop",
				"qname tcp.example. tcp-only",
				"qname legacy.example. passthru",
				"qname upper.example. drop",
			},
		},
		{
			name: "local data",
			input: rpzHeader +
				"redirect.example CNAME walled.garden.example.\n" +
				"*.wredirect.example CNAME *.walled.example.\n" +
				"local.example A 192.0.2.1\nlocal.example 60 AAAA 2001:db8::1\n  TXT \"blocked; see policy\"\n" +
				"relative.example CNAME garden\n" +
				"32.4.3.2.1.rpz-ip A 127.0.0.1\n",
			opts: rpzOpts,
			rules: []string{
				"qname redirect.example. local-data [redirect.example. 300 CNAME walled.garden.example.]",
				"qname wredirect.example. wild local-data [*.wredirect.example. 300 CNAME *.walled.example.]",
				"qname local.example. local-data [local.example. 300 A 192.0.2.1] [local.example. 60 AAAA 2001:db8::1] [local.example. 300 TXT \"blocked; see policy\"]",
				"qname relative.example. local-data [relative.example. 300 CNAME garden.rpz.example.]",
				"response-ip 1.2.3.4/32 local-data [32.4.3.2.1.rpz-ip. 300 A 127.0.0.1]",
			},
		},
		{
			name: "address triggers",
			input: rpzHeader +
				"32.4.3.2.1.rpz-ip CNAME .\n24.0.2.0.192.rpz-ip CNAME .\n128.1.zz.db8.2001.rpz-ip CNAME .\n" +
				"48.zz.db8.2001.rpz-client-ip CNAME rpz-drop.\n32.1.0.0.10.rpz-nsip CNAME .\n" +
				"128.1.0.0.0.0.0.db8.2001.rpz-ip CNAME .\n64.zz.1.0.db8.2001.rpz-ip CNAME .\n1.0.0.0.128.rpz-ip CNAME .\n" +
				"8.0.0.0.10.rpz-client-ip CNAME 8.0.0.0.10.rpz-client-ip.\n",
			opts: rpzOpts,
			rules: []string{
				"response-ip 1.2.3.4/32 nxdomain",
				"response-ip 192.0.2.0/24 nxdomain",
				"response-ip 2001:db8::1/128 nxdomain",
				"client-ip 2001:db8::/48 drop",
				"nsip 10.0.0.1/32 nxdomain",
				"response-ip 2001:db8::1/128 nxdomain",
				"response-ip 2001:db8:0:1::/64 nxdomain",
				"response-ip 128.0.0.0/1 nxdomain",
				"client-ip 10.0.0.0/8 passthru",
			},
		},
		{
			name: "nsdname triggers",
			input: rpzHeader +
				"ns.evil.example.rpz-nsdname CNAME .\n*.evil.example.rpz-nsdname CNAME rpz-passthru.\n",
			opts: rpzOpts,
			rules: []string{
				"nsdname ns.evil.example. nxdomain",
				"nsdname evil.example. wild passthru",
			},
		},
		{
			name:  "comments multi-line and origin",
			input: rpzHeader + "; comment\n\n   ; indented comment\nmulti.example TXT ( \"one\" ; inside\n   \"two\" )\n$ORIGIN sub.rpz.example.\nx CNAME .\n$ORIGIN deeper\ny CNAME .\n",
			opts:  rpzOpts,
			rules: []string{
				`qname multi.example. local-data [multi.example. 300 TXT "one" "two"]`,
				"qname x.sub. nxdomain",
				"qname y.deeper.sub. nxdomain",
			},
			comments: 3,
		},
		{
			name:        "not rules",
			input:       rpzHeader + "@ TXT \"zone info\"\n@ NS ns2.rpz.example.\nskip.example CNAME rpz-skipzone.\nsigned.example NSEC next.example. A NSEC\n",
			opts:        rpzOpts,
			unsupported: 3,
		},
		{
			name: "duplicates",
			input: rpzHeader + "dup.example CNAME .\nDUP.Example CNAME .\ndup.example.rpz.example. CNAME .\n" +
				"data.example A 192.0.2.1\ndata.example A 192.0.2.1\n",
			opts:       rpzOpts,
			rules:      []string{"qname dup.example. nxdomain", "qname data.example. local-data [data.example. 300 A 192.0.2.1]"},
			duplicates: 3,
		},
		{
			name:  "CRLF BOM IDN",
			input: "\ufeff" + strings.ReplaceAll(rpzHeader, "\n", "\r\n") + "bücher.example CNAME .\r\n",
			opts:  rpzOpts,
			rules: []string{"qname xn--bcher-kva.example. nxdomain"},
		},
		{
			name: "malformed",
			input: rpzHeader +
				"33.4.3.2.1.rpz-ip CNAME .\n" + // 4
				"0.4.3.2.1.rpz-ip CNAME .\n" +
				"24.5.3.2.1.rpz-ip CNAME .\n" +
				"32.256.3.2.1.rpz-ip CNAME .\n" +
				"129.1.zz.db8.2001.rpz-ip CNAME .\n" +
				"128.1.zz.zz.2001.rpz-ip CNAME .\n" + // 9
				"128.1.2.3.rpz-ip CNAME .\n" +
				"128.1.g.zz.2001.rpz-ip CNAME .\n" +
				"32.rpz-ip CNAME .\n" +
				"rpz-nsdname CNAME .\n" +
				"$INCLUDE other.zone\n" + // 14
				"$GENERATE 1-10 host$ A 192.0.2.$\n" +
				"$BOGUS x\n" +
				"$TTL soon\n" +
				"foo.example CNAME\n" +
				"foo.example BOGUS x\n" + // 19
				"outside.example. CNAME .\n" +
				"conflict.example CNAME .\nconflict.example CNAME rpz-passthru.\n" +
				"mixed.example A 192.0.2.1\nmixed.example CNAME .\n" + // 24
				"cn.example CNAME a.example.\ncn.example A 192.0.2.2\n" +
				"ch.example CH TXT \"x\"\n" +
				"close.example A 192.0.2.3 )\n" +
				"bad!.example CNAME .\n" + // 29
				"@ SOA ns.rpz.example. admin.rpz.example. 2 3600 600 86400 60\n" +
				"01.0.0.0.10.rpz-ip CNAME .\n" +
				"$ORIGIN\n$TTL\n$ORIGIN a..b\n",

			opts: rpzOpts,
			rules: []string{
				"qname conflict.example. nxdomain",
				"qname mixed.example. local-data [mixed.example. 300 A 192.0.2.1]",
				"qname cn.example. local-data [cn.example. 300 CNAME a.example.]",
			},
			bad: []string{
				"4: prefix length 33 outside 1-32 for an IPv4 address in rpz-ip owner",
				`5: invalid prefix length "0" in rpz-ip owner`,
				"6: " + reasonPrefixHostBit + " in rpz-ip owner",
				`7: invalid IPv4 address label "256" in rpz-ip owner`,
				`8: invalid prefix length "129" in rpz-ip owner`,
				`9: more than one "zz" in an IPv6 address in rpz-ip owner`,
				`10: IPv6 address has 3 groups and no "zz": expected 8 in rpz-ip owner`,
				`11: invalid IPv6 address label "g" in rpz-ip owner`,
				"12: missing address labels in rpz-ip owner",
				"13: missing server name before rpz-nsdname",
				"14: $INCLUDE is not allowed: a policy zone must be a single file",
				"15: $GENERATE is not supported",
				`16: unknown directive "$BOGUS"`,
				`17: invalid $TTL value "soon"`,
				`18: not a TTL: "CNAME"`,
				`19: not a TTL: "BOGUS"`,
				"20: owner outside.example. is outside the zone rpz.example.",
				"22: conflicting policy for conflict.example.rpz.example.: line 21 sets nxdomain",
				"24: conflicting policy for mixed.example.rpz.example.: line 23 sets local-data",
				"26: CNAME and other records at cn.example.rpz.example., which line 25 starts",
				"27: class CH: policy zones hold class IN records only",
				"28: unbalanced ')'",
				"29: invalid character '!' in name",
				"30: second SOA record: the first is on line 2",
				`31: invalid prefix length "01" in rpz-ip owner`,
				"32: $ORIGIN takes one domain name",
				"33: $TTL takes one TTL value",
				"34: invalid $ORIGIN name",
			},
		},
	})
}

func TestParseRPZZoneName(t *testing.T) {
	cases := []struct {
		name  string
		input string
		opts  Options
		rules []string
		bad   []string
	}{
		{
			name:  "no origin: relative to the root",
			input: "$TTL 30\n@ IN SOA localhost. root.localhost. 1 86400 3600 604800 30\n NS localhost.\n\nbad.example CNAME .\n",
			rules: []string{"qname bad.example. nxdomain"},
		},
		{
			name:  "SOA owner names the zone",
			input: "rpz.example. 60 IN SOA ns. admin. 1 2 3 4 5\nbad.example.rpz.example. CNAME .\nrel.example CNAME .\n",
			rules: []string{"qname bad.example. nxdomain", "qname rel.example. nxdomain"},
		},
		{
			name:  "$ORIGIN before the first record overrides the option",
			input: "$ORIGIN other.example.\n@ 60 SOA ns. admin. 1 2 3 4 5\nbad.example CNAME .\n",
			opts:  Options{Origin: "rpz.example."},
			rules: []string{"qname bad.example. nxdomain"},
		},
		{
			name:  "option without SOA",
			input: "bad.example CNAME .\n",
			opts:  Options{Origin: "RPZ.Example"},
			rules: []string{"qname bad.example. nxdomain"},
		},
		{
			name:  "SOA owner differs from the option",
			input: "wrong.example. 60 SOA ns. admin. 1 2 3 4 5\nbad.example CNAME .\n",
			opts:  Options{Origin: "rpz.example."},
			rules: []string{"qname bad.example. nxdomain"},
			bad:   []string{"1: SOA record owner wrong.example. is not the zone name rpz.example."},
		},
		{
			name:  "wildcard below the apex",
			input: "$ORIGIN rpz.example.\n@ 60 SOA ns. admin. 1 2 3 4 5\n* CNAME .\n",
			rules: []string{"qname . wild nxdomain"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Parse(strings.NewReader(tc.input), RPZ, tc.opts)
			if err != nil {
				t.Fatalf("Parse error: %v", err)
			}
			if got := ruleStrings(res.Rules); !slices.Equal(got, tc.rules) {
				t.Errorf("rules = %q, want %q", got, tc.rules)
			}
			if got := badReasons(res); !slices.Equal(got, tc.bad) {
				t.Errorf("bad = %q, want %q", got, tc.bad)
			}
		})
	}
}

func TestParseRPZErrors(t *testing.T) {
	cases := []struct {
		name, input string
		opts        Options
		want        string
	}{
		{"empty", "", Options{}, "RPZ zone has no SOA record"},
		{"comments only", "; nothing\n", Options{}, "RPZ zone has no SOA record"},
		{"record before SOA", "bad.example. 60 CNAME .\n@ 60 SOA ns. admin. 1 2 3 4 5\n", Options{}, "line 1: RPZ zone has a record before its SOA record"},
		{"invalid origin option", "", Options{Origin: "a..b"}, `invalid RPZ origin "a..b"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.input), RPZ, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParseRPZTTL(t *testing.T) {
	input := "@ SOA ns. admin. 1 2 3 4 120\n" + // no TTL anywhere: the SOA minimum
		"a.example A 192.0.2.1\n" +
		"b.example 45 A 192.0.2.2\n" +
		"c.example A 192.0.2.3\n" + // the previous TTL
		"$TTL 1h30m\n" +
		"d.example A 192.0.2.4\n" +
		"e.example 10 A 192.0.2.5\n" +
		"f.example A 192.0.2.6\n" // $TTL again
	res, err := Parse(strings.NewReader(input), RPZ, Options{Origin: "rpz.example."})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint32{"a.example.": 120, "b.example.": 45, "c.example.": 45, "d.example.": 5400, "e.example.": 10, "f.example.": 5400}
	if len(res.Rules) != len(want) {
		t.Fatalf("%d rules, want %d: bad %q", len(res.Rules), len(want), badReasons(res))
	}
	for _, r := range res.Rules {
		if got := r.Data[0].Header().Ttl; got != want[r.Name] {
			t.Errorf("%s TTL = %d, want %d", r.Name, got, want[r.Name])
		}
	}
}

func TestParseTTL(t *testing.T) {
	valid := map[string]uint32{"0": 0, "300": 300, "1h": 3600, "1H30M": 5400, "2d": 172800, "1w1s": 604801, "4294967295": 4294967295}
	for s, want := range valid {
		got, ok := parseTTL(s)
		if !ok || got != want {
			t.Errorf("parseTTL(%q) = %d, %v, want %d", s, got, ok, want)
		}
	}
	for _, s := range []string{"", "h", "1x", "4294967296", "99999999999", "1h-1", "7200w"} {
		if got, ok := parseTTL(s); ok {
			t.Errorf("parseTTL(%q) = %d, want invalid", s, got)
		}
	}
}

func TestParseRPZUnterminatedParenthesis(t *testing.T) {
	input := rpzHeader + "open.example TXT ( \"never closed\"\nafter.example CNAME .\nlast.example CNAME .\n"
	res, err := Parse(strings.NewReader(input), RPZ, rpzOpts)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ruleStrings(res.Rules), []string{"qname after.example. nxdomain", "qname last.example. nxdomain"}; !slices.Equal(got, want) {
		t.Errorf("rules = %q, want %q", got, want)
	}
	if got, want := badReasons(res), []string{"4: missing ')' before the end of the zone"}; !slices.Equal(got, want) {
		t.Errorf("bad = %q, want %q", got, want)
	}

	// A record left open for maxRecordLines lines is abandoned, and the
	// lines after its first are read again.
	var sb strings.Builder
	sb.WriteString(rpzHeader + "open.example TXT ( \"x\"\n")
	for i := range maxRecordLines + 10 {
		sb.WriteString("n" + strings.Repeat("x", i%5) + ".example CNAME .\n")
	}
	res, err = Parse(strings.NewReader(sb.String()), RPZ, rpzOpts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rules) != 5 || res.Duplicates != maxRecordLines+5 {
		t.Errorf("%d rules and %d duplicates, want 5 and %d", len(res.Rules), res.Duplicates, maxRecordLines+5)
	}
	if res.BadCount != 1 || res.Bad[0].Line != 4 {
		t.Errorf("bad = %q, want only line 4", badReasons(res))
	}
	if res.Lines != 4+maxRecordLines+10 {
		t.Errorf("Lines = %d, want %d", res.Lines, 4+maxRecordLines+10)
	}
}

func TestParseRPZAddress(t *testing.T) {
	valid := map[string]string{
		"32.4.3.2.1":                   "1.2.3.4/32",
		"8.0.0.0.10":                   "10.0.0.0/8",
		"128.1.zz.db8.2001":            "2001:db8::1/128",
		"128.zz.1":                     "1::/128",
		"128.1.zz":                     "::1/128",
		"32.zz.db8.2001":               "2001:db8::/32",
		"128.8.7.6.5.4.3.2.1":          "1:2:3:4:5:6:7:8/128",
		"128.8.7.6.5.4.3.zz.1":         "1:0:3:4:5:6:7:8/128",
		"128.ffff.0.0.0.0.0.0.fe80":    "fe80::ffff/128",
		"64.zz.ABCD.db8.2001":          "2001:db8:abcd::/64",
		"96.zz.1.0.0.0.0.0.0":          "",
		"128.1.2.3.4.5.6.7.zz.8":       "",
		"32.4.3.2":                     "",
		"32.4.3.2.1.0":                 "",
		"x.4.3.2.1":                    "",
		"128.12345.zz.2001":            "",
		"128.1.zz.db8.2001.extra.zz.1": "",
	}
	for labels, want := range valid {
		p, reason := parseRPZAddress(strings.Split(labels, "."))
		got := ""
		if reason == "" {
			got = p.String()
		}
		if got != want {
			t.Errorf("parseRPZAddress(%s) = %q (reason %q), want %q", labels, got, reason, want)
		}
	}
}

func TestRPZLocalDataOwner(t *testing.T) {
	res, err := Parse(strings.NewReader(rpzHeader+"*.wild.example A 192.0.2.1\n48.zz.db8.2001.rpz-nsip AAAA ::1\n* TXT \"all\"\n"), RPZ, rpzOpts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rules) != 3 {
		t.Fatalf("%d rules, want 3: bad %q", len(res.Rules), badReasons(res))
	}
	if got := res.Rules[2].Data[0].Header().Name; got != "*." {
		t.Errorf("root wildcard data owner = %q, want *.", got)
	}
	if got := res.Rules[0].Data[0].Header().Name; got != "*.wild.example." {
		t.Errorf("wildcard data owner = %q, want *.wild.example.", got)
	}
	if got := res.Rules[1].Data[0].Header().Name; got != "48.zz.db8.2001.rpz-nsip." {
		t.Errorf("nsip data owner = %q, want 48.zz.db8.2001.rpz-nsip.", got)
	}
	if got := res.Rules[1].Prefix; got != netip.MustParsePrefix("2001:db8::/48") {
		t.Errorf("nsip prefix = %v", got)
	}
	if _, ok := res.Rules[1].Data[0].(*dns.AAAA); !ok {
		t.Errorf("nsip data is %T, want *dns.AAAA", res.Rules[1].Data[0])
	}
}

// compareActionCNAME fails t unless parsing data gives the same result with
// and without the parseActionCNAME shortcut.
func compareActionCNAME(t *testing.T, data []byte, opts Options) {
	t.Helper()
	fast, fastErr := Parse(bytes.NewReader(data), RPZ, opts)
	disableActionCNAME = true
	defer func() { disableActionCNAME = false }()
	slow, slowErr := Parse(bytes.NewReader(data), RPZ, opts)
	if (fastErr == nil) != (slowErr == nil) {
		t.Fatalf("error with the shortcut %v, without %v", fastErr, slowErr)
	}
	if got, want := ruleStrings(fast.Rules), ruleStrings(slow.Rules); !slices.Equal(got, want) {
		t.Errorf("rules with the shortcut:\n%q\nwithout:\n%q", got, want)
	}
	if got, want := badReasons(fast), badReasons(slow); !slices.Equal(got, want) {
		t.Errorf("bad lines with the shortcut:\n%q\nwithout:\n%q", got, want)
	}
	counts := func(r *Result) [5]int {
		return [5]int{r.Lines, r.Comments, r.Duplicates, r.Unsupported, r.BadCount}
	}
	if got, want := counts(fast), counts(slow); got != want {
		t.Errorf("lines, comments, duplicates, unsupported and bad with the shortcut %v, without %v", got, want)
	}
}

func TestActionCNAMEMatchesZoneParser(t *testing.T) {
	inputs := []string{
		rpzHeader + "a.example CNAME .\nb.example IN cname *.\nc.example. CNAME rpz-drop.\n*.d CNAME RPZ-PASSTHRU.\n" +
			"e CNAME rpz-tcp-only.\n  CNAME .\nf.example 60 CNAME .\ng CNAME rpz-passthru\n32.1.0.0.10.rpz-ip CNAME .\n" +
			"a..b CNAME .\n" + strings.Repeat("x", 70) + " CNAME .\nh CH CNAME .\ni CNAME . extra\n",
		"$TTL 30\n@ IN SOA localhost. root.localhost. 1 2 3 4 5\nrel.example CNAME .\n",
		"@ SOA ns.rpz.example. admin.rpz.example. 1 3600 600 86400 60\nj 0300 IN CNAME .\nlocal A 192.0.2.1\n" +
			"k IN 77 cname rpz-drop.\nlocal2 TXT x\n*.UPPER.Example CNAME .\nabs.rpz.example. CNAME .\n" +
			"ABS2.RPZ.EXAMPLE. CNAME *.\nbad.other. CNAME .\n*x.y CNAME .\nm 1234567890 CNAME .\nn CNAME .\n  A 192.0.2.9\n" +
			"o CNAME .\n\tCNAME .\np.rpz-nsdname CNAME .\n123 CNAME .\nq 1 1 CNAME .\nr IN IN CNAME .\n* CNAME .\n",
	}
	for _, file := range []string{"urlhaus-filter-rpz.conf", "hagezi-tif-mini-rpz-slice.txt"} {
		data, err := os.ReadFile(filepath.Join(feedDir, file))
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, string(data))
	}
	for i, input := range inputs {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			compareActionCNAME(t, []byte(input), Options{})
			compareActionCNAME(t, []byte(input), rpzOpts)
		})
	}
}
