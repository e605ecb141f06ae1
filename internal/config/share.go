package config

import (
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Share sets the exchange of threat indicators with other operators:
// the RPZ zones Bulwark publishes to secondaries and the sources it reads
// indicators from. See docs/intel.md.
type Share struct {
	// Publish serves generated RPZ zones by AXFR and IXFR.
	Publish Publish `yaml:"publish"`
	// Sources are the feeds of indicators from CERTs and peers. Default:
	// none.
	Sources []ShareSource `yaml:"sources"`
	// TAXIIStateFile stores where the last pull of each TAXII collection
	// ended, so that a restart asks only for newer objects. Relative to
	// the config file's directory. Default "": kept in memory, and each
	// start pulls every collection in full.
	TAXIIStateFile string `yaml:"taxii_state_file"`
}

// Publish sets the RPZ primary.
type Publish struct {
	// Listen is the IP:port of the UDP and TCP listener for SOA queries,
	// AXFR and IXFR. Default "": nothing is published.
	Listen string `yaml:"listen"`
	// AllowTransfer lists the addresses or networks that may query the
	// SOA and transfer the zones; others get REFUSED. Required with
	// listen.
	AllowTransfer []string `yaml:"allow_transfer"`
	// TSIG is the key that transfer requests and NOTIFY messages are
	// signed with. Default: none.
	TSIG TSIGKey `yaml:"tsig"`
	// RequireTSIG refuses transfer requests not signed with the key.
	// Default: true when tsig is set.
	RequireTSIG *bool `yaml:"require_tsig"`
	// Notify lists the secondaries (IP or IP:port) sent a NOTIFY on each
	// new serial. Default: none.
	Notify []string `yaml:"notify"`
	// Zones are the zones served. Required with listen.
	Zones []PublishZone `yaml:"zones"`
	// StateFile keeps the last serial of each zone, so that a restarted
	// or handed-over process serves newer serials than any earlier one,
	// whatever the clock did. Relative to the config file's directory.
	// Default "": serials come from the clock alone.
	StateFile string `yaml:"state_file"`

	// AddrPort, TransferPrefixes and NotifyAddrs are the parsed values.
	AddrPort         netip.AddrPort   `yaml:"-"`
	TransferPrefixes []netip.Prefix   `yaml:"-"`
	NotifyAddrs      []netip.AddrPort `yaml:"-"`
}

// PublishZone is one published RPZ zone.
type PublishZone struct {
	// Name is the zone name, such as rpz.bulwark.example.
	Name string `yaml:"name"`
	// Indicators is a CSV file of indicators (see docs/intel.md), read
	// again within a second of each change. Relative to the config
	// file's directory.
	Indicators string `yaml:"indicators"`
	// From names a generated source instead of a file: "store" for the
	// blocking entries of the intel store, "nod:WINDOW" for the domains
	// first seen within one of intel.nod.windows, such as "nod:10m".
	From string `yaml:"from"`
	// TTL is the TTL of the zone's records. Unit: duration. Default: 60s.
	TTL Duration `yaml:"ttl"`
}

// UnmarshalYAML decodes a zone with the default TTL in place, so that a
// ttl key that is present keeps its value, even 0, for validation.
func (z *PublishZone) UnmarshalYAML(unmarshal func(any) error) error {
	type plain PublishZone
	p := plain{TTL: Duration(defaultPublishTTL)}
	if err := unmarshal(&p); err != nil {
		return err
	}
	*z = PublishZone(p)
	return nil
}

// ShareSource is one feed of indicators.
type ShareSource struct {
	// Name identifies the source in provenance, logs and metrics.
	Name string `yaml:"name"`
	// Type is taxii, misp, stix or csv.
	Type string `yaml:"type"`
	// URL is the TAXII API root, the MISP feed's base URL, or the URL of
	// the STIX bundle or CSV file. A file:// URL names a local file.
	URL string `yaml:"url"`
	// Collection is the TAXII collection id; required for taxii.
	Collection string `yaml:"collection"`
	// Trust is how far the source's indicators are trusted, 1 to 100.
	// Default: 50.
	Trust int `yaml:"trust"`
	// Mode is audit (indicators are counted and reported only) or
	// enforce (they may block). Default: audit.
	Mode string `yaml:"mode"`
	// Interval is the time between two pulls. Unit: duration, at least
	// 1m. Default: 1h.
	Interval Duration `yaml:"interval"`
	// TokenFile holds a bearer token; Username and PasswordFile set basic
	// authentication instead. Paths are relative to the config file.
	TokenFile    string `yaml:"token_file"`
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
}

// Bounds of the share section.
const (
	defaultShareTrust    = 50
	defaultShareInterval = time.Hour
	minShareInterval     = time.Minute
	defaultPublishTTL    = time.Minute
)

var shareTypes = map[string]bool{"taxii": true, "misp": true, "stix": true, "csv": true}

func (v *validator) share() error {
	if err := v.publish(); err != nil {
		return err
	}
	if p := v.cfg.Share.TAXIIStateFile; p != "" {
		v.cfg.Share.TAXIIStateFile = v.cfg.resolvePath(p)
		dir := filepath.Dir(v.cfg.Share.TAXIIStateFile)
		if info, err := os.Stat(dir); err != nil || !info.IsDir() {
			return v.errorf("share.taxii_state_file", "invalid directory %s: create it", dir)
		}
	}
	seen := map[string]bool{}
	for i := range v.cfg.Share.Sources {
		s := &v.cfg.Share.Sources[i]
		key := "share.sources[" + strconv.Itoa(i) + "]"
		if seen[s.Name] {
			return v.errorf(key+".name", "source %q is listed twice: give each source its own name", s.Name)
		}
		seen[s.Name] = true
		if err := v.shareSource(key, s); err != nil {
			return err
		}
	}
	return nil
}

func (v *validator) shareSource(key string, s *ShareSource) error {
	switch {
	case s.Name == "":
		return v.errorf(key+".name", "missing name: give the source a short name such as cert-eu")
	case !shareTypes[s.Type]:
		return v.errorf(key+".type", "unknown type %q: use taxii, misp, stix or csv", s.Type)
	case s.Type == "taxii" && s.Collection == "":
		return v.errorf(key+".collection", "missing collection: give the id of the TAXII collection to read")
	case s.Type != "taxii" && s.Collection != "":
		return v.errorf(key+".collection", "collection applies to taxii sources: remove the key")
	}
	u, err := url.Parse(s.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "file") || (u.Scheme != "file" && u.Host == "") {
		return v.errorf(key+".url", "invalid URL %q: use https://host/path, http://host/path or file:///path", s.URL)
	}
	if s.Trust == 0 {
		s.Trust = defaultShareTrust
	}
	if s.Trust < 1 || s.Trust > 100 {
		return v.errorf(key+".trust", "invalid trust %d: use 1 to 100", s.Trust)
	}
	if s.Mode == "" {
		s.Mode = "audit"
	}
	if s.Mode != "audit" && s.Mode != "enforce" {
		return v.errorf(key+".mode", "unknown mode %q: use audit (report only) or enforce (may block)", s.Mode)
	}
	if s.Interval == 0 {
		s.Interval = Duration(defaultShareInterval)
	}
	if s.Interval.D() < minShareInterval {
		return v.errorf(key+".interval", "interval %s is too short: use at least %s", s.Interval.D(), minShareInterval)
	}
	return v.shareAuth(key, s)
}

func (v *validator) shareAuth(key string, s *ShareSource) error {
	if s.TokenFile != "" && s.Username != "" {
		return v.errorf(key+".username", "both token_file and username are set: keep one way to authenticate")
	}
	if (s.Username == "") != (s.PasswordFile == "") {
		return v.errorf(key+".password_file", "username and password_file go together: set both or neither")
	}
	for field, p := range map[string]*string{"token_file": &s.TokenFile, "password_file": &s.PasswordFile} {
		if *p == "" {
			continue
		}
		*p = v.cfg.resolvePath(*p)
		if _, err := os.Stat(*p); err != nil {
			return v.errorf(key+"."+field, "cannot read %s: %v: check the path, which is relative to the config file's directory", *p, err)
		}
	}
	return nil
}

func (v *validator) publish() error {
	p := &v.cfg.Share.Publish
	if p.Listen == "" {
		if len(p.Zones) > 0 || len(p.Notify) > 0 {
			return v.errorf("share.publish.listen", "missing listen: give the IP:port to serve the zones on, such as 127.0.0.1:5353")
		}
		return nil
	}
	ap, err := netip.ParseAddrPort(p.Listen)
	if err != nil {
		return v.errorf("share.publish.listen", "invalid address %q: write IP:port such as 127.0.0.1:5353", p.Listen)
	}
	p.AddrPort = ap
	if len(p.AllowTransfer) == 0 {
		return v.errorf("share.publish.allow_transfer", "missing allow_transfer: list the addresses of the secondaries, such as 192.0.2.10 or 192.0.2.0/28")
	}
	if err := v.publishAddrs(p); err != nil {
		return err
	}
	if err := v.tsigKey("share.publish.tsig", &p.TSIG); err != nil {
		return err
	}
	if p.RequireTSIG == nil {
		require := p.TSIG.Name != ""
		p.RequireTSIG = &require
	} else if *p.RequireTSIG && p.TSIG.Name == "" {
		return v.errorf("share.publish.require_tsig", "require_tsig is set without a key: add the tsig section")
	}
	if err := v.stateFile("share.publish.state_file", &p.StateFile); err != nil {
		return err
	}
	return v.publishZones(p)
}

func (v *validator) publishAddrs(p *Publish) error {
	p.TransferPrefixes, p.NotifyAddrs = nil, nil
	for _, s := range p.AllowTransfer {
		if a, err := netip.ParseAddr(s); err == nil {
			p.TransferPrefixes = append(p.TransferPrefixes, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return v.errorf("share.publish.allow_transfer", "invalid address or prefix %q: write one such as 192.0.2.10 or 192.0.2.0/28", s)
		}
		p.TransferPrefixes = append(p.TransferPrefixes, pfx.Masked())
	}
	for i, s := range p.Notify {
		ap, ok := parseServerAddr(s)
		if !ok {
			return v.errorf("share.publish.notify", "invalid address %q (entry %d): write IP or IP:port, such as 192.0.2.1 or 192.0.2.1:53", s, i)
		}
		p.NotifyAddrs = append(p.NotifyAddrs, ap)
	}
	return nil
}

func (v *validator) publishZones(p *Publish) error {
	if len(p.Zones) == 0 {
		return v.errorf("share.publish.zones", "missing zones: list at least one zone to publish")
	}
	seen := map[string]bool{}
	for i := range p.Zones {
		z := &p.Zones[i]
		key := "share.publish.zones[" + strconv.Itoa(i) + "]"
		name, ok := canonicalZone(z.Name)
		if !ok || name == "." {
			return v.errorf(key+".name", "invalid zone name %q: give a domain name such as rpz.bulwark.example", z.Name)
		}
		if seen[name] {
			return v.errorf(key+".name", "zone %s is published twice", name)
		}
		seen[name], z.Name = true, name
		if err := v.publishZoneSource(key, z); err != nil {
			return err
		}
		if z.TTL.D() < time.Second || z.TTL.D() > 24*time.Hour {
			return v.errorf(key+".ttl", "invalid ttl %s: use 1s to 24h", z.TTL.D())
		}
	}
	return nil
}

// publishZoneSource checks what a published zone is made from: a file of
// indicators, or a generated source named by from.
func (v *validator) publishZoneSource(key string, z *PublishZone) error {
	if z.From != "" {
		if z.Indicators != "" {
			return v.errorf(key+".from", "both from and indicators are set: keep one")
		}
		isStore, window, err := StoreZoneSource(z.From)
		switch {
		case err != nil:
			return v.errorf(key+".from", "%v", err)
		case isStore && !v.cfg.Intel.Store.Enabled:
			return v.errorf(key+".from", "from store needs the candidate store: set intel.store.enabled: true")
		case !isStore && !v.cfg.Intel.Enabled:
			return v.errorf(key+".from", "from %s needs the traffic analysis: set intel.enabled: true", z.From)
		case !isStore && !slices.Contains(v.cfg.Intel.NOD.Windows, Duration(window)):
			var names []string
			for _, w := range v.cfg.Intel.NOD.Windows {
				names = append(names, "nod:"+shortDuration(w.D()))
			}
			return v.errorf(key+".from", "%s is not one of intel.nod.windows: use one of %s, or add the window there", z.From, strings.Join(names, ", "))
		}
		return nil
	}
	if z.Indicators == "" {
		return v.errorf(key+".indicators", "missing indicators: give the path of the CSV file of indicators, or from: store")
	}
	z.Indicators = v.cfg.resolvePath(z.Indicators)
	if info, err := os.Stat(filepath.Dir(z.Indicators)); err != nil || !info.IsDir() {
		return v.errorf(key+".indicators", "invalid directory %s: create it", filepath.Dir(z.Indicators))
	}
	return nil
}

// shortDuration formats d without trailing zero units: 10m, not 10m0s.
func shortDuration(d time.Duration) string {
	text := d.String()
	if strings.HasSuffix(text, "m0s") {
		text = strings.TrimSuffix(text, "0s")
	}
	if strings.HasSuffix(text, "h0m") {
		text = strings.TrimSuffix(text, "0m")
	}
	return text
}
