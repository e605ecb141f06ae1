package misp

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"bulwark/internal/feed"
	"bulwark/internal/intel/indicator"
)

func TestReadFeed(t *testing.T) {
	ins, rep, err := ReadFeed(os.DirFS("testdata/feed"), "csirt")
	if err != nil {
		t.Fatalf("ReadFeed: %v", err)
	}
	var names []string
	for _, in := range ins {
		names = append(names, in.Name)
	}
	want := []string{"secure-login-bank.example.", "mail.secure-login-bank.example.", "cdn-bank-assets.example.", "track-bank.example."}
	if !slices.Equal(names, want) {
		t.Errorf("ReadFeed names = %v, want %v", names, want)
	}
	if rep.Events != 1 || rep.NotForIDS != 1 || rep.OtherTypes != 1 || len(rep.Invalid) != 1 {
		t.Errorf("Report = %+v, want 1 event, 1 not for IDS, 1 other type, 1 invalid", rep)
	}
	first := ins[0]
	if first.Reason != "landing page" || first.Source != "csirt" || first.Category != "network activity" {
		t.Errorf("first indicator = %+v", first)
	}
	if want := time.Unix(1730290000, 0).UTC(); !first.LastSeen.Equal(want) {
		t.Errorf("LastSeen = %v, want %v", first.LastSeen, want)
	}
	p := first.Provenance[0]
	if p.Source != "csirt (Example CSIRT)" || !strings.HasPrefix(p.Ref, "5f1e2a3b-0c4d-4e5f-8a9b-0c1d2e3f4a5b/") {
		t.Errorf("provenance = %+v", p)
	}
	if ins[1].Reason != "Phishing wave against bank customers" {
		t.Errorf("reason without comment = %q, want the event info", ins[1].Reason)
	}
}

func TestReadFeedErrors(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := ReadFeed(os.DirFS(dir), "x"); err == nil || !strings.Contains(err.Error(), "manifest.json") {
		t.Errorf("ReadFeed without manifest = %v, want an error naming manifest.json", err)
	}
	os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(`{"../etc/passwd": {}}`), 0o644)
	if _, _, err := ReadFeed(os.DirFS(dir), "x"); err == nil || !strings.Contains(err.Error(), "invalid event UUID") {
		t.Errorf("ReadFeed with a path in the manifest = %v, want invalid event UUID", err)
	}
	os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(`{"abc": {}}`), 0o644)
	if _, _, err := ReadFeed(os.DirFS(dir), "x"); err == nil || !strings.Contains(err.Error(), "event abc") {
		t.Errorf("ReadFeed with a missing event = %v, want an error naming the event", err)
	}
}

func TestFeedRoundTrip(t *testing.T) {
	dir := t.TempDir()
	seen := time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)
	in := []indicator.Indicator{
		{Name: "xjo4vk9bk1f19hxz.example.", Category: "dga", Source: "dga", Reason: "random label", FirstSeen: seen, LastSeen: seen.Add(time.Hour)},
		{Name: "tunnel.example.net.", Category: "tunnel", Source: "tunnel", Reason: "long encoded labels", FirstSeen: seen, LastSeen: seen},
	}
	ex := Export{Org: Org{Name: "Example ISP"}, Info: "Bulwark detections", Time: seen, Tags: []string{"tlp:amber"}}
	uuid, err := WriteFeed(dir, in, ex)
	if err != nil {
		t.Fatalf("WriteFeed: %v", err)
	}
	again, _ := WriteFeed(dir, in, ex)
	if again != uuid {
		t.Errorf("event UUID of the same export = %s, then %s; want stable", uuid, again)
	}
	for _, f := range []string{"manifest.json", "hashes.csv", uuid + ".json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("feed file %s: %v", f, err)
		}
	}
	hashes, _ := os.ReadFile(filepath.Join(dir, "hashes.csv"))
	if !strings.Contains(string(hashes), ","+uuid) || strings.Count(string(hashes), "\n") != 2 {
		t.Errorf("hashes.csv = %q, want 2 lines for event %s", hashes, uuid)
	}

	out, rep, err := ReadFeed(os.DirFS(dir), "peer")
	if err != nil || rep.NotForIDS != 0 || len(out) != len(in) {
		t.Fatalf("ReadFeed(WriteFeed) = %d indicators, %+v, %v", len(out), rep, err)
	}
	for i := range in {
		a, b := in[i], out[i]
		if a.Name != b.Name || a.Category != b.Category || a.Reason != b.Reason || !a.FirstSeen.Equal(b.FirstSeen) || !a.LastSeen.Equal(b.LastSeen) {
			t.Errorf("round trip %d = %+v, want %+v", i, b, a)
		}
	}
}

// TestRPZExport checks that the RPZ parser of internal/feed reads the
// zone MISP's RPZ export writes.
func TestRPZExport(t *testing.T) {
	f, err := os.Open("testdata/misp-export.rpz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := feed.Parse(f, feed.RPZ, feed.Options{Origin: "rpz.misp.example."})
	if err != nil {
		t.Fatalf("feed.Parse: %v", err)
	}
	if res.BadCount != 0 || len(res.Rules) != 5 {
		t.Fatalf("feed.Parse = %d rules, bad %v; want 5 rules, none bad", len(res.Rules), res.Bad)
	}
	r := res.Rules[1]
	if r.Name != "secure-login-bank.example." || !r.Wildcard || r.Action != feed.NXDomain {
		t.Errorf("rule 2 = %+v, want the wildcard NXDOMAIN rule of secure-login-bank.example.", r)
	}
}
