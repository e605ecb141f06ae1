package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"bulwark/internal/clock"

	"github.com/miekg/dns"
)

// anchorTags returns "DS 20326"-style descriptions of anchors, sorted.
func anchorTags(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		switch rr := rr.(type) {
		case *dns.DS:
			out = append(out, rr.Hdr.Name+" DS "+strconv.Itoa(int(rr.KeyTag)))
		case *dns.DNSKEY:
			out = append(out, rr.Hdr.Name+" DNSKEY "+strconv.Itoa(int(rr.KeyTag())))
		}
	}
	slices.Sort(out)
	return out
}

func TestDNSSECDefaults(t *testing.T) {
	c := Default()
	d := c.DNSSEC
	if !*d.Validation {
		t.Error("validation is off by default, want on")
	}
	if !*d.AggressiveNSEC {
		t.Error("aggressive_nsec is off by default, want on")
	}
	if d.MaxNSEC3Iterations != 50 {
		t.Errorf("MaxNSEC3Iterations = %d, want 50", d.MaxNSEC3Iterations)
	}
	if d.BogusTTL.D() != 60*time.Second {
		t.Errorf("BogusTTL = %s, want 60s", d.BogusTTL.D())
	}
	if d.MaxKeyTagCollisions != 4 || d.MaxSignatureValidations != 32 || d.MaxNSEC3Hashes != 32 {
		t.Errorf("limits = %d, %d, %d; want 4, 32, 32", d.MaxKeyTagCollisions, d.MaxSignatureValidations, d.MaxNSEC3Hashes)
	}
	want := []string{". DS 20326", ". DS 38696"}
	if got := anchorTags(d.Anchors); !slices.Equal(got, want) {
		t.Errorf("Anchors = %v, want %v", got, want)
	}
	if d.AutoTrustAnchorFile != "" || len(d.NegativeTrustAnchors) != 0 {
		t.Errorf("auto_trust_anchor_file %q, %d negative trust anchors; want none", d.AutoTrustAnchorFile, len(d.NegativeTrustAnchors))
	}
	if c.Testing.Enabled || !c.Testing.FixedTime.IsZero() || c.Testing.ClockFile != "" {
		t.Errorf("Testing = %+v, want the zero value", c.Testing)
	}
	if _, ok := mustClock(t, c).(interface{ Err() error }); ok {
		t.Error("ValidationClock() of the default is a file clock, want the system clock")
	}
}

func mustClock(t *testing.T, c *Config) clock.Clock {
	t.Helper()
	clk, err := c.ValidationClock()
	if err != nil {
		t.Fatalf("ValidationClock error: %v", err)
	}
	return clk
}

func TestDNSSECNullValues(t *testing.T) {
	c, err := Parse([]byte("dnssec:\n  validation:\n  aggressive_nsec:\n"), "null.yaml")
	if err != nil {
		t.Fatalf("Parse error: %v", err)
	}
	if !*c.DNSSEC.Validation || !*c.DNSSEC.AggressiveNSEC {
		t.Error("explicit null validation or aggressive_nsec is false, want the default true")
	}
	c, err = Parse([]byte("dnssec:\n"), "null.yaml")
	if err != nil {
		t.Fatalf("Parse error: %v", err)
	}
	if c.DNSSEC.MaxNSEC3Iterations != 50 || len(c.DNSSEC.Anchors) != 2 {
		t.Errorf("bare dnssec: max_nsec3_iterations %d, %d anchors; want the defaults 50 and 2", c.DNSSEC.MaxNSEC3Iterations, len(c.DNSSEC.Anchors))
	}
}

