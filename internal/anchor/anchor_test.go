package anchor

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// key20326 is the public key of the root KSK 20326 (algorithm 8).
const key20326 = "AwEAAaz/tAm8yTn4Mfeh5eyI96WSVexTBAvkMgJzkKTOiW1vkIbzxeF3+/4RgWOq7HrxRixHlFlExOLAJr5emLvN7SWXgnLh4+B5xQlNVz8Og8kvArMtNROxVQuCaSnIDdD5LKyWbRd2n9WGe2R8PzgCmr3EgVLrjyBxWezF0jLHwVN8efS3rCj/EWgvIWgb9tarpVUDK/b58Da+sqqls3eNbuv7pr+eoZG+SrDK6nWeL3c6H5Apxz7LjVc1uTIdsIXxuOLYA4/ilBmSVIzuDWfdRUfhHdY6+cn8HFRm+2hM8AnXGXws9555KrUB5qihylGa8subX2Nn6UwNR1AkUTV74bU="

// digest20326 is the SHA-256 DS digest of key20326.
const digest20326 = "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D"

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// describe returns "DS 20326"-style descriptions of rrs, sorted.
func describe(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		switch rr := rr.(type) {
		case *dns.DS:
			out = append(out, rr.Hdr.Name+" DS "+strconv.Itoa(int(rr.KeyTag)))
		case *dns.DNSKEY:
			out = append(out, rr.Hdr.Name+" DNSKEY "+strconv.Itoa(int(rr.KeyTag())))
		default:
			out = append(out, rr.String())
		}
	}
	slices.Sort(out)
	return out
}

func date(year int, month time.Month, day int) time.Time {
	return time.Date(year, month, day, 0, 0, 0, 0, time.UTC)
}

