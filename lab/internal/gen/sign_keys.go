package gen

import (
	"crypto"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// zoneKey is one generated key with its BIND-format key files.
type zoneKey struct {
	Spec   KeySpec
	DNSKEY *dns.DNSKEY
	// Private is nil for keys that ldns-keygen made.
	Private crypto.PrivateKey
	Base    string // key file path without .key or .private
}

// published returns the DNSKEY as the zone publishes it: with the zone
// key bit cleared for NoZoneBit keys.
func (k *zoneKey) published() *dns.DNSKEY {
	if !k.Spec.NoZoneBit {
		return k.DNSKEY
	}
	c := dns.Copy(k.DNSKEY).(*dns.DNSKEY)
	c.Flags &^= dns.ZONE
	return c
}

// goKeyAlgorithm reports whether the dns package can generate a key of
// the spec. Go refuses RSA keys below 1024 bits and has no Ed448.
func goKeyAlgorithm(spec KeySpec) bool {
	switch spec.Algorithm {
	case dns.RSASHA1, dns.RSASHA1NSEC3SHA1, dns.RSASHA256, dns.RSASHA512:
		return spec.Bits >= 1024
	case dns.ECDSAP256SHA256, dns.ECDSAP384SHA384, dns.ED25519:
		return true
	}
	return false
}

// newZoneKey generates a key for zone and writes its key files into dir.
// Keys that Go cannot make come from ldns-keygen.
func newZoneKey(zone string, spec KeySpec, dir string, active time.Time) (*zoneKey, error) {
	if !goKeyAlgorithm(spec) {
		return ldnsKey(zone, spec, dir)
	}
	key := &dns.DNSKEY{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: dnskeyTTL},
		Flags: dns.ZONE, Protocol: 3, Algorithm: spec.Algorithm}
	if spec.KSK {
		key.Flags |= dns.SEP
	}

	bits := spec.Bits
	switch spec.Algorithm {
	case dns.ECDSAP256SHA256, dns.ED25519:
		bits = 256
	case dns.ECDSAP384SHA384:
		bits = 384
	}
	// Key files are named after the key tag, so a second key of the zone
	// with the tag of the first would overwrite its files, and the signer
	// would then find the first key missing. Such a key is made again.
	var priv crypto.PrivateKey
	var base string
	for attempt := 0; ; attempt++ {
		var err error
		if priv, err = key.Generate(bits); err != nil {
			return nil, fmt.Errorf("generate %s key: %w", dns.AlgorithmToString[spec.Algorithm], err)
		}
		base = filepath.Join(dir, fmt.Sprintf("K%s+%03d+%05d", zone, spec.Algorithm, key.KeyTag()))
		if _, err := os.Stat(base + ".key"); errors.Is(err, fs.ErrNotExist) {
			break
		}
		if attempt == 10 {
			return nil, fmt.Errorf("generate %s key for %s: key tag %d is taken after %d attempts", dns.AlgorithmToString[spec.Algorithm], zone, key.KeyTag(), attempt+1)
		}
	}
	if err := os.WriteFile(base+".key", []byte(key.String()+"\n"), 0o644); err != nil {
		return nil, err
	}
	// The timing lines make Knot DNS's keymgr import-bind treat the key as
	// published and active; dnssec-signzone reads them too.
	stamp := active.UTC().Format("20060102150405")
	private := key.PrivateKeyString(priv) +
		fmt.Sprintf("Created: %s\nPublish: %s\nActivate: %s\n", stamp, stamp, stamp)
	if err := os.WriteFile(base+".private", []byte(private), 0o600); err != nil {
		return nil, err
	}
	return &zoneKey{Spec: spec, DNSKEY: key, Private: priv, Base: base}, nil
}

// ldnsKey makes a key with ldns-keygen in dir and reads its public part.
func ldnsKey(zone string, spec KeySpec, dir string) (*zoneKey, error) {
	args := []string{"-a", fmt.Sprint(spec.Algorithm)}
	if spec.Bits > 0 {
		args = append(args, "-b", fmt.Sprint(spec.Bits))
	}
	if spec.KSK {
		args = append(args, "-k")
	}
	args = append(args, zone)
	cmd := []string{"sh", "-c", `cd "$0" && exec ldns-keygen "$@"`, dir}
	out, err := run(cmd[0], append(cmd[1:], args...)...)
	if err != nil {
		return nil, err
	}
	base := filepath.Join(dir, strings.TrimSpace(string(out)))
	os.Remove(base + ".ds") // ldns-keygen writes a DS file for KSKs; the lab makes its own
	text, err := os.ReadFile(base + ".key")
	if err != nil {
		return nil, err
	}
	r, err := dns.NewRR(string(text))
	if err != nil {
		return nil, fmt.Errorf("parse %s.key: %w", base, err)
	}
	key, ok := r.(*dns.DNSKEY)
	if !ok {
		return nil, fmt.Errorf("%s.key contains a %s record, want a DNSKEY", base, dns.Type(r.Header().Rrtype))
	}
	key.Hdr.Ttl = dnskeyTTL
	return &zoneKey{Spec: spec, DNSKEY: key, Base: base}, nil
}