func TestDNSSECValues(t *testing.T) {
	yaml := `
dnssec:
  validation: false
  aggressive_nsec: false
  max_nsec3_iterations: 0
  bogus_ttl: 1h
  max_key_tag_collisions: 64
  max_signature_validations: 1
  max_nsec3_hashes: 1000
  negative_trust_anchors:
    - domain: Broken.EXAMPLE
      expires: 2099-01-01T00:00:00Z
    - domain: forever.example.
`
	c, err := Parse([]byte(yaml), "values.yaml")
	if err != nil {
		t.Fatalf("Parse error: %v", err)
	}
	d := c.DNSSEC
	if *d.Validation || *d.AggressiveNSEC {
		t.Error("validation or aggressive_nsec stayed true, want false as configured")
	}
	if d.MaxNSEC3Iterations != 0 || d.BogusTTL.D() != time.Hour || d.MaxKeyTagCollisions != 64 ||
		d.MaxSignatureValidations != 1 || d.MaxNSEC3Hashes != 1000 {
		t.Errorf("values = %d, %s, %d, %d, %d; want 0, 1h, 64, 1, 1000", d.MaxNSEC3Iterations, d.BogusTTL.D(),
			d.MaxKeyTagCollisions, d.MaxSignatureValidations, d.MaxNSEC3Hashes)
	}
	if len(d.NegativeTrustAnchors) != 2 {
		t.Fatalf("%d negative trust anchors, want 2", len(d.NegativeTrustAnchors))
	}
	if got := d.NegativeTrustAnchors[0].Domain; got != "broken.example." {
		t.Errorf("domain = %q, want the canonical broken.example.", got)
	}
	if got := d.NegativeTrustAnchors[0].Expires.Time; !got.Equal(time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("expires = %v, want 2099-01-01T00:00:00Z", got)
	}
	if !d.NegativeTrustAnchors[1].Expires.IsZero() {
		t.Errorf("expires without the key = %v, want zero", d.NegativeTrustAnchors[1].Expires)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("Warnings = %v, want none", c.Warnings)
	}
}

func TestExpiredNegativeTrustAnchorSkipped(t *testing.T) {
	yaml := `
dnssec:
  negative_trust_anchors:
    - domain: old.example
      expires: 2020-01-01T00:00:00Z
    - domain: new.example
      expires: 2020-03-01T00:00:00Z
testing:
  enabled: true
  fixed_validation_time: 2020-02-01T00:00:00Z
`
	c, err := Parse([]byte(yaml), "nta.yaml")
	if err != nil {
		t.Fatalf("Parse error: %v", err)
	}
	ntas := c.DNSSEC.NegativeTrustAnchors
	if len(ntas) != 1 || ntas[0].Domain != "new.example." {
		t.Errorf("negative trust anchors = %+v, want only new.example.", ntas)
	}
	if len(c.Warnings) != 1 {
		t.Fatalf("Warnings = %v, want 1", c.Warnings)
	}
	for _, want := range []string{"nta.yaml:5", "old.example. expired", "skipped"} {
		if !strings.Contains(c.Warnings[0], want) {
			t.Errorf("warning %q does not contain %q", c.Warnings[0], want)
		}
	}
}

