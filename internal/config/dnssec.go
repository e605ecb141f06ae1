package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"bulwark/internal/anchor"
	"bulwark/internal/autotrust"
	"bulwark/internal/clock"
	"bulwark/internal/dnssec"

	"github.com/miekg/dns"
)

// testingOnly is appended to errors about keys of the testing section.
const testingOnly = "set testing.enabled: true to use it; the testing section is for test suites only, never for production"

func (v *validator) testing() error {
	t := &v.cfg.Testing
	if t.FixedValidationTime != "" && !t.Enabled {
		return v.errorf("testing.fixed_validation_time", "%s", testingOnly)
	}
	if t.ClockFile != "" && !t.Enabled {
		return v.errorf("testing.clock_file", "%s", testingOnly)
	}
	if t.FixedValidationTime != "" && t.ClockFile != "" {
		return v.errorf("testing.clock_file", "fixed_validation_time and clock_file are both set: keep one of them")
	}
	t.FixedTime = time.Time{}
	if t.FixedValidationTime != "" {
		ft, err := time.Parse(time.RFC3339, t.FixedValidationTime)
		if err != nil {
			return v.errorf("testing.fixed_validation_time", "invalid time %q: write an RFC 3339 time such as 2026-03-01T12:00:00Z", t.FixedValidationTime)
		}
		t.FixedTime = ft
	}
	t.ClockFile = v.cfg.resolvePath(t.ClockFile)
	c, err := v.cfg.ValidationClock()
	if err != nil {
		return v.errorf("testing.clock_file", "%w: create it with a time such as @2018-02-01 12:00:00 (UTC), or fix the path, which is relative to the config file's directory", err)
	}
	v.clock = c
	return nil
}

// ValidationClock returns the clock that DNSSEC validation reads: a fixed
// clock for testing.fixed_validation_time, a *clock.FileClock for
// testing.clock_file, the system clock otherwise. Each call with a clock
// file returns a new clock that reads the file again.
func (c *Config) ValidationClock() (clock.Clock, error) {
	t := &c.Testing
	switch {
	case !t.FixedTime.IsZero():
		return clock.Fixed(t.FixedTime), nil
	case t.ClockFile != "":
		return clock.FromFile(t.ClockFile)
	}
	return clock.System(), nil
}

// now returns the time against which trust anchor windows and negative trust
// anchor expiry are checked at load time.
func (v *validator) now() time.Time {
	if v.clock == nil {
		return time.Now()
	}
	return v.clock.Now()
}

func (v *validator) dnssecLimits() error {
	d := &v.cfg.DNSSEC
	if d.MaxNSEC3Iterations < 0 || d.MaxNSEC3Iterations > 500 {
		return v.errorf("dnssec.max_nsec3_iterations", "invalid value %d: use 0 to 500 (RFC 9276 recommends 0 for signers)", d.MaxNSEC3Iterations)
	}
	if d.BogusTTL < Duration(time.Second) || d.BogusTTL > Duration(time.Hour) {
		return v.errorf("dnssec.bogus_ttl", "invalid duration %s: use 1s to 1h", d.BogusTTL.D())
	}
	limits := []struct {
		key string
		val int
		max int
	}{
		{"max_key_tag_collisions", d.MaxKeyTagCollisions, 64},
		{"max_signature_validations", d.MaxSignatureValidations, 1000},
		{"max_nsec3_hashes", d.MaxNSEC3Hashes, 1000},
	}
	for _, l := range limits {
		if l.val < 1 || l.val > l.max {
			return v.errorf("dnssec."+l.key, "invalid value %d: use 1 to %d", l.val, l.max)
		}
	}
	return nil
}

