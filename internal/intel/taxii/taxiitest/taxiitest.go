// Package taxiitest is a TAXII 2.1 server for tests: one API root with
// collections of STIX objects, bearer-token authentication, added_after
// filtering and pagination by limit and next (OASIS TAXII Version 2.1
// sections 3.4 and 5.4). It keeps everything in memory.
package taxiitest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MediaType is the media type of TAXII 2.1 responses.
const MediaType = "application/taxii+json;version=2.1"

// Server serves the discovery resource at /taxii2/ and the API root at
// /api1/. Set Token before serving to require it as a bearer token.
type Server struct {
	// Token is the bearer token requests must carry; empty accepts any.
	Token string
	// PageSize is the most objects per page when the client sends no
	// smaller limit. Default 100.
	PageSize int

	mu          sync.Mutex
	collections map[string][]entry
	requests    []string
}

type entry struct {
	added  time.Time
	object json.RawMessage
}

// RootPath is the path of the API root.
const RootPath = "/api1/"

// New returns a server without collections.
func New(token string) *Server {
	return &Server{Token: token, PageSize: 100, collections: map[string][]entry{}}
}

// Add adds object to collection id as added at added; objects must be
// added in the order of added.
func (s *Server) Add(id string, object json.RawMessage, added time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.collections[id] = append(s.collections[id], entry{added: added.UTC(), object: object})
}

// Requests returns the path and query of every objects request so far.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.Token != "" && r.Header.Get("Authorization") != "Bearer "+s.Token {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if !strings.HasPrefix(strings.ReplaceAll(r.Header.Get("Accept"), " ", ""), "application/taxii+json") {
		w.WriteHeader(http.StatusNotAcceptable)
		return
	}
	w.Header().Set("Content-Type", MediaType)
	switch {
	case r.URL.Path == "/taxii2/":
		fmt.Fprintf(w, `{"title":"taxiitest","default":%q,"api_roots":[%q]}`, RootPath, RootPath)
	case r.URL.Path == RootPath:
		fmt.Fprintf(w, `{"title":"taxiitest root","versions":[%q],"max_content_length":10485760}`, MediaType)
	case r.URL.Path == RootPath+"collections/":
		s.listCollections(w)
	case strings.HasPrefix(r.URL.Path, RootPath+"collections/") && strings.HasSuffix(r.URL.Path, "/objects/"):
		id := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, RootPath+"collections/"), "/objects/")
		s.objects(w, r, id)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func (s *Server) listCollections(w http.ResponseWriter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	type collection struct {
		ID       string `json:"id"`
		Title    string `json:"title"`
		CanRead  bool   `json:"can_read"`
		CanWrite bool   `json:"can_write"`
	}
	out := struct {
		Collections []collection `json:"collections"`
	}{}
	for id := range s.collections {
		out.Collections = append(out.Collections, collection{ID: id, Title: id, CanRead: true})
	}
	json.NewEncoder(w).Encode(out)
}

// objects serves one page of collection id: the objects added after
// added_after, from the offset in next, at most limit of them.
func (s *Server) objects(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r.URL.RequestURI())
	all, ok := s.collections[id]
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	var after time.Time
	if a := q.Get("added_after"); a != "" {
		t, err := time.Parse(time.RFC3339Nano, a)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		after = t
	}

	var matched []entry
	for _, e := range all {
		if e.added.After(after) {
			matched = append(matched, e)
		}
	}

	// next is the offset of the page in the matched objects.
	start, _ := strconv.Atoi(q.Get("next"))
	start = min(max(start, 0), len(matched))
	size := s.PageSize
	if l, err := strconv.Atoi(q.Get("limit")); err == nil && l > 0 && l < size {
		size = l
	}
	end := min(start+size, len(matched))
	page := matched[start:end]

	env := struct {
		More    bool              `json:"more"`
		Next    string            `json:"next,omitempty"`
		Objects []json.RawMessage `json:"objects"`
	}{More: end < len(matched), Objects: []json.RawMessage{}}
	if env.More {
		env.Next = strconv.Itoa(end)
	}
	for _, e := range page {
		env.Objects = append(env.Objects, e.object)
	}
	if len(page) > 0 {
		w.Header().Set("X-TAXII-Date-Added-First", page[0].added.Format(time.RFC3339Nano))
		w.Header().Set("X-TAXII-Date-Added-Last", page[len(page)-1].added.Format(time.RFC3339Nano))
	}
	json.NewEncoder(w).Encode(env)
}
