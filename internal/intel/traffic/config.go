package traffic

import (
	"time"

	"bulwark/internal/config"
	"bulwark/internal/intel/nod"
)

// Config sets the window, the memory bounds and the thresholds of an
// Engine. internal/config fills it from the intel section; DefaultConfig
// gives the defaults.
type Config struct {
	// Window is the aggregation window: counts per registered domain are
	// kept per window and the traffic detectors run when one closes.
	Window time.Duration
	// MaxDomains bounds the registered domains counted per window; the
	// events of further domains are counted as dropped.
	MaxDomains int
	// MaxFindings bounds the recent findings that Findings returns.
	MaxFindings int
	// SaveInterval is how often the NOD and popularity state files are
	// saved; they are saved at stop too.
	SaveInterval time.Duration
	NOD          nod.Config
	Popularity   PopularityConfig
	NXDomain     NXDomainConfig
	Unique       UniqueConfig
	Flux         FluxConfig
	Spike        SpikeConfig
	// TunnelMinQueries is the queries per window below which a domain's
	// traffic is not scored for tunnelling.
	TunnelMinQueries int
	// DGAClients sets the tracker of clients that behave like hosts
	// infected by a DGA.
	DGAClients DGAClientsConfig
}

// PopularityConfig sets the popularity history.
type PopularityConfig struct {
	// Path is the state file; "" keeps the history in memory only.
	Path string
	// Days is the length of the history in days.
	Days int
	// SteadyDays is the number of complete days, before the current one,
	// on each of which a domain must reach MinDailyQueries to be
	// steadily popular.
	SteadyDays      int
	MinDailyQueries int
	// MaxDomains bounds the domains kept: at each new day, and when twice
	// as many are tracked, only those with the most queries over the
	// history stay.
	MaxDomains int
}

// NXDomainConfig sets the NXDOMAIN flood and random-subdomain detector.
type NXDomainConfig struct {
	// MinQueries is the queries per window below which a domain is not
	// scored.
	MinQueries int
	// MinShare is the share of NXDOMAIN responses, and MinDistinct the
	// distinct names below the domain in the window, that both must be
	// reached for a verdict.
	MinShare    float64
	MinDistinct int
}

// UniqueConfig sets the unique-response detector.
type UniqueConfig struct {
	// MaxNames bounds the query names whose addresses are kept, and
	// MaxAddrs the addresses kept per name.
	MaxNames int
	MaxAddrs int
	// MinAnswers is the answers with addresses a name must have had
	// before a new address for it is reported.
	MinAnswers int
}

// FluxConfig sets the fast-flux detector.
type FluxConfig struct {
	// MaxTTL is the longest address TTL that counts as low.
	MaxTTL time.Duration
	// MinNetworks is the distinct networks (IPv4 /24, IPv6 /48) of a
	// domain's answer addresses in one window from which it is flagged.
	MinNetworks int
}

// SpikeConfig sets the popularity spike detector.
type SpikeConfig struct {
	// Factor is how many times its baseline a domain's queries in a
	// window must be.
	Factor float64
	// MinQueries is the queries per window below which no spike is
	// reported.
	MinQueries int
	// MinWindows is the windows a domain's baseline must span before it
	// is trusted.
	MinWindows int
	// MaxDomains bounds the baselines kept.
	MaxDomains int
}

// DefaultConfig returns the defaults of every setting; NOD.Path and
// Popularity.Path stay empty.
func DefaultConfig() Config {
	return Config{
		Window:       time.Minute,
		MaxDomains:   10_000,
		MaxFindings:  1000,
		SaveInterval: 5 * time.Minute,
		NOD: nod.Config{
			Expected: 1_000_000, FalsePositiveRate: 0.001, WarmUp: 24 * time.Hour,
			Windows:   []time.Duration{10 * time.Minute, time.Hour, 24 * time.Hour},
			MaxRecent: 100_000,
		},
		Popularity: PopularityConfig{Days: 28, SteadyDays: 14, MinDailyQueries: 10, MaxDomains: 10_000},
		NXDomain:   NXDomainConfig{MinQueries: 50, MinShare: 0.5, MinDistinct: 30},
		Unique:     UniqueConfig{MaxNames: 20_000, MaxAddrs: 16, MinAnswers: 5},
		Flux:       FluxConfig{MaxTTL: 5 * time.Minute, MinNetworks: 5},
		Spike:      SpikeConfig{Factor: 10, MinQueries: 100, MinWindows: 30, MaxDomains: 10_000},

		TunnelMinQueries: 10,
		DGAClients: DGAClientsConfig{
			Enabled: true, Window: 10 * time.Minute, MinDomains: 8, MaxClients: 10_000, Hold: time.Hour,
		},
	}
}

// ConfigFrom returns the Config of a validated intel section.
func ConfigFrom(in config.Intel) Config {
	return Config{
		Window: in.Window.D(), MaxDomains: in.MaxDomains, MaxFindings: in.MaxFindings,
		SaveInterval: in.SaveInterval.D(),
		NOD: nod.Config{
			Path: in.NOD.StateFile, Expected: in.NOD.ExpectedDomains,
			FalsePositiveRate: in.NOD.FalsePositiveRate, WarmUp: in.NOD.WarmUp.D(),
			Windows: in.NOD.NODWindows(), MaxRecent: in.NOD.MaxRecent,
		},
		Popularity: PopularityConfig{
			Path: in.Popularity.StateFile, Days: in.Popularity.Days, SteadyDays: in.Popularity.SteadyDays,
			MinDailyQueries: in.Popularity.MinDailyQueries, MaxDomains: in.Popularity.MaxDomains,
		},
		NXDomain: NXDomainConfig(in.NXDomain),
		Unique:   UniqueConfig(in.Unique),
		Flux:     FluxConfig{MaxTTL: in.Flux.MaxTTL.D(), MinNetworks: in.Flux.MinNetworks},
		Spike:    SpikeConfig(in.Spike),

		TunnelMinQueries: in.Tunnel.MinQueries,
		DGAClients: DGAClientsConfig{
			Enabled: in.DGAClients.Enabled, Window: in.DGAClients.Window.D(), MinDomains: in.DGAClients.MinDomains,
			MaxClients: in.DGAClients.MaxClients, Hold: in.DGAClients.Hold.D(),
		},
	}
}
