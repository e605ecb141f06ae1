package config

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"bulwark/internal/policy"
)

// TLS holds the certificate of the encrypted listeners (DoT, DoH, DoQ) and
// the flavours that TLS server names select.
type TLS struct {
	// CertFile and KeyFile are PEM files of the certificate chain and its
	// private key, read again when they change. Default "": a self-signed
	// certificate made at start for Names, for labs and local use.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// Names are the DNS names and IP addresses of the self-signed
	// certificate. Default: "localhost" and the addresses of the
	// encrypted listeners.
	Names []string `yaml:"names"`
	// SNIFlavours maps a TLS server name that a DoT, DoQ or DoH client
	// asks for, such as child.dns.example, to a flavour. It overrides the
	// listener's flavour; a DoH path in doh_paths overrides it in turn.
	// Default: none.
	SNIFlavours map[string]string `yaml:"sni_flavours"`
}

// Encrypted transport defaults.
const (
	defaultEncryptedIdleTimeout    = 30 * time.Second
	defaultHandshakeTimeout        = 5 * time.Second
	defaultMaxConnectionsPerClient = 64
	defaultMaxStreamsPerConnection = 100
	// DefaultDoHPath is the path RFC 8484 examples use; it always serves
	// the listener's flavour.
	DefaultDoHPath = "/dns-query"
)

// isEncrypted reports whether a transport uses TLS or QUIC.
func isEncrypted(t string) bool { return t == "dot" || t == "doh" || t == "doq" }

// Encrypted reports whether the listener serves DoT, DoH or DoQ.
func (l Listener) Encrypted() bool { return slices.ContainsFunc(l.Transports, isEncrypted) }

// setTransportDefaults fills the names of the self-signed certificate,
// which depend on the listeners.
func (c *Config) setTransportDefaults() {
	s := &c.Server
	if s.TLS.Names == nil {
		names := []string{"localhost"}
		for name := range s.TLS.SNIFlavours {
			if n := strings.ToLower(name); !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
		slices.Sort(names[1:])
		for _, l := range s.Listen {
			if !l.Encrypted() {
				continue
			}
			host := l.Address
			if ap, err := netip.ParseAddrPort(l.Address); err == nil {
				host = ap.Addr().String()
			}
			if !slices.Contains(names, host) {
				names = append(names, host)
			}
		}
		s.TLS.Names = names
	}
}

// transports checks the settings of the encrypted listeners. Flavour names
// are checked against the flavours the policy section defines.
func (v *validator) transports() error {
	s := &v.cfg.Server
	if s.EncryptedIdleTimeout <= 0 {
		return v.errorf("server.encrypted_idle_timeout", "invalid duration %s: must be positive", s.EncryptedIdleTimeout.D())
	}
	if s.HandshakeTimeout <= 0 {
		return v.errorf("server.handshake_timeout", "invalid duration %s: must be positive", s.HandshakeTimeout.D())
	}
	if s.MaxConnectionsPerClient < 1 {
		return v.errorf("server.max_connections_per_client", "invalid value %d: must be at least 1", s.MaxConnectionsPerClient)
	}
	if s.MaxStreamsPerConnection < 1 || s.MaxStreamsPerConnection > 65535 {
		return v.errorf("server.max_streams_per_connection", "invalid value %d: use 1 to 65535", s.MaxStreamsPerConnection)
	}
	if err := v.tlsFiles(); err != nil {
		return err
	}
	flavours := v.flavourNames()
	unknownFlavour := "unknown flavour %q for %s: use a built-in one (%s), or define it in policy.flavours or, as tenant:NAME, in policy.tenants"
	seenSNI := map[string]string{}
	for name, f := range s.TLS.SNIFlavours {
		key := "server.tls.sni_flavours"
		canonical, ok := validName(name)
		switch {
		case !ok && strings.ContainsFunc(name, func(r rune) bool { return r > 0x7f }):
			return v.errorf(key, "invalid server name %q: write an internationalized name in its xn-- form", name)
		case !ok || net.ParseIP(name) != nil:
			return v.errorf(key, "invalid server name %q: write a host name such as child.dns.example; clients send no IP address as a TLS server name", name)
		case seenSNI[canonical] != "":
			return v.errorf(key, "server names %q and %q are the same name: TLS server names compare without case; keep one", seenSNI[canonical], name)
		}
		seenSNI[canonical] = name
		if !flavours[f] {
			return v.errorf(key, unknownFlavour, f, name, strings.Join(builtinFlavourNames(), ", "))
		}
	}
	for _, n := range s.TLS.Names {
		if _, ok := validName(n); !ok && net.ParseIP(n) == nil {
			return v.errorf("server.tls.names", "invalid name %q: write DNS names such as dns.example or IP addresses", n)
		}
	}
	for _, p := range s.ProxyProtocolFrom {
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			return v.errorf("server.proxy_protocol_from", "invalid prefix %q: write the load balancers' networks, such as 10.0.0.0/24 or 192.0.2.7/32", p)
		}
		if prefix != prefix.Masked() {
			return v.errorf("server.proxy_protocol_from", "prefix %q has bits set beyond its length: write %s", p, prefix.Masked())
		}
		if prefix.Bits() == 0 {
			return v.errorf("server.proxy_protocol_from", "prefix %q trusts PROXY headers from every address, so any client could choose its own address: list the load balancers' networks", p)
		}
		s.ProxyFrom = append(s.ProxyFrom, prefix)
	}
	for i, l := range s.Listen {
		key := fmt.Sprintf("server.listen[%d]", i)
		if len(l.DoHPaths) > 0 && !slices.Contains(l.Transports, "doh") {
			return v.errorf(key+".doh_paths", "doh_paths needs the doh transport on this listener")
		}
		for path, f := range l.DoHPaths {
			if !validDoHPath(path) {
				return v.errorf(key+".doh_paths", "invalid path %q: write an absolute URL path of letters, digits, '-', '_' and '/', such as /child, other than %s", path, DefaultDoHPath)
			}
			if !flavours[f] {
				return v.errorf(key+".doh_paths", unknownFlavour, f, path, strings.Join(builtinFlavourNames(), ", "))
			}
		}
		if l.ProxyProtocol {
			if len(s.ProxyFrom) == 0 {
				return v.errorf(key+".proxy_protocol", "PROXY protocol needs server.proxy_protocol_from: list the load balancers' addresses")
			}
			if slices.Contains(l.Transports, "udp") || slices.Contains(l.Transports, "doq") {
				return v.errorf(key+".proxy_protocol", "PROXY protocol works on tcp, dot and doh listeners only: move udp and doq to a listener of their own")
			}
		}
	}
	return nil
}

