package stix

import (
	"encoding/json"
	"strings"
	"time"

	"bulwark/internal/intel/indicator"
)

// Operator is the identity that creates the exported indicators.
type Operator struct {
	// Name is the operator's name, such as "Example CERT resolver".
	Name string
	// Contact is how to reach the operator; optional.
	Contact string
}

// indicatorType maps categories to the indicator-type-ov vocabulary of
// STIX 2.1 section 10.13.
func indicatorTypes(category string) []string {
	switch category {
	case "benign":
		return []string{"benign"}
	case "", "suspicious", "dga", "tunnel", "nod", "spike", "fast-flux":
		return []string{"anomalous-activity"}
	}
	return []string{"malicious-activity"}
}

// Encode returns a bundle with the operator's identity and one indicator
// per entry of ins. Ids come from the operator, source and name, so a
// re-export of the same indicators keeps their ids; only the bundle id is
// new each time. now stamps indicators without a first or last seen time.
func Encode(ins []indicator.Indicator, op Operator, now time.Time) ([]byte, error) {
	identity := Identity{
		Type: "identity", SpecVersion: SpecVersion, ID: ObjectID("identity", op.Name),
		Created: formatTime(time.Unix(0, 0)), Modified: formatTime(time.Unix(0, 0)),
		Name: op.Name, IdentityClass: "organization", ContactInfo: op.Contact,
	}
	objects := make([]json.RawMessage, 0, len(ins)+1)
	raw, err := json.Marshal(identity)
	if err != nil {
		return nil, err
	}
	objects = append(objects, raw)
	for _, in := range ins {
		raw, err := json.Marshal(encodeIndicator(in, identity.ID, now))
		if err != nil {
			return nil, err
		}
		objects = append(objects, raw)
	}
	b := Bundle{Type: "bundle", ID: "bundle--" + formatUUID(uuid4()), Objects: objects}
	return json.MarshalIndent(b, "", "  ")
}

func encodeIndicator(in indicator.Indicator, identityID string, now time.Time) Indicator {
	first, last := in.FirstSeen, in.LastSeen
	if first.IsZero() {
		first = now
	}
	if last.IsZero() || last.Before(first) {
		last = first
	}
	domain := in.Domain()
	out := Indicator{
		Type: "indicator", SpecVersion: SpecVersion, ID: ObjectID("indicator", in.Source+"\x00"+domain),
		CreatedByRef: identityID, Created: formatTime(first), Modified: formatTime(last),
		Description: in.Reason, IndicatorTypes: indicatorTypes(in.Category),
		Pattern: "[domain-name:value = '" + quote(domain) + "']", PatternType: "stix", PatternVersion: SpecVersion,
		ValidFrom: formatTime(first),
	}
	if !in.ValidUntil.IsZero() && in.ValidUntil.After(first) {
		out.ValidUntil = formatTime(in.ValidUntil)
	}
	if in.Confidence > 0 {
		c := in.Confidence
		out.Confidence = &c
	}
	if in.Category != "" {
		out.Labels = append(out.Labels, in.Category)
	}
	if in.Source != "" {
		out.Labels = append(out.Labels, "source:"+in.Source)
	}
	for _, p := range in.Provenance {
		ref := ExternalReference{SourceName: p.Source, URL: p.URL, ExternalID: p.Ref}
		if !p.Seen.IsZero() {
			ref.Description = "reported " + formatTime(p.Seen)
		}
		if ref.SourceName == "" {
			ref.SourceName = "unknown"
		}
		out.ExternalReferences = append(out.ExternalReferences, ref)
	}
	return out
}

// quote escapes a string for a STIX pattern literal, where backslash and
// the single quote are escaped with a backslash (STIX 2.1 section 9.4).
func quote(s string) string {
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s)
}