func TestParseXMLWindows(t *testing.T) {
	tests := []struct {
		file string
		now  time.Time
		want []string
	}{
		{"root-anchors-2010.xml", date(2015, 1, 1), []string{". DS 19036"}},
		{"root-anchors-2010.xml", date(2030, 1, 1), []string{". DS 19036"}},
		{"root-anchors-2024.xml", date(2010, 7, 15), []string{". DS 19036"}},
		{"root-anchors-2024.xml", date(2018, 1, 1), []string{". DS 19036", ". DS 20326"}},
		{"root-anchors-2024.xml", date(2019, 1, 10), []string{". DS 19036", ". DS 20326"}},
		{"root-anchors-2024.xml", date(2019, 1, 11), []string{". DS 20326"}},
		{"root-anchors-2024.xml", date(2024, 7, 17), []string{". DS 20326"}},
		{"root-anchors-2024.xml", date(2024, 7, 18), []string{". DS 20326", ". DS 38696"}},
	}
	for _, tt := range tests {
		t.Run(tt.file+" at "+tt.now.Format(time.DateOnly), func(t *testing.T) {
			rrs, err := ParseXML(readTestdata(t, tt.file), tt.now)
			if err != nil {
				t.Fatalf("ParseXML error: %v", err)
			}
			if got := describe(rrs); !slices.Equal(got, tt.want) {
				t.Errorf("ParseXML = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseXMLRecord(t *testing.T) {
	rrs, err := ParseXML(readTestdata(t, "root-anchors-2024.xml"), date(2025, 1, 1))
	if err != nil {
		t.Fatalf("ParseXML error: %v", err)
	}
	want := ".\t0\tIN\tDS\t20326 8 2 " + digest20326
	if got := rrs[0].String(); got != want {
		t.Errorf("first anchor = %q, want %q", got, want)
	}
}

func TestParseXMLBeforeValidFrom(t *testing.T) {
	_, err := ParseXML(readTestdata(t, "root-anchors-2010.xml"), date(2009, 1, 1))
	if err == nil || !strings.Contains(err.Error(), "no KeyDigest") {
		t.Errorf("ParseXML before every validFrom: error %v, want one saying no KeyDigest is valid", err)
	}
}

// xmlDoc builds a trust anchor document for the root around the KeyDigest
// elements given.
func xmlDoc(keyDigests ...string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>
<TrustAnchor id="test" source="test">
<Zone>.</Zone>
` + strings.Join(keyDigests, "\n") + `
</TrustAnchor>
`
}

func TestParseXMLPublicKey(t *testing.T) {
	tests := []struct {
		name string
		kd   string
	}{
		{"key and digest", `<KeyDigest id="k" validFrom="2017-02-02T00:00:00+00:00">
<KeyTag>20326</KeyTag><Algorithm>8</Algorithm><DigestType>2</DigestType>
<Digest>` + strings.ToLower(digest20326) + `</Digest>
<PublicKey>` + key20326[:100] + "\n  " + key20326[100:] + `</PublicKey><Flags>257</Flags>
</KeyDigest>`},
		{"key only", `<KeyDigest id="k" validFrom="2017-02-02T00:00:00Z">
<KeyTag>20326</KeyTag><Algorithm>8</Algorithm>
<PublicKey>` + key20326 + `</PublicKey><Flags>257</Flags>
</KeyDigest>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rrs, err := ParseXML([]byte(xmlDoc(tt.kd)), date(2025, 1, 1))
			if err != nil {
				t.Fatalf("ParseXML error: %v", err)
			}
			if len(rrs) != 1 {
				t.Fatalf("ParseXML = %v, want one DNSKEY", rrs)
			}
			key, ok := rrs[0].(*dns.DNSKEY)
			if !ok {
				t.Fatalf("ParseXML = %v, want a DNSKEY", rrs[0])
			}
			if key.Flags != 257 || key.Protocol != 3 || key.Algorithm != 8 || key.PublicKey != key20326 || key.Hdr.Name != "." {
				t.Errorf("DNSKEY = %v, want . 257 3 8 with the key of 20326", key)
			}
		})
	}
}

func TestParseXMLErrors(t *testing.T) {
	good := `<KeyTag>20326</KeyTag><Algorithm>8</Algorithm><DigestType>2</DigestType><Digest>` + digest20326 + `</Digest>`
	from := `validFrom="2017-02-02T00:00:00+00:00"`
	tests := []struct {
		name string
		doc  string
		want string
	}{
		{"not xml", "hello", "invalid trust anchor XML"},
		{"truncated", xmlDoc(`<KeyDigest id="a" ` + from + `>` + good)[:150], "invalid trust anchor XML"},
		{"other root element", `<Anchor><Zone>.</Zone></Anchor>`, "expected element type <TrustAnchor>"},
		{"no zone", `<TrustAnchor><KeyDigest id="a" ` + from + `>` + good + `</KeyDigest></TrustAnchor>`, "Zone element is missing"},
		{"bad zone", `<TrustAnchor><Zone>a..b</Zone><KeyDigest id="a" ` + from + `>` + good + `</KeyDigest></TrustAnchor>`, "is not a domain name"},
		{"no key digest", xmlDoc(), "no KeyDigest element"},
		{"trailing element", xmlDoc(`<KeyDigest id="a" `+from+`>`+good+`</KeyDigest>`) + "<TrustAnchor/>", "content after the TrustAnchor element"},
		{"no validFrom", xmlDoc(`<KeyDigest id="a">` + good + `</KeyDigest>`), `KeyDigest "a": the validFrom attribute is missing`},
		{"bad validFrom", xmlDoc(`<KeyDigest id="a" validFrom="yesterday">` + good + `</KeyDigest>`), `invalid validFrom "yesterday"`},
		{"validUntil first", xmlDoc(`<KeyDigest id="a" ` + from + ` validUntil="2016-01-01T00:00:00Z">` + good + `</KeyDigest>`), "is not after validFrom"},
		{"no key tag", xmlDoc(`<KeyDigest id="a" ` + from + `><Algorithm>8</Algorithm><DigestType>2</DigestType><Digest>` + digest20326 + `</Digest></KeyDigest>`), "KeyTag element is missing"},
		{"key tag too large", xmlDoc(`<KeyDigest id="a" ` + from + `><KeyTag>70000</KeyTag><Algorithm>8</Algorithm><DigestType>2</DigestType><Digest>` + digest20326 + `</Digest></KeyDigest>`), `invalid KeyTag "70000": want a whole number from 0 to 65535`},
		{"bad algorithm", xmlDoc(`<KeyDigest id="a" ` + from + `><KeyTag>1</KeyTag><Algorithm>RSA</Algorithm><DigestType>2</DigestType><Digest>` + digest20326 + `</Digest></KeyDigest>`), `invalid Algorithm "RSA"`},
		{"digest not hex", xmlDoc(`<KeyDigest id="a" ` + from + `><KeyTag>1</KeyTag><Algorithm>8</Algorithm><DigestType>2</DigestType><Digest>XYZ</Digest></KeyDigest>`), "digest is not hexadecimal"},
		{"digest short", xmlDoc(`<KeyDigest id="a" ` + from + `><KeyTag>1</KeyTag><Algorithm>8</Algorithm><DigestType>2</DigestType><Digest>ABCD</Digest></KeyDigest>`), "has 2 bytes, want 32"},
		{"digest type alone", xmlDoc(`<KeyDigest id="a" ` + from + `><KeyTag>1</KeyTag><Algorithm>8</Algorithm><DigestType>2</DigestType></KeyDigest>`), "DigestType is given without Digest"},
		{"digest alone", xmlDoc(`<KeyDigest id="a" ` + from + `><KeyTag>1</KeyTag><Algorithm>8</Algorithm><Digest>` + digest20326 + `</Digest></KeyDigest>`), "DigestType element is missing"},
		{"nothing", xmlDoc(`<KeyDigest id="a" ` + from + `><KeyTag>1</KeyTag><Algorithm>8</Algorithm></KeyDigest>`), "neither DigestType and Digest nor PublicKey and Flags"},
		{"key without flags", xmlDoc(`<KeyDigest id="a" ` + from + `><KeyTag>20326</KeyTag><Algorithm>8</Algorithm><PublicKey>` + key20326 + `</PublicKey></KeyDigest>`), "PublicKey and Flags must be given together"},
		{"key not base64", xmlDoc(`<KeyDigest id="a" ` + from + `><KeyTag>20326</KeyTag><Algorithm>8</Algorithm><PublicKey>!!</PublicKey><Flags>257</Flags></KeyDigest>`), "PublicKey is not base64"},
		{"key tag mismatch", xmlDoc(`<KeyDigest id="a" ` + from + `><KeyTag>20327</KeyTag><Algorithm>8</Algorithm><PublicKey>` + key20326 + `</PublicKey><Flags>257</Flags></KeyDigest>`), "KeyTag 20327 does not match the key tag 20326"},
		{"digest mismatch", xmlDoc(`<KeyDigest id="a" ` + from + `><KeyTag>20326</KeyTag><Algorithm>8</Algorithm><DigestType>2</DigestType><Digest>` + strings.Repeat("00", 32) + `</Digest><PublicKey>` + key20326 + `</PublicKey><Flags>257</Flags></KeyDigest>`), "Digest does not match"},
		{"revoked key", xmlDoc(`<KeyDigest id="a" ` + from + `><KeyTag>20454</KeyTag><Algorithm>8</Algorithm><PublicKey>` + key20326 + `</PublicKey><Flags>385</Flags></KeyDigest>`), "revoke bit"},
		{"no id", xmlDoc(`<KeyDigest ` + from + `><KeyTag>x</KeyTag></KeyDigest>`), "KeyDigest 1 (without id)"},
		{"bad entry outside window", xmlDoc(`<KeyDigest id="ok" `+from+`>`+good+`</KeyDigest>`, `<KeyDigest id="old" validFrom="2000-01-01T00:00:00Z" validUntil="2001-01-01T00:00:00Z"><KeyTag>1</KeyTag></KeyDigest>`), `KeyDigest "old"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rrs, err := ParseXML([]byte(tt.doc), date(2025, 1, 1))
			if err == nil {
				t.Fatalf("ParseXML = %v, want an error containing %q", rrs, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseXML error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestParseLinesRootKey(t *testing.T) {
	rrs, err := ParseLines(string(readTestdata(t, "root.key")), ".")
	if err != nil {
		t.Fatalf("ParseLines error: %v", err)
	}
	want := []string{". DNSKEY 20326", ". DNSKEY 38696"}
	if got := describe(rrs); !slices.Equal(got, want) {
		t.Errorf("ParseLines = %v, want %v", got, want)
	}
}

func TestParseLinesSyntax(t *testing.T) {
	text := `; trust anchors for a lab
$TTL 3600
Example. IN DS 1 8 2 (
    e06d44b80b8f1d39a95c0b0d7c65d08458e880409bbc683457104237c7f8ec8d ) ; comment ( with a parenthesis
         DS 2 8 2 ` + digest20326 + `
$ORIGIN lab.
zone 172800 IN DNSKEY 257 3 8 ( ` + key20326[:50] + `
	` + key20326[50:] + ` )
sub.zone DS 20326 8 2 ` + digest20326 + "\r\n"
	rrs, err := ParseLines(text, ".")
	if err != nil {
		t.Fatalf("ParseLines error: %v", err)
	}
	want := []string{"example. DS 1", "example. DS 2", "sub.zone.lab. DS 20326", "zone.lab. DNSKEY 20326"}
	if got := describe(rrs); !slices.Equal(got, want) {
		t.Errorf("ParseLines = %v, want %v", got, want)
	}
	if got := rrs[0].Header().Ttl; got != 3600 {
		t.Errorf("TTL of the first record = %d, want 3600 from $TTL", got)
	}
	if ds := rrs[0].(*dns.DS); ds.Digest != digest20326 {
		t.Errorf("digest = %s, want it in upper case", ds.Digest)
	}
}

func TestParseLinesOrigin(t *testing.T) {
	rrs, err := ParseLines("zone DS 1 8 2 "+digest20326+"\n@ DS 2 8 2 "+digest20326+"\n", "Example.")
	if err != nil {
		t.Fatalf("ParseLines error: %v", err)
	}
	want := []string{"example. DS 2", "zone.example. DS 1"}
	if got := describe(rrs); !slices.Equal(got, want) {
		t.Errorf("ParseLines = %v, want %v", got, want)
	}
}

func TestParseLinesErrors(t *testing.T) {
	ds := ". IN DS 20326 8 2 " + digest20326 + "\n"
	tests := []struct {
		name string
		text string
		want string
	}{
		{"empty", "", "no DS or DNSKEY record found"},
		{"only comments", "; nothing\n\n", "no DS or DNSKEY record found"},
		{"other type", ds + "\n. IN A 192.0.2.1\n", `line 3: invalid trust anchor ". IN A 192.0.2.1": type A is not DS or DNSKEY`},
		{"digest not hex", ds + ". DS 1 8 2 zz\n", "line 2: "},
		{"digest short", ds + ds + ". DS 1 8 2 ABCD\n", "line 3: invalid trust anchor \". DS 1 8 2 ABCD\": digest of type 2 has 2 bytes, want 32"},
		{"protocol", ". DNSKEY 257 2 8 " + key20326 + "\n", "line 1: invalid trust anchor"},
		{"no zone bit", ". DNSKEY 1 3 8 " + key20326 + "\n", "zone key bit"},
		{"revoked", ". DNSKEY 385 3 8 " + key20326 + "\n", "revoke bit"},
		{"class", ". CH DS 1 8 2 " + digest20326 + "\n", "class CH, want IN"},
		{"garbage", ds + "this is not a record\n", "line 2: "},
		{"paren not closed", ds + ". DS 1 8 2 (\n" + digest20326 + "\n", "line 2: '(' is not closed"},
		{"paren not opened", ds + ". DS 1 8 2 " + digest20326 + " )\n", "line 2: ')' without a matching '('"},
		{"quote not closed", "\"abc\n", "line 1: quoted text is not closed"},
		{"include", "$INCLUDE /etc/passwd\n", "line 1: directive $INCLUDE is not supported"},
		{"bad origin directive", "$ORIGIN a..b\n" + ds, "line 1: invalid $ORIGIN"},
		{"origin without name", "$ORIGIN\n" + ds, "line 1: $ORIGIN takes one domain name"},
		{"bad ttl directive", "$TTL forever\n" + ds, "line 1: "},
		{"blank owner first", "  DS 1 8 2 " + digest20326 + "\n", "line 1: record starts with white space"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rrs, err := ParseLines(tt.text, ".")
			if err == nil {
				t.Fatalf("ParseLines = %v, want an error containing %q", rrs, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseLines error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestParseDetectsFormat(t *testing.T) {
	rrs, err := Parse(append([]byte("\ufeff \n"), readTestdata(t, "root-anchors-2010.xml")...), date(2015, 1, 1))
	if err != nil {
		t.Fatalf("Parse(XML) error: %v", err)
	}
	if got := describe(rrs); !slices.Equal(got, []string{". DS 19036"}) {
		t.Errorf("Parse(XML) = %v, want the DS of 19036", got)
	}
	rrs, err = Parse(readTestdata(t, "root.key"), date(2015, 1, 1))
	if err != nil {
		t.Fatalf("Parse(lines) error: %v", err)
	}
	if len(rrs) != 2 {
		t.Errorf("Parse(lines) = %v, want 2 DNSKEYs", rrs)
	}
}

func TestDedupIgnoresTTLAndCase(t *testing.T) {
	a, _ := ParseLines("Example. 60 DS 1 8 2 "+strings.ToLower(digest20326)+"\n", ".")
	b, _ := ParseLines("example. 3600 IN DS 1 8 2 "+digest20326+"\n", ".")
	c, _ := ParseLines("example. DS 2 8 2 "+digest20326+"\n", ".")
	got := Dedup(slices.Concat(a, b, c))
	if len(got) != 2 {
		t.Errorf("Dedup = %v, want 2 records", got)
	}
}
