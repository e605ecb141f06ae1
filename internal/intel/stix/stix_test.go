package stix

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"bulwark/internal/intel/indicator"
)

func TestDecodeCERTBundle(t *testing.T) {
	data, err := os.ReadFile("testdata/cert-bundle.json")
	if err != nil {
		t.Fatal(err)
	}
	ins, skipped, err := Decode(data, "cert")
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	var names []string
	for _, in := range ins {
		names = append(names, in.Name)
	}
	want := []string{"login-secure-bank.example.", "c2-one.example.net.", "c2-two.example.net.", "c2-three.example.net."}
	if !slices.Equal(names, want) {
		t.Errorf("Decode names = %v, want %v", names, want)
	}

	bank := ins[0]
	if bank.Confidence != 85 || bank.Category != "phishing" || bank.Source != "cert" {
		t.Errorf("first indicator = %+v, want confidence 85, category phishing, source cert", bank)
	}
	if want := time.Date(2025, 2, 5, 0, 0, 0, 0, time.UTC); !bank.ValidUntil.Equal(want) {
		t.Errorf("ValidUntil = %v, want %v", bank.ValidUntil, want)
	}
	p := bank.Provenance[0]
	if p.Ref != "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f" || p.URL != "https://cert.example/cases/2024-1187" || p.Source != "cert (Example National CERT)" {
		t.Errorf("provenance = %+v", p)
	}
	if ins[1].Category != "malicious-activity" {
		t.Errorf("category without labels = %q, want the indicator type", ins[1].Category)
	}

	reasons := map[string]string{}
	for _, s := range skipped {
		reasons[s.ID] = s.Reason
	}
	wantSkipped := map[string]string{
		"indicator--c410e480-e42b-47d1-9476-85307c12bcbf": "ipv4-addr:value",
		"indicator--0c7b5b88-8ff7-4a4d-aa9d-feb398cd0061": "AND",
		"indicator--e1a8a3e6-3e51-4d0b-9f0e-8a1f2d6c9b10": "LIKE",
		"indicator--2f5b8f54-4d1a-4f0b-8c4a-4cf2b8a5a1d1": "sigma",
		"indicator--77f7c2ab-1a1b-4f7e-9d34-6d7a2b1e0c55": "revoked",
	}
	if len(skipped) != len(wantSkipped) {
		t.Errorf("skipped = %+v, want %d", skipped, len(wantSkipped))
	}
	for id, word := range wantSkipped {
		if !strings.Contains(reasons[id], word) {
			t.Errorf("skip reason of %s = %q, want it to mention %q", id, reasons[id], word)
		}
	}
}

func TestDecodeNotBundle(t *testing.T) {
	for name, doc := range map[string]string{
		"json":   `{"type":`,
		"type":   `{"type":"indicator","id":"indicator--x"}`,
		"number": `42`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := Decode([]byte(doc), "x"); err == nil {
				t.Errorf("Decode(%s) = nil error, want one", doc)
			}
		})
	}
}

func TestParsePattern(t *testing.T) {
	cases := []struct {
		pattern string
		want    []string
		err     string
	}{
		{`[domain-name:value = 'a.example']`, []string{"a.example"}, ""},
		{`[domain-name:value='a.example' or domain-name:value='b.example']`, []string{"a.example", "b.example"}, ""},
		{`[domain-name:value = 'it\'s.example']`, []string{"it's.example"}, ""},
		{`[domain-name:value = 'a.example'] AND [domain-name:value = 'b.example']`, nil, "AND"},
		{`[domain-name:value = 'a.example'] WITHIN 5 SECONDS`, nil, "WITHIN"},
		{`[domain-name:value != 'a.example']`, nil, "!="},
		{`[url:value = 'http://a.example/']`, nil, "url:value"},
		{`[domain-name:value = 'a.example'`, nil, "ends early"},
		{`[domain-name:value = 'a.example]`, nil, "unterminated"},
		{`[domain-name:value = a.example]`, nil, "not a string literal"},
	}
	for _, c := range cases {
		t.Run(c.pattern, func(t *testing.T) {
			got, err := ParsePattern(c.pattern)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Errorf("ParsePattern = %v, %v; want an error mentioning %q", got, err, c.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, c.want) {
				t.Errorf("ParsePattern = %v, %v; want %v", got, err, c.want)
			}
		})
	}
}

