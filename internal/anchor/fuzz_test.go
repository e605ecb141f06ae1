package anchor

import (
	"os"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// checkResult fails unless every record is a valid, canonical anchor.
func checkResult(t *testing.T, rrs []dns.RR) {
	t.Helper()
	if len(rrs) == 0 {
		t.Fatal("no record and no error")
	}
	for _, rr := range rrs {
		if err := Check(rr); err != nil {
			t.Fatalf("returned anchor %v fails Check: %v", rr, err)
		}
		if name := rr.Header().Name; name != dns.CanonicalName(name) {
			t.Fatalf("returned anchor %v has a name that is not canonical", rr)
		}
	}
}

// FuzzParseXML checks that any document gives anchors that pass Check or an
// error, never a panic.
func FuzzParseXML(f *testing.F) {
	for _, name := range []string{"root-anchors-2010.xml", "root-anchors-2024.xml"} {
		data, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, int64(1500000000))
	}
	f.Add([]byte(xmlDoc(`<KeyDigest id="k" validFrom="2017-02-02T00:00:00Z"><KeyTag>20326</KeyTag><Algorithm>8</Algorithm><PublicKey>`+key20326+`</PublicKey><Flags>257</Flags></KeyDigest>`)), int64(1800000000))
	f.Add([]byte("<TrustAnchor><Zone>.</Zone></TrustAnchor>"), int64(0))
	f.Fuzz(func(t *testing.T, data []byte, unix int64) {
		rrs, err := ParseXML(data, time.Unix(unix, 0))
		if err != nil {
			return
		}
		checkResult(t, rrs)
	})
}

// FuzzParseLines checks that any text gives anchors that pass Check or an
// error, never a panic.
func FuzzParseLines(f *testing.F) {
	data, err := os.ReadFile("testdata/root.key")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(data), ".")
	f.Add("$ORIGIN example.\n$TTL 60\nzone DS 1 8 2 ( "+digest20326+" ) ; c\n  DS 2 8 2 "+digest20326+"\n", "lab.")
	f.Add(". DS 1 8 2 \"(\\\";\"\n", "")
	f.Fuzz(func(t *testing.T, text, origin string) {
		rrs, err := ParseLines(text, origin)
		if err != nil {
			return
		}
		checkResult(t, rrs)
	})
}
