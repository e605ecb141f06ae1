// Package indicator defines the threat indicator that the exchange formats
// (STIX 2.1, MISP, CSV, RPZ) read and write: one domain name with what is
// known about it and where that came from. It holds no store: deciding
// which indicators block is left to the candidate store and the policy.
package indicator

import (
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// State is where an indicator stands in review.
type State string

// States of an indicator.
const (
	Observed    State = "observed"
	Suspicious  State = "suspicious"
	AutoBlocked State = "auto_blocked"
	Review      State = "review"
	Confirmed   State = "confirmed"
	Rejected    State = "rejected"
)

// Mode says what an indicator from a source may do.
type Mode string

// Modes of a source.
const (
	// Audit indicators are counted and reported only.
	Audit Mode = "audit"
	// Enforce indicators may block.
	Enforce Mode = "enforce"
)

// Provenance is one origin of an indicator: a detector run, a feed or an
// export of another operator.
type Provenance struct {
	// Source is the detector or feed name, such as "dga" or "cert-eu".
	Source string
	// Ref is the origin's own id: a STIX object id, a MISP event UUID or
	// a URL. Empty when the origin has none.
	Ref string
	// URL links to the origin's description, when it has one.
	URL string
	// Seen is when the origin reported the indicator.
	Seen time.Time
}

// Indicator is one domain reported as malicious or suspicious.
type Indicator struct {
	// Name is the domain, fully qualified and in lower case.
	Name string
	// Category is a short word for the threat: "malware", "phishing",
	// "c2", "dga", "tunnel". Empty when unknown.
	Category string
	// Source is the detector or feed that reported it.
	Source string
	// Score is in [0, 1]; higher means more likely malicious.
	Score float64
	// Confidence is the source's confidence, 0 to 100 as in STIX 2.1.
	Confidence int
	// Reason is one sentence on why the name is listed.
	Reason string
	// FirstSeen and LastSeen bound the reports of the name.
	FirstSeen, LastSeen time.Time
	// ValidUntil is when the indicator expires unless renewed; zero means
	// no expiry.
	ValidUntil time.Time
	// State is the review state.
	State State
	// Mode is the mode of the source it came from.
	Mode Mode
	// Trust is the trust level of that source, 0 to 100.
	Trust int
	// Provenance lists every origin of the indicator.
	Provenance []Provenance
}

// Canonical returns name fully qualified and in lower case, or an error
// naming it when it is not a valid domain name. The root and single-label
// names are rejected: an indicator names a domain under a public suffix.
func Canonical(name string) (string, error) {
	n := dns.CanonicalName(strings.TrimSpace(name))
	if _, ok := dns.IsDomainName(n); !ok || n == "." || dns.CountLabel(n) < 2 {
		return "", fmt.Errorf("invalid domain name %q: give a name such as bad.example.com", name)
	}
	for i := 0; i < len(n); i++ {
		if !hostByte(n[i]) {
			return "", fmt.Errorf("invalid domain name %q: only letters, digits, hyphens, underscores and dots are allowed", name)
		}
	}
	return n, nil
}

// hostByte reports whether c may appear in an indicator's name: the
// letters, digits and hyphen of host names (RFC 952, RFC 1123 section
// 2.1), the underscore of service labels, and the dot. Other bytes, such
// as spaces, control characters, wildcards or bytes of other encodings,
// name no host that a feed could mean, and the CSV, STIX and RPZ forms
// would not carry them unchanged.
func hostByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		return true
	}
	return false
}

// Expired reports whether the indicator's validity has ended at now.
func (in *Indicator) Expired(now time.Time) bool {
	return !in.ValidUntil.IsZero() && !now.Before(in.ValidUntil)
}

// Domain returns the name without the trailing dot, as STIX and MISP
// write it.
func (in *Indicator) Domain() string { return strings.TrimSuffix(in.Name, ".") }
