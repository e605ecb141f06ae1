// Package admin serves the administration API: JSON over HTTP for
// operators and their tools. It has no authentication, so it must listen on
// a loopback or management address only. The exception is the public lookup
// of why a name is blocked: its three endpoints are meant to be exposed
// through a reverse proxy, and they reveal nothing about clients or tenants.
//
// Endpoints:
//
//	GET    /v1/dnssec/negative-trust-anchors          list the negative trust anchors
//	POST   /v1/dnssec/negative-trust-anchors          add one: {"domain": "...", "lifetime": "1h"}
//	DELETE /v1/dnssec/negative-trust-anchors/{domain} remove one
//	DELETE /v1/dnssec/negative-trust-anchors?domain=. remove one, such as the root
//	POST   /v1/cache/flush                            {"zone": "..."}: drop cached data at and below zone
//	POST   /v1/cache/flush                            {"name": "..."}: drop cached data of one name, every type
//	GET    /v1/cache?name=N                           the RRsets, negative answers and responses cached for N
//	GET    /v1/trace?name=N&type=T&flavour=F          resolve N with a trace of every step; format=text for text
//	GET    /v1/policy/lists                           the state of every list
//	POST   /v1/policy/reload                          read every list again
//	GET    /v1/policy/check?name=N&flavour=F          what flavour F (default protective) does with N
//	GET    /v1/intel/entries?state=S                  the candidate store's entries, of one state when given
//	GET    /v1/intel/entries/{name}                   one entry with its history
//	POST   /v1/intel/confirm                          {"name": "...", "by": "...", "note": "..."}: block the entry
//	POST   /v1/intel/reject                           the same body: the entry never blocks
//	GET    /v1/intel/source-scores                    each source's reports and false positives
//
// Public lookup:
//
//	GET    /v1/policy/lookup?name=N                   which public flavours block N, and through which lists
//	GET    /v1/intel/stats                            blocks of the candidate store by category and day
//	GET    /lookup?name=N                             the same as an HTML page with a form
//	POST   /lookup/report                             "report a mistake" from that page, into the review queue
//	GET    /v1/policy/notify                          NOTIFY messages accepted and refused for transferred lists
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"bulwark/internal/policy"
	"bulwark/internal/policyload"
	"bulwark/internal/resolver"
	"bulwark/internal/xfr"

	"github.com/miekg/dns"
	"golang.org/x/net/idna"
)

// Negative trust anchors without a lifetime last DefaultLifetime. None may
// last longer than MaxLifetime, so that a forgotten one cannot turn
// validation off for good (RFC 7646 section 2).
const (
	DefaultLifetime = time.Hour
	MaxLifetime     = 7 * 24 * time.Hour
)

// Resolver is the part of the resolver the API changes.
type Resolver interface {
	AddNegativeTrustAnchor(domain string, expires time.Time)
	RemoveNegativeTrustAnchor(domain string) bool
	NegativeTrustAnchors() []resolver.NegativeTrustAnchor
}

// Flusher drops cached data at and below a zone and returns how many
// entries it removed. The resolver's Flush also drops validated NSEC spans
// and proven unsigned delegations.
type Flusher interface {
	Flush(zone string) int
}

// Policy is the part of the list manager the API reads and reloads.
type Policy interface {
	Lists() []policyload.ListState
	Reload(all bool) error
	Check(flavour, name string) (d policy.Decision, matched, ok bool)
	// Flavours returns every flavour of the current policy, tenants'
	// flavours included.
	Flavours() []*policy.Flavour
}

// Server is the administration API server.
type Server struct {
	res    Resolver
	cache  Flusher
	policy Policy
	log    *slog.Logger
	now    func() time.Time
	http   *http.Server
	ln     net.Listener
	// lookupCfg sets up the public lookup.
	lookupCfg LookupConfig
	// tracer serves traces, of traceFlavour unless a request names one.
	tracer       Tracer
	traceFlavour string
	// guard lists the protected zones; nil when the guard is off.
	guard ProtectedZones
	// intel lists the findings of the traffic analysis; nil when off.
	intel IntelFindings
	// intelStore is the candidate store; nil when off.
	intelStore IntelStore
	// sources reports the indicator sources; nil without any.
	sources IntelSources
}

