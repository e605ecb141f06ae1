package config

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"bulwark/internal/clock"

	"github.com/goccy/go-yaml/ast"
)

type validator struct {
	cfg   *Config
	file  string
	tree  *ast.File
	clock clock.Clock // the validation clock, set by the testing step
}

func (v *validator) errorf(key, format string, args ...any) error {
	return &Error{File: v.file, Line: lineOf(v.tree, key), Key: key, Err: fmt.Errorf(format, args...)}
}

func (v *validator) validate() error {
	steps := []func() error{
		v.listeners, v.serverLimits, v.rootHints, v.upstreams,
		v.resolverLimits, v.cache, v.testing, v.dnssecLimits,
		v.trustAnchors, v.negativeTrustAnchors, v.autoTrustAnchorFile, v.log, v.admin, v.metrics, v.policy,
		v.transports, v.dnstap, v.queryLog, v.guard, v.abuse, v.share, v.intel,
		v.tcpPorts,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

var knownTransports = []string{"udp", "tcp", "dot", "doh", "doq"}

// transportSockets gives the sockets each transport binds: DoH serves
// HTTP/3 over UDP beside HTTP/1.1 and HTTP/2 over TCP.
var transportSockets = map[string][]string{
	"udp": {"udp"}, "tcp": {"tcp"}, "dot": {"tcp"}, "doh": {"tcp", "udp"}, "doq": {"udp"},
}

func (v *validator) listeners() error {
	if len(v.cfg.Server.Listen) == 0 {
		return v.errorf("server.listen", "no listener: add at least one, or remove the key for the defaults")
	}
	seen := map[string]string{} // socket/address to transport
	for i := range v.cfg.Server.Listen {
		l := &v.cfg.Server.Listen[i]
		key := fmt.Sprintf("server.listen[%d]", i)
		ap, err := netip.ParseAddrPort(l.Address)
		if err != nil {
			return v.errorf(key+".address", "invalid address %q: write IP:port, such as 127.0.0.1:53 or [::1]:53", l.Address)
		}
		l.AddrPort = ap
		if len(l.Transports) == 0 {
			return v.errorf(key+".transports", "no transport: list one or more of udp, tcp, dot, doh and doq, or remove the key for udp and tcp")
		}
		for _, t := range l.Transports {
			if !slices.Contains(knownTransports, t) {
				return v.errorf(key+".transports", "unknown transport %q: use one of %s", t, strings.Join(knownTransports, ", "))
			}
			for _, socket := range transportSockets[t] {
				id := socket + "/" + ap.String()
				if seen[id] != "" {
					return v.errorf(key+".address", "%s is listed twice on %s, for %s and %s: give each its own port", ap, socket, seen[id], t)
				}
				seen[id] = t
			}
		}
	}
	return nil
}

// tcpPorts checks that the TCP listeners of the DNS transports, the admin
// API, the metrics, the block page and the RPZ primary use distinct
// addresses: two on one address would fail at start with "address already
// in use". Addresses that the same IP covers through an unspecified one,
// such as 0.0.0.0:53 beside 127.0.0.1:53, are left to the kernel.
func (v *validator) tcpPorts() error {
	seen := map[netip.AddrPort]string{}
	add := func(key string, ap netip.AddrPort) error {
		if !ap.IsValid() {
			return nil
		}
		if other, ok := seen[ap]; ok {
			return v.errorf(key, "%s is also the address of %s: give each its own port", ap, other)
		}
		seen[ap] = key
		return nil
	}
	for i, l := range v.cfg.Server.Listen {
		for _, t := range l.Transports {
			if slices.Contains(transportSockets[t], "tcp") {
				if err := add(fmt.Sprintf("server.listen[%d].address", i), l.AddrPort); err != nil {
					return err
				}
				break
			}
		}
	}
	others := []struct {
		key string
		ap  netip.AddrPort
	}{
		{"admin.listen", v.cfg.Admin.AddrPort},
		{"metrics.listen", v.cfg.Metrics.AddrPort},
		{"policy.block_page.listen", v.cfg.Policy.BlockPage.ListenAddr},
		{"share.publish.listen", v.cfg.Share.Publish.AddrPort},
	}
	for _, o := range others {
		if err := add(o.key, o.ap); err != nil {
			return err
		}
	}
	return nil
}

func (v *validator) admin() error {
	a := &v.cfg.Admin
	if a.Listen == "" {
		return nil
	}
	ap, err := netip.ParseAddrPort(a.Listen)
	if err != nil {
		return v.errorf("admin.listen", "invalid address %q: write IP:port, such as 127.0.0.1:9154, or remove the key to turn the API off", a.Listen)
	}
	a.AddrPort = ap
	if !ap.Addr().IsLoopback() {
		v.warnf("admin.listen", "%s is not a loopback address, and the API has no authentication: make sure only operators can reach it", ap)
	}
	return nil
}

func (v *validator) metrics() error {
	m := &v.cfg.Metrics
	if m.Listen == "" {
		return nil
	}
	ap, err := netip.ParseAddrPort(m.Listen)
	if err != nil {
		return v.errorf("metrics.listen", "invalid address %q: write IP:port, such as 127.0.0.1:9153, or remove the key to turn metrics off", m.Listen)
	}
	m.AddrPort = ap
	if !ap.Addr().IsLoopback() {
		v.warnf("metrics.listen", "%s is not a loopback address, and the metrics have no authentication: make sure only your monitoring can reach it", ap)
	}
	return nil
}

func (v *validator) serverLimits() error {
	s := &v.cfg.Server
	if s.UDPSockets < 0 || s.UDPSockets > 1024 {
		return v.errorf("server.udp_sockets", "invalid value %d: use 0 (one per CPU) to 1024", s.UDPSockets)
	}
	if s.MaxTCPConnections < 1 {
		return v.errorf("server.max_tcp_connections", "invalid value %d: must be at least 1", s.MaxTCPConnections)
	}
	if s.MaxResolutions < 1 {
		return v.errorf("server.max_resolutions", "invalid value %d: must be at least 1", s.MaxResolutions)
	}
	if s.TCPIdleTimeout <= 0 {
		return v.errorf("server.tcp_idle_timeout", "invalid duration 0s: must be positive")
	}
	if s.ClientTimeout <= 0 {
		return v.errorf("server.client_timeout", "invalid duration 0s: must be positive")
	}
	if s.ShutdownTimeout <= 0 {
		return v.errorf("server.shutdown_timeout", "invalid duration %s: must be positive", s.ShutdownTimeout.D())
	}
	return nil
}

func (v *validator) rootHints() error {
	r := &v.cfg.Resolver
	if r.RootHints == "" {
		r.RootHintsText = builtinRootHints
	} else {
		path := v.cfg.resolvePath(r.RootHints)
		data, err := os.ReadFile(path)
		if err != nil {
			return v.errorf("resolver.root_hints", "cannot read root hints: %w", err)
		}
		r.RootHintsText = string(data)
	}
	if _, err := ParseRootHints(r.RootHintsText); err != nil {
		return v.errorf("resolver.root_hints", "%w", err)
	}
	return nil
}

func (v *validator) upstreams() error {
	r := &v.cfg.Resolver
	if r.UpstreamPort < 1 || r.UpstreamPort > 65535 {
		return v.errorf("resolver.upstream_port", "invalid port %d: use 1 to 65535", r.UpstreamPort)
	}
	r.AllowedPrefixes = nil
	for i, s := range r.AllowedUpstreamNetworks {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return v.errorf(fmt.Sprintf("resolver.allowed_upstream_networks[%d]", i),
				"invalid prefix %q: write an address with a prefix length, such as 127.0.0.0/8", s)
		}
		r.AllowedPrefixes = append(r.AllowedPrefixes, p.Masked())
	}
	if !*r.IPv4 && !*r.IPv6 {
		return v.errorf("resolver.ipv4", "ipv4 and ipv6 are both false: enable at least one")
	}
	return nil
}

func (v *validator) resolverLimits() error {
	r := &v.cfg.Resolver
	if r.EDNSBufferSize < 512 || r.EDNSBufferSize > 4096 {
		return v.errorf("resolver.edns_buffer_size", "invalid size %d: use 512 to 4096 bytes (1232 avoids fragmentation)", r.EDNSBufferSize)
	}
	if r.QueryTimeout <= 0 {
		return v.errorf("resolver.query_timeout", "invalid duration 0s: must be positive")
	}
	if r.ServerProbeInterval <= 0 {
		return v.errorf("resolver.server_probe_interval", "invalid duration %s: must be positive, such as 1s", r.ServerProbeInterval.D())
	}
	if r.ServerTries < 1 || r.ServerTries > 10 {
		return v.errorf("resolver.server_tries", "invalid value %d: use 1 to 10", r.ServerTries)
	}
	limits := []struct {
		key string
		val int
	}{
		{"max_upstream_queries", r.MaxUpstreamQueries},
		{"max_referrals", r.MaxReferrals},
		{"max_cname_chain", r.MaxCNAMEChain},
		{"max_ns_names_resolved", r.MaxNSNamesResolved},
		{"max_depth", r.MaxDepth},
	}
	for _, l := range limits {
		if l.val < 1 || l.val > 1000 {
			return v.errorf("resolver."+l.key, "invalid value %d: use 1 to 1000", l.val)
		}
	}
	return nil
}

func (v *validator) cache() error {
	c := &v.cfg.Cache
	if c.MaxBytes < 1<<20 {
		return v.errorf("cache.max_bytes", "invalid size %d bytes: use at least 1MiB", c.MaxBytes)
	}
	if c.MaxTTL < Duration(time.Second) {
		return v.errorf("cache.max_ttl", "invalid duration %s: use at least 1s", c.MaxTTL.D())
	}
	if c.MinTTL > c.MaxTTL {
		return v.errorf("cache.min_ttl", "min_ttl %s is above max_ttl %s", c.MinTTL.D(), c.MaxTTL.D())
	}
	return v.staleCache()
}

// staleCache checks the serve-stale keys of the cache section.
func (v *validator) staleCache() error {
	c := &v.cfg.Cache
	if c.StaleAnswerTTL < Duration(time.Second) || c.StaleAnswerTTL > Duration(time.Hour) {
		return v.errorf("cache.stale_answer_ttl", "invalid duration %s: use 1s to 1h", c.StaleAnswerTTL.D())
	}
	if c.StaleAnswerTTL%Duration(time.Second) != 0 {
		return v.errorf("cache.stale_answer_ttl", "invalid duration %s: use whole seconds, as TTLs are", c.StaleAnswerTTL.D())
	}
	timeout := v.cfg.Server.ClientTimeout
	if c.StaleClientTimeout != 0 && c.StaleClientTimeout >= timeout {
		return v.errorf("cache.stale_client_timeout",
			"stale_client_timeout %s is not below server.client_timeout %s: lower it, or use 0s to turn it off",
			c.StaleClientTimeout.D(), timeout.D())
	}
	return nil
}

func splitLines(s string) []string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, ";") {
			out = append(out, line)
		}
	}
	return out
}
