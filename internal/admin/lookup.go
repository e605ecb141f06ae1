package admin

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"bulwark/internal/blockpage"
	"bulwark/internal/pipeline"
	"bulwark/internal/policy"
	"bulwark/internal/policyload"

	"github.com/miekg/dns"
	"golang.org/x/net/idna"
)

// LookupConfig sets up the public lookup: GET /lookup, GET
// /v1/policy/lookup and POST /lookup/report.
type LookupConfig struct {
	// Organization and Contact are shown on the lookup page.
	Organization, Contact string
	// Reviews is the review queue the block page also writes; nil turns
	// reports off.
	Reviews *blockpage.ReviewQueue
}

// SetLookup configures the public lookup. Without a call the lookup works
// without the operator's name and without reports.
func (s *Server) SetLookup(cfg LookupConfig) { s.lookupCfg = cfg }

// listedSinceNote explains the listed_since times to readers of the lookup.
const listedSinceNote = "listed_since is when the list's current copy was downloaded or its file last changed: " +
	"the name has been listed at least since then, and may have been listed for longer"

// lookupJSON is the response of GET /v1/policy/lookup.
type lookupJSON struct {
	// Name is the canonical name looked up, in punycode; DisplayName is its
	// Unicode form.
	Name        string `json:"name"`
	DisplayName string `json:"display_name"`
	Blocked     bool   `json:"blocked"`
	// Flavours are the public flavours that block the name, in id order.
	Flavours []flavourBlockJSON `json:"flavours"`
	// NotBlockedIn names the public flavours that let the name through.
	NotBlockedIn []string `json:"not_blocked_in"`
	Note         string   `json:"note"`
	// Intel is the candidate store's entry of the name or its nearest
	// ancestor, with its history; absent when there is none.
	Intel *intelLookupJSON `json:"intel,omitempty"`
}

// flavourBlockJSON is the block of a name in one flavour.
type flavourBlockJSON struct {
	Flavour string `json:"flavour"`
	// Action is the action of the deciding list; EDE and EDEName the
	// Extended DNS Error that clients get with it, absent for the actions
	// drop and tcp-only, whose responses carry none.
	Action  string `json:"action"`
	EDE     uint16 `json:"ede,omitempty"`
	EDEName string `json:"ede_name,omitempty"`
	// Lists are every list of the flavour that blocks the name, in the
	// order they are checked; the first decides.
	Lists []listMatchJSON `json:"lists"`
}

// listMatchJSON is one list that blocks a name.
type listMatchJSON struct {
	List     string `json:"list"`
	Category string `json:"category"`
	Action   string `json:"action"`
	// Trigger is the rule's name: the name itself, an ancestor, or
	// "*.ancestor" for a rule that covers the names below it.
	Trigger     string    `json:"trigger"`
	ListedSince time.Time `json:"listed_since"`
	Decides     bool      `json:"decides"`
}

// lookup returns what every public flavour does with name, a canonical
// name. Tenants' flavours are left out: their lists are the tenants' own.
func (s *Server) lookup(name string) lookupJSON {
	out := lookupJSON{Name: name, DisplayName: displayName(name), Note: listedSinceNote}
	out.Flavours, out.NotBlockedIn = []flavourBlockJSON{}, []string{}
	since := s.listedSince()
	for _, f := range s.policy.Flavours() {
		if strings.HasPrefix(f.Name, policyload.TenantFlavour("")) {
			continue
		}
		d, matched := f.CheckName(name)
		if !matched || !d.Blocked() {
			out.NotBlockedIn = append(out.NotBlockedIn, f.Name)
			continue
		}
		out.Flavours = append(out.Flavours, flavourBlock(f, d, name, since))
	}
	out.Blocked = len(out.Flavours) > 0
	out.Intel = s.intelLookup(name)
	return out
}

// flavourBlock describes how f blocks name, where d is f's decision.
func flavourBlock(f *policy.Flavour, d policy.Decision, name string, since func(*policy.List) time.Time) flavourBlockJSON {
	fb := flavourBlockJSON{Flavour: f.Name, Action: d.Verdict.Action.String()}
	if action := d.Verdict.Action; action != policy.Drop && action != policy.TCPOnly {
		fb.EDE = pipeline.BlockEDECode(d.List.Category)
		fb.EDEName = dns.ExtendedErrorCodeToString[fb.EDE]
	}
	for _, l := range f.Lists() {
		// A flavour of one list applies the list's own exceptions and
		// trigger order, as the whole flavour does.
		ld, matched := policy.NewFlavour(f.Name, []*policy.List{l}).CheckName(name)
		if !matched || !ld.Blocked() {
			continue
		}
		fb.Lists = append(fb.Lists, listMatchJSON{
			List: l.Name, Category: l.Category, Action: ld.Verdict.Action.String(),
			Trigger: ld.Trigger, ListedSince: since(l), Decides: l == d.List,
		})
	}
	return fb
}

