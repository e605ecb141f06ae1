package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"time"
)

// Intel sets the traffic analysis of client queries: newly observed
// domains, DGA, tunnelling, NXDOMAIN floods, unique responses, fast flux
// and popularity spikes. See docs/intel.md.
type Intel struct {
	// Enabled turns the analysis on. Default: false.
	Enabled bool `yaml:"enabled"`
	// QueueSize is the number of query events queued for the analysis;
	// when it is full, events are dropped and counted. Each takes about
	// 500 bytes. Default: 8192.
	QueueSize int `yaml:"queue_size"`
	// Window is the aggregation window of the traffic detectors. Unit:
	// duration, 1s to 1h. Default: 1m.
	Window Duration `yaml:"window"`
	// MaxDomains bounds the registered domains counted per window.
	// Default: 10000.
	MaxDomains int `yaml:"max_domains"`
	// MaxFindings bounds the recent findings that the admin API lists.
	// Default: 1000.
	MaxFindings int `yaml:"max_findings"`
	// SaveInterval is how often the state files are saved; they are
	// saved at stop too. Unit: duration, at least 1s. Default: 5m.
	SaveInterval Duration `yaml:"save_interval"`

	NOD        IntelNOD        `yaml:"nod"`
	Popularity IntelPopularity `yaml:"popularity"`
	NXDomain   IntelNXDomain   `yaml:"nxdomain"`
	Unique     IntelUnique     `yaml:"unique"`
	Flux       IntelFlux       `yaml:"flux"`
	Spike      IntelSpike      `yaml:"spike"`
	Tunnel     IntelTunnel     `yaml:"tunnel"`
	// DGAClients sets the tracker of clients that behave like hosts
	// infected by a DGA.
	DGAClients IntelDGAClients `yaml:"dga_clients"`
	// Store sets the candidate store of findings and feed indicators.
	Store IntelStore `yaml:"store"`
}

// IntelNOD sets the seen-set of newly observed domains.
type IntelNOD struct {
	// StateFile keeps the seen-set across restarts; relative to the
	// config file's directory. Default "": kept in memory only.
	StateFile string `yaml:"state_file"`
	// ExpectedDomains is the number of registered domains the seen-set
	// is sized for, and FalsePositiveRate the share of new domains it
	// takes for seen once it holds that many. The filter takes
	// −n·ln(p)/(ln 2)² bits: 1.8 MB for the defaults 1000000 and 0.001.
	ExpectedDomains   int     `yaml:"expected_domains"`
	FalsePositiveRate float64 `yaml:"false_positive_rate"`
	// WarmUp is the time after a start without a state file during
	// which no domain is reported as new. Unit: duration. Default: 24h.
	WarmUp Duration `yaml:"warm_up"`
	// Windows are the age windows of the NOD zone content. Unit:
	// duration each, at most 7 days. Default: 10m, 1h and 24h.
	Windows []Duration `yaml:"windows"`
	// MaxRecent bounds the domains kept with their first-seen time.
	// Default: 100000.
	MaxRecent int `yaml:"max_recent"`
}

// IntelPopularity sets the popularity history used to keep steadily
// popular domains from automatic blocks.
type IntelPopularity struct {
	// StateFile keeps the history across restarts; relative to the
	// config file's directory. Default "": kept in memory only.
	StateFile string `yaml:"state_file"`
	// Days is the length of the history. Default: 28.
	Days int `yaml:"days"`
	// SteadyDays and MinDailyQueries make a domain steadily popular: at
	// least MinDailyQueries on each of the SteadyDays complete days
	// before today. Defaults: 14 and 10.
	SteadyDays      int `yaml:"steady_days"`
	MinDailyQueries int `yaml:"min_daily_queries"`
	// MaxDomains bounds the domains kept, those with the most queries.
	// Default: 10000.
	MaxDomains int `yaml:"max_domains"`
}

// IntelNXDomain sets the NXDOMAIN flood and random-subdomain detector.
type IntelNXDomain struct {
	// MinQueries is the queries per window below which a domain is not
	// scored. Default: 50.
	MinQueries int `yaml:"min_queries"`
	// MinShare is the share of NXDOMAIN answers, above 0 and at most 1.
	// Default: 0.5.
	MinShare float64 `yaml:"min_share"`
	// MinDistinct is the distinct names below the domain per window.
	// Default: 30.
	MinDistinct int `yaml:"min_distinct"`
}

// IntelUnique sets the unique-response detector.
type IntelUnique struct {
	// MaxNames bounds the names whose answer addresses are kept.
	// Default: 20000.
	MaxNames int `yaml:"max_names"`
	// MaxAddrs bounds the addresses kept per name. Default: 16.
	MaxAddrs int `yaml:"max_addrs"`
	// MinAnswers is the answers a name must have had before a new
	// address is reported. Default: 5.
	MinAnswers int `yaml:"min_answers"`
}