// New returns a Server for res, whose cached data cache flushes. now may be
// nil for time.Now.
func New(res Resolver, cache Flusher, log *slog.Logger, now func() time.Time) *Server {
	if now == nil {
		now = time.Now
	}
	s := &Server{res: res, cache: cache, log: log.With("component", "admin"), now: now}
	mux := http.NewServeMux()
	r := routes{mux: mux}
	r.handle("GET /v1/dnssec/negative-trust-anchors", s.listNTAs)
	r.handle("POST /v1/dnssec/negative-trust-anchors", s.addNTA)
	r.handle("DELETE /v1/dnssec/negative-trust-anchors/{domain}", s.removeNTA)
	r.handle("DELETE /v1/dnssec/negative-trust-anchors", s.removeNTA)
	r.handle("POST /v1/cache/flush", s.flush)
	r.handle("GET /v1/cache", s.inspectCache)
	r.handle("GET /v1/trace", s.trace)
	r.handle("GET /v1/guard/protected", s.guardProtected)
	r.handle("GET /v1/intel/findings", s.intelFindings)
	s.intelStoreRoutes(&r)
	r.handle("GET /v1/intel/sources", s.intelSources)
	r.handle("GET /v1/policy/lists", s.policyLists)
	r.handle("POST /v1/policy/reload", s.policyReload)
	r.handle("GET /v1/policy/check", s.policyCheck)
	r.handle("GET /v1/policy/lookup", s.policyLookup)
	r.handle("GET /lookup", s.lookupPage)
	r.handle("POST /lookup/report", s.lookupReport)
	r.handle("GET /v1/policy/notify", s.policyNotify)
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		if allowed := r.allowed(req.URL.Path); allowed != "" {
			w.Header().Set("Allow", allowed)
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s is not served: use %s", req.Method, req.URL.Path, allowed))
			return
		}
		writeError(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s %s: see the list in the API documentation", req.Method, req.URL.Path))
	})
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second}
	return s
}

// NotifyCounter is the part of the list manager that counts the NOTIFY
// messages of transferred lists; ok is false when no list is transferred.
type NotifyCounter interface {
	NotifyStats() (stats xfr.NotifyStats, ok bool)
}

func (s *Server) policyNotify(w http.ResponseWriter, r *http.Request) {
	counter, ok := s.policy.(NotifyCounter)
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "no list manager")
		return
	}
	stats, ok := counter.NotifyStats()
	if !ok {
		writeError(w, http.StatusNotFound, "no list is transferred, so NOTIFY messages get NOTIMP")
		return
	}
	writeJSON(w, http.StatusOK, stats)
}

// SetPolicy gives the API the list manager. Without one the policy
// endpoints return 503.
func (s *Server) SetPolicy(p Policy) { s.policy = p }

func (s *Server) policyLists(w http.ResponseWriter, r *http.Request) {
	if s.policy == nil {
		writeError(w, http.StatusServiceUnavailable, "no list manager")
		return
	}
	lists := s.policy.Lists()
	if lists == nil {
		lists = []policyload.ListState{}
	}
	writeJSON(w, http.StatusOK, lists)
}

func (s *Server) policyReload(w http.ResponseWriter, r *http.Request) {
	if s.policy == nil {
		writeError(w, http.StatusServiceUnavailable, "no list manager")
		return
	}
	if err := s.policy.Reload(true); err != nil {
		s.log.Error("list reload failed", "error", err)
		writeError(w, http.StatusInternalServerError, "some lists failed and keep their previous version: "+err.Error())
		return
	}
	s.log.Info("lists reloaded through the API")
	writeJSON(w, http.StatusOK, s.policy.Lists())
}

