package stix

import (
	"os"
	"slices"
	"strings"
	"testing"

	"bulwark/internal/intel/indicator"
)

func FuzzParsePattern(f *testing.F) {
	for _, s := range []string{
		"[domain-name:value = 'a.example']",
		"[domain-name:value = 'a.example' OR domain-name:value = 'b.example']",
		"[domain-name:value = 'a.example'] OR [domain-name:value = 'b.example']",
		"[domain-name:value = 'it\\'s.example']",
		"[domain-name:value = 'a.example' AND domain-name:value = 'b.example']",
		"[ipv4-addr:value = '192.0.2.1']",
		"[domain-name:value = 'a.example'] WITHIN 5 SECONDS",
		"[domain-name:value != 'a.example']",
		"[", "]", "'", "[domain-name:value = '", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, pattern string) {
		domains, err := ParsePattern(pattern)
		if err != nil {
			return
		}
		if len(domains) == 0 {
			t.Fatalf("ParsePattern(%q) = no domains and no error", pattern)
		}
		// The domains written back as a pattern parse to the same list.
		var parts []string
		for _, d := range domains {
			parts = append(parts, "domain-name:value = '"+quote(d)+"'")
		}
		again := "[" + strings.Join(parts, " OR ") + "]"
		got, err := ParsePattern(again)
		if err != nil || !slices.Equal(got, domains) {
			t.Fatalf("ParsePattern(%q) = %q, %v; want %q from %q", again, got, err, domains, pattern)
		}
	})
}

func FuzzDecode(f *testing.F) {
	if data, err := os.ReadFile("testdata/cert-bundle.json"); err == nil {
		f.Add(data)
	}
	for _, s := range []string{
		`{"type":"bundle","id":"bundle--1","objects":[]}`,
		`{"type":"bundle","objects":[{"type":"indicator","id":"indicator--1","pattern_type":"stix","pattern":"[domain-name:value = 'a.example']","valid_from":"2025-01-01T00:00:00Z","confidence":500}]}`,
		`{"type":"bundle","objects":[{"type":"indicator","pattern":"[domain-name:value = 'a.example']","valid_from":"x"}]}`,
		`{"type":"bundle","objects":[1,"x",null,{}]}`,
		`{"type":"x"}`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ins, _, err := Decode(data, "fuzz")
		if err != nil {
			return
		}
		for _, in := range ins {
			if name, err := indicator.Canonical(in.Name); err != nil || name != in.Name {
				t.Errorf("Decode returned name %q, which Canonical makes %q, %v", in.Name, name, err)
			}
			if in.Source != "fuzz" || in.Confidence < 0 || in.Confidence > 100 {
				t.Errorf("Decode returned source %q confidence %d, want fuzz and 0 to 100", in.Source, in.Confidence)
			}
			if len(in.Provenance) == 0 {
				t.Errorf("Decode returned %s without provenance", in.Name)
			}
		}
	})
}
