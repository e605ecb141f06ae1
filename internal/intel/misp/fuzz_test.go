package misp

import (
	"os"
	"testing"
	"testing/fstest"

	"bulwark/internal/intel/indicator"
)

func FuzzReadEvent(f *testing.F) {
	if data, err := os.ReadFile("testdata/feed/5f1e2a3b-0c4d-4e5f-8a9b-0c1d2e3f4a5b.json"); err == nil {
		f.Add(data)
	}
	for _, s := range []string{
		`{"Event":{"uuid":"e","info":"x","Attribute":[{"type":"domain","value":"a.example","to_ids":true,"timestamp":"1700000000"}]}}`,
		`{"Event":{"Attribute":[{"type":"domain|ip","value":"a.example|192.0.2.1","to_ids":"1"}],"Object":[{"Attribute":[{"type":"hostname","value":"b.example","to_ids":1}]}]}}`,
		`{"Event":{"Attribute":[{"type":"domain","value":"a.example","to_ids":false,"deleted":true}]}}`,
		`{"Event":{"Attribute":[{"type":"domain","value":"-","to_ids":true,"timestamp":"x"}]}}`,
		`{"Event":null}`, `{}`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var rep Report
		ins, err := ReadEvent(data, "fuzz", &rep)
		if err != nil {
			return
		}
		checkIndicators(t, ins)
		if rep.Events != 1 {
			t.Errorf("ReadEvent counted %d events, want 1", rep.Events)
		}
	})
}

func FuzzReadFeed(f *testing.F) {
	f.Add([]byte(`{"e1":{"info":"x","timestamp":"1700000000"}}`),
		[]byte(`{"Event":{"uuid":"e1","Attribute":[{"type":"domain","value":"a.example","to_ids":true}]}}`))
	f.Add([]byte(`{"../x":{}}`), []byte(`{}`))
	f.Add([]byte(`{"e1":{}}`), []byte(`not json`))
	f.Add([]byte(`[]`), []byte(``))
	f.Fuzz(func(t *testing.T, manifest, event []byte) {
		fsys := fstest.MapFS{
			"manifest.json": {Data: manifest},
			"e1.json":       {Data: event},
		}
		ins, _, err := ReadFeed(fsys, "fuzz")
		if err != nil {
			return
		}
		checkIndicators(t, ins)
	})
}

func checkIndicators(t *testing.T, ins []indicator.Indicator) {
	t.Helper()
	for _, in := range ins {
		if name, err := indicator.Canonical(in.Name); err != nil || name != in.Name {
			t.Errorf("returned name %q, which Canonical makes %q, %v", in.Name, name, err)
		}
		if in.Source != "fuzz" || len(in.Provenance) == 0 {
			t.Errorf("returned %s with source %q and %d provenance entries, want fuzz and one", in.Name, in.Source, len(in.Provenance))
		}
	}
}
