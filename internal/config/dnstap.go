package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"bulwark/internal/privacy"
)

// Dnstap sets the dnstap output: dnstap messages (dnstap.proto) sent in a
// Frame Streams session to a collector such as fstrm_capture. It is on when
// socket or tcp is set. See docs/dnstap.md.
type Dnstap struct {
	// Socket is the path of the unix socket a collector listens on,
	// relative to the config file's directory. Default "": none.
	Socket string `yaml:"socket"`
	// TCP is the IP:port a collector listens on, for a collector reached
	// over TCP instead of a unix socket. Default "": none.
	TCP string `yaml:"tcp"`
	// Identity fills the identity field of each message. Default "": the
	// host name.
	Identity string `yaml:"identity"`
	// Version fills the version field of each message. Default "":
	// "bulwark" and the version of the binary.
	Version string `yaml:"version"`
	// Anonymise is how client addresses are written: truncate (the
	// network prefix of ipv4_prefix or ipv6_prefix bits), hash (a keyed
	// hash that changes every UTC day, shaped as an address of the same
	// family) or omit. Default: truncate.
	Anonymise string `yaml:"anonymise"`
	// IPv4Prefix is the prefix length of IPv4 client addresses kept by
	// truncate, 1 to 24. Default: 24.
	IPv4Prefix int `yaml:"ipv4_prefix"`
	// IPv6Prefix is the prefix length of IPv6 client addresses kept by
	// truncate, 1 to 56. Default: 56.
	IPv6Prefix int `yaml:"ipv6_prefix"`
	// QueueSize is the number of messages that may wait for the
	// collector; when the queue is full, new messages are dropped and
	// counted. Default: 16384.
	QueueSize int `yaml:"queue_size"`
	// Messages lists the message types written: client_query,
	// client_response, resolver_query and resolver_response. Default: all
	// four.
	Messages []string `yaml:"messages"`

	// TCPAddr is TCP, parsed by Load.
	TCPAddr netip.AddrPort `yaml:"-"`
}

// Enabled reports whether dnstap output is on.
func (d *Dnstap) Enabled() bool { return d.Socket != "" || d.TCP != "" }

// DnstapMessages are the names of the message types of dnstap.messages.
var DnstapMessages = []string{"client_query", "client_response", "resolver_query", "resolver_response"}

// maxUnixSocketPath is the longest unix socket path Linux accepts, in
// bytes: sun_path holds 108 bytes with the final NUL.
const maxUnixSocketPath = 107

// Bounds of dnstap.queue_size.
const (
	minDnstapQueue = 16
	maxDnstapQueue = 1 << 24
)

func defaultDnstap() Dnstap {
	return Dnstap{
		Anonymise:  string(privacy.Truncate),
		IPv4Prefix: privacy.DefaultIPv4Prefix,
		IPv6Prefix: privacy.DefaultIPv6Prefix,
		QueueSize:  16384,
		Messages:   slices.Clone(DnstapMessages),
	}
}

func (v *validator) dnstap() error {
	d := &v.cfg.Dnstap
	if d.Socket != "" && d.TCP != "" {
		return v.errorf("dnstap.tcp", "socket and tcp are both set: keep the one your collector listens on")
	}
	if err := v.dnstapCollector(d); err != nil {
		return err
	}
	if err := v.dnstapPrivacy(d); err != nil {
		return err
	}
	if d.QueueSize < minDnstapQueue || d.QueueSize > maxDnstapQueue {
		return v.errorf("dnstap.queue_size", "invalid queue size %d: use %d to %d messages", d.QueueSize, minDnstapQueue, maxDnstapQueue)
	}
	return v.dnstapMessages(d)
}

// dnstapCollector checks the socket path or parses the TCP address.
func (v *validator) dnstapCollector(d *Dnstap) error {
	d.TCPAddr = netip.AddrPort{}
	if d.TCP != "" {
		ap, err := netip.ParseAddrPort(d.TCP)
		if err != nil || ap.Port() == 0 {
			return v.errorf("dnstap.tcp", "invalid address %q: write IP:port, such as 127.0.0.1:6000", d.TCP)
		}
		d.TCPAddr = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		return nil
	}
	if d.Socket == "" {
		return nil
	}
	d.Socket = v.cfg.resolvePath(d.Socket)
	if len(d.Socket) > maxUnixSocketPath {
		return v.errorf("dnstap.socket", "socket path %s is %d bytes long: unix socket paths have at most %d, so choose a shorter one", d.Socket, len(d.Socket), maxUnixSocketPath)
	}
	// The collector creates the socket, possibly after Bulwark starts,
	// but its directory must exist.
	if info, err := os.Stat(filepath.Dir(d.Socket)); err != nil || !info.IsDir() {
		return v.errorf("dnstap.socket", "invalid directory %s for the socket: create it, or fix the path", filepath.Dir(d.Socket))
	}
	return nil
}

func (v *validator) dnstapPrivacy(d *Dnstap) error {
	switch privacy.Mode(d.Anonymise) {
	case privacy.Truncate, privacy.Hash, privacy.Omit:
	default:
		return v.errorf("dnstap.anonymise", "invalid mode %q: use truncate, hash or omit", d.Anonymise)
	}
	if d.IPv4Prefix < 1 || d.IPv4Prefix > privacy.DefaultIPv4Prefix {
		return v.errorf("dnstap.ipv4_prefix", "invalid prefix length %d: use 1 to %d", d.IPv4Prefix, privacy.DefaultIPv4Prefix)
	}
	if d.IPv6Prefix < 1 || d.IPv6Prefix > privacy.DefaultIPv6Prefix {
		return v.errorf("dnstap.ipv6_prefix", "invalid prefix length %d: use 1 to %d", d.IPv6Prefix, privacy.DefaultIPv6Prefix)
	}
	return nil
}

func (v *validator) dnstapMessages(d *Dnstap) error {
	if len(d.Messages) == 0 {
		return v.errorf("dnstap.messages", "no message type: list at least one of %s, or remove the key for all of them", strings.Join(DnstapMessages, ", "))
	}
	for i, m := range d.Messages {
		if !slices.Contains(DnstapMessages, m) {
			return v.errorf("dnstap.messages", "unknown message type %q (entry %d): use %s", m, i, strings.Join(DnstapMessages, ", "))
		}
		if slices.Index(d.Messages, m) != i {
			return v.errorf("dnstap.messages", "message type %q is listed twice", m)
		}
	}
	return nil
}