func TestTestingSection(t *testing.T) {
	c, err := Parse([]byte("testing:\n  enabled: true\n  fixed_validation_time: 2018-01-29T12:00:00+01:00\n"), "t.yaml")
	if err != nil {
		t.Fatalf("Parse error: %v", err)
	}
	want := time.Date(2018, 1, 29, 11, 0, 0, 0, time.UTC)
	if !c.Testing.FixedTime.Equal(want) {
		t.Errorf("FixedTime = %v, want %v", c.Testing.FixedTime, want)
	}
	if got := mustClock(t, c).Now(); !got.Equal(want) {
		t.Errorf("ValidationClock().Now() = %v, want %v", got, want)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "clock"), []byte("@2018-01-29 12:00:00\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err = Parse([]byte("testing:\n  enabled: true\n  clock_file: clock\n"), filepath.Join(dir, "t.yaml"))
	if err != nil {
		t.Fatalf("Parse error: %v", err)
	}
	if got := c.Testing.ClockFile; got != filepath.Join(dir, "clock") {
		t.Errorf("ClockFile = %q, want it relative to the config directory", got)
	}
	got := mustClock(t, c).Now()
	base := time.Date(2018, 1, 29, 12, 0, 0, 0, time.UTC)
	if got.Before(base) || got.After(base.Add(time.Minute)) {
		t.Errorf("clock file time = %v, want about %v", got, base)
	}
}

func TestDNSSECErrors(t *testing.T) {
	tests := []struct {
		name     string
		yaml     string
		wantLine int
		wantText string
	}{
		{"iterations above range", "dnssec:\n  max_nsec3_iterations: 501\n", 2, "invalid value 501: use 0 to 500"},
		{"iterations negative", "dnssec:\n  max_nsec3_iterations: -1\n", 2, "invalid value -1"},
		{"bogus ttl zero", "dnssec:\n  bogus_ttl: 0s\n", 2, "use 1s to 1h"},
		{"bogus ttl too long", "dnssec:\n  bogus_ttl: 2h\n", 2, "use 1s to 1h"},
		{"key tag collisions zero", "dnssec:\n  max_key_tag_collisions: 0\n", 2, "use 1 to 64"},
		{"key tag collisions too many", "dnssec:\n  max_key_tag_collisions: 65\n", 2, "use 1 to 64"},
		{"signature validations zero", "dnssec:\n  max_signature_validations: 0\n", 2, "use 1 to 1000"},
		{"nsec3 hashes too many", "dnssec:\n  max_nsec3_hashes: 1001\n", 2, "use 1 to 1000"},
		{"validation not boolean", "dnssec:\n  validation: maybe\n", 2, "dnssec.validation: invalid value: want true or false"},
		{"unknown dnssec key", "dnssec:\n  validate: true\n", 2, `unknown field "validate"`},
		{"unknown testing key", "testing:\n  enabled: true\n  fake_time: x\n", 3, `unknown field "fake_time"`},
		{"fixed time without enabled", "testing:\n  fixed_validation_time: 2018-01-29T12:00:00Z\n", 2, "set testing.enabled: true"},
		{"fixed time with enabled false", "testing:\n  enabled: false\n  fixed_validation_time: 2018-01-29T12:00:00Z\n", 3, "for test suites only"},
		{"clock file without enabled", "testing:\n  clock_file: /tmp/clock\n", 2, "set testing.enabled: true"},
		{"fixed time and clock file", "testing:\n  enabled: true\n  fixed_validation_time: 2018-01-29T12:00:00Z\n  clock_file: /tmp/clock\n", 4, "both set"},
		{"bad fixed time", "testing:\n  enabled: true\n  fixed_validation_time: 2018-01-29\n", 3, `invalid time "2018-01-29"`},
		{"missing clock file", "testing:\n  enabled: true\n  clock_file: /nonexistent/clock\n", 3, "no such file"},
		{"unsupported anchor only", "dnssec:\n  trust_anchors:\n    - \". IN DS 6410 5 1 461625DFBDB3D330682C8DEEC013F85EC8986700\"\n", 3, "no trust anchor for . uses a supported algorithm"},
		{"nta without domain", "dnssec:\n  negative_trust_anchors:\n    - expires: 2099-01-01T00:00:00Z\n", 3, "missing domain"},
		{"nta bad domain", "dnssec:\n  negative_trust_anchors:\n    - domain: a..b\n", 3, `invalid domain name "a..b"`},
		{"nta twice", "dnssec:\n  negative_trust_anchors:\n    - domain: a.example\n    - domain: A.example.\n", 4, "listed twice"},
		{"nta bad expires", "dnssec:\n  negative_trust_anchors:\n    - domain: a.example\n      expires: tomorrow\n", 4, `invalid time "tomorrow"`},
		{"missing anchor file", "dnssec:\n  trust_anchor_files: [/nonexistent/root-anchors.xml]\n", 2, "cannot read trust anchor file"},
		{"empty anchor file path", "dnssec:\n  trust_anchor_files: [\"\"]\n", 2, "empty path"},
		{"auto file in missing directory", "dnssec:\n  auto_trust_anchor_file: /nonexistent/dir/root.state\n", 2, "invalid directory /nonexistent/dir"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "test.yaml")
			checkConfigError(t, err, tt.wantLine, tt.wantText)
		})
	}
}

