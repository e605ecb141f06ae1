package config

import (
	"slices"
	"testing"
	"time"
)

func TestTransportConfig(t *testing.T) {
	c, err := Parse([]byte(`server:
  listen:
    - address: 127.0.0.1:5301
      transports: [dot]
    - address: 127.0.0.1:5302
      transports: [doh]
      doh_paths:
        /child: protective-child
    - address: 127.0.0.1:5303
      transports: [doq]
      flavour: protective
  tls:
    sni_flavours:
      child.dns.example: protective-child
`), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := c.Server
	if want := []string{"localhost", "child.dns.example", "127.0.0.1"}; !slices.Equal(s.TLS.Names, want) {
		t.Errorf("self-signed names %v, want %v", s.TLS.Names, want)
	}
	if s.EncryptedIdleTimeout.D() != 30*time.Second || s.HandshakeTimeout.D() != 5*time.Second {
		t.Errorf("timeouts %s and %s, want 30s and 5s", s.EncryptedIdleTimeout.D(), s.HandshakeTimeout.D())
	}
	if s.MaxConnectionsPerClient != 64 || s.MaxStreamsPerConnection != 100 {
		t.Errorf("limits %d and %d, want 64 and 100", s.MaxConnectionsPerClient, s.MaxStreamsPerConnection)
	}
	if !s.Listen[0].Encrypted() || s.Listen[1].DoHPaths["/child"] != "protective-child" {
		t.Errorf("listeners %+v", s.Listen)
	}
}

func TestTransportErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		line       int
		text       string
	}{
		{"unknown transport", "server:\n  listen:\n    - address: 127.0.0.1:853\n      transports: [tls]\n", 4, `unknown transport "tls"`},
		{"tcp and dot on one port", "server:\n  listen:\n    - address: 127.0.0.1:853\n      transports: [tcp, dot]\n", 3, "for tcp and dot"},
		{"doh and doq on one port", "server:\n  listen:\n    - address: 127.0.0.1:853\n      transports: [doh, doq]\n", 3, "for doh and doq"},
		{"path without doh", "server:\n  listen:\n    - address: 127.0.0.1:853\n      transports: [dot]\n      doh_paths:\n        /child: protective\n", 6, "needs the doh transport"},
		{"relative path", "server:\n  listen:\n    - address: 127.0.0.1:443\n      transports: [doh]\n      doh_paths:\n        child: protective\n", 6, `invalid path "child"`},
		{"default path", "server:\n  listen:\n    - address: 127.0.0.1:443\n      transports: [doh]\n      doh_paths:\n        /dns-query: protective\n", 6, `invalid path "/dns-query"`},
		{"unknown path flavour", "server:\n  listen:\n    - address: 127.0.0.1:443\n      transports: [doh]\n      doh_paths:\n        /x: strict\n", 6, `unknown flavour "strict"`},
		{"unknown SNI flavour", "server:\n  tls:\n    sni_flavours:\n      a.example: strict\n", 4, `unknown flavour "strict"`},
		{"bad SNI name", "server:\n  tls:\n    sni_flavours:\n      a_b..example: protective\n", 4, `invalid server name`},
		{"cert without key", "server:\n  tls:\n    cert_file: /tmp/cert.pem\n", 3, "cert_file needs key_file"},
		{"key without cert", "server:\n  tls:\n    key_file: /tmp/key.pem\n", 3, "key_file needs cert_file"},
		{"missing certificate", "server:\n  tls:\n    cert_file: /nonexistent/cert.pem\n    key_file: /nonexistent/key.pem\n", 3, "cannot load the certificate /nonexistent/cert.pem"},
		{"SNI twice", "server:\n  tls:\n    sni_flavours:\n      A.example: protective\n      a.example: unfiltered\n", 4, "are the same name"},
		{"SNI address", "server:\n  tls:\n    sni_flavours:\n      127.0.0.1: protective\n", 4, "no IP address"},
		{"SNI unicode", "server:\n  tls:\n    sni_flavours:\n      bücher.example: protective\n", 4, "xn-- form"},
		{"bad names", "server:\n  tls:\n    names: ['not a name!']\n", 3, `invalid name "not a name!"`},
		{"escaped path", "server:\n  listen:\n    - address: 127.0.0.1:443\n      transports: [doh]\n      doh_paths:\n        /%63hild: protective\n", 6, "invalid path"},
		{"dot segment", "server:\n  listen:\n    - address: 127.0.0.1:443\n      transports: [doh]\n      doh_paths:\n        /a/../b: protective\n", 6, "invalid path"},
		{"proxy host bits", "server:\n  proxy_protocol_from: [10.0.0.1/8]\n", 2, "write 10.0.0.0/8"},
		{"proxy everyone", "server:\n  proxy_protocol_from: [0.0.0.0/0]\n", 2, "every address"},
		{"proxy without networks", "server:\n  listen:\n    - address: 127.0.0.1:853\n      transports: [dot]\n      proxy_protocol: true\n", 5, "needs server.proxy_protocol_from"},
		{"proxy on udp", "server:\n  proxy_protocol_from: [10.0.0.0/8]\n  listen:\n    - address: 127.0.0.1:53\n      proxy_protocol: true\n", 5, "tcp, dot and doh listeners only"},
		{"bad proxy network", "server:\n  proxy_protocol_from: [10.0.0.300/8]\n", 2, `invalid prefix "10.0.0.300/8"`},
		{"streams", "server:\n  max_streams_per_connection: 0\n", 2, "invalid value 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "test.yaml")
			checkConfigError(t, err, tt.line, tt.text)
		})
	}
}