// trustAnchors parses the anchors of trust_anchors and trust_anchor_files
// into DNSSEC.Anchors.
func (v *validator) trustAnchors() error {
	d := &v.cfg.DNSSEC
	if len(d.TrustAnchors) == 0 && len(d.TrustAnchorFiles) == 0 {
		return v.errorf("dnssec.trust_anchors", "no trust anchor: list at least one, or remove the key for the IANA root anchors")
	}
	var anchors []dns.RR
	for i, line := range d.TrustAnchors {
		rr, err := dns.NewRR(line)
		if err == nil {
			err = anchor.Check(rr)
		}
		if err != nil {
			return v.errorf(fmt.Sprintf("dnssec.trust_anchors[%d]", i), "invalid trust anchor %q: %v", line, err)
		}
		anchors = append(anchors, anchor.Canonicalize(rr))
	}
	now := v.now()
	for i, name := range d.TrustAnchorFiles {
		key := fmt.Sprintf("dnssec.trust_anchor_files[%d]", i)
		if name == "" {
			return v.errorf(key, "empty path: give the path of an RFC 7958 XML file or of DS and DNSKEY records")
		}
		path := v.cfg.resolvePath(name)
		data, err := os.ReadFile(path)
		if err != nil {
			return v.errorf(key, "cannot read trust anchor file: %w: check the path, which is relative to the config file's directory", err)
		}
		rrs, err := anchor.Parse(data, now)
		if err != nil {
			return v.errorf(key, "trust anchor file %s: %w", path, err)
		}
		anchors = append(anchors, rrs...)
	}
	d.Anchors = anchor.Dedup(anchors)
	return v.usableAnchors()
}

// usableAnchors rejects a zone whose anchors all use algorithms or digest
// types that the validator does not support: the zone would be treated as
// unsigned, which turns validation off for it without a word.
func (v *validator) usableAnchors() error {
	byZone := map[string]dnssec.Trust{}
	var zones []string
	for _, rr := range v.cfg.DNSSEC.Anchors {
		zone := rr.Header().Name
		t, seen := byZone[zone]
		if !seen {
			zones = append(zones, zone)
		}
		switch rr := rr.(type) {
		case *dns.DS:
			t.DS = append(t.DS, rr)
		case *dns.DNSKEY:
			t.DNSKEYs = append(t.DNSKEYs, rr)
		}
		byZone[zone] = t
	}
	for _, zone := range zones {
		if ok, _ := byZone[zone].Usable(); !ok {
			return v.errorf("dnssec.trust_anchors", "no trust anchor for %s uses a supported algorithm (8, 10, 13, 14, 15 or 16) and, for DS records, digest type (2 or 4): add one, or validation is off for %s", zone, zone)
		}
	}
	return nil
}

func (v *validator) negativeTrustAnchors() error {
	d := &v.cfg.DNSSEC
	now := v.now()
	seen := map[string]bool{}
	var kept []NegativeTrustAnchor
	for i, nta := range d.NegativeTrustAnchors {
		key := fmt.Sprintf("dnssec.negative_trust_anchors[%d]", i)
		if nta.Domain == "" {
			return v.errorf(key, "missing domain: give the domain name whose data is not validated")
		}
		if _, ok := dns.IsDomainName(nta.Domain); !ok {
			return v.errorf(key+".domain", "invalid domain name %q", nta.Domain)
		}
		nta.Domain = dns.CanonicalName(nta.Domain)
		if seen[nta.Domain] {
			return v.errorf(key+".domain", "domain %s is listed twice", nta.Domain)
		}
		seen[nta.Domain] = true
		if !nta.Expires.IsZero() && !nta.Expires.After(now) {
			v.warnf(key+".expires", "negative trust anchor %s expired at %s, so it is skipped", nta.Domain, nta.Expires.Format(time.RFC3339))
			continue
		}
		kept = append(kept, nta)
	}
	if d.NegativeTrustAnchors != nil {
		d.NegativeTrustAnchors = kept
	}
	return nil
}

func (v *validator) autoTrustAnchorFile() error {
	d := &v.cfg.DNSSEC
	if d.AutoTrustAnchorFile == "" {
		return nil
	}
	d.AutoTrustAnchorFile = v.cfg.resolvePath(d.AutoTrustAnchorFile)
	dir := filepath.Dir(d.AutoTrustAnchorFile)
	info, err := os.Stat(dir)
	if err == nil && !info.IsDir() {
		err = errors.New("not a directory")
	}
	if err != nil {
		return v.errorf("dnssec.auto_trust_anchor_file", "invalid directory %s for the state file: %v", dir, err)
	}
	// A corrupt state file is reported here, at load time, so that
	// check-config finds it. The resolver loads the file again to use it.
	if _, err := autotrust.Load(d.AutoTrustAnchorFile); err != nil {
		return v.errorf("dnssec.auto_trust_anchor_file", "%w", err)
	}
	return nil
}

// warnf records a warning in the format of an *Error.
func (v *validator) warnf(key, format string, args ...any) {
	w := &Error{File: v.file, Line: lineOf(v.tree, key), Key: key, Err: fmt.Errorf(format, args...)}
	v.cfg.Warnings = append(v.cfg.Warnings, w.Error())
}
