package tunnel

import (
	"strings"
	"testing"
)

func TestNamesScore(t *testing.T) {
	tests := []struct {
		qname     string
		malicious bool
		reason    string
	}{
		{"www.google.com", false, `longest label "www" 3 characters`},
		{"example.com", false, "no labels below"},
		{"r3---sn-4g5e6nze.googlevideo.com", false, "score 0."},
		{"a1b2c3d4e5f6a7b8c9d0.cdn.example.com", false, "a label of 20 in hex"},
		{"1.0.0.127.zen.spamhaus.org", false, "5 labels"},
		{"selector1._domainkey.example.com", false, "2 labels"},
		{"q+aHTYdlBA.t.example", true, "a label of 10 in base64"},
		{"dIUEABDEX5RAAAQAGRZZQUAAAAMFAAAAC37CAAFUWXVC36HRPM5ZIAEAAHSNHIA.AAAEAQQCWZBJLHBEGWEW47OJ3KR67QDKDOQF3W2PA6AAFPNXPCFBVYMDFEKRR7B.t.example", true, "63 characters"},
		{"0123456789abcdef0123456789abcdef0123456789.x.example.com", true, "a label of 42 in hex"},
		{"klzcmzngbqjnfciylwkq52ebgyerm33lce6rpdlm.x.example", true, "a label of 40 in base32"},
		{"dat\xc3\xa9\xc2\xbe.t.example", true, "in binary"},
	}
	for _, tt := range tests {
		t.Run(tt.qname, func(t *testing.T) {
			r := Names{}.Score(tt.qname)
			if r.Malicious != tt.malicious {
				t.Errorf("Score(%q) = %.2f malicious %v, want %v: %s", tt.qname, r.Score, r.Malicious, tt.malicious, r.Reason)
			}
			if !strings.Contains(r.Reason, tt.reason) {
				t.Errorf("Score(%q).Reason = %q, want it to contain %q", tt.qname, r.Reason, tt.reason)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		label string
		want  Alphabet
	}{
		{"wikipedia", AlphabetText},
		{"deadbeef01234567", AlphabetHex},
		{"mzxw6ytboi4dgnbv", AlphabetBase32},
		{"MZXW6YTBOI4DGNBV", AlphabetBase32},
		{"aGVsbG8gd29ybGQh", AlphabetBase64},
		{"ab+c", AlphabetBase64},
		{"a\x00b", AlphabetBinary},
		{"wikipedia2017", AlphabetText},
	}
	for _, tt := range tests {
		if got := classify(tt.label); got != tt.want {
			t.Errorf("classify(%q) = %v, want %v", tt.label, got, tt.want)
		}
	}
}

func BenchmarkNamesScore(b *testing.B) {
	names := []string{
		"www.google.com",
		"dIUEABDEX5RAAAQAGRZZQUAAAAMFAAAAC37CAAFUWXVC36HRPM5ZIAEAAHSNHIA.AAAEAQQCWZBJLHBEGW.t.example",
		"q+aHTYdlBA.t.example",
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		Names{}.Score(names[i%len(names)])
	}
}
