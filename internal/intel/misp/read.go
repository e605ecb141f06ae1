package misp

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"time"

	"bulwark/internal/intel/indicator"
)

// maxFileBytes bounds one manifest or event file read from a feed.
const maxFileBytes = 256 << 20

// Report counts what ReadFeed did not take.
type Report struct {
	// Events is the number of events read.
	Events int
	// NotForIDS counts domain attributes without to_ids.
	NotForIDS int
	// OtherTypes counts attributes of types other than domain, hostname
	// and domain|ip.
	OtherTypes int
	// Invalid lists the attributes with an invalid domain, with why.
	Invalid []string
}

// ReadFeed reads the feed in fsys (a directory, or a fetched copy of a
// feed URL): manifest.json, then each event it lists, and returns the
// indicators tagged with source. A missing or invalid manifest or event is
// an error naming the file.
func ReadFeed(fsys fs.FS, source string) ([]indicator.Indicator, Report, error) {
	var rep Report
	data, err := readLimited(fsys, "manifest.json")
	if err != nil {
		return nil, rep, fmt.Errorf("MISP feed %s: %w", source, err)
	}
	var manifest map[string]ManifestEntry
	if err := json.Unmarshal(data, &manifest); err != nil {
		return nil, rep, fmt.Errorf("MISP feed %s: manifest.json: invalid JSON: %w", source, err)
	}
	uuids := make([]string, 0, len(manifest))
	for u := range manifest {
		uuids = append(uuids, u)
	}
	sort.Strings(uuids)
	var out []indicator.Indicator
	for _, u := range uuids {
		if !fs.ValidPath(u) || strings.ContainsAny(u, "/\\") {
			return nil, rep, fmt.Errorf("MISP feed %s: manifest.json: invalid event UUID %q", source, u)
		}
		data, err := readLimited(fsys, u+".json")
		if err != nil {
			return nil, rep, fmt.Errorf("MISP feed %s: event %s: %w", source, u, err)
		}
		ins, err := ReadEvent(data, source, &rep)
		if err != nil {
			return nil, rep, fmt.Errorf("MISP feed %s: event %s: %w", source, u, err)
		}
		out = append(out, ins...)
	}
	return out, rep, nil
}

func readLimited(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, maxFileBytes)
	}
	return data, nil
}

// ReadEvent reads one event file ({"Event": {...}}) and returns its
// domain indicators, counting what it skips in rep.
func ReadEvent(data []byte, source string, rep *Report) ([]indicator.Indicator, error) {
	var f eventFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	rep.Events++
	ev := f.Event
	attrs := ev.Attribute
	for _, o := range ev.Object {
		attrs = append(attrs, o.Attribute...)
	}
	var out []indicator.Indicator
	for _, a := range attrs {
		in, ok := fromAttribute(a, ev, source, rep)
		if ok {
			out = append(out, in)
		}
	}
	return out, nil
}

func fromAttribute(a Attribute, ev Event, source string, rep *Report) (indicator.Indicator, bool) {
	value := a.Value
	switch a.Type {
	case "domain", "hostname":
	case "domain|ip":
		value, _, _ = strings.Cut(value, "|")
	default:
		rep.OtherTypes++
		return indicator.Indicator{}, false
	}
	if a.Deleted {
		return indicator.Indicator{}, false
	}
	if !a.ToIDs {
		rep.NotForIDS++
		return indicator.Indicator{}, false
	}
	name, err := indicator.Canonical(value)
	if err != nil {
		rep.Invalid = append(rep.Invalid, fmt.Sprintf("attribute %s: %v", a.UUID, err))
		return indicator.Indicator{}, false
	}
	in := indicator.Indicator{
		Name: name, Source: source, Reason: a.Comment, State: indicator.Observed,
		Category: category(a, ev), LastSeen: a.Timestamp.Time(),
	}
	if in.Reason == "" {
		in.Reason = ev.Info
	}
	if t, err := time.Parse(time.RFC3339, a.FirstSeen); err == nil {
		in.FirstSeen = t
	} else {
		in.FirstSeen = in.LastSeen
	}
	if t, err := time.Parse(time.RFC3339, a.LastSeen); err == nil {
		in.LastSeen = t
	}
	by := source
	if ev.Orgc.Name != "" {
		by = source + " (" + ev.Orgc.Name + ")"
	}
	in.Provenance = []indicator.Provenance{{Source: by, Ref: ev.UUID + "/" + a.UUID, Seen: in.LastSeen}}
	return in, true
}

// category returns the value of a bulwark:category tag, as WriteFeed
// writes it, else the attribute's MISP category in lower case.
func category(a Attribute, ev Event) string {
	for _, t := range a.Tag {
		if v, ok := strings.CutPrefix(t.Name, `bulwark:category="`); ok {
			return strings.TrimSuffix(v, `"`)
		}
	}
	return strings.ToLower(a.Category)
}
