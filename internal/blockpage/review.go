package blockpage

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"bulwark/internal/policy"

	"github.com/miekg/dns"
)

// MaxCommentBytes bounds the comment of a report; longer ones are cut.
const MaxCommentBytes = 1000

// Sources of reports, in Report.Source.
const (
	SourceBlockPage = "block_page"
	SourceLookup    = "lookup"
)

// Report is one line of the review queue. It contains no client address.
type Report struct {
	Time     time.Time `json:"time"`
	Name     string    `json:"name"`
	List     string    `json:"list,omitempty"`
	Category string    `json:"category,omitempty"`
	Comment  string    `json:"comment,omitempty"`
	// Source is the page the report came from: SourceBlockPage or
	// SourceLookup.
	Source string `json:"source,omitempty"`
}

// ReviewQueue is the file of "report a mistake" submissions, one JSON
// object per line. The block page and the public lookup share one, so
// that their appends never interleave. It is safe for concurrent use.
type ReviewQueue struct {
	path string
	mu   sync.Mutex
}

// NewReviewQueue returns the queue in the file at path, which Append
// creates when missing.
func NewReviewQueue(path string) *ReviewQueue { return &ReviewQueue{path: path} }

// Path returns the file of the queue.
func (q *ReviewQueue) Path() string { return q.path }

// Append appends rep as one JSON line and syncs it to disk.
func (q *ReviewQueue) Append(rep Report) error {
	line, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	f, err := os.OpenFile(q.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	_, werr := f.Write(append(line, '\n'))
	serr := f.Sync()
	cerr := f.Close()
	return errors.Join(werr, serr, cerr)
}

// TrimComment cuts comment to at most MaxCommentBytes, at a character
// boundary.
func TrimComment(comment string) string {
	if len(comment) <= MaxCommentBytes {
		return comment
	}
	cut := MaxCommentBytes
	for cut > 0 && !utf8.RuneStart(comment[cut]) {
		cut--
	}
	return comment[:cut]
}

// report appends a "report a mistake" submission to the review queue.
func (s *Server) report(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Reviews == nil {
		http.Error(w, "reports are not taken here", http.StatusServiceUnavailable)
		return
	}
	name, ok := formName(w, r)
	if !ok {
		return
	}
	rep := Report{
		Time: s.now().UTC().Truncate(time.Second), Name: name,
		Comment: TrimComment(r.PostForm.Get("comment")), Source: SourceBlockPage,
	}
	if d, matched := s.check.CheckClient(clientAddr(r), name); matched && d.Blocked() {
		if d.List.Category == policy.CategoryLawful {
			http.Error(w, "blocks by law cannot be reported here", http.StatusForbidden)
			return
		}
		rep.List, rep.Category = d.List.Name, d.List.Category
	}
	if err := s.cfg.Reviews.Append(rep); err != nil {
		s.log.Error("cannot write the review queue", "file", s.cfg.Reviews.Path(), "error", err)
		http.Error(w, "the report could not be stored; try again later", http.StatusInternalServerError)
		return
	}
	s.log.Info("block reported", "name", name, "list", rep.List)
	if s.cfg.Reported != nil {
		s.cfg.Reported(name, rep.Comment)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, "<!DOCTYPE html><html><body><p>Thank you: the report for %s is queued for review.</p></body></html>\n", template.HTMLEscapeString(strings.TrimSuffix(name, ".")))
}

// formName parses a form of at most 4 KiB and returns its name field,
// canonical. It writes a 400 response when either is invalid.
func formName(w http.ResponseWriter, r *http.Request) (string, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "invalid form: send a URL-encoded form of 4 KiB at most", http.StatusBadRequest)
		return "", false
	}
	raw := r.PostForm.Get("name")
	name := dns.CanonicalName(raw)
	printable := strings.IndexFunc(raw, func(c rune) bool { return c <= ' ' || c >= 0x7f }) < 0
	if _, ok := dns.IsDomainName(name); !ok || !printable || raw == "" || name == "." {
		http.Error(w, fmt.Sprintf("invalid name %q: give the blocked domain name", raw), http.StatusBadRequest)
		return "", false
	}
	return name, true
}
