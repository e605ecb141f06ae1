package sources

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"bulwark/internal/intel/indicator"
	"bulwark/internal/intel/misp"
	"bulwark/internal/intel/stix"
	"bulwark/internal/intel/taxii"
)

// maxSamples bounds the skipped items a pull logs at debug level.
const maxSamples = 10

// result is what one pull read.
type result struct {
	items []indicator.Indicator
	// skipped counts the objects, rows or attributes not taken; samples
	// holds the reasons of the first few.
	skipped int
	samples []string
}

func (r *result) skip(reason string) {
	r.skipped++
	if len(r.samples) < maxSamples {
		r.samples = append(r.samples, reason)
	}
}

// fetcher pulls a source once.
type fetcher func(ctx context.Context) (result, error)

func newFetcher(s Source, opts Options, p *Puller) (fetcher, error) {
	u, err := url.Parse(s.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file") {
		return nil, fmt.Errorf("invalid URL %q: use https://host/path, http://host/path or file:///path", s.URL)
	}
	local := u.Scheme == "file"
	g := &getter{http: opts.HTTP, src: s}
	switch s.Type {
	case TypeTAXII:
		if local {
			return nil, fmt.Errorf("invalid URL %q: a TAXII API root is an http or https URL", s.URL)
		}
		if s.Collection == "" {
			return nil, errors.New("missing collection: give the id of the TAXII collection to read")
		}
		return func(ctx context.Context) (result, error) { return p.pullTAXII(ctx, g) }, nil
	case TypeMISP:
		return func(ctx context.Context) (result, error) { return pullMISP(ctx, g, u) }, nil
	case TypeSTIX:
		return func(ctx context.Context) (result, error) { return pullSTIX(ctx, g, u) }, nil
	case TypeCSV:
		return func(ctx context.Context) (result, error) { return pullCSV(ctx, g, u) }, nil
	}
	return nil, fmt.Errorf("unknown type %q: use taxii, misp, stix or csv", s.Type)
}

// getter reads the files of one source, bounded in size, with its
// credentials.
type getter struct {
	http *http.Client
	src  Source
}

// auth returns the source's credentials, read from their files now.
func (g *getter) auth() (taxii.Auth, error) {
	var a taxii.Auth
	read := func(path string) (string, error) {
		data, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("read credential: %w", err)
		}
		return strings.TrimSpace(string(data)), nil
	}
	var err error
	switch {
	case g.src.TokenFile != "":
		a.Token, err = read(g.src.TokenFile)
	case g.src.Username != "":
		a.Username = g.src.Username
		a.Password, err = read(g.src.PasswordFile)
	}
	return a, err
}

// get returns the body of u, a file or an HTTP(S) URL, at most
// MaxBytes long.
func (g *getter) get(ctx context.Context, u *url.URL) ([]byte, error) {
	if u.Scheme == "file" {
		f, err := os.Open(u.Path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return readBounded(f, g.src.MaxBytes, u.Path)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	a, err := g.auth()
	if err != nil {
		return nil, err
	}
	switch {
	case a.Token != "":
		req.Header.Set("Authorization", "Bearer "+a.Token)
	case a.Username != "":
		req.SetBasicAuth(a.Username, a.Password)
	}
	resp, err := g.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d: check the URL and the credentials", u.Redacted(), resp.StatusCode)
	}
	return readBounded(resp.Body, g.src.MaxBytes, u.Redacted())
}

func readBounded(r io.Reader, maxBytes int64, name string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(data)) > maxBytes {
		return nil, fmt.Errorf("read %s: larger than %d bytes", name, maxBytes)
	}
	return data, nil
}

func pullCSV(ctx context.Context, g *getter, u *url.URL) (result, error) {
	data, err := g.get(ctx, u)
	if err != nil {
		return result{}, err
	}
	var res result
	items, errs := indicator.ReadCSV(bytes.NewReader(data), g.src.Name)
	res.items = items
	for _, e := range errs {
		res.skip(e.Error())
	}
	return res, nil
}