// tlsFiles loads the certificate and key files, so that check-config finds
// what would stop serve.
func (v *validator) tlsFiles() error {
	t := v.cfg.Server.TLS
	switch {
	case t.CertFile == "" && t.KeyFile == "":
		return nil
	case t.CertFile == "":
		return v.errorf("server.tls.key_file", "key_file needs cert_file: set both, or neither for a self-signed certificate")
	case t.KeyFile == "":
		return v.errorf("server.tls.cert_file", "cert_file needs key_file: set both, or neither for a self-signed certificate")
	}
	if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
		return v.errorf("server.tls.cert_file", "cannot load the certificate %s with the key %s: %v: give a PEM certificate chain and its PEM private key", t.CertFile, t.KeyFile, err)
	}
	return nil
}

// validDoHPath reports whether path is a plain absolute URL path other
// than the default one: no escapes, no dot segments, no query.
func validDoHPath(path string) bool {
	if !strings.HasPrefix(path, "/") || path == DefaultDoHPath || path == "/" {
		return false
	}
	for seg := range strings.SplitSeq(path[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for _, c := range seg {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
				return false
			}
		}
	}
	return true
}

// flavourNames returns the built-in flavours, those of policy.flavours and
// the tenants' flavours, named "tenant:" and the tenant's name.
func (v *validator) flavourNames() map[string]bool {
	names := map[string]bool{}
	for n := range policy.Builtin {
		names[n] = true
	}
	for _, f := range v.cfg.Policy.Flavours {
		names[f.Name] = true
	}
	for _, tn := range v.cfg.Policy.Tenants {
		names["tenant:"+tn.Name] = true
	}
	return names
}

// validName returns name in canonical form and whether it is a valid host
// name.
func validName(name string) (string, bool) {
	if name == "" || len(name) > 253 || strings.HasSuffix(name, ".") {
		return "", false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return "", false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return "", false
			}
		}
	}
	return strings.ToLower(name), true
}
