package admin

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"bulwark/internal/intel/traffic"
)

// IntelFindings lists the recent findings of the traffic analysis.
type IntelFindings interface {
	Findings() []traffic.Finding
}

// SetIntel gives the API the traffic analysis. Without it GET
// /v1/intel/findings returns 503.
func (s *Server) SetIntel(f IntelFindings) { s.intel = f }

// intelFindings lists the recent findings, newest first. The query
// parameter detector keeps those of one detector.
func (s *Server) intelFindings(w http.ResponseWriter, r *http.Request) {
	if s.intel == nil {
		writeError(w, http.StatusServiceUnavailable, "the traffic analysis is off (intel.enabled: false)")
		return
	}
	detector := r.URL.Query().Get("detector")
	if detector != "" && !slices.Contains(traffic.Detectors, detector) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown detector %q: use one of %s",
			detector, strings.Join(traffic.Detectors, ", ")))
		return
	}
	out := []traffic.Finding{}
	for _, f := range s.intel.Findings() {
		if detector == "" || f.Detector == detector {
			out = append(out, f)
		}
	}
	writeJSON(w, http.StatusOK, out)
}
