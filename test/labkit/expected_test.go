package labkit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestParseRow(t *testing.T) {
	tests := []struct {
		name string
		line string
		want Row
	}{
		{"address", "www.example.com.\tA\tNOERROR\t0\t-\t198.18.3.4",
			Row{Name: "www.example.com.", Type: "A", Rcode: "NOERROR", EDE: -1, Value: "198.18.3.4"}},
		{"mx with space", "example.com.\tMX\tNOERROR\t0\t-\t10 mail.example.com.",
			Row{Name: "example.com.", Type: "MX", Rcode: "NOERROR", EDE: -1, Value: "10 mail.example.com."}},
		{"servfail with ede", "www.lame.example.\tA\tSERVFAIL\t0\t22\t-",
			Row{Name: "www.lame.example.", Type: "A", Rcode: "SERVFAIL", EDE: 22, Value: "-"}},
		{"authenticated", "example.com.\tTXT\tNOERROR\t1\t-\t\"v=spf1 -all\"",
			Row{Name: "example.com.", Type: "TXT", Rcode: "NOERROR", AD: true, EDE: -1, Value: `"v=spf1 -all"`}},
		{"root", ".\tNS\tNOERROR\t0\t-\ta.root-servers.net.",
			Row{Name: ".", Type: "NS", Rcode: "NOERROR", EDE: -1, Value: "a.root-servers.net."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRow(tt.line)
			if err != nil {
				t.Fatalf("ParseRow(%q) error = %v, want nil", tt.line, err)
			}
			if got != tt.want {
				t.Errorf("ParseRow(%q) = %+v, want %+v", tt.line, got, tt.want)
			}
		})
	}
}

func TestParseRowErrors(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		message string
	}{
		{"five fields", "a.example.\tA\tNOERROR\t0\t-", "got 5 tab-separated fields"},
		{"relative name", "a.example\tA\tNOERROR\t0\t-\t-", "trailing dot"},
		{"unknown type", "a.example.\tBOGUS\tNOERROR\t0\t-\t-", `unknown type "BOGUS"`},
		{"unknown rcode", "a.example.\tA\tFINE\t0\t-\t-", `unknown rcode "FINE"`},
		{"bad ad", "a.example.\tA\tNOERROR\tyes\t-\t-", `invalid ad "yes"`},
		{"bad ede", "a.example.\tA\tSERVFAIL\t0\tx\t-", `invalid ede "x"`},
		{"negative ede", "a.example.\tA\tSERVFAIL\t0\t-1\t-", `invalid ede "-1"`},
		{"empty value", "a.example.\tA\tNOERROR\t0\t-\t", "empty value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRow(tt.line)
			if err == nil {
				t.Fatalf("ParseRow(%q) error = nil, want one containing %q", tt.line, tt.message)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("ParseRow(%q) error = %q, want one containing %q", tt.line, err, tt.message)
			}
		})
	}
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "expected.tsv")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReadExpected(t *testing.T) {
	path := writeTemp(t, "#name\ttype\trcode\tad\tede\tvalue\n"+
		"a.example.\tA\tNOERROR\t0\t-\t198.18.0.1\n"+
		"b.example.\tAAAA\tNXDOMAIN\t0\t-\t-\n")
	rows, err := ReadExpected(path)
	if err != nil {
		t.Fatalf("ReadExpected error = %v, want nil", err)
	}
	if len(rows) != 2 {
		t.Fatalf("ReadExpected returned %d rows, want 2", len(rows))
	}
	if rows[1].Rcode != "NXDOMAIN" {
		t.Errorf("rows[1].Rcode = %q, want NXDOMAIN", rows[1].Rcode)
	}
	if rows[1].QType() != dns.TypeAAAA {
		t.Errorf("rows[1].QType() = %d, want %d", rows[1].QType(), dns.TypeAAAA)
	}
	if rows[1].RcodeValue() != dns.RcodeNameError {
		t.Errorf("rows[1].RcodeValue() = %d, want %d", rows[1].RcodeValue(), dns.RcodeNameError)
	}
}

func TestReadExpectedErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		message string
	}{
		{"empty file", "", "empty file"},
		{"missing header", "a.example.\tA\tNOERROR\t0\t-\t-\n", ":1: invalid header"},
		{"bad row names line", "#name\ttype\trcode\tad\tede\tvalue\na.example.\tA\tNOERROR\t0\t-\t-\nb.example.\tA\n", ":3: got 2 tab-separated fields"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTemp(t, tt.content)
			_, err := ReadExpected(path)
			if err == nil {
				t.Fatalf("ReadExpected error = nil, want one containing %q", tt.message)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("ReadExpected error = %q, want one containing %q", err, tt.message)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("ReadExpected error = %q, want it to name the file %s", err, path)
			}
		})
	}
}

func TestReadExpectedMissingFile(t *testing.T) {
	_, err := ReadExpected(filepath.Join(t.TempDir(), "none.tsv"))
	if err == nil {
		t.Fatal("ReadExpected of a missing file error = nil, want an error")
	}
}

func TestShortValue(t *testing.T) {
	tests := []struct {
		record string
		want   string
	}{
		{"a.example. 300 IN A 198.18.0.1", "198.18.0.1"},
		{"a.example. 300 IN AAAA 2001:db8::1", "2001:db8::1"},
		{"a.example. 300 IN MX 10 mail.example.", "10 mail.example."},
		{`a.example. 300 IN TXT "one" "two"`, `"one" "two"`},
		{"a.example. 300 IN CNAME b.example.", "b.example."},
		{"old.example. 300 IN DNAME new.example.", "new.example."},
	}
	for _, tt := range tests {
		t.Run(tt.record, func(t *testing.T) {
			rr, err := dns.NewRR(tt.record)
			if err != nil {
				t.Fatal(err)
			}
			if got := ShortValue(rr); got != tt.want {
				t.Errorf("ShortValue(%q) = %q, want %q", tt.record, got, tt.want)
			}
		})
	}
}
