package taxii

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"bulwark/internal/intel/stix"
)

// stub is a TAXII 2.1 server with one API root and one collection of
// five domain indicators, added one second apart, served two per page.
type stub struct {
	t     *testing.T
	mu    sync.Mutex
	asked []string // query strings of object requests
}

var base = time.Date(2025, 1, 10, 0, 0, 0, 0, time.UTC)

func (s *stub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Accept") != MediaType {
		http.Error(w, "bad accept", http.StatusNotAcceptable)
		return
	}
	if r.Header.Get("Authorization") != "Bearer s3cret" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", MediaType)
	switch r.URL.Path {
	case "/taxii2/":
		fmt.Fprint(w, `{"title":"Example CERT TAXII","default":"/api1/","api_roots":["/api1/"]}`)
	case "/api1/":
		fmt.Fprintf(w, `{"title":"CERT feed","versions":[%q],"max_content_length":104857600}`, MediaType)
	case "/api1/collections/":
		fmt.Fprint(w, `{"collections":[{"id":"91a7b528-80eb-42ed-a74d-c6fbd5a26116","title":"Domains","can_read":true,"can_write":false}]}`)
	case "/api1/collections/91a7b528-80eb-42ed-a74d-c6fbd5a26116/objects/":
		s.objects(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *stub) objects(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.asked = append(s.asked, r.URL.RawQuery)
	s.mu.Unlock()
	q := r.URL.Query()
	start := 0
	if a := q.Get("added_after"); a != "" {
		after, err := time.Parse(time.RFC3339Nano, a)
		if err != nil {
			http.Error(w, "bad added_after", http.StatusBadRequest)
			return
		}
		for start < 5 && !base.Add(time.Duration(start)*time.Second).After(after) {
			start++
		}
	}
	if n := q.Get("next"); n != "" {
		fmt.Sscan(n, &start)
	}
	end := min(start+2, 5)
	var objs []string
	for i := start; i < end; i++ {
		objs = append(objs, fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-00000000000%d","created":"2025-01-10T00:00:00.000Z","modified":"2025-01-10T00:00:00.000Z","pattern":"[domain-name:value = 'c2-%d.example']","pattern_type":"stix","valid_from":"2025-01-10T00:00:00Z"}`, i, i))
	}
	if end > start {
		w.Header().Set("X-TAXII-Date-Added-Last", base.Add(time.Duration(end-1)*time.Second).Format(time.RFC3339Nano))
	}
	env := map[string]any{"more": end < 5, "objects": json.RawMessage("[" + strings.Join(objs, ",") + "]")}
	if end < 5 {
		env["next"] = fmt.Sprint(end)
	}
	json.NewEncoder(w).Encode(env)
}

func newStub(t *testing.T) (*stub, *httptest.Server, *Client) {
	s := &stub{t: t}
	srv := httptest.NewTLSServer(s)
	t.Cleanup(srv.Close)
	c := NewClient(Auth{Token: "s3cret"}, 5*time.Second, srv.Client().Transport.(*http.Transport).TLSClientConfig)
	return s, srv, c
}

func TestDiscoveryAndCollections(t *testing.T) {
	_, srv, c := newStub(t)
	ctx := context.Background()
	d, err := c.Discover(ctx, srv.URL+"/taxii2/")
	if err != nil || len(d.APIRoots) != 1 || d.APIRoots[0] != "/api1/" {
		t.Fatalf("Discover = %+v, %v", d, err)
	}
	root := srv.URL + d.APIRoots[0]
	if _, err := c.APIRoot(ctx, root); err != nil {
		t.Errorf("APIRoot: %v", err)
	}
	cols, err := c.Collections(ctx, root)
	if err != nil || len(cols) != 1 || !cols[0].CanRead {
		t.Errorf("Collections = %+v, %v", cols, err)
	}
}

func TestPullPaginatesAndResumes(t *testing.T) {
	s, srv, c := newStub(t)
	ctx := context.Background()
	root, id := srv.URL+"/api1/", "91a7b528-80eb-42ed-a74d-c6fbd5a26116"
	st, err := LoadState(filepath.Join(t.TempDir(), "taxii.json"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := c.Pull(ctx, st, root, id)
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	if len(objs) != 5 || len(s.asked) != 3 {
		t.Fatalf("Pull returned %d objects in %d requests, want 5 in 3 pages", len(objs), len(s.asked))
	}
	ins, skipped, err := stix.DecodeObjects(objs, "cert")
	if err != nil || len(ins) != 5 || len(skipped) != 0 {
		t.Errorf("DecodeObjects = %d indicators, %v, %v", len(ins), skipped, err)
	}

	// The state survives a reload, and the next pull asks for newer
	// objects only.
	st2, err := LoadState(st.path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st2.After[Key(root, id)], base.Add(4*time.Second); !got.Equal(want) {
		t.Errorf("stored added_after = %v, want %v", got, want)
	}
	objs, err = c.Pull(ctx, st2, root, id)
	if err != nil || len(objs) != 0 {
		t.Errorf("second Pull = %d objects, %v; want none", len(objs), err)
	}
	if last := s.asked[len(s.asked)-1]; !strings.Contains(last, "added_after=2025-01-10T00%3A00%3A04Z") {
		t.Errorf("second pull query = %q, want added_after of the last object", last)
	}
}

func TestErrors(t *testing.T) {
	_, srv, c := newStub(t)
	ctx := context.Background()

	bad := NewClient(Auth{Token: "wrong"}, time.Second, srv.Client().Transport.(*http.Transport).TLSClientConfig)
	_, err := bad.Discover(ctx, srv.URL+"/taxii2/")
	var te *Error
	if !errors.As(err, &te) || te.Status != http.StatusUnauthorized || !strings.Contains(err.Error(), srv.URL) || !strings.Contains(err.Error(), "token") {
		t.Errorf("Discover with a wrong token = %v, want HTTP 401 naming the URL and the token", err)
	}

	untrusted := NewClient(Auth{Token: "s3cret"}, time.Second, nil)
	if _, err := untrusted.Discover(ctx, srv.URL+"/taxii2/"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Discover with an untrusted certificate = %v, want a certificate error", err)
	}

	c.MaxBodyBytes = 10
	if _, err := c.Discover(ctx, srv.URL+"/taxii2/"); err == nil || !strings.Contains(err.Error(), "larger than 10 bytes") {
		t.Errorf("Discover past MaxBodyBytes = %v, want a size error", err)
	}
	c.MaxBodyBytes = 0
	if _, err := c.Collections(ctx, srv.URL+"/nope/"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("Collections of a missing root = %v, want HTTP 404", err)
	}
}

func TestTimeout(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	c := NewClient(Auth{}, 100*time.Millisecond, nil)
	start := time.Now()
	_, err := c.Discover(context.Background(), srv.URL+"/taxii2/")
	if err == nil || time.Since(start) > 3*time.Second {
		t.Errorf("Discover of a hanging server = %v after %v, want a timeout", err, time.Since(start))
	}
}
