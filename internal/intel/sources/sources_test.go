package sources

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"bulwark/internal/intel/indicator"
	"bulwark/internal/intel/misp"
	"bulwark/internal/intel/stix"
	"bulwark/internal/intel/taxii/taxiitest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// memorySink records every import.
type memorySink struct {
	mu      sync.Mutex
	imports []Batch
}

func (m *memorySink) Import(source string, trust int, mode indicator.Mode, items []indicator.Indicator) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.imports = append(m.imports, Batch{Source: source, Trust: trust, Mode: mode, Indicators: items})
}

func (m *memorySink) last(t *testing.T) Batch {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.imports) == 0 {
		t.Fatal("sink received no import")
	}
	return m.imports[len(m.imports)-1]
}

func names(ins []indicator.Indicator) []string {
	var out []string
	for _, in := range ins {
		out = append(out, in.Name)
	}
	return out
}

// checkTagged fails unless every indicator carries the source's name,
// trust and mode.
func checkTagged(t *testing.T, b Batch, src Source) {
	t.Helper()
	if b.Source != src.Name || b.Trust != src.Trust || b.Mode != src.Mode {
		t.Errorf("import = (%s, %d, %s), want (%s, %d, %s)", b.Source, b.Trust, b.Mode, src.Name, src.Trust, src.Mode)
	}
	for _, in := range b.Indicators {
		if in.Source != src.Name || in.Trust != src.Trust || in.Mode != src.Mode || in.State != indicator.Observed {
			t.Errorf("indicator %s = source %q trust %d mode %q state %q, want %q %d %q observed",
				in.Name, in.Source, in.Trust, in.Mode, in.State, src.Name, src.Trust, src.Mode)
		}
	}
}

func newPuller(t *testing.T, src Source, sink Sink, opts Options) *Puller {
	t.Helper()
	p, err := New([]Source{src}, sink, opts, quiet)
	if err != nil {
		t.Fatalf("New(%+v) = %v", src, err)
	}
	return p
}

func TestPullCSVWithToken(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	os.WriteFile(token, []byte("s3cret\n"), 0o600)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "domain,category\nbad.example.com,phishing\nbad..example,malware\nevil.example.net,c2\n")
	}))
	defer srv.Close()
	src := Source{Name: "cert-a", Type: TypeCSV, URL: srv.URL + "/list.csv", Trust: 80, Mode: indicator.Enforce, TokenFile: token}
	sink := &memorySink{}
	p := newPuller(t, src, sink, Options{})

	wait := p.Pull(context.Background(), "cert-a")
	if wait < 54*time.Minute || wait > 66*time.Minute {
		t.Errorf("wait after success = %s, want the 1h interval ±10%%", wait)
	}
	b := sink.last(t)
	if got := strings.Join(names(b.Indicators), " "); got != "bad.example.com. evil.example.net." {
		t.Errorf("indicators = %s, want bad.example.com. evil.example.net.", got)
	}
	checkTagged(t, b, src)
	st := p.Statuses()[0]
	if st.Items != 2 || st.Skipped != 1 || st.Pulls != 1 || st.Failures != 0 || st.LastSuccess.IsZero() {
		t.Errorf("status = %+v, want 2 items, 1 skipped, 1 pull, no failure", st)
	}
}

func TestPullFailureBacksOff(t *testing.T) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	src := Source{Name: "down", Type: TypeSTIX, URL: srv.URL + "/bundle.json", Trust: 50, Interval: time.Hour}
	sink := &memorySink{}
	p := newPuller(t, src, sink, Options{})
	for i, want := range []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute} {
		wait := p.Pull(context.Background(), "down")
		if wait < want/2 || wait > want {
			t.Errorf("wait after failure %d = %s, want %s to %s", i+1, wait, want/2, want)
		}
	}
	if len(sink.imports) != 0 {
		t.Errorf("sink received %d imports after failed pulls, want 0", len(sink.imports))
	}
	st := p.Statuses()[0]
	if st.Failures != 3 || !strings.Contains(st.LastError, "HTTP 500") || !st.LastSuccess.IsZero() {
		t.Errorf("status = %+v, want 3 failures with an HTTP 500 error", st)
	}
	if st.Mode != indicator.Audit {
		t.Errorf("mode = %q, want the default audit", st.Mode)
	}
}

