package taxii

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// bodyTransport answers every request with one body, without a network.
type bodyTransport struct {
	body []byte
	last string
}

func (b *bodyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	h := http.Header{}
	h.Set("Content-Type", MediaType)
	h.Set("X-TAXII-Date-Added-Last", b.last)
	return &http.Response{
		StatusCode: http.StatusOK, Header: h, Request: req,
		Body: io.NopCloser(bytes.NewReader(b.body)),
	}, nil
}

func FuzzObjects(f *testing.F) {
	for _, s := range []string{
		`{"more":false,"objects":[{"type":"indicator","id":"indicator--1"}]}`,
		`{"more":true,"next":"2","objects":[]}`,
		`{"more":true,"objects":[]}`,
		`{"objects":null}`, `{"more":"yes"}`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s), "2025-01-10T00:00:00Z")
	}
	f.Add([]byte(`{}`), "not a time")
	f.Fuzz(func(t *testing.T, body []byte, last string) {
		c := &Client{HTTP: &http.Client{Transport: &bodyTransport{body: body, last: last}}, MaxBodyBytes: 1 << 20}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		page, err := c.Objects(ctx, "https://taxii.test/api1/", "c", time.Time{})
		if err != nil {
			return
		}
		for i, o := range page.Objects {
			if len(o) == 0 {
				t.Errorf("object %d is empty", i)
			}
		}
	})
}

func FuzzLoadState(f *testing.F) {
	f.Add([]byte(`{"added_after":{"https://x/api1/collections/c/":"2025-01-10T00:00:00Z"}}`))
	f.Add([]byte(`{"added_after":null}`))
	f.Add([]byte(`{"added_after":{"k":"x"}}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "state.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		st, err := LoadState(path)
		if err != nil {
			return
		}
		if st.After == nil {
			t.Fatal("LoadState returned a state with a nil map")
		}
		if err := st.Save(); err != nil {
			t.Fatalf("Save after LoadState: %v", err)
		}
	})
}