// checkJSON is the response body of the policy check endpoint.
type checkJSON struct {
	Name     string `json:"name"`
	Flavour  string `json:"flavour"`
	Blocked  bool   `json:"blocked"`
	Allowed  bool   `json:"allowlisted,omitempty"`
	List     string `json:"list,omitempty"`
	Category string `json:"category,omitempty"`
	Action   string `json:"action,omitempty"`
	Trigger  string `json:"trigger,omitempty"`
	Since    string `json:"list_loaded,omitempty"`
}

func (s *Server) policyCheck(w http.ResponseWriter, r *http.Request) {
	if s.policy == nil {
		writeError(w, http.StatusServiceUnavailable, "no list manager")
		return
	}
	raw := r.URL.Query().Get("name")
	if ascii, err := idna.Lookup.ToASCII(strings.TrimSuffix(raw, ".")); err == nil && ascii != "" {
		raw = ascii // lists hold internationalised names as punycode
	}
	name, ok := parseDomain(w, "name", raw)
	if !ok {
		return
	}
	flavour := r.URL.Query().Get("flavour")
	if flavour == "" {
		flavour = "protective"
	}
	d, matched, known := s.policy.Check(flavour, name)
	if !known {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown flavour %q", shorten(flavour)))
		return
	}
	out := checkJSON{Name: name, Flavour: flavour}
	if matched {
		out.Blocked, out.Allowed = d.Blocked(), !d.Blocked()
		out.List, out.Category, out.Trigger = d.List.Name, d.List.Category, d.Trigger
		out.Action = d.Verdict.Action.String()
		out.Since = d.List.Loaded.UTC().Truncate(time.Second).Format(time.RFC3339)
	}
	writeJSON(w, http.StatusOK, out)
}

// Handler returns the HTTP handler, for tests.
func (s *Server) Handler() http.Handler { return s.http.Handler }

// Serve serves the API on ln in the background until Shutdown, which
// closes ln.
func (s *Server) Serve(ln net.Listener) {
	s.ln = ln
	s.log.Info("listening", "listener", ln.Addr().String())
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin API stopped", "error", err)
		}
	}()
}

// Shutdown stops the server, waiting for requests in progress until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.http.Shutdown(ctx)
}

// ntaJSON is a negative trust anchor in responses.
type ntaJSON struct {
	Domain string `json:"domain"`
	// Expires is an RFC 3339 time, absent for no expiry.
	Expires *time.Time `json:"expires,omitempty"`
}

// ntaRequest is a negative trust anchor to add.
type ntaRequest struct {
	Domain string `json:"domain"`
	// Lifetime is a Go duration such as "90m".
	Lifetime string `json:"lifetime"`
	// Expires is an RFC 3339 time, parsed here for a clear error.
	Expires string `json:"expires"`
}

func (s *Server) listNTAs(w http.ResponseWriter, r *http.Request) {
	list := s.res.NegativeTrustAnchors()
	sort.Slice(list, func(i, j int) bool { return list[i].Domain < list[j].Domain })
	out := make([]ntaJSON, 0, len(list))
	for _, n := range list {
		j := ntaJSON{Domain: n.Domain}
		if !n.Expires.IsZero() {
			exp := n.Expires.UTC().Truncate(time.Second)
			j.Expires = &exp
		}
		out = append(out, j)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) addNTA(w http.ResponseWriter, r *http.Request) {
	var req ntaRequest
	if !readJSON(w, r, &req) {
		return
	}
	domain, ok := parseDomain(w, "domain", req.Domain)
	if !ok {
		return
	}
	now := s.now()
	expires := now.Add(DefaultLifetime)
	switch {
	case req.Lifetime != "" && req.Expires != "":
		writeError(w, http.StatusBadRequest, "give lifetime or expires, not both")
		return
	case req.Lifetime != "":
		d, err := time.ParseDuration(req.Lifetime)
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid lifetime %q: give a positive duration such as \"2h\"", req.Lifetime))
			return
		}
		expires = now.Add(d)
	case req.Expires != "":
		t, err := time.Parse(time.RFC3339, req.Expires)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid expires %q: give an RFC 3339 time such as \"2030-01-02T15:04:05Z\"", req.Expires))
			return
		}
		expires = t
		if !expires.After(now) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("expires %s is not in the future", expires.Format(time.RFC3339)))
			return
		}
	}
	if expires.Sub(now) > MaxLifetime {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("lifetime of %s is longer than the maximum %s", expires.Sub(now).Round(time.Second), MaxLifetime))
		return
	}
	s.res.AddNegativeTrustAnchor(domain, expires)
	flushed := s.cache.Flush(domain)
	s.log.Info("negative trust anchor added", "domain", domain, "expires", expires.UTC().Format(time.RFC3339), "cache_entries_flushed", flushed)
	exp := expires.UTC().Truncate(time.Second)
	writeJSON(w, http.StatusCreated, ntaJSON{Domain: domain, Expires: &exp})
}

