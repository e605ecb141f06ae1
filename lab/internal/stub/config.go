// Package stub implements the misbehaving and logging DNS servers of the
// lab: listeners that never reply, reject every query, or proxy to a real
// authoritative server while logging queries or injecting faults. It knows
// nothing about zones; the generator decides which names sit behind which
// listener.
package stub

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/miekg/dns"
)

// Listener modes.
const (
	// ModeSilent reads queries and never replies, over UDP and TCP.
	ModeSilent = "silent"
	// ModeRefuse replies REFUSED to every query, as a server without the
	// zone does.
	ModeRefuse = "refuse"
	// ModeProxy forwards each query to Backend and returns its reply.
	ModeProxy = "proxy"
)

// Config is the JSON file that labstub reads.
type Config struct {
	// PIDFile receives the process ID once every listener is bound.
	PIDFile   string     `json:"pid_file"`
	Listeners []Listener `json:"listeners"`
}

// Listener is one address served over UDP and TCP.
type Listener struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Port    int    `json:"port"`
	Mode    string `json:"mode"`
	// Backend is the host:port that proxy mode forwards to, over the
	// transport the query arrived on.
	Backend string `json:"backend,omitempty"`
	// TruncateUDP makes proxy mode answer every UDP query with TC=1 and
	// empty answer, authority and additional sections; TCP is proxied.
	TruncateUDP bool `json:"truncate_udp,omitempty"`
	// NXDOMAINFor lists names (FQDN, any case) whose NODATA replies from
	// the backend are rewritten to NXDOMAIN, as broken servers do for
	// empty non-terminals.
	NXDOMAINFor []string `json:"nxdomain_for,omitempty"`
	// DelayMS delays every reply by this many milliseconds.
	DelayMS int `json:"delay_ms,omitempty"`
	// Log, when set, is a file that receives one line per query:
	// "unix_seconds proto qname qtype", the qname exactly as received.
	Log string `json:"log,omitempty"`
}

// HostPort returns the listen address in host:port form.
func (l Listener) HostPort() string {
	return net.JoinHostPort(l.Address, fmt.Sprint(l.Port))
}

// ReadConfig reads and validates a labstub config file.
func ReadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read stub config: %w", err)
	}

	var cfg Config
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("parse stub config %q: %w", path, err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("stub config %q: %w", path, err)
	}
	return &cfg, nil
}

// Validate checks that every listener has an address, a known mode and the
// fields its mode needs.
func (c *Config) Validate() error {
	if len(c.Listeners) == 0 {
		return errors.New("no listeners")
	}

	seen := map[string]bool{}
	for i, l := range c.Listeners {
		if err := l.validate(); err != nil {
			return fmt.Errorf("listener %d (%q): %w", i, l.Name, err)
		}
		if seen[l.HostPort()] {
			return fmt.Errorf("listener %d (%q): duplicate address %s", i, l.Name, l.HostPort())
		}
		seen[l.HostPort()] = true
	}
	return nil
}

func (l Listener) validate() error {
	if net.ParseIP(l.Address) == nil {
		return fmt.Errorf("invalid address %q", l.Address)
	}
	if l.Port <= 0 || l.Port > 65535 {
		return fmt.Errorf("invalid port %d", l.Port)
	}
	if l.DelayMS < 0 {
		return fmt.Errorf("invalid delay_ms %d", l.DelayMS)
	}

	switch l.Mode {
	case ModeSilent, ModeRefuse:
		if l.Backend != "" || l.TruncateUDP || len(l.NXDOMAINFor) > 0 {
			return fmt.Errorf("mode %q takes no backend or faults", l.Mode)
		}
	case ModeProxy:
		if _, _, err := net.SplitHostPort(l.Backend); err != nil {
			return fmt.Errorf("invalid backend %q: %w", l.Backend, err)
		}
	default:
		return fmt.Errorf("unknown mode %q (want %s, %s or %s)", l.Mode, ModeSilent, ModeRefuse, ModeProxy)
	}

	for _, name := range l.NXDOMAINFor {
		if _, ok := dns.IsDomainName(name); !ok || !dns.IsFqdn(name) {
			return fmt.Errorf("invalid nxdomain_for name %q: want a fully qualified name", name)
		}
	}
	return nil
}

func lowerSet(names []string) map[string]bool {
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[strings.ToLower(n)] = true
	}
	return set
}
