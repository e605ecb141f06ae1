// Package stix writes threat indicators as STIX 2.1 bundles and reads the
// domain indicators of bundles from others (OASIS STIX Version 2.1,
// sections 4 and 9). It understands only patterns that compare
// domain-name:value for equality, alone or joined by OR, and reports every
// other indicator as skipped with a reason. Fetching bundles is left to
// the taxii package, and applying them to the candidate store.
package stix

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/json"
	"fmt"
	"time"
)

// SpecVersion is the STIX version written and read.
const SpecVersion = "2.1"

// timeLayout is the STIX timestamp with millisecond precision, which
// created and modified require (STIX 2.1 section 3.2).
const timeLayout = "2006-01-02T15:04:05.000Z"

// Bundle is a STIX bundle. Objects stay raw so that objects of any type
// pass through decoding.
type Bundle struct {
	Type    string            `json:"type"`
	ID      string            `json:"id"`
	Objects []json.RawMessage `json:"objects"`
}

// Identity is the STIX identity object of the operator that produced the
// indicators.
type Identity struct {
	Type          string `json:"type"`
	SpecVersion   string `json:"spec_version"`
	ID            string `json:"id"`
	Created       string `json:"created"`
	Modified      string `json:"modified"`
	Name          string `json:"name"`
	IdentityClass string `json:"identity_class,omitempty"`
	ContactInfo   string `json:"contact_information,omitempty"`
}

// ExternalReference points to a non-STIX source of an object.
type ExternalReference struct {
	SourceName  string `json:"source_name"`
	Description string `json:"description,omitempty"`
	URL         string `json:"url,omitempty"`
	ExternalID  string `json:"external_id,omitempty"`
}

// Indicator is the STIX indicator object.
type Indicator struct {
	Type               string              `json:"type"`
	SpecVersion        string              `json:"spec_version"`
	ID                 string              `json:"id"`
	CreatedByRef       string              `json:"created_by_ref,omitempty"`
	Created            string              `json:"created"`
	Modified           string              `json:"modified"`
	Name               string              `json:"name,omitempty"`
	Description        string              `json:"description,omitempty"`
	IndicatorTypes     []string            `json:"indicator_types,omitempty"`
	Pattern            string              `json:"pattern"`
	PatternType        string              `json:"pattern_type"`
	PatternVersion     string              `json:"pattern_version,omitempty"`
	ValidFrom          string              `json:"valid_from"`
	ValidUntil         string              `json:"valid_until,omitempty"`
	Confidence         *int                `json:"confidence,omitempty"`
	Labels             []string            `json:"labels,omitempty"`
	Revoked            bool                `json:"revoked,omitempty"`
	ExternalReferences []ExternalReference `json:"external_references,omitempty"`
}

// namespace is the UUID namespace of Bulwark's deterministic STIX ids, a
// UUIDv5 of the URL namespace of RFC 9562 and "bulwark:stix".
var namespace = uuid5([16]byte{0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}, "bulwark:stix")

// uuid5 returns the name-based UUID of name in namespace ns (RFC 9562
// section 5.5).
func uuid5(ns [16]byte, name string) [16]byte {
	h := sha1.New()
	h.Write(ns[:])
	h.Write([]byte(name))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return u
}

func uuid4() [16]byte {
	var u [16]byte
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

func formatUUID(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// ObjectID returns the deterministic id of a STIX object of type typ for
// key, so that exporting the same indicator again gives the same id.
func ObjectID(typ, key string) string {
	return typ + "--" + formatUUID(uuid5(namespace, typ+"\x00"+key))
}

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// parseTime parses a STIX timestamp, in UTC with any fraction of a second.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid timestamp %q: STIX writes UTC RFC 3339 such as 2025-01-02T15:04:05.000Z", s)
	}
	return t, nil
}
