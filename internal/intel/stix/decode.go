package stix

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"bulwark/internal/intel/indicator"
)

// Skipped is an object of a bundle that Decode did not take, with why.
type Skipped struct {
	// ID is the object's id, or its index when it has none.
	ID string
	// Reason says why, such as "pattern compares ipv4-addr:value".
	Reason string
}

// maxBundleObjects bounds the objects of one bundle Decode reads.
const maxBundleObjects = 1_000_000

// Decode reads a STIX 2.1 bundle and returns its domain indicators, each
// tagged with source, and the indicators it skipped with the reason:
// revoked ones, other pattern types, and patterns other than equality on
// domain-name:value joined by OR. Objects of other types are ignored
// without a report. An indicator whose pattern lists several domains gives
// one indicator per domain. It returns an error only when data is not a
// bundle.
func Decode(data []byte, source string) ([]indicator.Indicator, []Skipped, error) {
	var b Bundle
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, nil, fmt.Errorf("STIX bundle from %s: invalid JSON: %w", source, err)
	}
	if b.Type != "bundle" {
		return nil, nil, fmt.Errorf("STIX bundle from %s: type is %q, want \"bundle\"", source, b.Type)
	}
	if len(b.Objects) > maxBundleObjects {
		return nil, nil, fmt.Errorf("STIX bundle from %s: %d objects, more than the %d read", source, len(b.Objects), maxBundleObjects)
	}
	return DecodeObjects(b.Objects, source)
}

// DecodeObjects is Decode for the objects of a bundle or of a TAXII
// envelope.
func DecodeObjects(objects []json.RawMessage, source string) ([]indicator.Indicator, []Skipped, error) {
	identities := map[string]string{}
	var (
		out     []indicator.Indicator
		skipped []Skipped
		inds    []Indicator
	)
	for i, raw := range objects {
		var head struct {
			Type string `json:"type"`
			ID   string `json:"id"`
			Name string `json:"name"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			skipped = append(skipped, Skipped{ID: fmt.Sprintf("object %d", i), Reason: "invalid JSON: " + err.Error()})
			continue
		}
		switch head.Type {
		case "identity":
			identities[head.ID] = head.Name
		case "indicator":
			var in Indicator
			if err := json.Unmarshal(raw, &in); err != nil {
				skipped = append(skipped, Skipped{ID: head.ID, Reason: "invalid indicator: " + err.Error()})
				continue
			}
			inds = append(inds, in)
		}
	}
	for _, in := range inds {
		got, err := decodeIndicator(in, source, identities)
		if err != nil {
			skipped = append(skipped, Skipped{ID: in.ID, Reason: err.Error()})
			continue
		}
		out = append(out, got...)
	}
	return out, skipped, nil
}

func decodeIndicator(in Indicator, source string, identities map[string]string) ([]indicator.Indicator, error) {
	if in.Revoked {
		return nil, errors.New("revoked")
	}
	if in.PatternType != "stix" {
		return nil, fmt.Errorf("pattern_type %q, only stix patterns are read", in.PatternType)
	}
	domains, err := ParsePattern(in.Pattern)
	if err != nil {
		return nil, err
	}
	base, err := indicatorFields(in, source, identities)
	if err != nil {
		return nil, err
	}
	out := make([]indicator.Indicator, 0, len(domains))
	for _, d := range domains {
		name, err := indicator.Canonical(d)
		if err != nil {
			return nil, err
		}
		x := base
		x.Name = name
		x.Provenance = append([]indicator.Provenance(nil), base.Provenance...)
		out = append(out, x)
	}
	return out, nil
}

// indicatorFields fills what an indicator's domains share: times,
// confidence, category, reason and provenance.
func indicatorFields(in Indicator, source string, identities map[string]string) (indicator.Indicator, error) {
	x := indicator.Indicator{Source: source, Reason: in.Description, State: indicator.Observed}
	var err error
	if x.FirstSeen, err = parseTime(in.ValidFrom); err != nil {
		return x, fmt.Errorf("valid_from: %w", err)
	}
	x.LastSeen = x.FirstSeen
	if t, err := parseTime(in.Modified); err == nil && t.After(x.LastSeen) {
		x.LastSeen = t
	}
	if in.ValidUntil != "" {
		if x.ValidUntil, err = parseTime(in.ValidUntil); err != nil {
			return x, fmt.Errorf("valid_until: %w", err)
		}
	}
	if in.Confidence != nil {
		x.Confidence = min(max(*in.Confidence, 0), 100)
	}
	x.Category = category(in)
	if x.Reason == "" && in.Name != "" {
		x.Reason = in.Name
	}
	p := indicator.Provenance{Source: source, Ref: in.ID, Seen: x.LastSeen}
	if by := identities[in.CreatedByRef]; by != "" {
		p.Source = source + " (" + by + ")"
	}
	for _, ref := range in.ExternalReferences {
		if ref.URL != "" {
			p.URL = ref.URL
			break
		}
	}
	x.Provenance = []indicator.Provenance{p}
	return x, nil
}

// category takes the first label that is not a "source:" label written by
// Encode, else the first indicator type.
func category(in Indicator) string {
	for _, l := range in.Labels {
		if !strings.HasPrefix(l, "source:") {
			return l
		}
	}
	if len(in.IndicatorTypes) > 0 {
		return in.IndicatorTypes[0]
	}
	return ""
}
