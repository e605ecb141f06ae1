// Package blockpage serves the page that redirected names lead to. The page
// names the list that blocked the name and the reason, and takes "report
// a mistake" submissions into a review queue file. Where the client's
// flavour allows it, the page also offers "proceed anyway", which exempts
// the client from the block for a while. It stores no client address: the
// exemptions live in memory (package proceed).
package blockpage

import (
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"bulwark/internal/policy"
	"bulwark/internal/proceed"

	"github.com/miekg/dns"
)

// Checker finds the decision for a name in the flavour of a client, and the
// proceed anyway setting of that flavour.
type Checker interface {
	CheckClient(client netip.Addr, name string) (d policy.Decision, matched bool)
	ProceedRule(client netip.Addr) proceed.Rule
}

// Config sets up a Server.
type Config struct {
	// Organization and Contact are shown on the page.
	Organization, Contact string
	// Reviews is the review queue; nil turns reports off.
	Reviews *ReviewQueue
	// Exemptions receives the proceed anyway exemptions; nil turns
	// proceed anyway off.
	Exemptions *proceed.Exemptions
	// Reported is called with the name and comment of each report once
	// it is queued, such as to send a block of the intel store back to
	// review; nil for none.
	Reported func(name, comment string)
}

// Server is the block page. It is safe for concurrent use.
type Server struct {
	cfg   Config
	check Checker
	log   *slog.Logger
	now   func() time.Time
}

// New returns a Server. now may be nil for time.Now; it must be the clock
// of the pipeline, which checks the exemptions.
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
	mux.HandleFunc("POST /proceed", s.proceed)
	mux.HandleFunc("GET /", s.page)
	return mux
}

// pageData fills the page template.
type pageData struct {
	Name, List, Category, Since, Trigger string
	// Reason is the block's own reason, for lists that give one.
	Reason                   string
	Blocked, Lawful, Reports bool
	Organization, Contact    string
	// ProceedFor is how long proceed anyway lasts, such as "10 minutes",
	// or "" when the client's flavour does not allow it for this block.
	ProceedFor string
}

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{if .Blocked}}Blocked: {{.Name}}{{else}}{{.Name}}{{end}}</title></head>
<body>
{{if .Blocked}}
<h1>{{.Name}} is blocked</h1>
{{if .Lawful}}<p>Access to this name is blocked by law, under the list <b>{{.List}}</b>. This notice is shown as the law requires.</p>
{{else}}<p>This name was blocked because it is listed as <b>{{.Category}}</b> in the list <b>{{.List}}</b>{{if ne .Trigger .Name}} (through {{.Trigger}}){{end}}, loaded {{.Since}}.</p>
{{if .Reason}}<p>Reason: {{.Reason}}</p>{{end}}{{end}}
{{else}}
<h1>{{.Name}} is not blocked</h1>
<p>No list of this resolver blocks this name for you now.</p>
{{end}}
{{if .Organization}}<p>Operator: {{.Organization}}{{if .Contact}}, contact: {{.Contact}}{{end}}</p>{{end}}
{{if .ProceedFor}}
<form method="post" action="/proceed">
<input type="hidden" name="name" value="{{.Name}}">
<p>If you trust this site and accept the risk, you can open it anyway. It stays open for you for {{.ProceedFor}}, then it is blocked again.</p>
<p><button type="submit">Proceed anyway</button></p>
</form>
{{end}}
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
	client := clientAddr(r)
	d, matched := s.check.CheckClient(client, name)
	data := pageData{
		Name: strings.TrimSuffix(name, "."), Organization: s.cfg.Organization, Contact: s.cfg.Contact,
		Reports: s.cfg.Reviews != nil,
	}
	if matched && d.Blocked() {
		data.Blocked = true
		data.List, data.Category, data.Trigger = d.List.Name, d.List.Category, strings.TrimSuffix(d.Trigger, ".")
		data.Reason = d.Verdict.Reason
		data.Lawful = d.List.Category == policy.CategoryLawful
		data.Since = d.List.Loaded.UTC().Format("2006-01-02 15:04 UTC")
		if rule := s.check.ProceedRule(client); s.cfg.Exemptions != nil && rule.Allows(d) {
			data.ProceedFor = humanDuration(rule.Duration)
		}
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

// clientAddr returns the client's address, used only to pick its flavour
// and to key its exemptions in memory.
func clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr()
}
