// Package taxii is a TAXII 2.1 client (OASIS TAXII Version 2.1). It reads
// the discovery resource, an API root's collections and the objects of a
// collection added after the last pull, following pagination. A state
// file stores where each collection's last pull ended.
// Decoding the STIX objects is left to the stix package.
package taxii

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// MediaType is the media type of TAXII 2.1 requests and responses.
const MediaType = "application/taxii+json;version=2.1"

// Defaults of a Client.
const (
	DefaultTimeout      = 30 * time.Second
	DefaultMaxBodyBytes = 64 << 20
	// maxPages bounds the pages of one pull, so that a server that keeps
	// returning more cannot hold a pull forever.
	maxPages = 10000
)

// Auth is the client's credential: a bearer token, or a user name and
// password for basic authentication, or neither.
type Auth struct {
	Token              string
	Username, Password string
}

// Client talks to one TAXII 2.1 server.
type Client struct {
	// HTTP sends the requests; its Timeout bounds each request.
	HTTP *http.Client
	// Auth is added to every request.
	Auth Auth
	// MaxBodyBytes bounds each response body. Default 64 MiB.
	MaxBodyBytes int64
	// Limit is the page size asked for; 0 leaves it to the server.
	Limit int
}

// NewClient returns a client with timeout (DefaultTimeout when 0) and TLS
// config tlsConfig (nil for the system roots).
func NewClient(auth Auth, timeout time.Duration, tlsConfig *tls.Config) *Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConfig
	return &Client{HTTP: &http.Client{Timeout: timeout, Transport: tr}, Auth: auth, MaxBodyBytes: DefaultMaxBodyBytes}
}

// Error is a failed request, naming the URL and what to do.
type Error struct {
	URL    string
	Status int
	Err    error
	Hint   string
}

