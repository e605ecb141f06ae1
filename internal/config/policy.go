package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"bulwark/internal/policy"
	"bulwark/internal/proceed"

	"github.com/miekg/dns"
)

// Policy holds the blocklists and the flavours that apply them.
type Policy struct {
	// BlockPage holds the addresses that redirect actions answer with.
	BlockPage BlockPage `yaml:"block_page"`
	// Contact is a URI for questions about blocks, such as
	// mailto:abuse@example.net, sent in the text of blocked answers'
	// Extended DNS Errors. Default "": none.
	Contact string `yaml:"contact"`
	// Organization is the operator's name in that text. Default "": none.
	Organization string `yaml:"organization"`
	// Lists are the blocklists and allowlists.
	Lists []PolicyList `yaml:"lists"`
	// Flavours define flavours beyond the built-in ones, or replace a
	// built-in one of the same name.
	Flavours []Flavour `yaml:"flavours"`
	// Clients give the clients of a subnet a flavour, whatever the
	// listener they query; the most specific subnet wins.
	Clients []ClientFlavour `yaml:"clients"`
	// Tenants are customers, such as a ministry or a hospital network,
	// whose subnets get a flavour with the tenant's own lists added.
	Tenants []Tenant `yaml:"tenants"`
}

// Tenant is a customer with its subnets, flavour and lists.
type Tenant struct {
	// Name identifies the tenant in logs; its flavour is named
	// "tenant:" plus Name. Required.
	Name string `yaml:"name"`
	// Subnets are the tenant's client prefixes. Required.
	Subnets []string `yaml:"subnets"`
	// Flavour is the flavour the tenant builds on. Default: protective.
	Flavour string `yaml:"flavour"`
	// Allow names lists whose names the tenant's clients may always
	// resolve, checked before every other list.
	Allow []string `yaml:"allow"`
	// Deny names lists the tenant blocks besides those of its flavour.
	Deny []string `yaml:"deny"`
	// ProceedAnyway replaces the proceed anyway setting of Flavour for the
	// tenant's clients, and lets them proceed past the Deny lists too.
	// Unit: duration, 0 (off) to 24h. Default: absent, which keeps the
	// setting of Flavour for its lists and never skips the Deny lists.
	ProceedAnyway *Duration `yaml:"proceed_anyway"`

	// Prefixes is Subnets, parsed.
	Prefixes []netip.Prefix `yaml:"-"`
}

// ClientFlavour gives the clients of a subnet a flavour.
type ClientFlavour struct {
	// Subnet is a prefix such as 10.1.0.0/16 or 2001:db8::/48. Required.
	Subnet string `yaml:"subnet"`
	// Flavour is a built-in flavour or one of policy.flavours. Required.
	Flavour string `yaml:"flavour"`

	// Prefix is Subnet, parsed.
	Prefix netip.Prefix `yaml:"-"`
}

// BlockPage holds the addresses of the block page.
type BlockPage struct {
	// IPv4 answers A queries for redirected names. Default "": redirect
	// lists answer NXDOMAIN for A.
	IPv4 string `yaml:"ipv4"`
	// IPv6 answers AAAA queries for redirected names. Default "".
	IPv6 string `yaml:"ipv6"`
	// Listen is the IP:port of the block page's HTTP server, such as
	// 192.0.2.80:80. Default "": no block page.
	Listen string `yaml:"listen"`
	// ReviewFile is the file where "report a mistake" submissions are
	// appended, one JSON object per line, relative to the config file's
	// directory. Default "": reports are not taken.
	ReviewFile string `yaml:"review_file"`

	// Addr4 and Addr6 are IPv4 and IPv6, parsed.
	Addr4, Addr6 netip.Addr `yaml:"-"`
	// ListenAddr is Listen, parsed.
	ListenAddr netip.AddrPort `yaml:"-"`
}

