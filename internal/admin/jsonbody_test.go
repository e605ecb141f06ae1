package admin

import (
	"net/http"
	"strings"
	"testing"

	"bulwark/internal/intel/indicator"
	"bulwark/internal/intel/store"
)

// fakeDecisions is an IntelStore that records the decisions it is given.
type fakeDecisions struct{ decided []string }

func (f *fakeDecisions) Entries(indicator.State) []store.Entry { return nil }
func (f *fakeDecisions) Entry(string) (store.Entry, bool)      { return store.Entry{}, false }
func (f *fakeDecisions) Stats() store.Stats                    { return store.Stats{} }
func (f *fakeDecisions) Sources() []store.SourceScore          { return nil }
func (f *fakeDecisions) Confirm(name, by, note string) (store.Entry, error) {
	return f.decide(name, by, indicator.Confirmed)
}

func (f *fakeDecisions) Reject(name, by, note string) (store.Entry, error) {
	return f.decide(name, by, indicator.Rejected)
}

func (f *fakeDecisions) decide(name, by string, state indicator.State) (store.Entry, error) {
	f.decided = append(f.decided, name+" "+string(state)+" by "+by)
	return store.Entry{Name: name, State: state}, nil
}

// jsonEndpoint is an endpoint that takes a JSON body, with a valid body
// and the fields it accepts.
type jsonEndpoint struct {
	path, valid, fields string
}

var jsonEndpoints = []jsonEndpoint{
	{"/v1/dnssec/negative-trust-anchors", `{"domain": "example.com"}`, "domain, lifetime, expires"},
	{"/v1/cache/flush", `{"zone": "example.com"}`, "zone, name"},
	{"/v1/intel/confirm", `{"name": "bad.example", "by": "alice"}`, "name, by, note"},
	{"/v1/intel/reject", `{"name": "bad.example", "by": "alice"}`, "name, by, note"},
}

func firstField(ep jsonEndpoint) string {
	name, _, _ := strings.Cut(ep.fields, ",")
	return name
}

func TestJSONBodiesStrict(t *testing.T) {
	for _, ep := range jsonEndpoints {
		valid := strings.TrimSuffix(ep.valid, "}")
		cases := []struct {
			name, body string
			status     int
			want       string
		}{
			{"unknown field", valid + `, "color": "red"}`, http.StatusBadRequest,
				`unknown field \"color\" in the JSON body: valid fields are ` + ep.fields},
			{"field in other case", `{"` + strings.ToUpper(firstField(ep)) + `": "x"}`, http.StatusBadRequest,
				`unknown field \"` + strings.ToUpper(firstField(ep)) + `\"`},
			{"field twice", valid + `, "` + firstField(ep) + `": "other.example"}`, http.StatusBadRequest,
				`field \"` + firstField(ep) + `\" is given twice`},
			{"second object", ep.valid + ` {}`, http.StatusBadRequest, "more data after the object"},
			{"closing brace after object", ep.valid + `}`, http.StatusBadRequest, "more data after the object"},
			{"closing bracket after object", ep.valid + `]`, http.StatusBadRequest, "more data after the object"},
			{"text after object", ep.valid + ` x`, http.StatusBadRequest, "more data after the object"},
			{"too large", valid + `, "pad": "` + strings.Repeat("a", maxJSONBody) + `"}`,
				http.StatusRequestEntityTooLarge, "request body larger than 65536 bytes"},
			{"empty", ``, http.StatusBadRequest, "missing JSON body: send an object with the fields " + ep.fields},
			{"null", `null`, http.StatusBadRequest, "invalid JSON body: send one object with the fields " + ep.fields},
			{"array", `[` + ep.valid + `]`, http.StatusBadRequest, "send one object"},
			{"cut short", valid, http.StatusBadRequest, "the object is cut short"},
			{"syntax error", `{"a" 1}`, http.StatusBadRequest, "invalid JSON body: invalid character '1'"},
			{"wrong type", `{"` + firstField(ep) + `": 5}`, http.StatusBadRequest, "must be a string, not a JSON number"},
		}
		for _, tt := range cases {
			t.Run(ep.path+"/"+tt.name, func(t *testing.T) {
				s, res, c := newTestServer()
				decisions := &fakeDecisions{}
				s.SetIntelStore(decisions)
				code, body := do(t, s, "POST", ep.path, tt.body)
				if code != tt.status {
					t.Errorf("POST %s %.60q: status %d, want %d (%s)", ep.path, tt.body, code, tt.status, body)
				}
				if !strings.Contains(body, tt.want) {
					t.Errorf("POST %s %.60q: body %.300s, want it to contain %q", ep.path, tt.body, body, tt.want)
				}
				if len(res.ntas) != 0 || len(c.flushed) != 0 || len(decisions.decided) != 0 {
					t.Errorf("POST %s %.60q acted: anchors %v, flushed %v, decided %v, want nothing done",
						ep.path, tt.body, res.ntas, c.flushed, decisions.decided)
				}
			})
		}
	}
}

func TestJSONBodiesValid(t *testing.T) {
	for _, ep := range jsonEndpoints {
		t.Run(ep.path, func(t *testing.T) {
			s, res, c := newTestServer()
			decisions := &fakeDecisions{}
			s.SetIntelStore(decisions)
			code, body := do(t, s, "POST", ep.path, " \n"+ep.valid+"\n ")
			if code != http.StatusOK && code != http.StatusCreated {
				t.Fatalf("POST %s %s: status %d (%s), want 200 or 201", ep.path, ep.valid, code, body)
			}
			if len(res.ntas)+len(c.flushed)+len(decisions.decided) == 0 {
				t.Errorf("POST %s %s: anchors %v, flushed %v, decided %v, want the request applied",
					ep.path, ep.valid, res.ntas, c.flushed, decisions.decided)
			}
		})
	}
}

func TestJSONFieldsNames(t *testing.T) {
	type request struct {
		Tagged   string `json:"tagged,omitempty"`
		Untagged string
		Skipped  string `json:"-"`
		hidden   string
	}
	got := strings.Join(jsonFields(&request{hidden: "x"}), ", ")
	if want := "tagged, Untagged"; got != want {
		t.Errorf("jsonFields(&request{}) = %q, want %q", got, want)
	}
}
