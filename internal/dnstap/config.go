package dnstap

import (
	"os"

	"bulwark/internal/config"
	"bulwark/internal/privacy"
)

// messageTypes maps the names of dnstap.messages to message types.
var messageTypes = map[string]Type{
	"client_query":      ClientQuery,
	"client_response":   ClientResponse,
	"resolver_query":    ResolverQuery,
	"resolver_response": ResolverResponse,
}

// ConfigFrom returns the Tap config of a validated dnstap section.
// binaryVersion is the version of the running binary, used when
// c.Version is empty.
func ConfigFrom(c *config.Dnstap, binaryVersion string) Config {
	cfg := Config{
		Output:   OutputConfig{Network: "unix", Address: c.Socket, QueueSize: c.QueueSize},
		Identity: c.Identity,
		Version:  c.Version,
		Anonymise: privacy.Config{
			Mode:       privacy.Mode(c.Anonymise),
			IPv4Prefix: c.IPv4Prefix,
			IPv6Prefix: c.IPv6Prefix,
		},
	}
	if c.TCP != "" {
		cfg.Output.Network, cfg.Output.Address = "tcp", c.TCPAddr.String()
	}
	if cfg.Identity == "" {
		// Without a host name the field is left out.
		cfg.Identity, _ = os.Hostname()
	}
	if cfg.Version == "" {
		cfg.Version = "bulwark " + binaryVersion
	}
	for _, name := range c.Messages {
		cfg.Types = append(cfg.Types, messageTypes[name])
	}
	return cfg
}