// IntelFlux sets the fast-flux detector.
type IntelFlux struct {
	// MaxTTL is the longest TTL that counts as low. Unit: duration.
	// Default: 5m.
	MaxTTL Duration `yaml:"max_ttl"`
	// MinNetworks is the distinct networks (IPv4 /24, IPv6 /48) of a
	// domain's addresses per window. Default: 5.
	MinNetworks int `yaml:"min_networks"`
}

// IntelSpike sets the popularity spike detector.
type IntelSpike struct {
	// Factor is how many times its moving baseline a domain's queries in
	// a window must be, above 1. Default: 10.
	Factor float64 `yaml:"factor"`
	// MinQueries is the queries per window below which no spike is
	// reported. Default: 100.
	MinQueries int `yaml:"min_queries"`
	// MinWindows is the windows of history a baseline needs. Default: 30.
	MinWindows int `yaml:"min_windows"`
	// MaxDomains bounds the baselines kept. Default: 10000.
	MaxDomains int `yaml:"max_domains"`
}

// IntelTunnel sets the tunnelling detector on traffic.
type IntelTunnel struct {
	// MinQueries is the queries per window below which a domain is not
	// scored. Default: 10.
	MinQueries int `yaml:"min_queries"`
}

// Bounds of the intel section.
const (
	minIntelWindow     = time.Second
	maxIntelWindow     = time.Hour
	maxIntelQueue      = 1 << 20
	maxIntelTable      = 1 << 22
	maxIntelNODDomains = 1 << 30
	maxIntelNODWindow  = 7 * 24 * time.Hour
	maxIntelDays       = 366
)

func defaultIntel() Intel {
	return Intel{
		QueueSize:    8192,
		Window:       Duration(time.Minute),
		MaxDomains:   10_000,
		MaxFindings:  1000,
		SaveInterval: Duration(5 * time.Minute),
		NOD: IntelNOD{
			ExpectedDomains: 1_000_000, FalsePositiveRate: 0.001, WarmUp: Duration(24 * time.Hour),
			Windows:   []Duration{Duration(10 * time.Minute), Duration(time.Hour), Duration(24 * time.Hour)},
			MaxRecent: 100_000,
		},
		Popularity: IntelPopularity{Days: 28, SteadyDays: 14, MinDailyQueries: 10, MaxDomains: 10_000},
		NXDomain:   IntelNXDomain{MinQueries: 50, MinShare: 0.5, MinDistinct: 30},
		Unique:     IntelUnique{MaxNames: 20_000, MaxAddrs: 16, MinAnswers: 5},
		Flux:       IntelFlux{MaxTTL: Duration(5 * time.Minute), MinNetworks: 5},
		Spike:      IntelSpike{Factor: 10, MinQueries: 100, MinWindows: 30, MaxDomains: 10_000},
		Tunnel:     IntelTunnel{MinQueries: 10},
		DGAClients: defaultIntelDGAClients(),
		Store:      defaultIntelStore(),
	}
}

// restoreNullSections gives a subsection written with no value, such as
// a bare "nod:", its defaults.
func (in *Intel) restoreNullSections(def Intel) {
	restore := func(section, defaults any) {
		if reflect.ValueOf(section).Elem().IsZero() {
			reflect.ValueOf(section).Elem().Set(reflect.ValueOf(defaults))
		}
	}
	restore(&in.NOD, def.NOD)
	restore(&in.Popularity, def.Popularity)
	restore(&in.NXDomain, def.NXDomain)
	restore(&in.Unique, def.Unique)
	restore(&in.Flux, def.Flux)
	restore(&in.Spike, def.Spike)
	restore(&in.Tunnel, def.Tunnel)
	restore(&in.DGAClients, def.DGAClients)
	restore(&in.Store, def.Store)
}

func (v *validator) intel() error {
	steps := []func(*Intel) error{v.intelLimits, v.intelNOD, v.intelPopularity, v.intelDetectors, v.intelDGAClients, v.intelStore}
	for _, step := range steps {
		if err := step(&v.cfg.Intel); err != nil {
			return err
		}
	}
	return nil
}

// intRange checks that a count is within [lo, hi].
func (v *validator) intRange(key string, value, lo, hi int, unit string) error {
	if value < lo || value > hi {
		return v.errorf(key, "invalid value %d: use %d to %d %s", value, lo, hi, unit)
	}
	return nil
}

func (v *validator) intelLimits(in *Intel) error {
	if w := in.Window.D(); w < minIntelWindow || w > maxIntelWindow {
		return v.errorf("intel.window", "invalid window %s: use %s to %s", w, minIntelWindow, maxIntelWindow)
	}
	if in.SaveInterval.D() < time.Second {
		return v.errorf("intel.save_interval", "invalid interval %s: use at least 1s", in.SaveInterval.D())
	}
	if err := v.intRange("intel.queue_size", in.QueueSize, 1, maxIntelQueue, "events"); err != nil {
		return err
	}
	if err := v.intRange("intel.max_domains", in.MaxDomains, 1, maxIntelTable, "domains"); err != nil {
		return err
	}
	return v.intRange("intel.max_findings", in.MaxFindings, 0, maxIntelTable, "findings")
}

