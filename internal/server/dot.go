package server

import (
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"strings"

	"bulwark/internal/config"
	"bulwark/internal/logging"
)

// startDoT opens one DNS over TLS listener (RFC 7858). Queries on a
// connection are answered concurrently, out of order, as over TCP.
func (s *Server) startDoT(l config.Listener) error {
	ln, err := s.listenTCP(l.AddrPort)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.tcp = append(s.tcp, ln)
	s.mu.Unlock()
	cfg := s.tlsSource.Config("dot")
	s.wg.Add(1)
	go s.accept(ln, l, func(c net.Conn, client netip.Addr) {
		tc, ok := s.handshake(c, client, cfg)
		if !ok {
			return
		}
		flavour, _ := s.flavourFor(l, tc.ConnectionState().ServerName, "", client)
		s.serveStream(tc, session{
			tracked:   c,
			flavour:   flavour,
			client:    client,
			idle:      s.cfg.EncryptedIdleTimeout.D(),
			inflight:  s.cfg.MaxStreamsPerConnection,
			pad:       true,
			transport: transportDoT,
		})
	})
	return nil
}

// handshake runs the TLS handshake of a tracked connection within the
// handshake timeout. On failure the connection is untracked and closed.
func (s *Server) handshake(c net.Conn, client netip.Addr, cfg *tls.Config) (*tls.Conn, bool) {
	tc := tls.Server(c, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.HandshakeTimeout.D())
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		if ctx.Err() != nil {
			s.limitHit(limitHandshake)
		}
		s.log.Debug("TLS handshake failed", "error", logging.RedactAddresses(err.Error()))
		s.untrack(c, client)
		return nil, false
	}
	return tc, true
}

// flavourFor returns the flavour of a client of listener l that asked for
// the TLS server name sni and the DoH path path, either of which may be
// "". A path in the listener's doh_paths wins over a server name in
// server.tls.sni_flavours, which wins over the listener's flavour. A client
// subnet or tenant wins over all three. ok is false for a DoH path that the
// listener does not serve.
func (s *Server) flavourFor(l config.Listener, sni, path string, client netip.Addr) (uint8, bool) {
	name := l.Flavour
	if sni != "" {
		if f, ok := s.sniFlavours[strings.ToLower(strings.TrimSuffix(sni, "."))]; ok {
			name = f
		}
	}
	if path != "" && path != config.DefaultDoHPath {
		f, ok := l.DoHPaths[path]
		if !ok {
			return 0, false
		}
		name = f
	}
	return s.pipe.ClientFlavour(client, s.pipe.FlavourID(name)), true
}
