package feed

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// ruleString formats a rule compactly for comparisons:
// "trigger name-or-prefix [sub] [wild] action [records] [category]".
func ruleString(r Rule) string {
	var sb strings.Builder
	sb.WriteString(r.Trigger.String())
	sb.WriteByte(' ')
	if r.Name != "" {
		sb.WriteString(r.Name)
	} else {
		sb.WriteString(r.Prefix.String())
	}
	if r.Subdomains {
		sb.WriteString(" sub")
	}
	if r.Wildcard {
		sb.WriteString(" wild")
	}
	if r.Important {
		sb.WriteString(" important")
	}
	sb.WriteByte(' ')
	sb.WriteString(r.Action.String())
	for _, rr := range r.Data {
		fields := strings.Fields(rr.String())
		// Owner, TTL, class and type, then the data.
		fmt.Fprintf(&sb, " [%s %s %s %s]", fields[0], fields[1], fields[3], strings.Join(fields[4:], " "))
	}
	if r.Category != "" {
		sb.WriteString(" (" + r.Category + ")")
	}
	return sb.String()
}

func ruleStrings(rules []Rule) []string {
	out := make([]string, len(rules))
	for i, r := range rules {
		out[i] = ruleString(r)
	}
	return out
}

func badReasons(res *Result) []string {
	out := make([]string, len(res.Bad))
	for i, b := range res.Bad {
		out[i] = fmt.Sprintf("%d: %s", b.Line, b.Reason)
	}
	return out
}

// parseCase is one table test: input and the expected outcome.
type parseCase struct {
	name        string
	input       string
	opts        Options
	rules       []string
	comments    int
	duplicates  int
	unsupported int
	// bad lists "line: reason" for every malformed line.
	bad []string
}