func (v *validator) intelNOD(in *Intel) error {
	n := &in.NOD
	if err := v.intRange("intel.nod.expected_domains", n.ExpectedDomains, 1, maxIntelNODDomains, "domains"); err != nil {
		return err
	}
	if !(n.FalsePositiveRate > 0 && n.FalsePositiveRate < 1) {
		return v.errorf("intel.nod.false_positive_rate", "invalid rate %g: use a share above 0 and below 1, such as 0.001", n.FalsePositiveRate)
	}
	if len(n.Windows) == 0 {
		return v.errorf("intel.nod.windows", "no window: add at least one, such as 10m, or remove the key for the defaults")
	}
	for _, w := range n.Windows {
		if w.D() <= 0 || w.D() > maxIntelNODWindow {
			return v.errorf("intel.nod.windows", "invalid window %s: use above 0 and at most %s", w.D(), maxIntelNODWindow)
		}
	}
	if err := v.intRange("intel.nod.max_recent", n.MaxRecent, 1, maxIntelTable, "domains"); err != nil {
		return err
	}
	return v.stateFile("intel.nod.state_file", &n.StateFile)
}

func (v *validator) intelPopularity(in *Intel) error {
	p := &in.Popularity
	if err := v.intRange("intel.popularity.days", p.Days, 1, maxIntelDays, "days"); err != nil {
		return err
	}
	if err := v.intRange("intel.popularity.steady_days", p.SteadyDays, 1, p.Days-1, "days, fewer than intel.popularity.days"); err != nil {
		return err
	}
	if err := v.intRange("intel.popularity.min_daily_queries", p.MinDailyQueries, 1, 1<<30, "queries"); err != nil {
		return err
	}
	if err := v.intRange("intel.popularity.max_domains", p.MaxDomains, 1, maxIntelTable, "domains"); err != nil {
		return err
	}
	return v.stateFile("intel.popularity.state_file", &p.StateFile)
}

func (v *validator) intelDetectors(in *Intel) error {
	checks := []struct {
		key           string
		value, lo, hi int
		unit          string
	}{
		{"intel.nxdomain.min_queries", in.NXDomain.MinQueries, 1, 1 << 30, "queries"},
		{"intel.nxdomain.min_distinct", in.NXDomain.MinDistinct, 1, 1 << 30, "names"},
		{"intel.unique.max_names", in.Unique.MaxNames, 1, maxIntelTable, "names"},
		{"intel.unique.max_addrs", in.Unique.MaxAddrs, 1, 1024, "addresses"},
		{"intel.unique.min_answers", in.Unique.MinAnswers, 1, 1 << 30, "answers"},
		{"intel.flux.min_networks", in.Flux.MinNetworks, 2, 64, "networks"},
		{"intel.spike.min_queries", in.Spike.MinQueries, 1, 1 << 30, "queries"},
		{"intel.spike.min_windows", in.Spike.MinWindows, 1, 1 << 20, "windows"},
		{"intel.spike.max_domains", in.Spike.MaxDomains, 1, maxIntelTable, "domains"},
		{"intel.tunnel.min_queries", in.Tunnel.MinQueries, 1, 1 << 30, "queries"},
	}
	for _, c := range checks {
		if err := v.intRange(c.key, c.value, c.lo, c.hi, c.unit); err != nil {
			return err
		}
	}
	if s := in.NXDomain.MinShare; !(s > 0 && s <= 1) {
		return v.errorf("intel.nxdomain.min_share", "invalid share %g: use above 0 and at most 1, such as 0.5", s)
	}
	if f := in.Spike.Factor; !(f > 1) {
		return v.errorf("intel.spike.factor", "invalid factor %g: use a number above 1, such as 10", f)
	}
	if in.Flux.MaxTTL.D() < time.Second {
		return v.errorf("intel.flux.max_ttl", "invalid TTL %s: use at least 1s", in.Flux.MaxTTL.D())
	}
	return nil
}

// stateFile resolves a state file path against the config's directory
// and checks that its directory exists.
func (v *validator) stateFile(key string, path *string) error {
	if *path == "" {
		return nil
	}
	*path = v.cfg.resolvePath(*path)
	dir := filepath.Dir(*path)
	info, err := os.Stat(dir)
	if err == nil && !info.IsDir() {
		err = errors.New("not a directory")
	}
	if err != nil {
		return v.errorf(key, "invalid directory %s for the state file: %v; create it or choose another path", dir, err)
	}
	if info, err := os.Stat(*path); err == nil && info.IsDir() {
		return v.errorf(key, "invalid state file %s: it is a directory; name a file in it", *path)
	}
	return nil
}

// NODWindows returns the NOD windows as durations, shortest first.
func (n IntelNOD) NODWindows() []time.Duration {
	out := make([]time.Duration, len(n.Windows))
	for i, w := range n.Windows {
		out[i] = w.D()
	}
	slices.Sort(out)
	return out
}
