package indicator

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestReadCSVHeader(t *testing.T) {
	doc := `# exported by a CERT
domain,category,score,confidence,valid_until
bad.example.com,phishing,0.9,80,2030-01-01T00:00:00Z
not a name,malware,,,
evil.example.net,c2,2,,
`
	ins, errs := ReadCSV(strings.NewReader(doc), "cert")
	if len(ins) != 1 {
		t.Fatalf("ReadCSV returned %d indicators, want 1: %+v", len(ins), ins)
	}
	in := ins[0]
	if in.Name != "bad.example.com." || in.Category != "phishing" || in.Score != 0.9 || in.Confidence != 80 || in.Source != "cert" {
		t.Errorf("ReadCSV indicator = %+v", in)
	}
	if want := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC); !in.ValidUntil.Equal(want) {
		t.Errorf("ValidUntil = %v, want %v", in.ValidUntil, want)
	}
	if len(errs) != 2 {
		t.Fatalf("ReadCSV errors = %v, want 2", errs)
	}
	if !strings.Contains(errs[0].Error(), "line 4") || !strings.Contains(errs[1].Error(), "invalid score \"2\"") {
		t.Errorf("ReadCSV errors = %v, want line 4 and invalid score", errs)
	}
}

func TestReadCSVNoHeader(t *testing.T) {
	ins, errs := ReadCSV(strings.NewReader("a.example\nb.example,extra\n"), "list")
	if len(errs) != 0 || len(ins) != 2 || ins[1].Name != "b.example." {
		t.Errorf("ReadCSV = %+v, %v; want a.example. and b.example.", ins, errs)
	}
}

func TestCSVRoundTrip(t *testing.T) {
	now := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	in := []Indicator{{Name: "x.example.org.", Category: "dga", Score: 0.97, Confidence: 70, Reason: "random label, high entropy", FirstSeen: now, LastSeen: now, ValidUntil: now.Add(time.Hour)}}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, in); err != nil {
		t.Fatal(err)
	}
	out, errs := ReadCSV(&buf, "self")
	if len(errs) != 0 || len(out) != 1 {
		t.Fatalf("ReadCSV(WriteCSV) = %+v, %v", out, errs)
	}
	got := out[0]
	if got.Name != in[0].Name || got.Reason != in[0].Reason || got.Score != in[0].Score || !got.ValidUntil.Equal(in[0].ValidUntil) {
		t.Errorf("round trip = %+v, want %+v", got, in[0])
	}
}

func TestSetRecords(t *testing.T) {
	s := NewSet("rpz.example", 60)
	v := s.Version()
	s.Put(Indicator{Name: "bad.example.com."})
	if s.Version() == v {
		t.Error("Version unchanged after Put")
	}
	rrs := s.Records()
	if len(rrs) != 2 || rrs[0].Header().Name != "bad.example.com.rpz.example." || rrs[1].Header().Name != "*.bad.example.com.rpz.example." {
		t.Errorf("Records = %v, want the name and its wildcard", rrs)
	}
	s.Remove("bad.example.com.")
	if len(s.Records()) != 0 {
		t.Errorf("Records after Remove = %v, want none", s.Records())
	}
}
