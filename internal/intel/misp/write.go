package misp

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"bulwark/internal/atomicfile"
	"bulwark/internal/intel/indicator"
	"bulwark/internal/intel/stix"
)

// Export names the event a feed export writes.
type Export struct {
	// Org is the creating organisation. Its UUID may be empty: one is
	// derived from the name.
	Org Org
	// Info is the event title, such as "Bulwark detections 2025-05-01".
	Info string
	// Time is the time of the export; it names the event's date and
	// timestamp and, with Info, its UUID.
	Time time.Time
	// Tags are added to the event, such as "tlp:amber".
	Tags []string
}

// WriteFeed adds one event holding ins to the feed directory dir, creating
// it when needed: the event file, manifest.json with all events of the
// directory, and hashes.csv with the MD5 of every attribute value and its
// event, as MISP's feed generator lays them out. Each file is replaced
// atomically. It returns the event's UUID.
func WriteFeed(dir string, ins []indicator.Indicator, ex Export) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("MISP feed %s: %w", dir, err)
	}
	ev := event(ins, ex)
	data, err := json.MarshalIndent(eventFile{Event: ev}, "", "  ")
	if err != nil {
		return "", err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, ev.UUID+".json"), data, 0o644); err != nil {
		return "", fmt.Errorf("MISP feed %s: %w", dir, err)
	}
	manifest, hashes, err := index(dir)
	if err != nil {
		return "", err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "manifest.json"), manifest, 0o644); err != nil {
		return "", fmt.Errorf("MISP feed %s: %w", dir, err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "hashes.csv"), hashes, 0o644); err != nil {
		return "", fmt.Errorf("MISP feed %s: %w", dir, err)
	}
	return ev.UUID, nil
}

// uuidOf returns a stable UUID for key, the UUID part of a STIX object id.
func uuidOf(key string) string {
	return strings.TrimPrefix(stix.ObjectID("misp", key), "misp--")
}

func event(ins []indicator.Indicator, ex Export) Event {
	org := ex.Org
	if org.UUID == "" {
		org.UUID = uuidOf("org\x00" + org.Name)
	}
	ts := Timestamp(ex.Time.Unix())
	ev := Event{
		UUID: uuidOf("event\x00" + org.Name + "\x00" + ex.Info + "\x00" + ex.Time.UTC().Format(time.RFC3339Nano)),
		Info: ex.Info, Date: ex.Time.UTC().Format("2006-01-02"), Timestamp: ts, PublishTimestamp: ts,
		Published: true, Analysis: "2", ThreatLevelID: "2", Orgc: org,
	}
	for _, t := range ex.Tags {
		ev.Tag = append(ev.Tag, Tag{Name: t})
	}
	for _, in := range ins {
		ev.Attribute = append(ev.Attribute, attribute(in, ts))
	}
	return ev
}

func attribute(in indicator.Indicator, ts Timestamp) Attribute {
	a := Attribute{
		UUID: uuidOf("attribute\x00" + in.Source + "\x00" + in.Domain()),
		Type: "domain", Category: "Network activity", Value: in.Domain(),
		ToIDs: true, Comment: in.Reason, Timestamp: ts,
	}
	if !in.FirstSeen.IsZero() {
		a.FirstSeen = in.FirstSeen.UTC().Format(time.RFC3339)
	}
	if !in.LastSeen.IsZero() {
		a.LastSeen = in.LastSeen.UTC().Format(time.RFC3339)
	}
	if in.Category != "" {
		a.Tag = append(a.Tag, Tag{Name: "bulwark:category=\"" + in.Category + "\""})
	}
	if in.Source != "" {
		a.Tag = append(a.Tag, Tag{Name: "bulwark:source=\"" + in.Source + "\""})
	}
	return a
}

// index reads the event files of dir and returns manifest.json and
// hashes.csv for them.
func index(dir string) ([]byte, []byte, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(paths)
	manifest := map[string]ManifestEntry{}
	var hashes strings.Builder
	for _, p := range paths {
		if filepath.Base(p) == "manifest.json" {
			continue
		}
		ev, err := readEventFile(p)
		if err != nil {
			return nil, nil, err
		}
		manifest[ev.UUID] = ManifestEntry{
			Info: ev.Info, Date: ev.Date, Timestamp: ev.Timestamp, Analysis: ev.Analysis,
			ThreatLevelID: ev.ThreatLevelID, Orgc: ev.Orgc, Tag: ev.Tag,
		}
		for _, a := range ev.Attribute {
			sum := md5.Sum([]byte(a.Value))
			fmt.Fprintf(&hashes, "%s,%s\n", hex.EncodeToString(sum[:]), ev.UUID)
		}
	}
	data, err := json.MarshalIndent(manifest, "", "  ")
	return data, []byte(hashes.String()), err
}

func readEventFile(path string) (Event, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Event{}, err
	}
	var f eventFile
	if err := json.Unmarshal(data, &f); err != nil {
		return Event{}, fmt.Errorf("MISP event %s: invalid JSON: %w", path, err)
	}
	return f.Event, nil
}
