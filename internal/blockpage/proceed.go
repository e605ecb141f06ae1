package blockpage

import (
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"bulwark/internal/pipeline"
	"bulwark/internal/policy"
)

// proceedData fills the page shown after proceed anyway.
type proceedData struct {
	Name, Duration, Until string
	// Wait is how long the client may keep the blocked answer, in seconds.
	Wait int
}

var proceedTemplate = template.Must(template.New("proceed").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Proceed to {{.Name}}</title></head>
<body>
<h1>{{.Name}} is open for you for {{.Duration}}</h1>
<p>From this network address, {{.Name}} and the names below it are no longer blocked until {{.Until}}. After that they are blocked again.</p>
<p>Your device may remember the blocked answer for up to {{.Wait}} seconds. If the site does not open at once, wait a minute and try again.</p>
<p><a href="http://{{.Name}}/">Open {{.Name}}</a></p>
</body></html>
`))

// proceed records an exemption for the client and the posted name, when
// the client's flavour allows proceed anyway for the list that blocks it.
// The exemption is kept in memory only, and the client's address is not
// logged.
func (s *Server) proceed(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Exemptions == nil {
		http.Error(w, "proceed anyway is off on this resolver", http.StatusForbidden)
		return
	}
	name, ok := formName(w, r)
	if !ok {
		return
	}

	client := clientAddr(r)
	d, matched := s.check.CheckClient(client, name)
	displayName := strings.TrimSuffix(name, ".")
	switch {
	case !matched || !d.Blocked():
		http.Error(w, fmt.Sprintf("%s is not blocked for you: there is nothing to proceed past", displayName), http.StatusBadRequest)
		return
	case d.List.Category == policy.CategoryLawful:
		http.Error(w, fmt.Sprintf("%s is blocked by law: this block cannot be bypassed", displayName), http.StatusForbidden)
		return
	}
	rule := s.check.ProceedRule(client)
	if !rule.Allows(d) {
		http.Error(w, fmt.Sprintf("proceed anyway is not offered for the list %s in your network's policy", d.List.Name), http.StatusForbidden)
		return
	}

	now := s.now()
	if err := s.cfg.Exemptions.Add(client, name, rule.Duration, now); err != nil {
		s.log.Warn("proceed anyway rejected", "list", d.List.Name, "error", err)
		http.Error(w, "proceed anyway failed: "+err.Error(), http.StatusBadRequest)
		return
	}
	s.log.Info("proceed anyway granted", "list", d.List.Name, "category", d.List.Category,
		"duration_seconds", rule.Duration.Seconds())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	proceedTemplate.Execute(w, proceedData{
		Name: displayName, Duration: humanDuration(rule.Duration),
		Until: now.Add(rule.Duration).UTC().Format("15:04 UTC"), Wait: pipeline.BlockTTL,
	})
}

// humanDuration writes d in words, such as "1 hour 30 minutes", rounded
// down to the second.
func humanDuration(d time.Duration) string {
	var parts []string
	for _, unit := range []struct {
		size time.Duration
		name string
	}{{time.Hour, "hour"}, {time.Minute, "minute"}, {time.Second, "second"}} {
		n := int(d / unit.size)
		d -= time.Duration(n) * unit.size
		switch {
		case n == 1:
			parts = append(parts, "1 "+unit.name)
		case n > 1:
			parts = append(parts, fmt.Sprintf("%d %ss", n, unit.name))
		}
	}
	if len(parts) == 0 {
		return "less than a second"
	}
	return strings.Join(parts, " ")
}
