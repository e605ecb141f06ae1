package config

import (
	"reflect"
	"time"
)

// newDefault returns a config holding every scalar default. The YAML is
// decoded over it, so a key that is present, even with the value 0, wins
// over the default and is then validated.
func newDefault(file string) *Config {
	c := &Config{File: file}
	c.Server = Server{
		TCPIdleTimeout:    Duration(10 * time.Second),
		MaxTCPConnections: 4096,
		MaxResolutions:    10000,
		ClientTimeout:     Duration(4 * time.Second),

		EncryptedIdleTimeout:    Duration(defaultEncryptedIdleTimeout),
		HandshakeTimeout:        Duration(defaultHandshakeTimeout),
		MaxConnectionsPerClient: defaultMaxConnectionsPerClient,
		MaxStreamsPerConnection: defaultMaxStreamsPerConnection,
		RateLimit:               defaultRateLimit(),
		ShutdownTimeout:         Duration(5 * time.Second),
	}
	c.Resolver = Resolver{
		UpstreamPort:       53,
		IPv4:               boolPtr(true),
		IPv6:               boolPtr(true),
		QNAMEMinimisation:  boolPtr(true),
		Cookies:            boolPtr(true),
		EDNSBufferSize:     1232,
		QueryTimeout:       Duration(800 * time.Millisecond),
		MaxUpstreamQueries: 64,
		MaxReferrals:       30,
		MaxCNAMEChain:      12,
		MaxNSNamesResolved: 8,
		MaxDepth:           6,
		FailureTTL:         Duration(5 * time.Second),
		ServerHoldDown:     Duration(60 * time.Second),

		ServerProbeInterval: Duration(time.Second),
		ServerTries:         3,
	}
	c.Cache = Cache{
		MaxBytes:       256 << 20,
		MaxTTL:         Duration(24 * time.Hour),
		MaxNegativeTTL: Duration(time.Hour),

		StaleMaxAge:        Duration(24 * time.Hour),
		StaleAnswerTTL:     Duration(30 * time.Second),
		StaleClientTimeout: Duration(1800 * time.Millisecond),
		Prefetch:           boolPtr(true),
	}
	c.DNSSEC = DNSSEC{
		Validation:              boolPtr(true),
		AggressiveNSEC:          boolPtr(true),
		MaxNSEC3Iterations:      50,
		BogusTTL:                Duration(60 * time.Second),
		MaxKeyTagCollisions:     4,
		MaxSignatureValidations: 32,
		MaxNSEC3Hashes:          32,
	}
	c.Log = defaultLog()
	c.Dnstap = defaultDnstap()
	c.QueryLog = defaultQueryLog()
	c.Guard = defaultGuard()
	c.Intel = defaultIntel()
	return c
}

// restoreNullSections gives a section written with no value, such as a bare
// "cache:", its defaults: the YAML decoder sets a null section to zero.
func (c *Config) restoreNullSections() {
	def := newDefault(c.File)
	if reflect.ValueOf(c.Server).IsZero() {
		c.Server = def.Server
	}
	if reflect.ValueOf(c.Resolver).IsZero() {
		c.Resolver = def.Resolver
	}
	if reflect.ValueOf(c.Cache).IsZero() {
		c.Cache = def.Cache
	}
	if reflect.ValueOf(c.DNSSEC).IsZero() {
		c.DNSSEC = def.DNSSEC
	}
	if reflect.ValueOf(c.Log).IsZero() {
		c.Log = def.Log
	}
	if reflect.ValueOf(c.Dnstap).IsZero() {
		c.Dnstap = def.Dnstap
	}
	if reflect.ValueOf(c.QueryLog).IsZero() {
		c.QueryLog = def.QueryLog
	}
	if reflect.ValueOf(c.Guard).IsZero() {
		c.Guard = def.Guard
	}
	if reflect.ValueOf(c.Intel).IsZero() {
		c.Intel = def.Intel
	}
	c.Intel.restoreNullSections(def.Intel)
	if reflect.ValueOf(c.QueryLog.Aggregates).IsZero() {
		c.QueryLog.Aggregates = def.QueryLog.Aggregates
	}
}

// setListDefaults fills the lists that were left out. A list given empty
// stays empty, and validation rejects it.
func (c *Config) setListDefaults() {
	c.setAbuseListDefaults()
	if c.Server.Listen == nil {
		c.Server.Listen = []Listener{
			{Address: "127.0.0.1:5300"},
			{Address: "[::1]:5300", Optional: true},
		}
	}
	for i := range c.Server.Listen {
		if c.Server.Listen[i].Transports == nil {
			c.Server.Listen[i].Transports = []string{"udp", "tcp"}
		}
	}
	if c.DNSSEC.TrustAnchors == nil && c.DNSSEC.TrustAnchorFiles == nil {
		c.DNSSEC.TrustAnchors = splitLines(builtinTrustAnchors)
	}
	bools := []**bool{
		&c.Resolver.IPv4, &c.Resolver.IPv6, &c.Resolver.QNAMEMinimisation, &c.Resolver.Cookies,
		&c.DNSSEC.Validation, &c.DNSSEC.AggressiveNSEC, &c.Cache.Prefetch,
	}
	for _, b := range bools {
		if *b == nil {
			*b = boolPtr(true) // an explicit null
		}
	}
}

func boolPtr(b bool) *bool { return &b }