func (e *Error) Error() string {
	msg := "TAXII request " + e.URL
	if e.Status != 0 {
		msg += fmt.Sprintf(": HTTP %d", e.Status)
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	if e.Hint != "" {
		msg += ": " + e.Hint
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// get fetches u and decodes its JSON body into v. It returns the response
// headers.
func (c *Client) get(ctx context.Context, u string, v any) (http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, &Error{URL: u, Err: err, Hint: "check the URL"}
	}
	req.Header.Set("Accept", MediaType)
	switch {
	case c.Auth.Token != "":
		req.Header.Set("Authorization", "Bearer "+c.Auth.Token)
	case c.Auth.Username != "":
		req.SetBasicAuth(c.Auth.Username, c.Auth.Password)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, &Error{URL: u, Err: err, Hint: "check that the server is reachable and its certificate is trusted"}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &Error{URL: u, Status: resp.StatusCode, Hint: statusHint(resp.StatusCode)}
	}
	if mt := resp.Header.Get("Content-Type"); !strings.HasPrefix(strings.ReplaceAll(mt, " ", ""), "application/taxii+json") {
		return nil, &Error{URL: u, Err: fmt.Errorf("content type %q", mt), Hint: "check that the URL is a TAXII 2.1 endpoint"}
	}
	max := c.MaxBodyBytes
	if max <= 0 {
		max = DefaultMaxBodyBytes
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, &Error{URL: u, Err: err}
	}
	if int64(len(body)) > max {
		return nil, &Error{URL: u, Err: fmt.Errorf("response larger than %d bytes", max), Hint: "lower the page size (limit) or raise the maximum response size"}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return nil, &Error{URL: u, Err: fmt.Errorf("invalid JSON: %w", err)}
	}
	return resp.Header, nil
}

func statusHint(code int) string {
	switch code {
	case http.StatusUnauthorized:
		return "check the token or user name and password"
	case http.StatusForbidden:
		return "the account may not read this resource: ask the server's operator for access"
	case http.StatusNotFound:
		return "check the API root and collection id"
	case http.StatusNotAcceptable, http.StatusUnsupportedMediaType:
		return "the server does not speak TAXII 2.1"
	}
	return "retry later, or ask the server's operator"
}

// Discovery is the server's discovery resource.
type Discovery struct {
	Title    string   `json:"title"`
	Default  string   `json:"default,omitempty"`
	APIRoots []string `json:"api_roots"`
}

// Discover reads the discovery resource at discoveryURL, such as
// https://taxii.example/taxii2/.
func (c *Client) Discover(ctx context.Context, discoveryURL string) (*Discovery, error) {
	var d Discovery
	_, err := c.get(ctx, discoveryURL, &d)
	return &d, err
}

// APIRoot is an API root's information.
type APIRoot struct {
	Title            string   `json:"title"`
	Versions         []string `json:"versions"`
	MaxContentLength int64    `json:"max_content_length"`
}

// APIRoot reads the information of the API root at rootURL and checks
// that it supports TAXII 2.1.
func (c *Client) APIRoot(ctx context.Context, rootURL string) (*APIRoot, error) {
	var r APIRoot
	if _, err := c.get(ctx, dirURL(rootURL), &r); err != nil {
		return nil, err
	}
	for _, v := range r.Versions {
		if strings.HasPrefix(strings.ReplaceAll(v, " ", ""), MediaType) {
			return &r, nil
		}
	}
	return nil, &Error{URL: rootURL, Err: fmt.Errorf("versions %v", r.Versions), Hint: "the API root does not list TAXII 2.1"}
}

// Collection describes one collection.
type Collection struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	CanRead  bool   `json:"can_read"`
	CanWrite bool   `json:"can_write"`
}

// Collections lists the collections of the API root at rootURL.
func (c *Client) Collections(ctx context.Context, rootURL string) ([]Collection, error) {
	var r struct {
		Collections []Collection `json:"collections"`
	}
	_, err := c.get(ctx, dirURL(rootURL)+"collections/", &r)
	return r.Collections, err
}

// envelope is one page of objects.
type envelope struct {
	More    bool              `json:"more"`
	Next    string            `json:"next,omitempty"`
	Objects []json.RawMessage `json:"objects"`
}

// Page is the result of Objects: the objects and where the pull ended.
type Page struct {
	Objects []json.RawMessage
	// AddedLast is the X-TAXII-Date-Added-Last of the last page, to pass
	// as addedAfter next time; zero when the server sent none.
	AddedLast time.Time
}

// Objects reads the objects of collection id under rootURL added after
// addedAfter (all when zero), following the more and next fields of each
// page (TAXII 2.1 section 3.4).
func (c *Client) Objects(ctx context.Context, rootURL, id string, addedAfter time.Time) (*Page, error) {
	base := dirURL(rootURL) + "collections/" + url.PathEscape(id) + "/objects/"
	page := &Page{}
	next := ""
	for range maxPages {
		q := url.Values{}
		if !addedAfter.IsZero() {
			q.Set("added_after", addedAfter.UTC().Format(time.RFC3339Nano))
		}
		if c.Limit > 0 {
			q.Set("limit", fmt.Sprint(c.Limit))
		}
		if next != "" {
			q.Set("next", next)
		}
		u := base
		if len(q) > 0 {
			u += "?" + q.Encode()
		}
		var env envelope
		h, err := c.get(ctx, u, &env)
		if err != nil {
			return nil, err
		}
		page.Objects = append(page.Objects, env.Objects...)
		if t, err := time.Parse(time.RFC3339Nano, h.Get("X-TAXII-Date-Added-Last")); err == nil {
			page.AddedLast = t
		}
		if !env.More {
			return page, nil
		}
		if env.Next == "" {
			return nil, &Error{URL: u, Err: errors.New("more is true without next"), Hint: "the server's pagination is broken: ask its operator"}
		}
		next = env.Next
	}
	return nil, &Error{URL: base, Err: fmt.Errorf("more than %d pages", maxPages), Hint: "raise the page size (limit)"}
}

// dirURL returns u ending in a slash, as TAXII resource URLs do.
func dirURL(u string) string {
	if strings.HasSuffix(u, "/") {
		return u
	}
	return u + "/"
}
