package autotrust

import (
	"testing"
)

// FuzzParseState checks that any state file content gives keys that survive
// a save and load, or an error, never a panic.
func FuzzParseState(f *testing.F) {
	f.Add([]byte(rootKey20326 + " ; state=valid first_seen=- last_seen=- last_change=-\n"))
	f.Add([]byte(rootDS38696 + " ; state=missing first_seen=2026-01-01T00:00:00Z last_seen=- last_change=2026-02-01T00:00:00Z\n"))
	f.Add([]byte("; comment\n\n. IN A 192.0.2.1 ; state=valid\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := parseState(data, "fuzz.state")
		if err != nil {
			return
		}
		s := New("fuzz.state")
		s.keys = keys
		again, err := parseState(s.Marshal(), "fuzz.state")
		if err != nil {
			t.Fatalf("saved state does not load: %v\n%s", err, s.Marshal())
		}
		if len(again) != len(keys) {
			t.Fatalf("saved state has %d keys, want %d", len(again), len(keys))
		}
	})
}