func (s *Server) removeNTA(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("domain")
	if name == "" {
		name = r.URL.Query().Get("domain")
	}
	domain, ok := parseDomain(w, "domain", name)
	if !ok {
		return
	}
	if !s.res.RemoveNegativeTrustAnchor(domain) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no negative trust anchor for %s", domain))
		return
	}
	flushed := s.cache.Flush(domain)
	s.log.Info("negative trust anchor removed", "domain", domain, "cache_entries_flushed", flushed)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) flush(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Zone string `json:"zone"`
		Name string `json:"name"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	if req.Name != "" {
		if req.Zone != "" {
			writeError(w, http.StatusBadRequest, "give zone or name, not both")
			return
		}
		s.flushName(w, req.Name)
		return
	}
	if req.Zone == "" {
		writeError(w, http.StatusBadRequest, `missing zone or name: give {"zone": "example.com"} to flush a zone and all below it, or {"name": "www.example.com"} for one name`)
		return
	}
	zone, ok := parseDomain(w, "zone", req.Zone)
	if !ok {
		return
	}
	n := s.cache.Flush(zone)
	s.log.Info("cache flushed", "zone", zone, "entries", n)
	writeJSON(w, http.StatusOK, map[string]any{"zone": zone, "entries_removed": n})
}

// parseDomain checks the domain name in the request field named field and
// returns it canonical.
func parseDomain(w http.ResponseWriter, field, name string) (string, bool) {
	if name == "" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("missing %s: give a domain name such as \"example.com\"", field))
		return "", false
	}
	if _, ok := dns.IsDomainName(name); !ok || strings.IndexFunc(name, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid domain name %q: use labels of 1 to 63 letters, digits or hyphens, 253 characters in all", shorten(name)))
		return "", false
	}
	return dns.CanonicalName(name), true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// shorten returns s cut to 100 bytes with "..." appended when longer, for
// echoing a bad value in an error without echoing a huge one whole.
func shorten(s string) string {
	const limit = 100
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// routes registers the endpoints on a mux and remembers the methods of each
// path, so that a request with another method gets 405 with an Allow header
// instead of the catch-all's 404.
type routes struct {
	mux     *http.ServeMux
	methods []route
}

// route is one registered path; a path ending in a wildcard segment such
// as {domain} matches any one segment there.
type route struct {
	method, path string
}

func (r *routes) handle(pattern string, h http.HandlerFunc) {
	r.mux.HandleFunc(pattern, h)
	method, path, _ := strings.Cut(pattern, " ")
	r.methods = append(r.methods, route{method: method, path: path})
}

// allowed returns the methods served at path, joined for an Allow header,
// or "" when no endpoint has that path.
func (r *routes) allowed(path string) string {
	var methods []string
	for _, rt := range r.methods {
		if !pathMatches(rt.path, path) || slices.Contains(methods, rt.method) {
			continue
		}
		methods = append(methods, rt.method)
		if rt.method == http.MethodGet {
			methods = append(methods, http.MethodHead)
		}
	}
	return strings.Join(methods, ", ")
}

func pathMatches(pattern, path string) bool {
	i := strings.IndexByte(pattern, '{')
	if i < 0 {
		return pattern == path
	}
	rest, ok := strings.CutPrefix(path, pattern[:i])
	return ok && rest != "" && !strings.Contains(rest, "/")
}
