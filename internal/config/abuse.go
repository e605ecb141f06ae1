package config

import (
	"net/netip"
	"strings"

	"bulwark/internal/cookie"
	"bulwark/internal/rrl"
)

// RateLimit sets response rate limiting on UDP: a token bucket per client
// network prefix.
type RateLimit struct {
	// ResponsesPerSecond is the rate of UDP responses one prefix may get.
	// 0 turns rate limiting off. Default: 1000.
	ResponsesPerSecond int `yaml:"responses_per_second"`
	// Burst is the number of responses a prefix that was quiet may get at
	// once. Default 0: ResponsesPerSecond, at most 65535.
	Burst int `yaml:"burst"`
	// Slip makes every Slip-th limited response a truncated empty one,
	// so that real clients retry over TCP; the others are dropped. 0
	// drops all, 1 truncates all. Default: 2.
	Slip int `yaml:"slip"`
	// IPv4Prefix and IPv6Prefix are the prefix lengths that group client
	// addresses into one bucket. Default: 24 and 56.
	IPv4Prefix int `yaml:"ipv4_prefix"`
	IPv6Prefix int `yaml:"ipv6_prefix"`
	// TableSize is the number of buckets, a power of two; each takes 8
	// bytes. Default: 65536.
	TableSize int `yaml:"table_size"`
	// Exempt lists networks that are never limited. Default: loopback.
	Exempt []string `yaml:"exempt"`

	// ExemptPrefixes is Exempt, parsed.
	ExemptPrefixes []netip.Prefix `yaml:"-"`
}

// Recursion sets which clients get recursion.
type Recursion struct {
	// Allow lists the networks whose clients get recursion; others get
	// REFUSED. Default: loopback and private networks.
	Allow []string `yaml:"allow"`
	// OpenFlavours lists flavours served to every client, whatever its
	// address, for a public service. Default: none.
	OpenFlavours []string `yaml:"open_flavours"`

	// AllowPrefixes is Allow, parsed.
	AllowPrefixes []netip.Prefix `yaml:"-"`
}

// DefaultRecursionAllow are the networks that get recursion by default:
// loopback, RFC 1918, shared address space (RFC 6598), unique local (RFC
// 4193) and link-local addresses.
var DefaultRecursionAllow = []string{
	"127.0.0.0/8", "::1/128",
	"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
	"fc00::/7", "fe80::/10",
}

func defaultRateLimit() RateLimit {
	return RateLimit{ResponsesPerSecond: 1000, Slip: 2, IPv4Prefix: 24, IPv6Prefix: 56, TableSize: 1 << 16}
}

// setAbuseListDefaults fills the lists of rate_limit and recursion that
// were left out; a list given empty stays empty.
func (c *Config) setAbuseListDefaults() {
	if c.Server.RateLimit.Exempt == nil {
		c.Server.RateLimit.Exempt = []string{"127.0.0.0/8", "::1/128"}
	}
	if c.Server.Recursion.Allow == nil {
		c.Server.Recursion.Allow = DefaultRecursionAllow
	}
}

// Enabled reports whether responses are rate limited.
func (r *RateLimit) Enabled() bool { return r.ResponsesPerSecond > 0 }

// Limiter returns the rrl settings of r.
func (r *RateLimit) Limiter() rrl.Config {
	return rrl.Config{
		Rate: r.ResponsesPerSecond, Burst: r.Burst, Slip: r.Slip,
		IPv4Prefix: r.IPv4Prefix, IPv6Prefix: r.IPv6Prefix,
		TableSize: r.TableSize, Exempt: r.ExemptPrefixes,
	}
}

func (v *validator) abuse() error {
	if err := v.cookieSecrets(); err != nil {
		return err
	}
	if err := v.rateLimit(); err != nil {
		return err
	}
	return v.recursion()
}

func (v *validator) cookieSecrets() error {
	s := &v.cfg.Server
	if s.CookieSecret != "" {
		if _, err := cookie.ParseSecret(s.CookieSecret); err != nil {
			return v.errorf("server.cookie_secret", "%v", err)
		}
	}
	if s.CookiePreviousSecret != "" {
		if _, err := cookie.ParseSecret(s.CookiePreviousSecret); err != nil {
			return v.errorf("server.cookie_previous_secret", "%v", err)
		}
		if s.CookieSecret == "" {
			return v.errorf("server.cookie_previous_secret", "set without server.cookie_secret: a previous secret is only kept while rotating to a new one")
		}
	}
	return nil
}

func (v *validator) rateLimit() error {
	r := &v.cfg.Server.RateLimit
	const key = "server.rate_limit."
	if r.ResponsesPerSecond < 0 || r.ResponsesPerSecond > rrl.MaxBurst {
		return v.errorf(key+"responses_per_second", "invalid value %d: use 0 (off) to %d", r.ResponsesPerSecond, rrl.MaxBurst)
	}
	if r.Burst == 0 {
		r.Burst = r.ResponsesPerSecond
	}
	if r.Burst < 1 && r.Enabled() || r.Burst > rrl.MaxBurst {
		return v.errorf(key+"burst", "invalid value %d: use 1 to %d, or 0 for responses_per_second", r.Burst, rrl.MaxBurst)
	}
	if r.Slip < 0 || r.Slip > rrl.MaxSlip {
		return v.errorf(key+"slip", "invalid value %d: use 0 (drop every limited response) to %d", r.Slip, rrl.MaxSlip)
	}
	if r.IPv4Prefix < 1 || r.IPv4Prefix > 32 {
		return v.errorf(key+"ipv4_prefix", "invalid prefix length %d: use 1 to 32", r.IPv4Prefix)
	}
	if r.IPv6Prefix < 1 || r.IPv6Prefix > 64 {
		return v.errorf(key+"ipv6_prefix", "invalid prefix length %d: use 1 to 64; longer IPv6 prefixes let one site spread over many buckets", r.IPv6Prefix)
	}
	if r.TableSize < 1 || r.TableSize > 1<<24 || r.TableSize&(r.TableSize-1) != 0 {
		return v.errorf(key+"table_size", "invalid value %d: use a power of two from 1 to 16777216", r.TableSize)
	}
	prefixes, err := v.prefixes(key+"exempt", r.Exempt)
	r.ExemptPrefixes = prefixes
	return err
}

func (v *validator) recursion() error {
	r := &v.cfg.Server.Recursion
	prefixes, err := v.prefixes("server.recursion.allow", r.Allow)
	if err != nil {
		return err
	}
	r.AllowPrefixes = prefixes
	flavours := v.flavourNames()
	for _, f := range r.OpenFlavours {
		if !flavours[f] {
			return v.errorf("server.recursion.open_flavours", "unknown flavour %q: use a built-in one (%s) or define it in policy.flavours", f, strings.Join(builtinFlavourNames(), ", "))
		}
	}
	return nil
}

// prefixes parses a list of networks.
func (v *validator) prefixes(key string, list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, v.errorf(key, "invalid prefix %q: write a network such as 192.0.2.0/24 or 2001:db8::/32", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
