package admin

import (
	"net/http"
	"strings"
	"testing"

	"bulwark/internal/xfr"
)

// notifyPolicy is a list manager with NOTIFY counters.
type notifyPolicy struct {
	fakePolicy
	transferred bool
}

func (n *notifyPolicy) NotifyStats() (xfr.NotifyStats, bool) {
	return xfr.NotifyStats{Accepted: 3, Refused: map[string]uint64{xfr.RefusedAddress: 2}}, n.transferred
}

func TestPolicyNotifyEndpoint(t *testing.T) {
	s, _, _ := newTestServer()
	if code, _ := do(t, s, "GET", "/v1/policy/notify", ""); code != http.StatusServiceUnavailable {
		t.Errorf("notify without a manager: %d, want 503", code)
	}
	np := &notifyPolicy{}
	s.SetPolicy(np)
	if code, body := do(t, s, "GET", "/v1/policy/notify", ""); code != http.StatusNotFound || !strings.Contains(body, "no list is transferred") {
		t.Errorf("notify without transferred lists: %d %s, want 404 saying so", code, body)
	}
	np.transferred = true
	code, body := do(t, s, "GET", "/v1/policy/notify", "")
	if code != http.StatusOK || !strings.Contains(body, `"accepted":3`) || !strings.Contains(body, `"address":2`) {
		t.Errorf("notify: %d %s, want 200 with 3 accepted and 2 refused by address", code, body)
	}
}
