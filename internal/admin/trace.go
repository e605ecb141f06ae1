package admin

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"bulwark/internal/cache"
	"bulwark/internal/pipeline"
	"bulwark/internal/trace"

	"github.com/miekg/dns"
)

// Tracer resolves one question with a trace, through the running
// server's policy, cache and resolver.
type Tracer interface {
	Trace(ctx context.Context, name string, qtype uint16, flavour string) (*trace.Report, error)
	DescribeAnswerKey(flags byte, variant []byte) pipeline.AnswerVariant
}

// CacheInspector lists and flushes the data cached for one name. The
// resolver implements it.
type CacheInspector interface {
	Inspect(name string) ([]cache.Entry, []cache.AnswerEntry)
	FlushName(name string) int
}

// SetTracer turns on GET /v1/trace with t; flavour is the flavour of
// traces that name none. Without a call the endpoint returns 503.
func (s *Server) SetTracer(t Tracer, flavour string) {
	s.tracer, s.traceFlavour = t, flavour
}

// traceQuestion parses the name and type parameters of a trace request.
func traceQuestion(w http.ResponseWriter, r *http.Request) (string, uint16, bool) {
	name, ok := parseDomain(w, "name", r.URL.Query().Get("name"))
	if !ok {
		return "", 0, false
	}
	typ := r.URL.Query().Get("type")
	if typ == "" {
		return name, dns.TypeA, true
	}
	qtype, err := ParseType(typ)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return "", 0, false
	}
	return name, qtype, true
}

// ParseType returns the type named s, such as "AAAA" or "TYPE65", in any
// case.
func ParseType(s string) (uint16, error) {
	u := strings.ToUpper(s)
	if t, ok := dns.StringToType[u]; ok && t != dns.TypeNone {
		return t, nil
	}
	if n, ok := strings.CutPrefix(u, "TYPE"); ok {
		if v, err := strconv.ParseUint(n, 10, 16); err == nil && v > 0 {
			return uint16(v), nil
		}
	}
	return 0, fmt.Errorf("unknown type %q: give a type such as A, AAAA, MX or TYPE65", shorten(s))
}

func (s *Server) trace(w http.ResponseWriter, r *http.Request) {
	if s.tracer == nil {
		writeError(w, http.StatusServiceUnavailable, "tracing is not available")
		return
	}
	format := r.URL.Query().Get("format")
	if format != "" && format != "json" && format != "text" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid format %q: use json or text", shorten(format)))
		return
	}
	name, qtype, ok := traceQuestion(w, r)
	if !ok {
		return
	}
	flavour := r.URL.Query().Get("flavour")
	if flavour == "" {
		flavour = s.traceFlavour
	}
	rep, err := s.tracer.Trace(r.Context(), name, qtype, flavour)
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	s.log.Info("traced", "qname", name, "qtype", dns.Type(qtype).String(), "flavour", rep.Flavour, "rcode", rep.Answer.Rcode)
	if format == "text" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		trace.WriteText(w, rep)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// cacheJSON is the response of GET /v1/cache.
type cacheJSON struct {
	Name     string         `json:"name"`
	RRsets   []rrsetJSON    `json:"rrsets"`
	Negative []negativeJSON `json:"negative"`
	Answers  []answerJSON   `json:"answers"`
}

// rrsetJSON is one cached RRset.
type rrsetJSON struct {
	Type string `json:"type"`
	// Rank is glue, referral or answer. Only RRsets of rank answer are
	// served to clients.
	Rank string `json:"rank"`
	TTL  uint32 `json:"ttl"`
	// Stale is set for an expired RRset kept for serve-stale.
	Stale    bool     `json:"stale,omitempty"`
	Security string   `json:"security"`
	Reason   *edeJSON `json:"reason,omitempty"`
	Records  []string `json:"records"`
	RRSIGs   []string `json:"rrsigs,omitempty"`
}

