package admin

import (
	"net/http"

	"bulwark/internal/guard"
)

// ProtectedZones lists the zones that the guard protects now.
type ProtectedZones interface {
	Protected() []guard.Protection
}

// SetGuard gives the API the guard. Without one GET /v1/guard/protected
// returns 503.
func (s *Server) SetGuard(g ProtectedZones) { s.guard = g }

func (s *Server) guardProtected(w http.ResponseWriter, r *http.Request) {
	if s.guard == nil {
		writeError(w, http.StatusServiceUnavailable, "the guard is off (guard.enabled: false)")
		return
	}
	writeJSON(w, http.StatusOK, s.guard.Protected())
}
