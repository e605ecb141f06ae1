package anchor

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// trustAnchorXML is the document of RFC 7958 section 2.1, with the optional
// PublicKey and Flags elements that RFC 9718 adds to KeyDigest.
type trustAnchorXML struct {
	XMLName    xml.Name       `xml:"TrustAnchor"`
	Zone       *string        `xml:"Zone"`
	KeyDigests []keyDigestXML `xml:"KeyDigest"`
}

type keyDigestXML struct {
	ID         string  `xml:"id,attr"`
	ValidFrom  string  `xml:"validFrom,attr"`
	ValidUntil string  `xml:"validUntil,attr"`
	KeyTag     *string `xml:"KeyTag"`
	Algorithm  *string `xml:"Algorithm"`
	DigestType *string `xml:"DigestType"`
	Digest     *string `xml:"Digest"`
	PublicKey  *string `xml:"PublicKey"`
	Flags      *string `xml:"Flags"`
}

// ParseXML parses a trust anchor document in the XML format of RFC 7958 and
// returns the anchors of the KeyDigests that are valid at now: validFrom is
// not after now and validUntil, when present, is after now. A KeyDigest with
// PublicKey and Flags gives a DNSKEY record, whose key tag (and digest, when
// one is given) must match the key. A KeyDigest with only DigestType and
// Digest gives a DS record. Every KeyDigest is checked, even one outside its
// validity window. Errors name the KeyDigest by its id attribute. A document
// with no KeyDigest valid at now is an error.
func ParseXML(data []byte, now time.Time) ([]dns.RR, error) {
	var doc trustAnchorXML
	dec := xml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("invalid trust anchor XML: %w", err)
	}
	if err := checkTrailing(dec); err != nil {
		return nil, err
	}
	if doc.Zone == nil {
		return nil, errors.New("invalid trust anchor XML: the Zone element is missing")
	}
	zone, err := absoluteName(strings.TrimSpace(*doc.Zone), ".")
	if err != nil {
		return nil, fmt.Errorf("invalid trust anchor XML: Zone: %w", err)
	}
	if len(doc.KeyDigests) == 0 {
		return nil, errors.New("invalid trust anchor XML: no KeyDigest element")
	}
	var out []dns.RR
	for i, kd := range doc.KeyDigests {
		rr, from, until, err := kd.record(zone)
		if err != nil {
			name := fmt.Sprintf("KeyDigest %q", kd.ID)
			if kd.ID == "" {
				name = fmt.Sprintf("KeyDigest %d (without id)", i+1)
			}
			return nil, fmt.Errorf("invalid trust anchor XML: %s: %w", name, err)
		}
		if now.Before(from) || (!until.IsZero() && !now.Before(until)) {
			continue
		}
		out = append(out, rr)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no KeyDigest in the trust anchor XML is valid at %s: check validFrom and validUntil, and the clock", now.UTC().Format(time.RFC3339))
	}
	return Dedup(out), nil
}

// checkTrailing rejects anything but white space, comments and processing
// instructions after the TrustAnchor element, such as a second document.
func checkTrailing(dec *xml.Decoder) error {
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("invalid trust anchor XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return errors.New("invalid trust anchor XML: text after the TrustAnchor element")
			}
		case xml.Comment, xml.ProcInst:
		default:
			return errors.New("invalid trust anchor XML: content after the TrustAnchor element")
		}
	}
}