// PolicyList is one list and how it applies.
type PolicyList struct {
	// Name identifies the list in flavours, logs and block answers.
	// Required.
	Name string `yaml:"name"`
	// File is the path of the list, relative to the config file's
	// directory. With URL, it is where the last good download is kept.
	// Required.
	File string `yaml:"file"`
	// URL is an HTTP or HTTPS address to download the list from, with
	// conditional requests, every Refresh. Default "": the file only.
	URL string `yaml:"url"`
	// Refresh is how often URL is fetched. Unit: duration, 1m to 7 days.
	// Default: 1h.
	Refresh Duration `yaml:"refresh"`
	// Format is hosts, domains, adguard, rpz or csv. Required.
	Format string `yaml:"format"`
	// Category is malware, phishing, botnet, adult, ads, tracking or
	// lawful. Required.
	Category string `yaml:"category"`
	// Action is the answer to a match: nxdomain, nodata, redirect, or allow
	// for an allowlist. RPZ lists keep the actions of their records and
	// use this one for plain names. Default: nxdomain.
	Action string `yaml:"action"`
	// Zone is the name of the RPZ zone transferred from Primaries.
	// Required with Primaries.
	Zone string `yaml:"zone"`
	// Primaries are the addresses (IP or IP:port, port 53 by default) of
	// the primary servers the zone is transferred from, tried in order.
	// Default: none, the list is not transferred.
	Primaries []string `yaml:"primaries"`
	// AllowNotify are prefixes, besides the primaries' addresses, from
	// which NOTIFY messages for Zone are accepted. Default: none.
	AllowNotify []string `yaml:"allow_notify"`
	// TSIG is the key that signs the SOA queries, the transfers and the
	// NOTIFY messages of Zone. Default: none, unsigned.
	TSIG TSIGKey `yaml:"tsig"`

	// PrimaryAddrs is Primaries, parsed.
	PrimaryAddrs []netip.AddrPort `yaml:"-"`
	// NotifyPrefixes is AllowNotify, parsed.
	NotifyPrefixes []netip.Prefix `yaml:"-"`
}

// TSIGKey is a TSIG key (RFC 8945) shared with a primary server.
type TSIGKey struct {
	// Name is the key name, as the primary knows it. Required with the
	// section; fully qualified and lower case after Load.
	Name string `yaml:"name"`
	// Algorithm is hmac-sha256, hmac-sha384, hmac-sha512 or hmac-sha1.
	// Default: hmac-sha256.
	Algorithm string `yaml:"algorithm"`
	// Secret is the key in base64. Set it or SecretFile.
	Secret string `yaml:"secret"`
	// SecretFile is a file that contains the base64 secret, relative to
	// the config file's directory. Load reads it into Secret.
	SecretFile string `yaml:"secret_file"`
}

// Transferred reports whether the list is received by zone transfer.
func (l PolicyList) Transferred() bool { return len(l.Primaries) > 0 }

// Remote reports whether the list's file is written by Bulwark, from a
// download or a zone transfer, so that it may not exist yet.
func (l PolicyList) Remote() bool { return l.URL != "" || l.Transferred() }

// Flavour is a named policy.
type Flavour struct {
	// Name identifies the flavour in listeners. Required.
	Name string `yaml:"name"`
	// Categories are the list categories the flavour applies.
	Categories []string `yaml:"categories"`
	// Lists are lists the flavour applies besides those of its
	// categories, by name.
	Lists []string `yaml:"lists"`
	// Validation turns DNSSEC validation on for the flavour's clients;
	// false serves data that fails validation, without AD, as to clients
	// that set CD. Default: true.
	Validation *bool `yaml:"validation"`
	// ProceedAnyway is how long a client that chooses "proceed anyway" on
	// the block page may resolve the blocked name and the names below it.
	// Lawful lists are never skipped. Unit: duration, 0 (off) to 24h.
	// Default: 0.
	ProceedAnyway Duration `yaml:"proceed_anyway"`
}

