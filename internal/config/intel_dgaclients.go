package config

import "time"

// IntelDGAClients sets the tracker of clients that behave like hosts
// infected by a DGA: many distinct registered domains that do not exist,
// of one structure. See docs/intel.md, "DGA-like clients".
type IntelDGAClients struct {
	// Enabled turns the tracker on when intel.enabled is set. Default:
	// true.
	Enabled bool `yaml:"enabled"`
	// Window is how far back a client's NXDOMAIN domains count towards
	// its cluster. Unit: duration, 10s to 24h. Default: 10m.
	Window Duration `yaml:"window"`
	// MinDomains is the distinct unseen NXDOMAIN registered domains a
	// client needs within Window before its cluster is judged. Range: 4
	// to 32. Default: 8.
	MinDomains int `yaml:"min_domains"`
	// MaxClients bounds the clients tracked, each up to about 2 KB,
	// rounded up to a multiple of 4. Default: 10000.
	MaxClients int `yaml:"max_clients"`
	// Hold is how long a client stays DGA-like after its cluster last
	// passed. Unit: duration, 1m to 24h. Default: 1h.
	Hold Duration `yaml:"hold"`
}

// Bounds of intel.dga_clients.
const (
	minDGAClientsWindow  = 10 * time.Second
	maxDGAClientsWindow  = 24 * time.Hour
	minDGAClientsHold    = time.Minute
	maxDGAClientsHold    = 24 * time.Hour
	minDGAClientsDomains = 4
	// maxDGAClientsDomains is the domains the tracker keeps per client,
	// clusterCap of internal/intel/traffic.
	maxDGAClientsDomains = 32
)

func defaultIntelDGAClients() IntelDGAClients {
	return IntelDGAClients{
		Enabled: true, Window: Duration(10 * time.Minute), MinDomains: 8,
		MaxClients: 10_000, Hold: Duration(time.Hour),
	}
}

func (v *validator) intelDGAClients(in *Intel) error {
	d := &in.DGAClients
	if w := d.Window.D(); w < minDGAClientsWindow || w > maxDGAClientsWindow {
		return v.errorf("intel.dga_clients.window", "invalid window %s: use %s to %s", w, minDGAClientsWindow, maxDGAClientsWindow)
	}
	if h := d.Hold.D(); h < minDGAClientsHold || h > maxDGAClientsHold {
		return v.errorf("intel.dga_clients.hold", "invalid hold %s: use %s to %s", h, minDGAClientsHold, maxDGAClientsHold)
	}
	if err := v.intRange("intel.dga_clients.min_domains", d.MinDomains,
		minDGAClientsDomains, maxDGAClientsDomains, "domains"); err != nil {
		return err
	}
	return v.intRange("intel.dga_clients.max_clients", d.MaxClients, 1, maxIntelTable, "clients")
}
