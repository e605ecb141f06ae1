package autotrust

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// rootKey20326 is the DNSKEY of the root KSK 20326.
const rootKey20326 = ". 172800 IN DNSKEY 257 3 8 AwEAAaz/tAm8yTn4Mfeh5eyI96WSVexTBAvkMgJzkKTOiW1vkIbzxeF3+/4RgWOq7HrxRixHlFlExOLAJr5emLvN7SWXgnLh4+B5xQlNVz8Og8kvArMtNROxVQuCaSnIDdD5LKyWbRd2n9WGe2R8PzgCmr3EgVLrjyBxWezF0jLHwVN8efS3rCj/EWgvIWgb9tarpVUDK/b58Da+sqqls3eNbuv7pr+eoZG+SrDK6nWeL3c6H5Apxz7LjVc1uTIdsIXxuOLYA4/ilBmSVIzuDWfdRUfhHdY6+cn8HFRm+2hM8AnXGXws9555KrUB5qihylGa8subX2Nn6UwNR1AkUTV74bU="

// rootDS38696 is the DS of the root KSK 38696.
const rootDS38696 = ". IN DS 38696 8 2 683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16"

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "root.state")
	s, err := Load(path)
	if err != nil {
		t.Fatalf("Load(missing file) error: %v", err)
	}
	if len(s.Keys()) != 0 {
		t.Errorf("Load(missing file) has %d keys, want 0", len(s.Keys()))
	}
	if s.Path() != path {
		t.Errorf("Path() = %q, want %q", s.Path(), path)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "root.state")
	s, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	k1, k2, k3 := newKey(t), newKey(t), newKey(t)
	ds, err := dns.NewRR(rootDS38696)
	if err != nil {
		t.Fatal(err)
	}
	s.Seed([]dns.RR{k1.dnskey, k2.dnskey, ds})
	s.Update(response(t, t0, []testKey{k1, k2.revoked(), k3}, []testKey{k1, k2.revoked()}), true, t0)
	if err := s.Save(); err != nil {
		t.Fatalf("Save error: %v", err)
	}

	loaded, err := Load(path)
	if err != nil {
		data, _ := os.ReadFile(path)
		t.Fatalf("Load of a saved file error: %v\n%s", err, data)
	}
	want, got := s.Keys(), loaded.Keys()
	if len(got) != len(want) {
		t.Fatalf("loaded %d keys, want %d", len(got), len(want))
	}
	for i := range want {
		if !dns.IsDuplicate(got[i].Record, want[i].Record) {
			t.Errorf("key %d: record %v, want %v", i, got[i].Record, want[i].Record)
		}
		if got[i].State != want[i].State {
			t.Errorf("key %d: state %s, want %s", i, got[i].State, want[i].State)
		}
		if !got[i].FirstSeen.Equal(want[i].FirstSeen) || !got[i].LastSeen.Equal(want[i].LastSeen) || !got[i].LastChange.Equal(want[i].LastChange) {
			t.Errorf("key %d: times %v %v %v, want %v %v %v", i, got[i].FirstSeen, got[i].LastSeen, got[i].LastChange,
				want[i].FirstSeen, want[i].LastSeen, want[i].LastChange)
		}
	}
	wantStates := map[KeyState]int{Valid: 1, Revoked: 1, AddPend: 1, Missing: 1}
	for _, k := range got {
		wantStates[k.State]--
	}
	for state, n := range wantStates {
		if n != 0 {
			t.Errorf("saved states: %d more or fewer %s keys than expected", n, state)
		}
	}
}

func TestSaveIsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "root.state")
	if err := os.WriteFile(path, []byte("old content"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := New(path)
	k1 := newKey(t)
	s.Seed([]dns.RR{k1.dnskey})
	if err := s.Save(); err != nil {
		t.Fatalf("Save error: %v", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "root.state" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v after Save, want only root.state", names)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o644 {
		t.Errorf("state file mode = %v, want 0644", info.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "; RFC 5011 trust anchor state") || !strings.Contains(string(data), "state=valid first_seen=- last_seen=- last_change=-") {
		t.Errorf("saved file:\n%s\nwant the header and a seeded valid key", data)
	}
}

func TestSaveMissingDirectory(t *testing.T) {
	s := New(filepath.Join(t.TempDir(), "missing", "root.state"))
	s.Seed([]dns.RR{newKey(t).dnskey})
	if err := s.Save(); err == nil {
		t.Error("Save into a missing directory = nil error")
	}
}

func TestLoadCorruptFile(t *testing.T) {
	valid := rootKey20326 + " ; state=valid first_seen=- last_seen=- last_change=-\n"
	revokedKey := strings.Replace(rootKey20326, " 257 ", " 385 ", 1)
	tests := []struct {
		name     string
		content  string
		wantLine int
		wantText string
	}{
		{"empty", "", 0, "has no key"},
		{"only comments", "; nothing\n\n", 0, "has no key"},
		{"truncated record", "; header\n. 172800 IN DNSKEY 257 3 8 ; state=valid first_seen=- last_seen=- last_change=-\n", 2, "public key is missing"},
		{"bad record", "; header\n. 172800 IN DNSKEY 257 3 x AwEAAQ== ; state=valid first_seen=- last_seen=- last_change=-\n", 2, "invalid record"},
		{"no fields", rootKey20326 + "\n", 1, `missing "; state=`},
		{"bad state", strings.Replace(valid, "state=valid", "state=trusted", 1), 1, `invalid state "trusted"`},
		{"start state", strings.Replace(valid, "state=valid", "state=start", 1), 1, `invalid state "start"`},
		{"unknown field", strings.Replace(valid, "last_change=-", "last_change=- colour=blue", 1), 1, `unknown field "colour"`},
		{"field twice", strings.Replace(valid, "last_change=-", "last_change=- state=valid", 1), 1, "field state is given twice"},
		{"missing field", strings.Replace(valid, " last_seen=-", "", 1), 1, "missing field last_seen"},
		{"field without value", strings.Replace(valid, "last_seen=-", "last_seen", 1), 1, `invalid field "last_seen"`},
		{"bad time", strings.Replace(valid, "first_seen=-", "first_seen=yesterday", 1), 1, `invalid first_seen "yesterday"`},
		{"addpend without times", strings.Replace(valid, "state=valid", "state=addpend", 1), 1, "state addpend needs first_seen and last_seen"},
		{"revoke bit in valid", revokedKey + " ; state=valid first_seen=- last_seen=- last_change=-\n", 1, "does not match flags 385"},
		{"revoked without bit", strings.Replace(valid, "state=valid first_seen=- last_seen=-", "state=revoked first_seen=- last_seen=2026-01-01T00:00:00Z", 1), 1, "does not match flags 257"},
		{"zone signing key", strings.Replace(valid, " 257 ", " 256 ", 1), 1, "not a key signing key"},
		{"DS pending", rootDS38696 + " ; state=addpend first_seen=2026-01-01T00:00:00Z last_seen=2026-01-01T00:00:00Z last_change=-\n", 1, "DS record in state addpend"},
		{"other type", ". IN A 192.0.2.1 ; state=valid first_seen=- last_seen=- last_change=-\n", 1, "type A is not DS or DNSKEY"},
		{"duplicate", valid + "\n" + valid, 3, "listed twice"},
		{"duplicate revoked form", valid + revokedKey + " ; state=revoked first_seen=- last_seen=2026-01-01T00:00:00Z last_change=-\n", 2, "listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "root.state")
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if err == nil {
				t.Fatalf("Load = nil error, want one containing %q", tt.wantText)
			}
			msg := err.Error()
			if !strings.Contains(msg, path) {
				t.Errorf("error %q does not name the file", msg)
			}
			if tt.wantLine > 0 && !strings.Contains(msg, fmt.Sprintf("line %d:", tt.wantLine)) {
				t.Errorf("error %q does not name line %d", msg, tt.wantLine)
			}
			if !strings.Contains(msg, tt.wantText) {
				t.Errorf("error %q does not contain %q", msg, tt.wantText)
			}
			data, _ := os.ReadFile(path)
			if string(data) != tt.content {
				t.Error("Load changed the corrupt file")
			}
		})
	}
}

func TestLoadUnreadableFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); err == nil {
		t.Error("Load(a directory) = nil error")
	}
}
