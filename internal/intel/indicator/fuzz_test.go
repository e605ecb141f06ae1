package indicator

import (
	"bytes"
	"strings"
	"testing"
)

func FuzzReadCSV(f *testing.F) {
	for _, s := range []string{
		"domain,category,score,confidence,reason,first_seen,last_seen,valid_until\nbad.example.com,phishing,0.9,80,why,2025-01-01T00:00:00Z,,\n",
		"bad.example.com\n# comment\nevil.example.net,x\n",
		"domain,score\na.example,2\nb.example,NaN\nc.example,-0\n",
		"domain,confidence\na.example,101\n",
		"\"unterminated\n", ",,,\n", "domain\n\n", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		ins, _ := ReadCSV(strings.NewReader(data), "fuzz")
		for _, in := range ins {
			if name, err := Canonical(in.Name); err != nil || name != in.Name {
				t.Fatalf("ReadCSV returned name %q, which Canonical makes %q, %v", in.Name, name, err)
			}
			if !(in.Score >= 0 && in.Score <= 1) || in.Confidence < 0 || in.Confidence > 100 {
				t.Fatalf("ReadCSV returned %s with score %v confidence %d, want [0, 1] and 0 to 100", in.Name, in.Score, in.Confidence)
			}
		}
		// What WriteCSV writes, ReadCSV reads back with the same names.
		var buf bytes.Buffer
		if err := WriteCSV(&buf, ins); err != nil {
			t.Fatalf("WriteCSV: %v", err)
		}
		again, errs := ReadCSV(&buf, "fuzz")
		if len(errs) > 0 || len(again) != len(ins) {
			t.Fatalf("ReadCSV(WriteCSV(%d indicators)) = %d indicators, errors %v\n%s", len(ins), len(again), errs, buf.String())
		}
		for i := range ins {
			if again[i].Name != ins[i].Name || again[i].Reason != ins[i].Reason || again[i].Score != ins[i].Score {
				t.Fatalf("round trip of %+v = %+v", ins[i], again[i])
			}
		}
	})
}