func (v *validator) policy() error {
	p := &v.cfg.Policy
	var err error
	// The text goes into the EDE of every blocked answer, which must fit
	// a UDP response.
	if len(p.Contact) > 200 {
		return v.errorf("policy.contact", "contact of %d bytes is too long: keep it to 200", len(p.Contact))
	}
	if len(p.Organization) > 100 {
		return v.errorf("policy.organization", "organization of %d bytes is too long: keep it to 100", len(p.Organization))
	}
	if p.BlockPage.Addr4, err = parseOptionalAddr(p.BlockPage.IPv4, true); err != nil {
		return v.errorf("policy.block_page.ipv4", "%v", err)
	}
	if p.BlockPage.Addr6, err = parseOptionalAddr(p.BlockPage.IPv6, false); err != nil {
		return v.errorf("policy.block_page.ipv6", "%v", err)
	}
	if p.BlockPage.Listen != "" {
		if p.BlockPage.ListenAddr, err = netip.ParseAddrPort(p.BlockPage.Listen); err != nil {
			return v.errorf("policy.block_page.listen", "invalid address %q: write IP:port, such as 192.0.2.80:80", p.BlockPage.Listen)
		}
	}
	if p.BlockPage.ReviewFile != "" {
		p.BlockPage.ReviewFile = v.cfg.resolvePath(p.BlockPage.ReviewFile)
		if info, err := os.Stat(filepath.Dir(p.BlockPage.ReviewFile)); err != nil || !info.IsDir() {
			return v.errorf("policy.block_page.review_file", "invalid directory %s for the review queue: create it", filepath.Dir(p.BlockPage.ReviewFile))
		}
	}
	names := map[string]bool{}
	for i := range p.Lists {
		l := &p.Lists[i]
		key := fmt.Sprintf("policy.lists[%d]", i)
		if err := v.policyList(key, l); err != nil {
			return err
		}
		if names[l.Name] {
			return v.errorf(key+".name", "list %q is defined twice: give each list its own name", l.Name)
		}
		names[l.Name] = true
	}
	flavours := map[string]bool{}
	for name := range policy.Builtin {
		flavours[name] = true
	}
	defined := map[string]bool{}
	for i, f := range p.Flavours {
		key := fmt.Sprintf("policy.flavours[%d]", i)
		if f.Name == "" {
			return v.errorf(key+".name", "missing name: give the flavour a name")
		}
		if defined[f.Name] {
			return v.errorf(key+".name", "flavour %q is defined twice", f.Name)
		}
		defined[f.Name], flavours[f.Name] = true, true
		for _, c := range f.Categories {
			if !slices.Contains(policy.Categories, c) {
				return v.errorf(key+".categories", "unknown category %q: use %s", c, strings.Join(policy.Categories, ", "))
			}
		}
		for _, l := range f.Lists {
			if !names[l] {
				return v.errorf(key+".lists", "unknown list %q: name one of policy.lists", l)
			}
		}
		if f.ProceedAnyway.D() > proceed.MaxDuration {
			return v.errorf(key+".proceed_anyway", "invalid duration %s: use 0 (off) to %s", f.ProceedAnyway.D(), proceed.MaxDuration)
		}
		if f.ProceedAnyway > 0 && p.BlockPage.Listen == "" {
			v.warnf(key+".proceed_anyway", "proceed anyway has no effect without a block page: set policy.block_page.listen")
		}
	}
	tenants := map[string]bool{}
	for i := range p.Tenants {
		tn := &p.Tenants[i]
		key := fmt.Sprintf("policy.tenants[%d]", i)
		if tn.Name == "" {
			return v.errorf(key+".name", "missing name: give the tenant a name")
		}
		if tenants[tn.Name] {
			return v.errorf(key+".name", "tenant %q is defined twice", tn.Name)
		}
		tenants[tn.Name] = true
		if len(tn.Subnets) == 0 {
			return v.errorf(key+".subnets", "no subnet: list the tenant's client prefixes")
		}
		tn.Prefixes = nil
		for _, sn := range tn.Subnets {
			prefix, err := netip.ParsePrefix(sn)
			if err != nil {
				return v.errorf(key+".subnets", "invalid subnet %q: write a prefix such as 10.1.0.0/16 or 2001:db8::/48", sn)
			}
			tn.Prefixes = append(tn.Prefixes, prefix.Masked())
		}
		if tn.Flavour == "" {
			tn.Flavour = "protective"
		}
		if tn.ProceedAnyway != nil && tn.ProceedAnyway.D() > proceed.MaxDuration {
			return v.errorf(key+".proceed_anyway", "invalid duration %s: use 0 (off) to %s", tn.ProceedAnyway.D(), proceed.MaxDuration)
		}
		if !flavours[tn.Flavour] {
			return v.errorf(key+".flavour", "unknown flavour %q: use a built-in one (%s) or define it in policy.flavours", tn.Flavour, strings.Join(builtinFlavourNames(), ", "))
		}
		for _, group := range []struct {
			field string
			lists []string
		}{{"allow", tn.Allow}, {"deny", tn.Deny}} {
			for _, l := range group.lists {
				if !names[l] {
					return v.errorf(key+"."+group.field, "unknown list %q: name one of policy.lists", l)
				}
			}
		}
	}
	for i := range p.Clients {
		c := &p.Clients[i]
		key := fmt.Sprintf("policy.clients[%d]", i)
		prefix, err := netip.ParsePrefix(c.Subnet)
		if err != nil {
			return v.errorf(key+".subnet", "invalid subnet %q: write a prefix such as 10.1.0.0/16 or 2001:db8::/48", c.Subnet)
		}
		c.Prefix = prefix.Masked()
		if !flavours[c.Flavour] {
			return v.errorf(key+".flavour", "unknown flavour %q: use a built-in one (%s) or define it in policy.flavours", c.Flavour, strings.Join(builtinFlavourNames(), ", "))
		}
	}
	for i, l := range v.cfg.Server.Listen {
		if l.Flavour != "" && !flavours[l.Flavour] {
			return v.errorf(fmt.Sprintf("server.listen[%d].flavour", i), "unknown flavour %q: use a built-in one (%s) or define it in policy.flavours", l.Flavour, strings.Join(builtinFlavourNames(), ", "))
		}
	}
	return nil
}

