// Package anchor parses and checks DNSSEC trust anchors: DS and DNSKEY
// records in zone-file syntax, and the XML format that IANA publishes for the
// root zone (RFC 7958, updated by RFC 9718).
//
// Every record returned has a canonical owner name (lower case, fully
// qualified) and, for DS records, an upper-case digest, so that equal anchors
// compare equal with dns.IsDuplicate.
package anchor

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Parse detects the format of data and parses it: XML when the first
// character that is not white space is '<', DS and DNSKEY lines otherwise.
// now selects the usable XML KeyDigests; lines are relative to the root.
func Parse(data []byte, now time.Time) ([]dns.RR, error) {
	if IsXML(data) {
		return ParseXML(data, now)
	}
	return ParseLines(string(data), ".")
}

// IsXML reports whether data looks like an XML document.
func IsXML(data []byte) bool {
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	return len(trimmed) > 0 && trimmed[0] == '<'
}

// digestLengths are the DS digest sizes in bytes by digest type (RFC 4034,
// RFC 4509, RFC 6605). Other digest types are left to the validator, which
// treats them as unsupported.
var digestLengths = map[uint8]int{
	dns.SHA1: 20, dns.SHA256: 32, dns.GOST94: 32, dns.SHA384: 48,
}

// Check checks that rr is a DS or DNSKEY record whose data decodes and that
// can act as a trust anchor.
func Check(rr dns.RR) error {
	switch rr := rr.(type) {
	case *dns.DS:
		digest, err := hex.DecodeString(rr.Digest)
		if err != nil {
			return fmt.Errorf("digest is not hexadecimal")
		}
		if want, ok := digestLengths[rr.DigestType]; ok && len(digest) != want {
			return fmt.Errorf("digest of type %d has %d bytes, want %d", rr.DigestType, len(digest), want)
		}
	case *dns.DNSKEY:
		if rr.Protocol != 3 {
			return fmt.Errorf("protocol %d, want 3 (RFC 4034 section 2.1.2)", rr.Protocol)
		}
		key, err := base64.StdEncoding.DecodeString(rr.PublicKey)
		if err != nil {
			return fmt.Errorf("public key is not base64")
		}
		if len(key) == 0 {
			return fmt.Errorf("public key is empty")
		}
		if rr.Flags&dns.ZONE == 0 {
			return fmt.Errorf("flags %d lack the zone key bit (256), so the key cannot sign a zone (RFC 4034 section 2.1.1)", rr.Flags)
		}
		if rr.Flags&dns.REVOKE != 0 {
			return fmt.Errorf("flags %d have the revoke bit (128) set, so the key must not be trusted (RFC 5011 section 2.1)", rr.Flags)
		}
	default:
		if rr == nil {
			return fmt.Errorf("empty record")
		}
		return fmt.Errorf("type %s is not DS or DNSKEY", dns.TypeToString[rr.Header().Rrtype])
	}
	if class := rr.Header().Class; class != dns.ClassINET {
		return fmt.Errorf("class %s, want IN", dns.Class(class))
	}
	return nil
}

// Canonicalize lower-cases the owner name of rr, makes it fully qualified,
// sets the class to IN when it is unset and upper-cases a DS digest. It
// changes rr in place and returns it.
func Canonicalize(rr dns.RR) dns.RR {
	h := rr.Header()
	h.Name = dns.CanonicalName(h.Name)
	if h.Class == 0 {
		h.Class = dns.ClassINET
	}
	if ds, ok := rr.(*dns.DS); ok {
		ds.Digest = strings.ToUpper(ds.Digest)
	}
	return rr
}

// Dedup returns rrs without the records that duplicate an earlier one; the
// TTL is ignored. Records should be canonical first.
func Dedup(rrs []dns.RR) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		seen := false
		for _, kept := range out {
			if dns.IsDuplicate(rr, kept) {
				seen = true
				break
			}
		}
		if !seen {
			out = append(out, rr)
		}
	}
	return out
}