// checkConfigError checks that err is a *config.Error for test.yaml at
// wantLine whose text contains wantText.
func checkConfigError(t *testing.T, err error, wantLine int, wantText string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Parse = nil error, want one containing %q", wantText)
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("Parse error %v is %T, want *config.Error", err, err)
	}
	if ce.Line != wantLine {
		t.Errorf("error %q has line %d, want %d", err, ce.Line, wantLine)
	}
	if !strings.Contains(err.Error(), wantText) {
		t.Errorf("error %q does not contain %q", err, wantText)
	}
	if !strings.Contains(err.Error(), "test.yaml") {
		t.Errorf("error %q does not name the file", err)
	}
}

// rootKey is the DNSKEY of the root KSK 20326.
const rootKey = ". IN DNSKEY 257 3 8 AwEAAaz/tAm8yTn4Mfeh5eyI96WSVexTBAvkMgJzkKTOiW1vkIbzxeF3+/4RgWOq7HrxRixHlFlExOLAJr5emLvN7SWXgnLh4+B5xQlNVz8Og8kvArMtNROxVQuCaSnIDdD5LKyWbRd2n9WGe2R8PzgCmr3EgVLrjyBxWezF0jLHwVN8efS3rCj/EWgvIWgb9tarpVUDK/b58Da+sqqls3eNbuv7pr+eoZG+SrDK6nWeL3c6H5Apxz7LjVc1uTIdsIXxuOLYA4/ilBmSVIzuDWfdRUfhHdY6+cn8HFRm+2hM8AnXGXws9555KrUB5qihylGa8subX2Nn6UwNR1AkUTV74bU="