func runParseCases(t *testing.T, format Format, cases []parseCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Parse(strings.NewReader(tc.input), format, tc.opts)
			if err != nil {
				t.Fatalf("Parse error: %v", err)
			}
			if got := ruleStrings(res.Rules); !slices.Equal(got, tc.rules) {
				t.Errorf("rules:\n got %q\nwant %q", got, tc.rules)
			}
			if res.Comments != tc.comments {
				t.Errorf("Comments = %d, want %d", res.Comments, tc.comments)
			}
			if res.Duplicates != tc.duplicates {
				t.Errorf("Duplicates = %d, want %d", res.Duplicates, tc.duplicates)
			}
			if res.Unsupported != tc.unsupported {
				t.Errorf("Unsupported = %d, want %d", res.Unsupported, tc.unsupported)
			}
			if got := badReasons(res); !slices.Equal(got, tc.bad) {
				t.Errorf("bad lines:\n got %q\nwant %q", got, tc.bad)
			}
			if res.BadCount != len(tc.bad) {
				t.Errorf("BadCount = %d, want %d", res.BadCount, len(tc.bad))
			}
			if want := strings.Count(tc.input, "\n") + btoi(tc.input != "" && !strings.HasSuffix(tc.input, "\n")); res.Lines != want {
				t.Errorf("Lines = %d, want %d", res.Lines, want)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestParseFormat(t *testing.T) {
	for _, f := range []Format{Hosts, Domains, AdGuard, RPZ, CSV} {
		got, err := ParseFormat(strings.ToUpper(f.String()))
		if err != nil {
			t.Errorf("ParseFormat(%q) error: %v", strings.ToUpper(f.String()), err)
		}
		if got != f {
			t.Errorf("ParseFormat(%q) = %v, want %v", strings.ToUpper(f.String()), got, f)
		}
	}
	if _, err := ParseFormat("bind"); err == nil || !strings.Contains(err.Error(), `"bind"`) {
		t.Errorf("ParseFormat(bind) error = %v, want one naming the value", err)
	}
	if got := Format(0).String(); got != "Format(0)" {
		t.Errorf("Format(0).String() = %q", got)
	}
	if _, err := Parse(strings.NewReader("x"), Format(99), Options{}); err == nil {
		t.Error("Parse with an unknown format returned no error")
	}
}

func TestParseHosts(t *testing.T) {
	runParseCases(t, Hosts, []parseCase{
		{
			name:  "basic",
			input: "# comment\n\n0.0.0.0 ads.example\n127.0.0.1 a.example b.example # two names\n",
			rules: []string{
				"qname ads.example. sub block",
				"qname a.example. sub block",
				"qname b.example. sub block",
			},
			comments: 2,
		},
		{
			name:  "any address",
			input: "::\tv6.example\n::1 v6loop.example\n192.0.2.1 lan.example\nfe80::1%lo0 zone.example\n",
			rules: []string{
				"qname v6.example. sub block",
				"qname v6loop.example. sub block",
				"qname lan.example. sub block",
				"qname zone.example. sub block",
			},
		},
		{
			name: "local names skipped",
			input: "127.0.0.1 localhost localhost.localdomain\n::1 ip6-localhost ip6-loopback\n" +
				"255.255.255.255 broadcasthost\n0.0.0.0 0.0.0.0\n127.0.0.1 local\n0.0.0.0 LOCALHOST real.example\n",
			rules:    []string{"qname real.example. sub block"},
			comments: 5,
		},
		{
			name:  "spaces case trailing dot",
			input: "  0.0.0.0 \t UPPER.Example.COM.   \n",
			rules: []string{"qname upper.example.com. sub block"},
		},
		{
			name:  "CRLF and BOM",
			input: "\ufeff0.0.0.0 bom.example\r\n0.0.0.0 crlf.example\r\n",
			rules: []string{"qname bom.example. sub block", "qname crlf.example. sub block"},
		},
		{
			name:  "IDN",
			input: "0.0.0.0 bücher.example\n0.0.0.0 ÄÖÜ.example\n",
			rules: []string{"qname xn--bcher-kva.example. sub block", "qname xn--4ca0bs.example. sub block"},
		},
		{
			name:       "duplicates",
			input:      "0.0.0.0 dup.example\n127.0.0.1 DUP.example.\n0.0.0.0 dup.example dup.example\n",
			rules:      []string{"qname dup.example. sub block"},
			duplicates: 3,
		},
		{
			name:  "public suffix and underscore",
			input: "0.0.0.0 com\n0.0.0.0 _tcp.example\n",
			rules: []string{"qname com. sub block", "qname _tcp.example. sub block"},
		},
		{
			name: "malformed",
			input: "ads.example\n0.0.0.0\n0.0.0.0 a..example\n0.0.0.0 1.2.3.4\n" +
				"0.0.0.0 " + strings.Repeat("a", 64) + ".example\n" +
				"0.0.0.0 " + strings.Repeat("abcdefghi.", 26) + "example\n" +
				"0.0.0.0 ex!ample.com\n0.0.0.0 -bücher.example\n0.0.0.0 \xff.example\n" +
				"0.0.0.0 good.example bad#name\n0.0.0.0 .\n0.0.0.0 .example\n1.2.3.4.5 x.example\n",
			rules: []string{"qname good.example. sub block"},
			bad: []string{
				`1: invalid address "ads.example" at the start of a hosts line`,
				"2: missing host name after the address",
				`3: empty label in name: "a..example"`,
				`4: IP address "1.2.3.4" in place of a host name`,
				`5: label longer than 63 bytes: "` + strings.Repeat("a", 64) + `"`,
				`6: name longer than 253 bytes: "` + strings.Repeat("abcdefghi.", 7)[:64] + `"`,
				`7: invalid character '!' in name: "ex!ample.com"`,
				`8: invalid internationalized name: idna: invalid label "-bücher": "-bücher.example"`,
				`9: invalid UTF-8 in name: "\xff.example"`,
				`10: invalid character '#' in name: "bad#name"`,
				`11: empty name: "."`,
				`12: empty label in name: ".example"`,
				`13: invalid address "1.2.3.4.5" at the start of a hosts line`,
			},
		},
	})
}

func TestParseHostsLineTooLong(t *testing.T) {
	input := "0.0.0.0 short.example\n0.0.0.0 " + strings.Repeat("x", 100) + ".example\n0.0.0.0 after.example"
	res, err := Parse(strings.NewReader(input), Hosts, Options{MaxLineBytes: 50})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ruleStrings(res.Rules), []string{"qname short.example. sub block", "qname after.example. sub block"}; !slices.Equal(got, want) {
		t.Errorf("rules = %q, want %q", got, want)
	}
	if got, want := badReasons(res), []string{"2: " + reasonLineTooLong}; !slices.Equal(got, want) {
		t.Errorf("bad = %q, want %q", got, want)
	}
	if res.Lines != 3 {
		t.Errorf("Lines = %d, want 3", res.Lines)
	}
}

func TestLineLongerThanReadBuffer(t *testing.T) {
	long := "0.0.0.0 " + strings.Repeat("y", readBufferBytes*2) + "\n"
	input := "0.0.0.0 before.example\n" + long + "0.0.0.0 after.example\n"
	res, err := Parse(strings.NewReader(input), Hosts, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(res.Rules); got != 2 {
		t.Errorf("%d rules, want 2", got)
	}
	if len(res.Bad) != 1 || res.Bad[0].Line != 2 || res.Bad[0].Reason != reasonLineTooLong {
		t.Fatalf("bad = %+v, want line 2 too long", res.Bad)
	}
	if got := len(res.Bad[0].Text); got != maxBadTextBytes {
		t.Errorf("bad text has %d bytes, want %d", got, maxBadTextBytes)
	}

	// A long line within a raised limit is read whole.
	name := strings.Repeat("z", 60) + "."
	long = "0.0.0.0" + strings.Repeat(" "+name+"example", readBufferBytes/60) + "\n"
	res, err = Parse(strings.NewReader(long), Hosts, Options{MaxLineBytes: readBufferBytes * 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.BadCount != 0 || len(res.Rules) != 1 || res.Duplicates != readBufferBytes/60-1 {
		t.Errorf("long line: %d rules, %d duplicates, bad %q", len(res.Rules), res.Duplicates, badReasons(res))
	}
}

func TestBadLinesCapped(t *testing.T) {
	input := strings.Repeat("bad!name\n", 150)
	res, err := Parse(strings.NewReader(input), Domains, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.BadCount != 150 {
		t.Errorf("BadCount = %d, want 150", res.BadCount)
	}
	if len(res.Bad) != maxBadLines {
		t.Errorf("len(Bad) = %d, want %d", len(res.Bad), maxBadLines)
	}
}

func TestCutText(t *testing.T) {
	ascii := strings.Repeat("a", 300)
	if got := cutText([]byte(ascii)); len(got) != 200 {
		t.Errorf("ASCII text cut to %d bytes, want 200", len(got))
	}
	// "é" is two bytes: byte 200 would split the 100th one.
	text := "a" + strings.Repeat("é", 150)
	got := cutText([]byte(text))
	if len(got) != 199 {
		t.Errorf("text cut to %d bytes, want 199 at a rune boundary", len(got))
	}
	if !strings.HasPrefix(text, got) || !strings.HasSuffix(got, "é") {
		t.Errorf("cut text does not end on a whole rune: %q", got[len(got)-4:])
	}
}

func TestParseDomains(t *testing.T) {
	runParseCases(t, Domains, []parseCase{
		{
			name:  "names",
			input: "# title\nads.example\nTRACK.Example.COM.\n  spaced.example  \nwith.comment.example # note\n_dmarc.example\ncom\n",
			rules: []string{
				"qname ads.example. sub block",
				"qname track.example.com. sub block",
				"qname spaced.example. sub block",
				"qname with.comment.example. sub block",
				"qname _dmarc.example. sub block",
				"qname com. sub block",
			},
			comments: 1,
		},
		{
			name:  "addresses",
			input: "192.0.2.1\n2001:db8::1\n198.51.100.0/24\n2001:db8:1::/48\n::ffff:192.0.2.9\n",
			rules: []string{
				"response-ip 192.0.2.1/32 block",
				"response-ip 2001:db8::1/128 block",
				"response-ip 198.51.100.0/24 block",
				"response-ip 2001:db8:1::/48 block",
				"response-ip ::ffff:192.0.2.9/128 block",
			},
		},
		{
			name:  "wildcard",
			input: "*.wild.example\nwild.example\n",
			rules: []string{"qname wild.example. wild block", "qname wild.example. sub block"},
		},
		{
			name:  "IDN CRLF BOM",
			input: "\ufeffbücher.example\r\nMÜNCHEN.example\r\n",
			rules: []string{"qname xn--bcher-kva.example. sub block", "qname xn--mnchen-3ya.example. sub block"},
		},
		{
			name:       "duplicates",
			input:      "a.example\nA.EXAMPLE.\n192.0.2.1\n192.0.2.1/32\n",
			rules:      []string{"qname a.example. sub block", "response-ip 192.0.2.1/32 block"},
			duplicates: 2,
		},
		{
			name: "malformed",
			input: "a.example b.example\n1.2.3\n1.2.3.256\n192.0.2.1/24\n0.0.0.0/0\n10.0.0.0/33\nfe80::1%eth0\n" +
				"2001:db8::zz\nexample.com#x\n*.\n*\nhttp://url.example/path\n",
			bad: []string{
				"1: more than one field: expected one name or address per line",
				"2: " + reasonBadAddress,
				"3: " + reasonBadAddress,
				"4: " + reasonPrefixHostBit,
				"5: " + reasonZeroPrefix,
				"6: " + reasonBadPrefix,
				"7: " + reasonAddressZone,
				"8: " + reasonBadAddress,
				"9: invalid character '#' in name",
				"10: invalid character '*' in name",
				"11: invalid character '*' in name",
				"12: URL instead of a name or address",
			},
		},
	})
}

func TestParseAdGuard(t *testing.T) {
	runParseCases(t, AdGuard, []parseCase{
		{
			name:     "comments and headers",
			input:    "[Adblock Plus 2.0]\n! Title: test\n# hosts-style comment\n\n",
			comments: 4,
		},
		{
			name: "domain rules",
			input: "||ads.example^\n||imp.example^$important\n@@||good.example^\n|exact.example^\nbare.example\n" +
				"||anchored.example^|\n||nocaret.example\n@@|exact-allow.example^\n||UPPER.Example^\n",
			rules: []string{
				"qname ads.example. sub block",
				"qname imp.example. sub important block",
				"qname good.example. sub passthru",
				"qname exact.example. block",
				"qname bare.example. sub block",
				"qname anchored.example. sub block",
				"qname nocaret.example. sub block",
				"qname exact-allow.example. passthru",
				"qname upper.example. sub block",
			},
		},
		{
			name:  "address rules",
			input: "||192.0.2.1^\n@@||192.0.2.2^\n||[2001:db8::1]^\n2001:db8::2\n198.51.100.7\n",
			rules: []string{
				"response-ip 192.0.2.1/32 block",
				"response-ip 192.0.2.2/32 passthru",
				"response-ip 2001:db8::1/128 block",
				"response-ip 2001:db8::2/128 block",
				"response-ip 198.51.100.7/32 block",
			},
		},
		{
			name:     "hosts lines",
			input:    "0.0.0.0 hosts.example other.example\n127.0.0.1 localhost\n",
			rules:    []string{"qname hosts.example. sub block", "qname other.example. sub block"},
			comments: 1,
		},
		{
			name: "unsupported",
			input: "||ads.example^$client=192.0.2.1\n||ads.example^$dnstype=AAAA\n||ads.example^$badfilter\n" +
				"||ads.example^$denyallow=x.example\n||ads.example^$dnsrewrite=192.0.2.1\n||ads.example^$ctag=child\n" +
				"||ads.example^$important,client=x\n||host.example/path^$all\n||ads.example^$all\n||ad*.example^\n" +
				"/ads[0-9]+\\.example/\n@@/regex/\nexample.com##.banner\n##.ad\nexample.com#@#.ad\nexample.com#$#body{}\n" +
				"example.com$$script\n||port.example:8080^\n||host.example^*\n||[2001:db8::1]:53^\n||x.example?q=1^\n/ads/\n",
			unsupported: 22,
		},
		{
			name:       "duplicates",
			input:      "||a.example^\n||A.example^$important\na.example\n@@||a.example^\n|a.example^\n",
			rules:      []string{"qname a.example. sub block", "qname a.example. sub important block", "qname a.example. sub passthru", "qname a.example. block"},
			duplicates: 1,
		},
		{
			name:  "CRLF BOM IDN",
			input: "\ufeff||bücher.example^\r\n||crlf.example^\r\n",
			rules: []string{"qname xn--bcher-kva.example. sub block", "qname crlf.example. sub block"},
		},
		{
			name:  "malformed",
			input: "||ads.example^$\n||^\n@@\n||bad!name.example^\n||1.2.3^\n||a..example^\nexample.com#x\n||2001:db8::zz^\n||a.example^$important,\n",
			bad: []string{
				"1: empty modifier after '$'",
				"2: empty pattern",
				"3: empty pattern",
				"4: invalid character '!' in name",
				"5: " + reasonBadAddress,
				"6: " + reasonEmptyLabel,
				"7: invalid character '#' in name",
				"8: " + reasonBadAddress,
				"9: empty modifier after '$'",
			},
		},
	})
}

func TestParseCSV(t *testing.T) {
	runParseCases(t, CSV, []parseCase{
		{
			name:  "header and category",
			input: "input,class,label\nevil.example,QakBot,malicious\n\"quoted.example\",\"Cobalt Strike\",malicious\n192.0.2.1,IcedID,x\n# comment\n\n",
			opts:  Options{CSVCategoryColumn: 1},
			rules: []string{
				"qname evil.example. sub block (QakBot)",
				"qname quoted.example. sub block (Cobalt Strike)",
				"response-ip 192.0.2.1/32 block (IcedID)",
			},
			comments: 3,
		},
		{
			name:     "no category by default",
			input:    "domain\nevil.example,QakBot\n",
			rules:    []string{"qname evil.example. sub block"},
			comments: 1,
		},
		{
			name:  "no header",
			input: "first.example,A\nsecond.example,B\n",
			opts:  Options{CSVCategoryColumn: 1},
			rules: []string{"qname first.example. sub block (A)", "qname second.example. sub block (B)"},
		},
		{
			name:     "other column",
			input:    "id,domain\n1,col.example\n2\n",
			opts:     Options{CSVColumn: 1, CSVCategoryColumn: -1},
			rules:    []string{"qname col.example. sub block"},
			bad:      []string{"3: missing column 2: the row has 1"},
			comments: 1,
		},
		{
			name:       "duplicates keep the first category",
			input:      "dup.example,First\nDUP.example,Second\n",
			opts:       Options{CSVCategoryColumn: 1},
			rules:      []string{"qname dup.example. sub block (First)"},
			duplicates: 1,
		},
		{
			name:  "malformed",
			input: "input,class\nwinvohost@ddns.example,Remcos\n56565,Remcos\n\"open.example,X\n\"a.example\"x,Y\n",
			opts:  Options{CSVCategoryColumn: 1},
			bad: []string{
				"2: invalid character '@' in name",
				"3: " + reasonBadAddress,
				"4: unterminated quoted field",
				"5: unexpected text after a quoted field",
			},
			comments: 1,
		},
	})
}

func TestDetect(t *testing.T) {
	cases := []struct {
		input string
		want  Format
	}{
		{"$TTL 300\n@ SOA a. b. 1 2 3 4 5\n", RPZ},
		{"; comment\nrpz.example. 300 IN SOA a. b. 1 2 3 4 5\n", RPZ},
		{"bad.example CNAME .\n", RPZ},
		{"! Title\n||a.example^\n", AdGuard},
		{"[Adblock Plus 2.0]\na.example\n", AdGuard},
		{"@@||a.example^\n", AdGuard},
		{"# hosts\n0.0.0.0 a.example\n0.0.0.0 b.example\n", Hosts},
		{"input,class,label\na.example,X,malicious\n", CSV},
		{"a.example\n192.0.2.1\n", Domains},
		{"0.0.0.0 soa\n0.0.0.0 cname\n", Hosts},
		{"\ufeffa.example\n", Domains},
		{"", Domains},
	}
	for _, tc := range cases {
		if got := Detect([]byte(tc.input)); got != tc.want {
			t.Errorf("Detect(%q) = %v, want %v", tc.input, got, tc.want)
		}
	}
}

func TestHugeMaxLineBytes(t *testing.T) {
	input := "0.0.0.0 " + strings.Repeat("a", 70) + ".example\n"
	res, err := Parse(strings.NewReader(input), Hosts, Options{MaxLineBytes: int(^uint(0) >> 1)})
	if err != nil {
		t.Fatal(err)
	}
	if res.BadCount != 1 || res.Bad[0].Reason != reasonLongLabel+`: "`+strings.Repeat("a", 64)+`"` {
		t.Errorf("bad = %q, want one label too long", badReasons(res))
	}
}

func TestBuilderHashCollision(t *testing.T) {
	b := newBuilder(nil)
	first := Rule{Trigger: QName, Name: "first.example.", Subdomains: true, Action: Block, Line: 1}
	second := Rule{Trigger: QName, Name: "second.example.", Subdomains: true, Action: Block, Line: 2}
	if !b.add(first) {
		t.Fatal("first rule dropped")
	}
	// Give the second rule the hash of the first, as a collision would.
	b.names[b.nameHash(ruleNameKey(&second))] = b.names[b.nameHash(ruleNameKey(&first))]
	if !b.add(second) {
		t.Error("rule with a colliding hash dropped as a duplicate")
	}
	if b.add(second) {
		t.Error("repeated rule with a colliding hash added twice")
	}
	if b.add(first) {
		t.Error("repeated first rule added twice")
	}
	b.finish()
	if got, want := ruleStrings(b.res.Rules), []string{"qname first.example. sub block", "qname second.example. sub block"}; !slices.Equal(got, want) {
		t.Errorf("rules = %q, want %q", got, want)
	}
	if b.res.Duplicates != 2 {
		t.Errorf("Duplicates = %d, want 2", b.res.Duplicates)
	}
}
