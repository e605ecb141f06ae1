// Package blockpage serves the page that redirected names lead to. The page
// names the list that blocked the name and the reason, and takes "report
// a mistake" submissions into a review queue file. It stores no client
// address.
package blockpage

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"bulwark/internal/policy"

	"github.com/miekg/dns"
)

// Checker finds the decision for a name in the flavour of a client.
type Checker interface {
	CheckClient(client netip.Addr, name string) (d policy.Decision, matched bool)
}

// Config sets up a Server.
type Config struct {
	// Organization and Contact are shown on the page.
	Organization, Contact string
	// ReviewFile is the review queue: one JSON object per line. Empty
	// turns reports off.
	ReviewFile string
}

// Server is the block page. It is safe for concurrent use.
type Server struct {
	cfg   Config
	check Checker
	log   *slog.Logger
	now   func() time.Time
	mu    sync.Mutex // serializes appends to the review file
}

// New returns a Server. now may be nil for time.Now.
func New(cfg Config, check Checker, log *slog.Logger, now func() time.Time) *Server {
	if now == nil {
		now = time.Now
	}
	return &Server{cfg: cfg, check: check, log: log.With("component", "blockpage"), now: now}
}

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /report", s.report)
	mux.HandleFunc("GET /", s.page)
	return mux
}

// Report is one line of the review queue.
type Report struct {
	Time     time.Time `json:"time"`
	Name     string    `json:"name"`
	List     string    `json:"list,omitempty"`
	Category string    `json:"category,omitempty"`
	Comment  string    `json:"comment,omitempty"`
}

// pageData fills the page template.
type pageData struct {
	Name, List, Category, Since, Trigger string
	Blocked, Lawful, Reports             bool
	Organization, Contact                string
}

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{if .Blocked}}Blocked: {{.Name}}{{else}}{{.Name}}{{end}}</title></head>
<body>
{{if .Blocked}}
<h1>{{.Name}} is blocked</h1>
{{if .Lawful}}<p>Access to this name is blocked by law, under the list <b>{{.List}}</b>. This notice is shown as the law requires.</p>
{{else}}<p>This name was blocked because it is listed as <b>{{.Category}}</b> in the list <b>{{.List}}</b>{{if ne .Trigger .Name}} (through {{.Trigger}}){{end}}, loaded {{.Since}}.</p>{{end}}
{{else}}
<h1>{{.Name}} is not blocked</h1>
<p>No list of this resolver blocks this name for you now.</p>
{{end}}
{{if .Organization}}<p>Operator: {{.Organization}}{{if .Contact}}, contact: {{.Contact}}{{end}}</p>{{end}}
{{if and .Blocked .Reports (not .Lawful)}}
<form method="post" action="/report">
<input type="hidden" name="name" value="{{.Name}}">
<p><label>If this block is a mistake, tell us why:<br><textarea name="comment" rows="4" cols="60" maxlength="1000"></textarea></label></p>
<p><button type="submit">Report a mistake</button></p>
</form>
{{end}}
</body></html>
`))

// page explains the block of the name in the Host header, for the client's
// flavour.
func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	name := dns.CanonicalName(host)
	if _, ok := dns.IsDomainName(name); !ok || host == "" {
		http.Error(w, "invalid Host header", http.StatusBadRequest)
		return
	}
	d, matched := s.check.CheckClient(clientAddr(r), name)
	data := pageData{
		Name: strings.TrimSuffix(name, "."), Organization: s.cfg.Organization, Contact: s.cfg.Contact,
		Reports: s.cfg.ReviewFile != "",
	}
	if matched && d.Blocked() {
		data.Blocked = true
		data.List, data.Category, data.Trigger = d.List.Name, d.List.Category, strings.TrimSuffix(d.Trigger, ".")
		data.Lawful = d.List.Category == policy.CategoryLawful
		data.Since = d.List.Loaded.UTC().Format("2006-01-02 15:04 UTC")
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case data.Lawful:
		w.WriteHeader(http.StatusUnavailableForLegalReasons)
	case data.Blocked:
		w.WriteHeader(http.StatusForbidden)
	}
	pageTemplate.Execute(w, data)
}

// report appends a "report a mistake" submission to the review queue.
func (s *Server) report(w http.ResponseWriter, r *http.Request) {
	if s.cfg.ReviewFile == "" {
		http.Error(w, "reports are not taken here", http.StatusServiceUnavailable)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "invalid form", http.StatusBadRequest)
		return
	}
	name := dns.CanonicalName(r.PostForm.Get("name"))
	if _, ok := dns.IsDomainName(name); !ok || r.PostForm.Get("name") == "" {
		http.Error(w, "invalid name", http.StatusBadRequest)
		return
	}
	comment := r.PostForm.Get("comment")
	if len(comment) > 1000 {
		comment = comment[:1000]
	}
	rep := Report{Time: s.now().UTC().Truncate(time.Second), Name: name, Comment: comment}
	if d, matched := s.check.CheckClient(clientAddr(r), name); matched && d.Blocked() {
		if d.List.Category == policy.CategoryLawful {
			http.Error(w, "blocks by law cannot be reported here", http.StatusForbidden)
			return
		}
		rep.List, rep.Category = d.List.Name, d.List.Category
	}
	if err := s.appendReport(rep); err != nil {
		s.log.Error("cannot write the review queue", "file", s.cfg.ReviewFile, "error", err)
		http.Error(w, "the report could not be stored; try again later", http.StatusInternalServerError)
		return
	}
	s.log.Info("block reported", "name", name, "list", rep.List)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, "<!DOCTYPE html><html><body><p>Thank you: the report for %s is queued for review.</p></body></html>\n", template.HTMLEscapeString(strings.TrimSuffix(name, ".")))
}

// appendReport appends one JSON line and syncs it to disk.
func (s *Server) appendReport(rep Report) error {
	line, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.OpenFile(s.cfg.ReviewFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	_, werr := f.Write(append(line, '\n'))
	serr := f.Sync()
	cerr := f.Close()
	return errors.Join(werr, serr, cerr)
}

// clientAddr returns the client's address, used only to pick its flavour.
func clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr()
}