func sample() []indicator.Indicator {
	seen := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)
	return []indicator.Indicator{
		{
			Name: "xjo4vk9bk1f19hxz.example.", Category: "dga", Source: "dga", Confidence: 70,
			Reason: "random label", FirstSeen: seen, LastSeen: seen.Add(time.Hour), ValidUntil: seen.Add(48 * time.Hour),
			Provenance: []indicator.Provenance{{Source: "dga", Ref: "run-7", Seen: seen}},
		},
		{Name: "phish.example.com.", Category: "phishing", Source: "cert", Confidence: 90, FirstSeen: seen, LastSeen: seen},
	}
}

func TestEncodeFields(t *testing.T) {
	data, err := Encode(sample(), Operator{Name: "Example ISP resolver"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var b struct {
		Type    string           `json:"type"`
		ID      string           `json:"id"`
		Objects []map[string]any `json:"objects"`
	}
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatal(err)
	}
	if b.Type != "bundle" || !regexp.MustCompile(`^bundle--[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(b.ID) {
		t.Errorf("bundle type, id = %s, %s", b.Type, b.ID)
	}
	if len(b.Objects) != 3 || b.Objects[0]["type"] != "identity" {
		t.Fatalf("objects = %v, want identity and 2 indicators", b.Objects)
	}
	ind := b.Objects[1]
	checks := map[string]any{
		"type": "indicator", "spec_version": "2.1", "pattern_type": "stix",
		"pattern":        "[domain-name:value = 'xjo4vk9bk1f19hxz.example']",
		"created_by_ref": b.Objects[0]["id"], "valid_from": "2025-05-01T12:00:00.000Z",
		"valid_until": "2025-05-03T12:00:00.000Z", "modified": "2025-05-01T13:00:00.000Z",
		"confidence": float64(70),
	}
	for k, want := range checks {
		if ind[k] != want {
			t.Errorf("indicator %s = %v, want %v", k, ind[k], want)
		}
	}
	if !regexp.MustCompile(`^indicator--[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab]`).MatchString(ind["id"].(string)) {
		t.Errorf("indicator id = %v, want a UUIDv5", ind["id"])
	}
	if types := ind["indicator_types"].([]any); len(types) != 1 || types[0] != "anomalous-activity" {
		t.Errorf("indicator_types = %v, want [anomalous-activity]", types)
	}
}

func TestEncodeStableIDs(t *testing.T) {
	a, _ := Encode(sample(), Operator{Name: "op"}, time.Now())
	b, _ := Encode(sample(), Operator{Name: "op"}, time.Now().Add(time.Hour))
	idsA := regexp.MustCompile(`"id": "(indicator|identity)--[^"]+"`).FindAllString(string(a), -1)
	idsB := regexp.MustCompile(`"id": "(indicator|identity)--[^"]+"`).FindAllString(string(b), -1)
	if len(idsA) != 3 || !slices.Equal(idsA, idsB) {
		t.Errorf("ids of two exports = %v and %v, want the same 3", idsA, idsB)
	}
}

func TestRoundTrip(t *testing.T) {
	in := sample()
	data, err := Encode(in, Operator{Name: "op"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	out, skipped, err := Decode(data, "peer")
	if err != nil || len(skipped) != 0 {
		t.Fatalf("Decode(Encode) = %v skipped, %v", skipped, err)
	}
	if len(out) != len(in) {
		t.Fatalf("Decode(Encode) returned %d indicators, want %d", len(out), len(in))
	}
	for i := range in {
		a, b := in[i], out[i]
		if a.Name != b.Name || a.Category != b.Category || a.Confidence != b.Confidence || a.Reason != b.Reason ||
			!a.FirstSeen.Equal(b.FirstSeen) || !a.LastSeen.Equal(b.LastSeen) || !a.ValidUntil.Equal(b.ValidUntil) {
			t.Errorf("round trip %d = %+v, want %+v", i, b, a)
		}
	}
}
