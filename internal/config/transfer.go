package config

import (
	"encoding/base64"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/miekg/dns"
)

// TSIGAlgorithms are the TSIG algorithms a list's key may use, with the
// name each has in a TSIG record (RFC 8945 section 6).
var TSIGAlgorithms = map[string]string{
	"hmac-sha256": dns.HmacSHA256,
	"hmac-sha384": dns.HmacSHA384,
	"hmac-sha512": dns.HmacSHA512,
	"hmac-sha1":   dns.HmacSHA1,
}

// zoneTransfer checks the zone transfer keys of list l: all of them for a
// list with primaries, and that none is set for any other list.
func (v *validator) zoneTransfer(key string, l *PolicyList) error {
	if !l.Transferred() {
		return v.noZoneTransfer(key, l)
	}
	if l.URL != "" {
		return v.errorf(key+".url", "a list has either url or primaries: remove one")
	}
	if l.Refresh != 0 {
		return v.errorf(key+".refresh", "refresh applies to url lists: a transferred zone is refreshed on the timers of its SOA record, so remove the key")
	}
	if l.Format != "rpz" {
		return v.errorf(key+".format", "format %q cannot be transferred: a list with primaries has format rpz", l.Format)
	}
	if l.Zone == "" {
		return v.errorf(key+".zone", "missing zone: give the name of the RPZ zone to transfer, such as rpz.example.net")
	}
	zone, ok := canonicalZone(l.Zone)
	if !ok {
		return v.errorf(key+".zone", "invalid zone name %q: give a domain name such as rpz.example.net", l.Zone)
	}
	l.Zone = zone

	if err := v.primaries(key, l); err != nil {
		return err
	}
	if err := v.allowNotify(key, l); err != nil {
		return err
	}
	if err := v.tsigKey(key+".tsig", &l.TSIG); err != nil {
		return err
	}

	// The file is written by the first transfer; its directory must exist.
	if info, err := os.Stat(filepath.Dir(l.File)); err != nil || !info.IsDir() {
		return v.errorf(key+".file", "invalid directory %s for the transferred zone: create it", filepath.Dir(l.File))
	}
	if info, err := os.Stat(l.File); err == nil && info.IsDir() {
		return v.errorf(key+".file", "%s is a directory: give the path of the zone file", l.File)
	}
	return nil
}

// noZoneTransfer rejects the transfer keys on a list without primaries,
// where they would do nothing.
func (v *validator) noZoneTransfer(key string, l *PolicyList) error {
	switch {
	case l.Primaries != nil:
		return v.errorf(key+".primaries", "empty list of primaries: give at least one address, or remove the key")
	case l.Zone != "":
		return v.errorf(key+".zone", "zone applies to transferred lists: add primaries, or remove the key")
	case l.AllowNotify != nil:
		return v.errorf(key+".allow_notify", "allow_notify applies to transferred lists: add primaries, or remove the key")
	case l.TSIG != (TSIGKey{}):
		return v.errorf(key+".tsig", "tsig applies to transferred lists: add primaries, or remove the section")
	}
	return nil
}

func (v *validator) primaries(key string, l *PolicyList) error {
	l.PrimaryAddrs = nil
	seen := map[netip.AddrPort]bool{}
	for i, p := range l.Primaries {
		ap, ok := parseServerAddr(p)
		if !ok {
			return v.errorf(key+".primaries", "invalid address %q (entry %d): write IP or IP:port, such as 192.0.2.1, 192.0.2.1:53 or [2001:db8::1]:53", p, i)
		}
		if seen[ap] {
			return v.errorf(key+".primaries", "primary %s is listed twice", ap)
		}
		seen[ap] = true
		l.PrimaryAddrs = append(l.PrimaryAddrs, ap)
	}
	return nil
}

// parseServerAddr parses IP:port, [IPv6]:port or a bare IP with port 53.
func parseServerAddr(s string) (netip.AddrPort, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Port() != 0 {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return netip.AddrPortFrom(a.Unmap(), 53), true
	}
	return netip.AddrPort{}, false
}

func (v *validator) allowNotify(key string, l *PolicyList) error {
	l.NotifyPrefixes = nil
	for _, s := range l.AllowNotify {
		if a, err := netip.ParseAddr(s); err == nil {
			l.NotifyPrefixes = append(l.NotifyPrefixes, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return v.errorf(key+".allow_notify", "invalid address or prefix %q: write one such as 192.0.2.10 or 192.0.2.0/28", s)
		}
		l.NotifyPrefixes = append(l.NotifyPrefixes, p.Masked())
	}
	return nil
}

// tsigKey checks a list's TSIG key and reads its secret file. A section
// with every key empty means no TSIG.
func (v *validator) tsigKey(key string, k *TSIGKey) error {
	if *k == (TSIGKey{}) {
		return nil
	}
	if k.Name == "" {
		return v.missingKey(key, "name", "missing key name: give the name the primary knows the key by")
	}
	name, ok := canonicalZone(k.Name)
	if !ok {
		return v.errorf(key+".name", "invalid key name %q: use a domain name such as transfer-key or xfr.example.net", k.Name)
	}
	k.Name = name
	if k.Algorithm == "" {
		k.Algorithm = "hmac-sha256"
	}
	k.Algorithm = strings.ToLower(k.Algorithm)
	if _, ok := TSIGAlgorithms[k.Algorithm]; !ok {
		return v.errorf(key+".algorithm", "unknown algorithm %q: use hmac-sha256, hmac-sha384, hmac-sha512 or hmac-sha1", k.Algorithm)
	}

	switch {
	case k.Secret != "" && k.SecretFile != "":
		return v.errorf(key+".secret_file", "both secret and secret_file are set: keep one")
	case k.Secret == "" && k.SecretFile == "":
		return v.missingKey(key, "secret", "missing secret: give the base64 secret in secret or secret_file")
	case k.SecretFile != "":
		k.SecretFile = v.cfg.resolvePath(k.SecretFile)
		data, err := os.ReadFile(k.SecretFile)
		if err != nil {
			return v.errorf(key+".secret_file", "cannot read the TSIG secret: %v: check the path, which is relative to the config file's directory", err)
		}
		k.Secret = strings.TrimSpace(string(data))
		if k.Secret == "" {
			return v.errorf(key+".secret_file", "%s is empty: write the base64 secret in it", k.SecretFile)
		}
	}
	// The secret itself never appears in an error.
	if raw, err := base64.StdEncoding.DecodeString(k.Secret); err != nil || len(raw) == 0 {
		field := key + ".secret"
		if k.SecretFile != "" {
			field = key + ".secret_file"
		}
		return v.errorf(field, "the TSIG secret is not valid base64: copy it as the primary's key file writes it, such as the output of keymgr -t or tsig-keygen")
	}
	return nil
}

// missingKey returns the error for a key missing from section, with the
// line of the section.
func (v *validator) missingKey(section, key, msg string) error {
	err := v.errorf(section+"."+key, "%s", msg)
	err.(*Error).Line = lineOf(v.tree, section)
	return err
}

// canonicalZone returns s fully qualified and in lower case, and whether s
// is a domain name.
func canonicalZone(s string) (string, bool) {
	name := dns.CanonicalName(s)
	if _, ok := dns.IsDomainName(name); !ok || strings.ContainsAny(name, " \t") || name == "." && s != "." {
		return "", false
	}
	return name, true
}
