package config

import "time"

func (c *Config) setDefaults() {
	c.Server.setDefaults()
	c.Resolver.setDefaults()
	c.Cache.setDefaults()
	if len(c.DNSSEC.TrustAnchors) == 0 {
		c.DNSSEC.TrustAnchors = splitLines(builtinTrustAnchors)
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
}

func (s *Server) setDefaults() {
	if len(s.Listen) == 0 {
		s.Listen = []Listener{
			{Address: "127.0.0.1:5300"},
			{Address: "[::1]:5300"},
		}
	}
	for i := range s.Listen {
		if len(s.Listen[i].Transports) == 0 {
			s.Listen[i].Transports = []string{"udp", "tcp"}
		}
	}
	setDuration(&s.TCPIdleTimeout, 10*time.Second)
	setInt(&s.MaxTCPConnections, 4096)
	setInt(&s.MaxResolutions, 10000)
	setDuration(&s.ClientTimeout, 4*time.Second)
}

func (r *Resolver) setDefaults() {
	setInt(&r.UpstreamPort, 53)
	setBool(&r.IPv4, true)
	setBool(&r.IPv6, true)
	setBool(&r.QNAMEMinimisation, true)
	setInt(&r.EDNSBufferSize, 1232)
	setDuration(&r.QueryTimeout, 800*time.Millisecond)
	setInt(&r.MaxUpstreamQueries, 64)
	setInt(&r.MaxReferrals, 30)
	setInt(&r.MaxCNAMEChain, 12)
	setInt(&r.MaxNSNamesResolved, 8)
	setInt(&r.MaxDepth, 6)
	setDuration(&r.FailureTTL, 5*time.Second)
	setDuration(&r.ServerHoldDown, 60*time.Second)
}

func (c *Cache) setDefaults() {
	if c.MaxBytes == 0 {
		c.MaxBytes = 256 << 20
	}
	setDuration(&c.MaxTTL, 24*time.Hour)
	setDuration(&c.MaxNegativeTTL, time.Hour)
}

func setInt(v *int, def int) {
	if *v == 0 {
		*v = def
	}
}

func setDuration(v *Duration, def time.Duration) {
	if *v == 0 {
		*v = Duration(def)
	}
}

func setBool(v **bool, def bool) {
	if *v == nil {
		b := def
		*v = &b
	}
}