// negativeJSON is one cached NXDOMAIN, for every type, or NODATA for one.
type negativeJSON struct {
	// Type is the type of a NODATA answer; absent for NXDOMAIN.
	Type     string   `json:"type,omitempty"`
	Rcode    string   `json:"rcode"`
	TTL      uint32   `json:"ttl"`
	Stale    bool     `json:"stale,omitempty"`
	Security string   `json:"security"`
	Reason   *edeJSON `json:"reason,omitempty"`
	SOA      string   `json:"soa,omitempty"`
}

// answerJSON is one cached packed response.
type answerJSON struct {
	Type string `json:"type"`
	pipeline.AnswerVariant
	TTL uint32 `json:"ttl"`
	// Stale is set for an expired response kept for serve-stale, and for
	// a stale copy being served in its place.
	Stale   bool   `json:"stale,omitempty"`
	Rcode   string `json:"rcode"`
	AD      bool   `json:"ad"`
	Records int    `json:"records"`
	Bytes   int    `json:"bytes"`
	// Key is the hex of the key bytes after the type, which tell the
	// variants of one question apart.
	Key string `json:"key"`
}

type edeJSON struct {
	Code uint16 `json:"ede"`
	Text string `json:"text"`
}

var rankNames = map[cache.Rank]string{cache.RankGlue: "glue", cache.RankReferral: "referral", cache.RankAnswer: "answer"}

func (s *Server) inspectCache(w http.ResponseWriter, r *http.Request) {
	inspector, ok := s.cache.(CacheInspector)
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "cache inspection is not available")
		return
	}
	name, ok := parseDomain(w, "name", r.URL.Query().Get("name"))
	if !ok {
		return
	}
	entries, answers := inspector.Inspect(name)
	out := cacheJSON{Name: name, RRsets: []rrsetJSON{}, Negative: []negativeJSON{}, Answers: []answerJSON{}}
	for _, e := range entries {
		if e.Negative {
			out.Negative = append(out.Negative, negativeEntry(e))
			continue
		}
		out.RRsets = append(out.RRsets, rrsetJSON{
			Type: dns.Type(e.Type).String(), Rank: rankNames[e.Rank], TTL: e.TTL, Stale: e.Stale,
			Security: e.Security.String(), Reason: reasonJSON(e), Records: rrTexts(e.RRs), RRSIGs: rrTexts(e.Sigs),
		})
	}
	for _, a := range answers {
		j := answerJSON{
			Type: dns.Type(a.Type).String(), TTL: a.TTL, Stale: a.Stale, Rcode: dns.RcodeToString[a.Rcode], AD: a.AD,
			Records: a.Records, Bytes: a.Bytes, Key: hex.EncodeToString(append([]byte{a.Flags}, a.Variant...)),
		}
		if s.tracer != nil {
			j.AnswerVariant = s.tracer.DescribeAnswerKey(a.Flags, a.Variant)
		}
		out.Answers = append(out.Answers, j)
	}
	writeJSON(w, http.StatusOK, out)
}

func negativeEntry(e cache.Entry) negativeJSON {
	n := negativeJSON{Rcode: "NOERROR", TTL: e.TTL, Stale: e.Stale, Security: e.Security.String(), Reason: reasonJSON(e)}
	if e.NXDomain {
		n.Rcode = "NXDOMAIN"
	} else {
		n.Type = dns.Type(e.Type).String()
	}
	if len(e.RRs) > 0 {
		n.SOA = e.RRs[0].String()
	}
	return n
}

func reasonJSON(e cache.Entry) *edeJSON {
	if e.Reason == nil {
		return nil
	}
	return &edeJSON{Code: e.Reason.EDE, Text: e.Reason.Text}
}

func rrTexts(rrs []dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, rr.String())
	}
	return out
}

// flushName removes the data cached for one name of a flush request.
func (s *Server) flushName(w http.ResponseWriter, raw string) {
	inspector, ok := s.cache.(CacheInspector)
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "flushing one name is not available")
		return
	}
	name, ok := parseDomain(w, "name", raw)
	if !ok {
		return
	}
	n := inspector.FlushName(name)
	s.log.Info("cache flushed", "name", name, "entries", n)
	writeJSON(w, http.StatusOK, map[string]any{"name": name, "entries_removed": n})
}
