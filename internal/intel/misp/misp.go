// Package misp writes threat indicators as a MISP feed directory and
// reads MISP feeds: manifest.json, one JSON file per event and
// hashes.csv, as MISP's feed export and "fetch from feed" use them. Only
// attributes of type domain, hostname and domain|ip are read, and only
// those with to_ids set, since the others are context, not detections.
// MISP's RPZ export is read by the RPZ parser of internal/feed.
package misp

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Org is the organisation that created an event.
type Org struct {
	Name string `json:"name"`
	UUID string `json:"uuid"`
}

// Tag is a MISP tag such as "tlp:green".
type Tag struct {
	Name string `json:"name"`
}

// Attribute is one MISP attribute.
type Attribute struct {
	UUID      string    `json:"uuid"`
	Type      string    `json:"type"`
	Category  string    `json:"category"`
	Value     string    `json:"value"`
	ToIDs     Bool      `json:"to_ids"`
	Deleted   Bool      `json:"deleted,omitempty"`
	Comment   string    `json:"comment,omitempty"`
	Timestamp Timestamp `json:"timestamp"`
	// FirstSeen and LastSeen are optional RFC 3339 times.
	FirstSeen string `json:"first_seen,omitempty"`
	LastSeen  string `json:"last_seen,omitempty"`
	Tag       []Tag  `json:"Tag,omitempty"`
}

// Object is a MISP object, whose attributes are read like the event's.
type Object struct {
	Name      string      `json:"name"`
	Attribute []Attribute `json:"Attribute"`
}

// Event is a MISP event as a feed stores it.
type Event struct {
	UUID             string      `json:"uuid"`
	Info             string      `json:"info"`
	Date             string      `json:"date"`
	Timestamp        Timestamp   `json:"timestamp"`
	PublishTimestamp Timestamp   `json:"publish_timestamp"`
	Published        bool        `json:"published"`
	Analysis         string      `json:"analysis"`
	ThreatLevelID    string      `json:"threat_level_id"`
	Orgc             Org         `json:"Orgc"`
	Tag              []Tag       `json:"Tag,omitempty"`
	Attribute        []Attribute `json:"Attribute"`
	Object           []Object    `json:"Object,omitempty"`
}

// eventFile is the JSON of one event file: {"Event": {...}}.
type eventFile struct {
	Event Event `json:"Event"`
}

// ManifestEntry is the summary of one event in manifest.json.
type ManifestEntry struct {
	Info          string    `json:"info"`
	Date          string    `json:"date"`
	Timestamp     Timestamp `json:"timestamp"`
	Analysis      string    `json:"analysis"`
	ThreatLevelID string    `json:"threat_level_id"`
	Orgc          Org       `json:"Orgc"`
	Tag           []Tag     `json:"Tag,omitempty"`
}

// Timestamp is a Unix time in seconds, which MISP writes as a string and
// some exports as a number.
type Timestamp int64

// MarshalJSON writes the timestamp as a string, as MISP does.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	return json.Marshal(strconv.FormatInt(int64(t), 10))
}

// UnmarshalJSON reads a string or a number.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*t = 0
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("invalid timestamp %s: want Unix seconds", b)
	}
	*t = Timestamp(n)
	return nil
}

// Time returns the timestamp as a time, zero for 0.
func (t Timestamp) Time() time.Time {
	if t == 0 {
		return time.Time{}
	}
	return time.Unix(int64(t), 0).UTC()
}

// Bool is a MISP flag, written true/false, "1"/"0" or 1/0 by different
// versions.
type Bool bool

// UnmarshalJSON reads any of the forms.
func (b *Bool) UnmarshalJSON(data []byte) error {
	switch strings.Trim(string(data), `"`) {
	case "true", "1":
		*b = true
	case "false", "0", "", "null":
		*b = false
	default:
		return fmt.Errorf("invalid flag %s: want true or false", data)
	}
	return nil
}
