package admin

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"bulwark/internal/intel/indicator"
	"bulwark/internal/intel/sources"
)

// Bounds of the indicators listed per source by GET /v1/intel/sources.
const (
	defaultSourceItems = 100
	maxSourceItems     = 10000
)

// IntelSources reports the pulled indicator sources and the last batch
// each delivered.
type IntelSources interface {
	Statuses() []sources.Status
	Last(source string) (sources.Batch, bool)
}

// SetIntelSources gives the API the indicator sources. Without them GET
// /v1/intel/sources returns 503.
func (s *Server) SetIntelSources(src IntelSources) { s.sources = src }

// sourceView is one source in GET /v1/intel/sources.
type sourceView struct {
	sources.Status
	// LastBatch is the last batch delivered; nil before the first.
	LastBatch *batchView `json:"last_batch"`
}

type batchView struct {
	Time  time.Time `json:"time"`
	Items int       `json:"items"`
	// Indicators are the first of the batch's indicators, at most the
	// request's limit.
	Indicators []indicatorView `json:"indicators"`
}

type indicatorView struct {
	Name       string         `json:"name"`
	Category   string         `json:"category,omitempty"`
	Source     string         `json:"source"`
	Trust      int            `json:"trust"`
	Mode       indicator.Mode `json:"mode"`
	Confidence int            `json:"confidence"`
	Reason     string         `json:"reason,omitempty"`
	ValidUntil time.Time      `json:"valid_until,omitzero"`
	// Provenance is the origin's own reference, such as a STIX id or a
	// MISP event and attribute UUID.
	Provenance []string `json:"provenance,omitempty"`
}

// intelSources lists every source with its pull state and the first
// limit (default 100) indicators of its last batch. The query parameter
// source keeps one source.
func (s *Server) intelSources(w http.ResponseWriter, r *http.Request) {
	if s.sources == nil {
		writeError(w, http.StatusServiceUnavailable, "no indicator sources are configured (share.sources)")
		return
	}
	limit := defaultSourceItems
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxSourceItems {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid limit %q: use 0 to %d", v, maxSourceItems))
			return
		}
		limit = n
	}
	name := r.URL.Query().Get("source")
	out := []sourceView{}
	for _, st := range s.sources.Statuses() {
		if name != "" && st.Name != name {
			continue
		}
		v := sourceView{Status: st}
		if b, ok := s.sources.Last(st.Name); ok {
			v.LastBatch = viewBatch(b, limit)
		}
		out = append(out, v)
	}
	if name != "" && len(out) == 0 {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown source %q: list the sources without the source parameter", name))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func viewBatch(b sources.Batch, limit int) *batchView {
	v := &batchView{Time: b.Time, Items: len(b.Indicators), Indicators: []indicatorView{}}
	for _, in := range b.Indicators[:min(limit, len(b.Indicators))] {
		iv := indicatorView{
			Name: in.Name, Category: in.Category, Source: in.Source, Trust: in.Trust, Mode: in.Mode,
			Confidence: in.Confidence, Reason: in.Reason, ValidUntil: in.ValidUntil,
		}
		for _, p := range in.Provenance {
			ref := p.Source
			if p.Ref != "" {
				ref += " " + p.Ref
			}
			iv.Provenance = append(iv.Provenance, ref)
		}
		v.Indicators = append(v.Indicators, iv)
	}
	return v
}