// listedSince returns the function that gives the time since which a list
// has had its current content: its file's modification time, which a
// download sets when it writes a new copy.
//
// NOTE: Bulwark does not track when each name entered a list, so the
// lookup can only state that a name is listed at least since this time.
func (s *Server) listedSince() func(*policy.List) time.Time {
	modified := map[string]time.Time{}
	for _, st := range s.policy.Lists() {
		modified[st.Name] = st.Modified
	}
	return func(l *policy.List) time.Time {
		if t := modified[l.Name]; !t.IsZero() {
			return t.UTC().Truncate(time.Second)
		}
		return l.Loaded.UTC().Truncate(time.Second)
	}
}

// policyLookup serves GET /v1/policy/lookup?name=N.
func (s *Server) policyLookup(w http.ResponseWriter, r *http.Request) {
	if s.policy == nil {
		writeError(w, http.StatusServiceUnavailable, "no list manager")
		return
	}
	name, err := lookupName(r.URL.Query().Get("name"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s.lookup(name))
}

// Errors of lookupName.
var (
	errMissingName = errors.New("missing name: give a domain name such as example.com")
	errInvalidName = errors.New("invalid name")
)

// maxLookupInput bounds the text lookupName reads, in bytes: a URL with a
// long path is still read, a page of text is not.
const maxLookupInput = 2048

// lookupName validates a name typed by a person and returns it canonical:
// lower case, fully qualified, internationalized labels converted to
// punycode. A URL is reduced to its host. As in the list parser, labels are
// ASCII letters, digits, hyphens and underscores, and non-ASCII names go
// through the IDNA lookup profile, so that the lookup and the lists agree.
func lookupName(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", errMissingName
	}
	if len(raw) > maxLookupInput {
		return "", fmt.Errorf("%w: %d bytes is too long for a domain name, which has at most 253", errInvalidName, len(raw))
	}
	if strings.Contains(raw, "://") {
		u, err := url.Parse(raw)
		if err != nil || u.Hostname() == "" {
			return "", fmt.Errorf("%w %q: the URL has no host; give a domain name such as example.com", errInvalidName, raw)
		}
		raw = u.Hostname()
	}
	if _, err := netip.ParseAddr(raw); err == nil {
		return "", fmt.Errorf("%w %q: it is an IP address; give a domain name such as example.com", errInvalidName, raw)
	}
	if !utf8.ValidString(raw) {
		return "", fmt.Errorf("%w %q: it is not valid UTF-8", errInvalidName, raw)
	}
	ascii := strings.TrimSuffix(raw, ".")
	if strings.IndexFunc(ascii, func(c rune) bool { return c >= utf8.RuneSelf }) >= 0 {
		converted, err := idna.Lookup.ToASCII(ascii)
		if err != nil {
			return "", fmt.Errorf("%w %q: not a valid internationalized name (%v)", errInvalidName, raw, err)
		}
		ascii = converted
	}
	ascii = strings.ToLower(ascii)
	if reason := checkLabels(ascii); reason != "" {
		return "", fmt.Errorf("%w %q: %s", errInvalidName, raw, reason)
	}
	return ascii + ".", nil
}

// checkLabels checks an ASCII name without its trailing dot and returns
// the reason it is invalid, or "".
func checkLabels(name string) string {
	if name == "" {
		return "the name is empty"
	}
	if len(name) > 253 {
		return fmt.Sprintf("it has %d characters, more than the 253 a domain name may have", len(name))
	}
	digitsOnly := true
	for _, label := range strings.Split(name, ".") {
		switch {
		case label == "":
			return "it has an empty label (two dots in a row, or a dot first)"
		case len(label) > 63:
			return fmt.Sprintf("the label %q is longer than 63 characters", label)
		}
		for _, c := range label {
			switch {
			case '0' <= c && c <= '9':
			case 'a' <= c && c <= 'z', c == '-', c == '_':
				digitsOnly = false
			default:
				return fmt.Sprintf("the character %q is not allowed: use letters, digits, hyphens and dots", c)
			}
		}
	}
	if digitsOnly {
		return "it has only digits and dots, so it is not a domain name"
	}
	return ""
}

// displayName returns a canonical name in Unicode and without the trailing
// dot, for people; labels that are not valid punycode stay as they are.
func displayName(name string) string {
	name = strings.TrimSuffix(name, ".")
	if u, err := idna.Lookup.ToUnicode(name); err == nil {
		return u
	}
	return name
}