func TestTrustAnchorFiles(t *testing.T) {
	xmlData, err := os.ReadFile("testdata/root-anchors-2024.xml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("root-anchors.xml", string(xmlData))
	write("root.key", "; the root KSK\n"+rootKey+" ; 20326\n\nEXAMPLE. 3600 IN DS 1 8 2 e06d44b80b8f1d39a95c0b0d7c65d08458e880409bbc683457104237c7f8ec8d\n")
	write("bad.key", ". IN DS 20326 8 2 E06D\n. IN A 192.0.2.1\n")
	write("bad.xml", strings.Replace(string(xmlData), "<Algorithm>8</Algorithm>", "<Algorithm>eight</Algorithm>", 1))
	write("clock", "@2018-01-29 12:00:00\n")
	config := filepath.Join(dir, "bulwark.yaml")

	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"xml in 2025", "dnssec:\n  trust_anchor_files: [root-anchors.xml]\ntesting:\n  enabled: true\n  fixed_validation_time: 2025-01-01T00:00:00Z\n",
			[]string{". DS 20326", ". DS 38696"}},
		{"xml in 2018 by fixed time", "dnssec:\n  trust_anchor_files: [root-anchors.xml]\ntesting:\n  enabled: true\n  fixed_validation_time: 2018-01-01T00:00:00Z\n",
			[]string{". DS 19036", ". DS 20326"}},
		{"xml in 2018 by clock file", "dnssec:\n  trust_anchor_files: [root-anchors.xml]\ntesting:\n  enabled: true\n  clock_file: clock\n",
			[]string{". DS 19036", ". DS 20326"}},
		{"xml now", "dnssec:\n  trust_anchor_files: [root-anchors.xml]\n",
			[]string{". DS 20326", ". DS 38696"}},
		{"lines file", "dnssec:\n  trust_anchor_files: [root.key]\n",
			[]string{". DNSKEY 20326", "example. DS 1"}},
		{"files and lines merged", "dnssec:\n  trust_anchors:\n    - \". IN DS 20326 8 2 e06d44b80b8f1d39a95c0b0d7c65d08458e880409bbc683457104237c7f8ec8d\"\n  trust_anchor_files: [root-anchors.xml, " + filepath.Join(dir, "root-anchors.xml") + "]\n",
			[]string{". DS 20326", ". DS 38696"}},
		{"empty lines list with a file", "dnssec:\n  trust_anchors: []\n  trust_anchor_files: [root.key]\n",
			[]string{". DNSKEY 20326", "example. DS 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml), config)
			if err != nil {
				t.Fatalf("Parse error: %v", err)
			}
			if got := anchorTags(c.DNSSEC.Anchors); !slices.Equal(got, tt.want) {
				t.Errorf("Anchors = %v, want %v", got, tt.want)
			}
		})
	}

	errorTests := []struct {
		name     string
		yaml     string
		wantText []string
	}{
		{"xml before any key", "dnssec:\n  trust_anchor_files: [root-anchors.xml]\ntesting:\n  enabled: true\n  fixed_validation_time: 2009-01-01T00:00:00Z\n",
			[]string{"root-anchors.xml", "no KeyDigest", "valid at 2009-01-01T00:00:00Z"}},
		{"bad line", "dnssec:\n  trust_anchor_files: [bad.key]\n",
			[]string{filepath.Join(dir, "bad.key"), "line 1", "has 2 bytes, want 32"}},
		{"bad xml", "dnssec:\n  trust_anchor_files: [bad.xml]\n",
			[]string{filepath.Join(dir, "bad.xml"), `KeyDigest "Kjqmt7v"`, `invalid Algorithm "eight"`}},
	}
	for _, tt := range errorTests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), config)
			if err == nil {
				t.Fatalf("Parse = nil error, want one containing %q", tt.wantText)
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Line != 2 || ce.Key != "dnssec.trust_anchor_files[0]" {
				t.Errorf("error %q: want a *config.Error at line 2 for dnssec.trust_anchor_files[0]", err)
			}
			for _, want := range tt.wantText {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestAutoTrustAnchorFile(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "bulwark.yaml")
	c, err := Parse([]byte("dnssec:\n  auto_trust_anchor_file: root.state\n"), config)
	if err != nil {
		t.Fatalf("Parse with a missing state file error: %v", err)
	}
	if got, want := c.DNSSEC.AutoTrustAnchorFile, filepath.Join(dir, "root.state"); got != want {
		t.Errorf("AutoTrustAnchorFile = %q, want %q", got, want)
	}

	state := filepath.Join(dir, "root.state")
	if err := os.WriteFile(state, []byte("; state\n"+rootKey+" ; state=sure\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Parse([]byte("dnssec:\n  auto_trust_anchor_file: root.state\n"), config)
	if err == nil {
		t.Fatal("Parse with a corrupt state file = nil error")
	}
	for _, want := range []string{"bulwark.yaml:2", "dnssec.auto_trust_anchor_file", state, "line 2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestAnchorLinesCanonical(t *testing.T) {
	c, err := Parse([]byte("dnssec:\n  trust_anchors:\n    - \"Example DS 1 8 2 e06d44b80b8f1d39a95c0b0d7c65d08458e880409bbc683457104237c7f8ec8d\"\n    - \"EXAMPLE. 60 IN DS 1 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\"\n"), "c.yaml")
	if err != nil {
		t.Fatalf("Parse error: %v", err)
	}
	if len(c.DNSSEC.Anchors) != 1 {
		t.Fatalf("Anchors = %v, want the two equal records merged into one", c.DNSSEC.Anchors)
	}
	ds := c.DNSSEC.Anchors[0].(*dns.DS)
	if ds.Hdr.Name != "example." || ds.Digest != strings.ToUpper(ds.Digest) {
		t.Errorf("anchor = %v, want owner example. and an upper-case digest", ds)
	}
}