// record builds the DS or DNSKEY record of one KeyDigest and returns its
// validity window; until is zero when validUntil is absent.
func (kd *keyDigestXML) record(zone string) (rr dns.RR, from, until time.Time, err error) {
	if from, err = parseDateTime("validFrom", kd.ValidFrom); err != nil {
		return nil, from, until, err
	}
	if kd.ValidUntil != "" {
		if until, err = parseDateTime("validUntil", kd.ValidUntil); err != nil {
			return nil, from, until, err
		}
		if !until.After(from) {
			return nil, from, until, fmt.Errorf("validUntil %s is not after validFrom %s", kd.ValidUntil, kd.ValidFrom)
		}
	}
	keyTag, err := parseUint("KeyTag", kd.KeyTag, 16)
	if err != nil {
		return nil, from, until, err
	}
	algorithm, err := parseUint("Algorithm", kd.Algorithm, 8)
	if err != nil {
		return nil, from, until, err
	}
	hdr := dns.RR_Header{Name: zone, Class: dns.ClassINET}
	var ds *dns.DS
	if kd.Digest != nil || kd.DigestType != nil {
		digestType, err := parseUint("DigestType", kd.DigestType, 8)
		if err != nil {
			return nil, from, until, err
		}
		if kd.Digest == nil {
			return nil, from, until, errors.New("DigestType is given without Digest")
		}
		hdr.Rrtype = dns.TypeDS
		ds = &dns.DS{Hdr: hdr, KeyTag: uint16(keyTag), Algorithm: uint8(algorithm),
			DigestType: uint8(digestType), Digest: strings.ToUpper(strings.Join(strings.Fields(*kd.Digest), ""))}
		if err := Check(ds); err != nil {
			return nil, from, until, err
		}
	}
	if kd.PublicKey == nil && kd.Flags == nil {
		if ds == nil {
			return nil, from, until, errors.New("neither DigestType and Digest nor PublicKey and Flags are given")
		}
		return ds, from, until, nil
	}
	key, err := kd.dnskey(zone, uint16(keyTag), uint8(algorithm))
	if err != nil {
		return nil, from, until, err
	}
	if ds != nil {
		// The digest is checked only when miekg/dns can compute its type.
		if computed := key.ToDS(ds.DigestType); computed != nil && !strings.EqualFold(computed.Digest, ds.Digest) {
			return nil, from, until, errors.New("Digest does not match the digest of PublicKey")
		}
	}
	return key, from, until, nil
}

// dnskey builds the DNSKEY record of a KeyDigest that has PublicKey and
// Flags, and checks that its key tag is keyTag.
func (kd *keyDigestXML) dnskey(zone string, keyTag uint16, algorithm uint8) (*dns.DNSKEY, error) {
	if kd.PublicKey == nil || kd.Flags == nil {
		return nil, errors.New("PublicKey and Flags must be given together")
	}
	flags, err := parseUint("Flags", kd.Flags, 16)
	if err != nil {
		return nil, err
	}
	publicKey := strings.Join(strings.Fields(*kd.PublicKey), "")
	if _, err := base64.StdEncoding.DecodeString(publicKey); err != nil {
		return nil, errors.New("PublicKey is not base64")
	}
	key := &dns.DNSKEY{
		Hdr:       dns.RR_Header{Name: zone, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET},
		Flags:     uint16(flags),
		Protocol:  3,
		Algorithm: algorithm,
		PublicKey: publicKey,
	}
	if err := Check(key); err != nil {
		return nil, err
	}
	if got := key.KeyTag(); got != keyTag {
		return nil, fmt.Errorf("KeyTag %d does not match the key tag %d of PublicKey and Flags", keyTag, got)
	}
	return key, nil
}

// parseDateTime parses an xsd:dateTime attribute. A time without a zone
// offset is taken as UTC.
func parseDateTime(name, value string) (time.Time, error) {
	if value == "" {
		return time.Time{}, fmt.Errorf("the %s attribute is missing", name)
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, strings.TrimSpace(value)); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid %s %q: write a date and time such as 2024-07-18T00:00:00+00:00", name, value)
}

// parseUint parses the text of a required element holding an unsigned
// integer of the given bit size.
func parseUint(name string, text *string, bits int) (uint64, error) {
	if text == nil {
		return 0, fmt.Errorf("the %s element is missing", name)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(*text), 10, bits)
	if err != nil {
		return 0, fmt.Errorf("invalid %s %q: want a whole number from 0 to %d", name, *text, uint64(1)<<bits-1)
	}
	return n, nil
}