func TestNextWait(t *testing.T) {
	cases := []struct {
		name     string
		failures int
		jitter   float64
		want     time.Duration
	}{
		{"success low", 0, 0, 54 * time.Minute},
		{"success high", 0, 1, 66 * time.Minute},
		{"first failure", 1, 1, 30 * time.Second},
		{"first failure low", 1, 0, 15 * time.Second},
		{"third failure", 3, 1, 2 * time.Minute},
		{"capped at interval", 20, 1, time.Hour},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := nextWait(time.Hour, c.failures, c.jitter); got != c.want {
				t.Errorf("nextWait(1h, %d, %g) = %s, want %s", c.failures, c.jitter, got, c.want)
			}
		})
	}
}

func TestPullSTIXFileTruncates(t *testing.T) {
	ins := []indicator.Indicator{
		{Name: "a.example.com.", Category: "malware", FirstSeen: time.Unix(1700000000, 0)},
		{Name: "b.example.com.", Category: "malware", FirstSeen: time.Unix(1700000000, 0)},
		{Name: "c.example.com.", Category: "malware", FirstSeen: time.Unix(1700000000, 0)},
	}
	data, err := stix.Encode(ins, stix.Operator{Name: "Peer"}, time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bundle.json")
	os.WriteFile(path, data, 0o644)
	src := Source{Name: "peer", Type: TypeSTIX, URL: "file://" + path, Trust: 30, Mode: indicator.Audit, MaxItems: 2}
	sink := &memorySink{}
	p := newPuller(t, src, sink, Options{})
	p.Pull(context.Background(), "peer")
	b := sink.last(t)
	if len(b.Indicators) != 2 {
		t.Fatalf("indicators = %v, want 2 (MaxItems)", names(b.Indicators))
	}
	checkTagged(t, b, src)
	if st := p.Statuses()[0]; st.Truncated != 1 || st.Items != 2 {
		t.Errorf("status = %+v, want 2 items and 1 truncated", st)
	}
}

func TestPullMISPOverHTTP(t *testing.T) {
	dir := t.TempDir()
	ins := []indicator.Indicator{
		{Name: "c2.example.org.", Category: "c2", Reason: "beacon", LastSeen: time.Unix(1700000000, 0)},
		{Name: "drop.example.org.", Category: "malware", LastSeen: time.Unix(1700000000, 0)},
	}
	if _, err := misp.WriteFeed(dir, ins, misp.Export{Org: misp.Org{Name: "CERT-X"}, Info: "test", Time: time.Unix(1700000000, 0)}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.StripPrefix("/feed/", http.FileServer(http.Dir(dir))))
	defer srv.Close()
	src := Source{Name: "cert-x", Type: TypeMISP, URL: srv.URL + "/feed", Trust: 90, Mode: indicator.Enforce}
	sink := &memorySink{}
	p := newPuller(t, src, sink, Options{})
	p.Pull(context.Background(), "cert-x")
	if st := p.Statuses()[0]; st.LastError != "" {
		t.Fatalf("pull failed: %s", st.LastError)
	}
	b := sink.last(t)
	if got := strings.Join(names(b.Indicators), " "); got != "c2.example.org. drop.example.org." {
		t.Errorf("indicators = %s, want c2.example.org. drop.example.org.", got)
	}
	checkTagged(t, b, src)

	// A bound of one file lets the manifest through but no event.
	bounded := src
	bounded.MaxFiles = 1
	p = newPuller(t, bounded, &memorySink{}, Options{})
	p.Pull(context.Background(), "cert-x")
	if st := p.Statuses()[0]; !strings.Contains(st.LastError, "more than 1 files") {
		t.Errorf("error with MaxFiles 1 = %q, want one naming the bound", st.LastError)
	}
}

// stixObjects returns the indicator objects of a bundle for names.
func stixObjects(t *testing.T, names ...string) []json.RawMessage {
	t.Helper()
	var ins []indicator.Indicator
	for _, n := range names {
		ins = append(ins, indicator.Indicator{Name: n, Category: "phishing", FirstSeen: time.Unix(1700000000, 0)})
	}
	data, err := stix.Encode(ins, stix.Operator{Name: "CERT"}, time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	var b struct {
		Objects []json.RawMessage `json:"objects"`
	}
	json.Unmarshal(data, &b)
	return b.Objects
}

func TestPullTAXIIIncremental(t *testing.T) {
	stub := taxiitest.New("t0ken")
	stub.PageSize = 2
	added := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, obj := range stixObjects(t, "one.example.com.", "two.example.com.", "three.example.com.") {
		stub.Add("coll", obj, added.Add(time.Duration(i)*time.Second))
	}
	srv := httptest.NewServer(stub)
	defer srv.Close()
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	os.WriteFile(token, []byte("t0ken"), 0o600)
	state := filepath.Join(dir, "taxii.json")
	src := Source{Name: "cert-t", Type: TypeTAXII, URL: srv.URL + taxiitest.RootPath, Collection: "coll",
		Trust: 70, Mode: indicator.Enforce, TokenFile: token}
	sink := &memorySink{}
	p := newPuller(t, src, sink, Options{TAXIIState: state})

	p.Pull(context.Background(), "cert-t")
	b := sink.last(t)
	if got := strings.Join(names(b.Indicators), " "); got != "one.example.com. two.example.com. three.example.com." {
		t.Errorf("first pull = %s, want all three names", got)
	}
	checkTagged(t, b, src)
	if _, err := os.Stat(state); err != nil {
		t.Errorf("state file after a pull: %v", err)
	}

	// A new start reads the state and asks only for newer objects.
	for _, obj := range stixObjects(t, "four.example.com.") {
		stub.Add("coll", obj, added.Add(time.Hour))
	}
	p = newPuller(t, src, sink, Options{TAXIIState: state})
	p.Pull(context.Background(), "cert-t")
	if got := strings.Join(names(sink.last(t).Indicators), " "); got != "four.example.com." {
		t.Errorf("second pull = %s, want four.example.com. only", got)
	}
	// The bundle's identity object and three indicators were added at
	// seconds 0 to 3.
	reqs := stub.Requests()
	if last := reqs[len(reqs)-1]; !strings.Contains(last, "added_after=2026-01-01T00%3A00%3A03Z") {
		t.Errorf("second pull asked %s, want added_after the last object of the first", last)
	}
}

func TestPullTAXIIUnauthorized(t *testing.T) {
	srv := httptest.NewServer(taxiitest.New("right"))
	defer srv.Close()
	src := Source{Name: "cert-t", Type: TypeTAXII, URL: srv.URL + taxiitest.RootPath, Collection: "coll", Trust: 70}
	p := newPuller(t, src, &memorySink{}, Options{})
	p.Pull(context.Background(), "cert-t")
	if st := p.Statuses()[0]; !strings.Contains(st.LastError, "HTTP 401") {
		t.Errorf("error without a token = %q, want HTTP 401", st.LastError)
	}
}

func TestNewRejectsBadSources(t *testing.T) {
	cases := []struct {
		name string
		src  Source
		want string
	}{
		{"taxii file", Source{Name: "a", Type: TypeTAXII, URL: "file:///x", Collection: "c"}, "http or https"},
		{"taxii without collection", Source{Name: "a", Type: TypeTAXII, URL: "https://x/api/"}, "missing collection"},
		{"unknown type", Source{Name: "a", Type: "rss", URL: "https://x/"}, "unknown type"},
		{"bad scheme", Source{Name: "a", Type: TypeCSV, URL: "ftp://x/"}, "invalid URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New([]Source{c.src}, &memorySink{}, Options{}, quiet)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("New(%+v) = %v, want an error containing %q", c.src, err, c.want)
			}
		})
	}
}

func TestRunStopsWithContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "list.csv")
	os.WriteFile(path, []byte("bad.example.com\n"), 0o644)
	rec := NewRecorder(quiet)
	p := newPuller(t, Source{Name: "local", Type: TypeCSV, URL: "file://" + path, Trust: 10}, rec, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		p.Run(ctx)
		close(done)
	}()
	for deadline := time.Now().Add(5 * time.Second); rec.Imports() == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of the cancel")
	}
	b, ok := rec.Last("local")
	if !ok || len(b.Indicators) != 1 || b.Indicators[0].Name != "bad.example.com." || b.Trust != 10 {
		t.Errorf("recorder's last batch = %+v, %v, want bad.example.com. with trust 10", b, ok)
	}
}
