package resolver

import (
	"strings"
	"testing"

	"bulwark/internal/dnssec"
)

func TestCanonicalKeyOrder(t *testing.T) {
	// The example of RFC 4034 section 6.1, in canonical order, with an
	// upper-case name.
	names := []string{
		"example.", "a.example.", "yljkjljk.a.example.", "Z.a.example.",
		"zABC.a.EXAMPLE.", "z.example.", "*.z.example.", "\\200.z.example.",
	}
	for i := range names {
		for j := range names {
			want := dnssec.Compare(names[i], names[j])
			got := strings.Compare(canonicalKey(names[i]), canonicalKey(names[j]))
			if got != want {
				t.Errorf("key order of %s and %s = %d, want %d as dnssec.Compare", names[i], names[j], got, want)
			}
		}
	}
}