func (v *validator) policyList(key string, l *PolicyList) error {
	if l.Name == "" {
		return v.errorf(key+".name", "missing name: give the list a name")
	}
	if _, ok := dns.IsDomainName(l.Name + ".example"); !ok || strings.ContainsAny(l.Name, " \t") {
		return v.errorf(key+".name", "invalid name %q: use letters, digits and hyphens", l.Name)
	}
	if l.File == "" {
		return v.errorf(key+".file", "missing file: give the path of the list")
	}
	l.File = v.cfg.resolvePath(l.File)
	if err := v.zoneTransfer(key, l); err != nil {
		return err
	}
	if l.Transferred() {
		// The file is written by the first transfer; zoneTransfer
		// checked its directory.
	} else if l.URL != "" {
		u, err := url.Parse(l.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return v.errorf(key+".url", "invalid URL %q: give an http or https address", l.URL)
		}
		if l.Refresh == 0 {
			l.Refresh = Duration(time.Hour)
		}
		if l.Refresh < Duration(time.Minute) || l.Refresh > Duration(7*24*time.Hour) {
			return v.errorf(key+".refresh", "invalid duration %s: use 1m to 168h", l.Refresh.D())
		}
		// The file is written by the first download; its directory
		// must exist.
		if info, err := os.Stat(filepath.Dir(l.File)); err != nil || !info.IsDir() {
			return v.errorf(key+".file", "invalid directory %s for the downloaded list: create it", filepath.Dir(l.File))
		}
	} else if info, err := os.Stat(l.File); err != nil {
		return v.errorf(key+".file", "cannot read list: %v: check the path, which is relative to the config file's directory", err)
	} else if info.IsDir() {
		return v.errorf(key+".file", "%s is a directory: give the path of the list file", l.File)
	}
	if !slices.Contains(listFormats, l.Format) {
		return v.errorf(key+".format", "unknown format %q: use %s", l.Format, strings.Join(listFormats, ", "))
	}
	if !slices.Contains(policy.Categories, l.Category) {
		return v.errorf(key+".category", "unknown category %q: use %s", l.Category, strings.Join(policy.Categories, ", "))
	}
	if l.Action == "" {
		l.Action = "nxdomain"
	}
	if !slices.Contains(listActions, l.Action) {
		return v.errorf(key+".action", "unknown action %q: use %s", l.Action, strings.Join(listActions, ", "))
	}
	return nil
}

var (
	listFormats = []string{"hosts", "domains", "adguard", "rpz", "csv"}
	listActions = []string{"nxdomain", "nodata", "redirect", "allow"}
)

func parseOptionalAddr(s string, v4 bool) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Is4() != v4 {
		family := "IPv6"
		if v4 {
			family = "IPv4"
		}
		return netip.Addr{}, fmt.Errorf("invalid %s address %q", family, s)
	}
	return a, nil
}

func builtinFlavourNames() []string {
	var names []string
	for n := range policy.Builtin {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
