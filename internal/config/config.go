// Package config defines Bulwark's configuration schema, loads it from strict
// YAML, fills in defaults and validates every value. Errors name the file, the
// line and the key. The embedded default, used when no file is given, resolves
// from the IANA root servers.
package config

import (
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// Config is the whole configuration of one Bulwark node. The zero value is not
// usable: build one with Load, Parse or Default.
type Config struct {
	// Server lists the listeners and the limits on client connections.
	Server Server `yaml:"server"`
	// Resolver sets how names are resolved from the root.
	Resolver Resolver `yaml:"resolver"`
	// Cache bounds and tunes the RRset and answer cache.
	Cache Cache `yaml:"cache"`
	// DNSSEC controls validation and holds the trust anchors.
	DNSSEC DNSSEC `yaml:"dnssec"`
	// Log sets the level and format of the structured log on standard error.
	Log Log `yaml:"log"`
	// Admin sets the HTTP listener of the administration API.
	Admin Admin `yaml:"admin"`
	// Metrics sets the HTTP listener of the Prometheus metrics.
	Metrics Metrics `yaml:"metrics"`
	// Policy holds the blocklists and the flavours that apply them.
	Policy Policy `yaml:"policy"`
	// Dnstap sends dnstap messages to a Frame Streams collector.
	Dnstap Dnstap `yaml:"dnstap"`
	// QueryLog sets the optional query log and its aggregates.
	QueryLog QueryLog `yaml:"query_log"`
	// Guard protects zones under random-subdomain floods and caps the
	// queries in flight per zone.
	Guard Guard `yaml:"guard"`
	// Share publishes RPZ zones of threat indicators and reads indicators
	// from CERTs and peers.
	Share Share `yaml:"share"`
	// Intel analyses client queries for threats that show in traffic.
	Intel Intel `yaml:"intel"`
	// Testing holds settings for test suites only.
	Testing Testing `yaml:"testing"`

	// File is the path the config was read from, or "" for the embedded
	// default.
	File string `yaml:"-"`
	// Warnings are problems found by Load that do not stop Bulwark, such as
	// an expired negative trust anchor. The caller logs them.
	Warnings []string `yaml:"-"`
}

// Admin sets the administration API, an HTTP listener without
// authentication: bind it to a loopback or management address only.
type Admin struct {
	// Listen is the IP:port of the API. Default "": no API.
	Listen string `yaml:"listen"`
	// AddrPort is Listen parsed by Load.
	AddrPort netip.AddrPort `yaml:"-"`
}

// Metrics sets the Prometheus metrics listener, which serves /metrics
// without authentication.
type Metrics struct {
	// Listen is the IP:port of the listener. Default "": no metrics.
	Listen string `yaml:"listen"`
	// AddrPort is Listen parsed by Load.
	AddrPort netip.AddrPort `yaml:"-"`
}

// Server holds the client-facing listeners.
type Server struct {
	// Listen is the list of listeners. Default: 127.0.0.1:5300 and
	// [::1]:5300, UDP and TCP.
	Listen []Listener `yaml:"listen"`
	// UDPSockets is the number of SO_REUSEPORT sockets opened per UDP
	// listener, each read by its own goroutine. Default 0: one per CPU.
	UDPSockets int `yaml:"udp_sockets"`
	// TCPIdleTimeout closes a client TCP connection that sends no query for
	// this long. Unit: duration such as "10s". Default: 10s.
	TCPIdleTimeout Duration `yaml:"tcp_idle_timeout"`
	// MaxTCPConnections caps open client TCP connections over all TCP
	// listeners; new ones are closed at once past it. Default: 4096.
	MaxTCPConnections int `yaml:"max_tcp_connections"`
	// MaxResolutions caps the client queries being resolved at once (cache
	// misses). Past it, new misses get SERVFAIL. Default: 10000.
	MaxResolutions int `yaml:"max_resolutions"`
	// ClientTimeout is how long a client query may take before Bulwark
	// answers SERVFAIL. Unit: duration. Default: 4s.
	ClientTimeout Duration `yaml:"client_timeout"`

	// TLS sets the certificate of the DoT, DoH and DoQ listeners.
	TLS TLS `yaml:"tls"`
	// EncryptedIdleTimeout closes a DoT, DoH or DoQ connection that sends
	// no query for this long. Unit: duration. Default: 30s.
	EncryptedIdleTimeout Duration `yaml:"encrypted_idle_timeout"`
	// HandshakeTimeout bounds a TLS or QUIC handshake. Unit: duration.
	// Default: 5s.
	HandshakeTimeout Duration `yaml:"handshake_timeout"`
	// MaxConnectionsPerClient caps the TCP, TLS and QUIC connections open
	// from one client address. Default: 64.
	MaxConnectionsPerClient int `yaml:"max_connections_per_client"`
	// MaxStreamsPerConnection caps the queries in progress on one DoT,
	// DoH or DoQ connection. Default: 100.
	MaxStreamsPerConnection int `yaml:"max_streams_per_connection"`
	// ProxyProtocolFrom lists the networks of the load balancers whose
	// PROXY protocol v2 headers are trusted on listeners with
	// proxy_protocol set. Default: none.
	ProxyProtocolFrom []string `yaml:"proxy_protocol_from"`
	// ProxyFrom is ProxyProtocolFrom parsed by Load.
	ProxyFrom []netip.Prefix `yaml:"-"`

	// CookieSecret is the secret of the server cookies (RFC 7873, RFC
	// 9018), 32 hexadecimal digits, the same on every node of an anycast
	// fleet. Default "": a random secret made at start.
	CookieSecret string `yaml:"cookie_secret"`
	// CookiePreviousSecret is the secret before the last rotation; server
	// cookies made with it are still accepted. Default "": none.
	CookiePreviousSecret string `yaml:"cookie_previous_secret"`
	// RateLimit limits the rate of UDP responses per client prefix.
	RateLimit RateLimit `yaml:"rate_limit"`
	// Recursion sets which clients get recursion.
	Recursion Recursion `yaml:"recursion"`
	// ShutdownTimeout bounds how long Bulwark answers the queries already
	// received after SIGTERM or a handover before it exits. Unit:
	// duration. Default: 5s.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// HandoverSocket is the path of the unix socket on which Bulwark hands
	// its listening sockets to a new process started with serve -handover.
	// Default "": no handover.
	HandoverSocket string `yaml:"handover_socket"`
}

// Listener is one address on which Bulwark answers clients.
type Listener struct {
	// Address is IP:port, for IPv6 [addr]:port. Required.
	Address string `yaml:"address"`
	// Transports is the list of protocols served on Address: udp, tcp,
	// dot (DNS over TLS), doh (DNS over HTTPS: HTTP/1.1 and HTTP/2 over
	// TCP, HTTP/3 over UDP) and doq (DNS over QUIC). Default: [udp, tcp].
	Transports []string `yaml:"transports"`
	// DoHPaths maps URL paths of a doh listener to flavours, such as
	// /child: protective-child. /dns-query serves the listener's flavour.
	// Default: none.
	DoHPaths map[string]string `yaml:"doh_paths"`
	// ProxyProtocol reads a PROXY protocol v2 header at the start of each
	// connection from server.proxy_protocol_from, and takes the client
	// address from it. Default: false.
	ProxyProtocol bool `yaml:"proxy_protocol"`
	// Flavour is the policy applied to clients of this listener: a
	// built-in flavour or one of policy.flavours. Default: unfiltered.
	Flavour string `yaml:"flavour"`

	// AddrPort is Address, parsed.
	AddrPort netip.AddrPort `yaml:"-"`
	// Optional marks a default listener that is skipped, with a warning,
	// when the host lacks its address, such as [::1] without IPv6.
	Optional bool `yaml:"-"`
}

// Resolver controls iteration from the root.
type Resolver struct {
	// RootHints is a master-file with the NS records of the root and the
	// addresses of those names. Default "": the built-in IANA root hints.
	RootHints string `yaml:"root_hints"`
	// UpstreamPort is the port of every authoritative server queried.
	// Default: 53. Only a lab changes it.
	UpstreamPort int `yaml:"upstream_port"`
	// AllowedUpstreamNetworks, when not empty, is the only set of prefixes
	// that authoritative server addresses may come from; any other address is
	// never queried. Default: empty, which allows every global unicast address
	// and rejects loopback, link-local, multicast and unspecified ones.
	AllowedUpstreamNetworks []string `yaml:"allowed_upstream_networks"`
	// IPv4 enables queries to IPv4 authoritative servers. Default: true.
	IPv4 *bool `yaml:"ipv4"`
	// IPv6 enables queries to IPv6 authoritative servers. Default: true.
	IPv6 *bool `yaml:"ipv6"`
	// QNAMEMinimisation sends each server only the labels it needs to see
	// (RFC 9156). Default: true.
	QNAMEMinimisation *bool `yaml:"qname_minimisation"`
	// Cookies sends DNS cookies to authoritative servers and drops
	// responses that do not echo them (RFC 7873 section 5). Default: true.
	Cookies *bool `yaml:"cookies"`
	// EDNSBufferSize is the UDP payload size advertised upstream and to
	// clients. Unit: bytes, 512 to 4096. Default: 1232.
	EDNSBufferSize int `yaml:"edns_buffer_size"`
	// QueryTimeout is the first timeout of one upstream query; it adapts to
	// the server's smoothed RTT afterwards. Unit: duration. Default: 800ms.
	QueryTimeout Duration `yaml:"query_timeout"`
	// MaxUpstreamQueries caps the upstream queries sent for one client
	// query, including those made to find name server addresses.
	// Default: 64.
	MaxUpstreamQueries int `yaml:"max_upstream_queries"`
	// MaxReferrals caps the referrals followed for one name. Default: 30.
	MaxReferrals int `yaml:"max_referrals"`
	// MaxCNAMEChain caps the CNAME and DNAME steps followed for one client
	// query. Default: 12.
	MaxCNAMEChain int `yaml:"max_cname_chain"`
	// MaxNSNamesResolved caps the glueless name server names whose addresses
	// are looked up for one delegation, against NXNSAttack. Default: 8, so
	// that a delegation with a few broken NS names still resolves.
	MaxNSNamesResolved int `yaml:"max_ns_names_resolved"`
	// MaxDepth caps how deeply lookups of name server addresses may nest.
	// Default: 6.
	MaxDepth int `yaml:"max_depth"`
	// FailureTTL is how long a name that failed to resolve (SERVFAIL) is
	// answered from the failure cache. Unit: duration. Default: 5s.
	FailureTTL Duration `yaml:"failure_ttl"`
	// ServerHoldDown is the longest an authoritative server that keeps
	// timing out is avoided. Unit: duration. Default: 60s.
	ServerHoldDown Duration `yaml:"server_hold_down"`
	// ServerProbeInterval is the first hold of a server that timed out 3
	// times in a row; one query then probes it, and each probe that times
	// out doubles the hold, up to ServerHoldDown. Unit: duration.
	// Default: 1s.
	ServerProbeInterval Duration `yaml:"server_probe_interval"`
	// ServerTries is how many queries each address of a zone gets for one
	// question while it times out, the first included. Default: 3.
	ServerTries int `yaml:"server_tries"`

	// RootHintsText is the content of the root hints, read at load time.
	RootHintsText string `yaml:"-"`
	// AllowedPrefixes is AllowedUpstreamNetworks, parsed.
	AllowedPrefixes []netip.Prefix `yaml:"-"`
}

// Cache bounds the shared cache of RRsets, negative answers and packed
// responses.
type Cache struct {
	// MaxBytes is the memory budget of the cache. Unit: bytes, with an
	// optional suffix KiB, MiB or GiB. Default: 256MiB.
	MaxBytes ByteSize `yaml:"max_bytes"`
	// MinTTL raises every TTL below it. Unit: duration. Default: 0s.
	MinTTL Duration `yaml:"min_ttl"`
	// MaxTTL lowers every TTL above it. Unit: duration. Default: 24h.
	MaxTTL Duration `yaml:"max_ttl"`
	// MaxNegativeTTL lowers the TTL of NXDOMAIN and NODATA answers above it
	// (RFC 2308 section 5). Unit: duration. Default: 1h.
	MaxNegativeTTL Duration `yaml:"max_negative_ttl"`

	// StaleMaxAge is how long past their expiry RRsets, negative answers
	// and packed responses may still be served stale when their servers
	// fail (RFC 8767). Unit: duration. Default: 24h; 0s turns serve-stale
	// off.
	StaleMaxAge Duration `yaml:"stale_max_age"`
	// StaleAnswerTTL is the TTL of every record in a stale response.
	// Unit: duration, 1s to 1h. Default: 30s (RFC 8767 section 4).
	StaleAnswerTTL Duration `yaml:"stale_answer_ttl"`
	// StaleClientTimeout is how long a client waits for a resolution when
	// stale data could answer it; past it the stale data is sent and the
	// resolution goes on to refresh the cache (RFC 8767 section 5). Unit:
	// duration, below server.client_timeout. Default: 1.8s; 0s waits for
	// the resolution to end.
	StaleClientTimeout Duration `yaml:"stale_client_timeout"`
	// Prefetch refreshes a cached response in the background when a client
	// receives it with less than a tenth of its TTL left, for TTLs of 10s
	// or more. Default: true.
	Prefetch *bool `yaml:"prefetch"`
}

// DNSSEC controls validation (RFC 4033 to 4035) and its trust anchors.
type DNSSEC struct {
	// Validation turns DNSSEC validation on. Default: true.
	Validation *bool `yaml:"validation"`
	// TrustAnchors are DS or DNSKEY records in master-file syntax.
	// Default: the IANA root KSKs 20326 and 38696, unless TrustAnchorFiles
	// is given.
	TrustAnchors []string `yaml:"trust_anchors"`
	// TrustAnchorFiles are files of trust anchors, relative to the
	// directory of the config file. Each is an RFC 7958 XML document or DS
	// and DNSKEY records in zone-file syntax; Load detects which from the
	// content.
	TrustAnchorFiles []string `yaml:"trust_anchor_files"`
	// AutoTrustAnchorFile is the RFC 5011 state file that keeps the
	// anchors up to date. Load makes a relative path relative to the
	// directory of the config file. Default "": no automated updates.
	AutoTrustAnchorFile string `yaml:"auto_trust_anchor_file"`
	// NegativeTrustAnchors are domains whose data is not validated
	// (RFC 7646).
	NegativeTrustAnchors []NegativeTrustAnchor `yaml:"negative_trust_anchors"`
	// AggressiveNSEC synthesizes NXDOMAIN and NODATA responses from cached,
	// validated NSEC and NSEC3 records (RFC 8198). Default: true.
	AggressiveNSEC *bool `yaml:"aggressive_nsec"`
	// MaxNSEC3Iterations is the highest NSEC3 iteration count accepted; a
	// zone that uses more is treated as insecure (RFC 9276). 0 to 500.
	// Default: 50.
	MaxNSEC3Iterations int `yaml:"max_nsec3_iterations"`
	// BogusTTL is how long a response that failed validation is cached.
	// Unit: duration, 1s to 1h. Default: 60s.
	BogusTTL Duration `yaml:"bogus_ttl"`
	// MaxKeyTagCollisions is the number of DNSKEYs tried for one RRSIG
	// whose key tag and algorithm they share. 1 to 64. Default: 4.
	MaxKeyTagCollisions int `yaml:"max_key_tag_collisions"`
	// MaxSignatureValidations caps signature verifications per client
	// query. 1 to 1000. Default: 32.
	MaxSignatureValidations int `yaml:"max_signature_validations"`
	// MaxNSEC3Hashes caps NSEC3 hash computations per client query. 1 to
	// 1000. Default: 32.
	MaxNSEC3Hashes int `yaml:"max_nsec3_hashes"`

	// Anchors are the DS and DNSKEY records of TrustAnchors and
	// TrustAnchorFiles, with canonical owner names and without duplicates.
	Anchors []dns.RR `yaml:"-"`
}

// NegativeTrustAnchor is a domain at and below which validation is off
// (RFC 7646).
type NegativeTrustAnchor struct {
	// Domain is the domain name, canonical (lower case, fully qualified)
	// after Load. Required.
	Domain string `yaml:"domain"`
	// Expires is when the entry stops applying, an RFC 3339 time. The zero
	// value, when the key is absent, means no expiry. Load drops an entry
	// that has already expired and adds a warning. The validator must
	// still compare Expires with its clock, because entries expire while
	// Bulwark runs.
	Expires Time `yaml:"expires"`
}

// Testing holds settings for test suites only; none of them belongs in
// production.
type Testing struct {
	// Enabled must be true for any other key of the section to be set.
	Enabled bool `yaml:"enabled"`
	// FixedValidationTime is the RFC 3339 time used as the current time
	// when checking signature validity and trust anchor windows. Default
	// "": the system clock.
	FixedValidationTime string `yaml:"fixed_validation_time"`
	// ClockFile is a file holding "@YYYY-MM-DD HH:MM:SS" (UTC), from which
	// the validation time starts and runs on. Load makes a relative path
	// relative to the directory of the config file. Default "": the
	// system clock.
	ClockFile string `yaml:"clock_file"`

	// FixedTime is FixedValidationTime, parsed; zero when it is "".
	FixedTime time.Time `yaml:"-"`
}
