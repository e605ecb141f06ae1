package admin

import (
	"html/template"
	"net/http"
	"strings"
	"time"

	"bulwark/internal/blockpage"
	"bulwark/internal/policy"
)

// lookupPageData fills the lookup page template.
type lookupPageData struct {
	// Input is the text the visitor typed, shown again in the form.
	Input string
	// Error explains why Input is not a name that can be looked up.
	Error string
	// Result is nil until a valid name was given.
	Result *lookupJSON
	// Lawful is set when a lawful list blocks the name, which takes no
	// reports.
	Lawful                bool
	Reports               bool
	Organization, Contact string
}

// actionText describes in plain words what clients receive for each action.
var actionText = map[string]string{
	"nxdomain":   "an answer that the name does not exist (NXDOMAIN)",
	"nodata":     "an answer without any address (NODATA)",
	"redirect":   "the address of the block page instead of the site's",
	"drop":       "no answer at all",
	"tcp-only":   "a truncated answer over UDP, and the real answer over TCP",
	"local-data": "records set by the list instead of the site's",
}

var lookupFuncs = template.FuncMap{
	"action": func(a string) string {
		if t, ok := actionText[a]; ok {
			return t
		}
		return a
	},
	"trigger": func(t string) string {
		if below, ok := strings.CutPrefix(t, "*."); ok {
			return "every name below " + displayName(below)
		}
		return displayName(t)
	},
	"date": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
}

var lookupTemplate = template.Must(template.New("lookup").Funcs(lookupFuncs).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Why is a name blocked?{{with .Result}} {{.DisplayName}}{{end}}</title></head>
<body>
<h1>Why is a name blocked?</h1>
<form method="get" action="lookup">
<p><label>Domain name: <input type="text" name="name" value="{{.Input}}" size="50" maxlength="2048" required></label>
<button type="submit">Look up</button></p>
</form>
{{with .Error}}<p><strong>{{.}}</strong></p>{{end}}
{{with .Result}}
{{if .Blocked}}
<h2>{{.DisplayName}} is blocked</h2>
{{range .Flavours}}
<h3>In the {{.Flavour}} policy</h3>
<p>Clients get {{action .Action}}{{if .EDE}}, with Extended DNS Error {{.EDE}} ({{.EDEName}}){{end}}. The first list below decides the answer.</p>
<table>
<tr><th>List</th><th>Category</th><th>Matching rule</th><th>Listed at least since</th></tr>
{{range .Lists}}<tr><td>{{.List}}</td><td>{{.Category}}</td><td>{{trigger .Trigger}}</td><td>{{date .ListedSince}}</td></tr>
{{end}}</table>
{{end}}
<p>"Listed at least since" is when the list's current copy was downloaded or its file last changed. The name may have been listed for longer: this resolver does not record when each name was added.</p>
{{else}}
<h2>{{.DisplayName}} is not blocked</h2>
{{end}}
{{if .NotBlockedIn}}<p>Policies that do not block it: {{range $i, $f := .NotBlockedIn}}{{if $i}}, {{end}}{{$f}}{{end}}.</p>{{end}}
<p>Policies of customers' own networks are not shown here.</p>
{{end}}
{{if and .Result .Result.Blocked .Reports (not .Lawful)}}
<form method="post" action="lookup/report">
<input type="hidden" name="name" value="{{.Result.Name}}">
<p><label>If this block is a mistake, tell us why:<br><textarea name="comment" rows="4" cols="60" maxlength="1000"></textarea></label></p>
<p><button type="submit">Report a mistake</button></p>
</form>
{{end}}
{{if .Lawful}}<p>This name is blocked by law. Blocks by law cannot be reported here.</p>{{end}}
{{if .Organization}}<p>Operator: {{.Organization}}{{if .Contact}}, contact: {{.Contact}}{{end}}</p>{{end}}
</body></html>
`))

var reportedTemplate = template.Must(template.New("reported").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Report queued</title></head>
<body>
<p>Thank you: the report for {{.DisplayName}} is queued for review.</p>
<p><a href="../lookup?name={{.Name}}">Back to the lookup</a></p>
</body></html>
`))

// setPublicHeaders sets the headers of the pages meant for the public: no
// caching, no framing, no scripts, forms only to this server.
func setPublicHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

// lookupPage serves GET /lookup: the form, and the result for ?name=N.
func (s *Server) lookupPage(w http.ResponseWriter, r *http.Request) {
	input := r.URL.Query().Get("name")
	data := lookupPageData{
		Input: input, Organization: s.lookupCfg.Organization, Contact: s.lookupCfg.Contact,
		Reports: s.lookupCfg.Reviews != nil,
	}
	status := http.StatusOK
	switch name, err := lookupName(input); {
	case input == "":
	case s.policy == nil:
		data.Error, status = "The lookup is not available: this resolver has no lists.", http.StatusServiceUnavailable
	case err != nil:
		data.Error, status = capitalize(err.Error())+".", http.StatusBadRequest
	default:
		result := s.lookup(name)
		data.Result, data.Lawful = &result, blockedByLaw(result)
	}
	setPublicHeaders(w)
	w.WriteHeader(status)
	lookupTemplate.Execute(w, data)
}

// lookupReport serves POST /lookup/report: a "report a mistake" submission
// from the lookup page, appended to the block page's review queue.
func (s *Server) lookupReport(w http.ResponseWriter, r *http.Request) {
	if s.lookupCfg.Reviews == nil || s.policy == nil {
		http.Error(w, "reports are not taken here", http.StatusServiceUnavailable)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "invalid form: send a URL-encoded form of 4 KiB at most", http.StatusBadRequest)
		return
	}
	name, err := lookupName(r.PostForm.Get("name"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	result := s.lookup(name)
	switch {
	case !result.Blocked:
		http.Error(w, result.DisplayName+" is not blocked: there is nothing to report", http.StatusBadRequest)
		return
	case blockedByLaw(result):
		http.Error(w, "blocks by law cannot be reported here", http.StatusForbidden)
		return
	}

	deciding := decidingList(result.Flavours[0])
	rep := blockpage.Report{
		Time: s.now().UTC().Truncate(time.Second), Name: name, List: deciding.List, Category: deciding.Category,
		Comment: blockpage.TrimComment(r.PostForm.Get("comment")), Source: blockpage.SourceLookup,
	}
	if err := s.lookupCfg.Reviews.Append(rep); err != nil {
		s.log.Error("cannot write the review queue", "file", s.lookupCfg.Reviews.Path(), "error", err)
		http.Error(w, "the report could not be stored; try again later", http.StatusInternalServerError)
		return
	}
	s.log.Info("block reported through the lookup", "name", name, "list", rep.List)
	setPublicHeaders(w)
	reportedTemplate.Execute(w, struct{ Name, DisplayName string }{name, result.DisplayName})
}

// blockedByLaw reports whether a lawful list decides the block in any
// flavour. Lawful lists apply to every flavour and are checked first, so
// then they decide in all of them.
func blockedByLaw(result lookupJSON) bool {
	for _, f := range result.Flavours {
		if decidingList(f).Category == policy.CategoryLawful {
			return true
		}
	}
	return false
}

// decidingList returns the list that decides the block of f.
func decidingList(f flavourBlockJSON) listMatchJSON {
	for _, l := range f.Lists {
		if l.Decides {
			return l
		}
	}
	return listMatchJSON{}
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