func pullSTIX(ctx context.Context, g *getter, u *url.URL) (result, error) {
	data, err := g.get(ctx, u)
	if err != nil {
		return result{}, err
	}
	items, skipped, err := stix.Decode(data, g.src.Name)
	if err != nil {
		return result{}, err
	}
	res := result{items: items}
	for _, s := range skipped {
		res.skip(s.ID + ": " + s.Reason)
	}
	return res, nil
}

func pullMISP(ctx context.Context, g *getter, u *url.URL) (result, error) {
	var fsys fs.FS
	if u.Scheme == "file" {
		fsys = &limitedFS{open: func(name string) ([]byte, error) {
			f, err := os.DirFS(u.Path).Open(name)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			return readBounded(f, g.src.MaxBytes, name)
		}, max: g.src.MaxFiles}
	} else {
		base := *u
		if !strings.HasSuffix(base.Path, "/") {
			base.Path += "/"
		}
		fsys = &limitedFS{open: func(name string) ([]byte, error) {
			return g.get(ctx, base.JoinPath(name))
		}, max: g.src.MaxFiles}
	}
	items, rep, err := misp.ReadFeed(fsys, g.src.Name)
	if err != nil {
		return result{}, err
	}
	res := result{items: items}
	for range rep.NotForIDS {
		res.skip("domain attribute without to_ids")
	}
	res.skipped += rep.OtherTypes
	for _, s := range rep.Invalid {
		res.skip(s)
	}
	return res, nil
}

// limitedFS is an fs.FS whose files are read whole by open, at most max
// of them, so that a manifest listing a million events cannot make a pull
// fetch them all.
type limitedFS struct {
	open   func(name string) ([]byte, error)
	max    int
	opened int
}

func (l *limitedFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	l.opened++
	if l.opened > l.max {
		return nil, fmt.Errorf("open %s: the feed has more than %d files: raise the bound or ask the feed's operator to split it", name, l.max)
	}
	data, err := l.open(name)
	if err != nil {
		return nil, err
	}
	return &memFile{Reader: bytes.NewReader(data), name: name, size: int64(len(data))}, nil
}

// memFile is a file read into memory.
type memFile struct {
	*bytes.Reader
	name string
	size int64
}

func (f *memFile) Stat() (fs.FileInfo, error) { return f, nil }
func (f *memFile) Close() error               { return nil }
func (f *memFile) Name() string               { return f.name }
func (f *memFile) Size() int64                { return f.size }
func (f *memFile) Mode() fs.FileMode          { return 0o444 }
func (f *memFile) ModTime() time.Time         { return time.Time{} }
func (f *memFile) IsDir() bool                { return false }
func (f *memFile) Sys() any                   { return nil }

// pullTAXII reads the objects of the collection added since the last
// pull and stores where this pull ended. The state is saved only when
// the whole pull, decoding included, succeeded, so a failed pull is
// repeated in full.
func (p *Puller) pullTAXII(ctx context.Context, g *getter) (result, error) {
	a, err := g.auth()
	if err != nil {
		return result{}, err
	}
	c := &taxii.Client{HTTP: g.http, Auth: a, MaxBodyBytes: g.src.MaxBytes}
	if _, err := c.APIRoot(ctx, g.src.URL); err != nil {
		return result{}, err
	}
	key := taxii.Key(g.src.URL, g.src.Collection)
	p.stateMu.Lock()
	after := p.state.After[key]
	p.stateMu.Unlock()
	page, err := c.Objects(ctx, g.src.URL, g.src.Collection, after)
	if err != nil {
		return result{}, err
	}
	items, skipped, err := stix.DecodeObjects(page.Objects, g.src.Name)
	if err != nil {
		return result{}, err
	}
	res := result{items: items}
	for _, s := range skipped {
		res.skip(s.ID + ": " + s.Reason)
	}
	if page.AddedLast.IsZero() {
		return res, nil
	}
	p.stateMu.Lock()
	defer p.stateMu.Unlock()
	p.state.After[key] = page.AddedLast
	if p.statePath == "" {
		return res, nil
	}
	if err := p.state.Save(); err != nil {
		// The indicators are good; the next pull reads them again.
		p.log.Warn("TAXII state not saved", "source", g.src.Name, "file", p.statePath, "error", err)
	}
	return res, nil
}
