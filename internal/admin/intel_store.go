package admin

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"bulwark/internal/intel/indicator"
	"bulwark/internal/intel/store"
)

// IntelStore is the candidate store the API reads and decides on.
type IntelStore interface {
	Entries(state indicator.State) []store.Entry
	Entry(name string) (store.Entry, bool)
	Confirm(name, by, note string) (store.Entry, error)
	Reject(name, by, note string) (store.Entry, error)
	Stats() store.Stats
	Sources() []store.SourceScore
}

// SetIntelStore gives the API the candidate store. Without it the
// /v1/intel/entries, confirm, reject, stats and source-scores endpoints
// return 503.
func (s *Server) SetIntelStore(st IntelStore) { s.intelStore = st }

// intelStoreRoutes registers the endpoints of the candidate store.
func (s *Server) intelStoreRoutes(r *routes) {
	r.handle("GET /v1/intel/entries", s.intelEntries)
	r.handle("GET /v1/intel/entries/{name}", s.intelEntry)
	r.handle("POST /v1/intel/confirm", s.intelDecide(IntelStore.Confirm))
	r.handle("POST /v1/intel/reject", s.intelDecide(IntelStore.Reject))
	r.handle("GET /v1/intel/stats", s.intelStats)
	r.handle("GET /v1/intel/source-scores", s.intelSourceScores)
}

var intelStates = []indicator.State{
	indicator.Observed, indicator.Suspicious, indicator.AutoBlocked,
	indicator.Review, indicator.Confirmed, indicator.Rejected,
}

func (s *Server) storeOff(w http.ResponseWriter) bool {
	if s.intelStore == nil {
		writeError(w, http.StatusServiceUnavailable, "the candidate store is off (intel.store.enabled: false)")
		return true
	}
	return false
}

// intelEntries lists the entries without their history, most recently
// seen first; the query parameter state keeps those of one state.
func (s *Server) intelEntries(w http.ResponseWriter, r *http.Request) {
	if s.storeOff(w) {
		return
	}
	state := indicator.State(r.URL.Query().Get("state"))
	if state != "" && !slices.Contains(intelStates, state) {
		names := make([]string, len(intelStates))
		for i, st := range intelStates {
			names[i] = string(st)
		}
		writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown state %q: use one of %s", state, strings.Join(names, ", ")))
		return
	}
	writeJSON(w, http.StatusOK, s.intelStore.Entries(state))
}

// intelEntry shows one entry with its whole history.
func (s *Server) intelEntry(w http.ResponseWriter, r *http.Request) {
	if s.storeOff(w) {
		return
	}
	name, err := indicator.Canonical(r.PathValue("name"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	e, ok := s.intelStore.Entry(name)
	if !ok {
		writeError(w, http.StatusNotFound, "no entry for "+name+"; list the entries with GET /v1/intel/entries")
		return
	}
	writeJSON(w, http.StatusOK, e)
}

// decisionJSON is the request body of confirm and reject.
type decisionJSON struct {
	Name string `json:"name"`
	By   string `json:"by"`
	Note string `json:"note"`
}

// intelDecide returns the handler that applies decide to the entry named
// in the request body.
func (s *Server) intelDecide(decide func(IntelStore, string, string, string) (store.Entry, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.storeOff(w) {
			return
		}
		var req decisionJSON
		if !readJSON(w, r, &req) {
			return
		}
		e, err := decide(s.intelStore, req.Name, req.By, req.Note)
		switch {
		case errors.Is(err, store.ErrNotFound):
			writeError(w, http.StatusNotFound, err.Error())
			return
		case err != nil:
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		s.log.Info("intel entry decided", "name", e.Name, "state", string(e.State), "by", req.By)
		writeJSON(w, http.StatusOK, e)
	}
}

// intelStats serves the public statistics: counts by category and day,
// nothing about clients.
func (s *Server) intelStats(w http.ResponseWriter, r *http.Request) {
	if s.storeOff(w) {
		return
	}
	writeJSON(w, http.StatusOK, s.intelStore.Stats())
}

// intelSourceScores lists each source's reports and false positives.
func (s *Server) intelSourceScores(w http.ResponseWriter, r *http.Request) {
	if s.storeOff(w) {
		return
	}
	type scoreJSON struct {
		store.SourceScore
		FalsePositiveRate float64 `json:"false_positive_rate"`
	}
	out := []scoreJSON{}
	for _, src := range s.intelStore.Sources() {
		out = append(out, scoreJSON{SourceScore: src, FalsePositiveRate: src.FalsePositiveRate()})
	}
	writeJSON(w, http.StatusOK, out)
}

// intelLookupJSON is the store's part of the public lookup: the entry's
// state and history, which hold no client data.
type intelLookupJSON struct {
	Name     string          `json:"name"`
	State    indicator.State `json:"state"`
	Category string          `json:"category"`
	Reason   string          `json:"reason"`
	History  []store.Event   `json:"history"`
}

// intelLookup returns the entry of name for the public lookup, or nil.
func (s *Server) intelLookup(name string) *intelLookupJSON {
	if s.intelStore == nil {
		return nil
	}
	e, ok := s.intelStore.Entry(name)
	if !ok {
		return nil
	}
	return &intelLookupJSON{Name: e.Name, State: e.State, Category: e.Category, Reason: e.Reason, History: e.History}
}
