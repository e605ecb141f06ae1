// Package server runs the client-facing listeners and hands each query to the
// pipeline. UDP listeners open several SO_REUSEPORT sockets, each read by one
// goroutine that answers cache hits inline; only cache misses get a goroutine
// of their own, bounded by the pipeline's resolution slots. TCP connections
// are read by one goroutine each, and their queries are answered out of order
// as they complete (RFC 7766 section 6.2.1.1).
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"bulwark/internal/config"
	"bulwark/internal/observe"
	"bulwark/internal/pipeline"
	"bulwark/internal/rrl"
	"bulwark/internal/tlscert"

	"golang.org/x/sys/unix"
)

// Server owns the listeners of one Bulwark node.
type Server struct {
	cfg  config.Server
	pipe *pipeline.Pipeline
	log  *slog.Logger
	// baseLog is the logger given to New, for parts that name their own
	// component.
	baseLog *slog.Logger

	mu      sync.Mutex
	udp     []*net.UDPConn
	tcp     []net.Listener
	conns   map[net.Conn]struct{}
	closing bool
	// perClient counts the open connections of each client address, over
	// every transport.
	perClient map[netip.Addr]int
	// closers stop the DoH and DoQ servers at shutdown.
	closers []func() error

	limits  [limitCount]limitState
	queries [transportCount]atomic.Uint64
	// obs receives every client query and its response; nil for none.
	obs observe.Observer
	// batches are the batched UDP sockets, for pollUDP; the slice is
	// replaced whole when one is added.
	batches atomic.Pointer[[]*batchConn]
	// rrl limits the rate of UDP responses; nil for no limit.
	rrl *rrl.Limiter

	// tlsSource is the certificate of the encrypted listeners, nil when
	// there is none; sniFlavours is server.tls.sni_flavours with the
	// names in lower case.
	tlsSource   *tlscert.Source
	sniFlavours map[string]string
	wg          sync.WaitGroup // listener loops and connections
	work        sync.WaitGroup // queries being answered

	// inherited are the sockets a handover passed in; owned are those a
	// handover passes on.
	inherited inheritedSockets
	owned     []ownedSocket
	// stopAt is the read deadline of client connections once Shutdown
	// has begun, in Unix nanoseconds; 0 while serving.
	stopAt atomic.Int64
	// handedOver is set when a new process has taken the sockets over,
	// so that Shutdown leaves the queued datagrams to it.
	handedOver atomic.Bool
	// prepareHandover and handoverFailed are the hooks of
	// SetHandoverHooks; each may be nil.
	prepareHandover, handoverFailed func()
}

// New returns a Server for the listeners in cfg.
func New(cfg config.Server, pipe *pipeline.Pipeline, log *slog.Logger) *Server {
	// A config made by hand, as in tests, may leave the limits at zero.
	if cfg.MaxConnectionsPerClient <= 0 {
		cfg.MaxConnectionsPerClient = math.MaxInt
	}
	if cfg.MaxStreamsPerConnection <= 0 {
		cfg.MaxStreamsPerConnection = maxPipelined
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = config.Duration(5 * time.Second)
	}
	if cfg.EncryptedIdleTimeout <= 0 {
		cfg.EncryptedIdleTimeout = config.Duration(30 * time.Second)
	}
	return &Server{cfg: cfg, pipe: pipe, log: log.With("component", "server"), baseLog: log,
		conns: map[net.Conn]struct{}{}, perClient: map[netip.Addr]int{}}
}

// Start opens every listener and starts serving. On error, listeners already
// opened are closed.
func (s *Server) Start() error {
	if err := s.startTLS(); err != nil {
		return err
	}
	for _, l := range s.cfg.Listen {
		for _, t := range l.Transports {
			var err error
			switch t {
			case "udp":
				err = s.startUDP(l)
			case "tcp":
				err = s.startTCP(l)
			case "dot":
				err = s.startDoT(l)
			case "doh":
				err = s.startDoH(l)
			case "doq":
				err = s.startDoQ(l)
			}
			if err != nil && l.Optional && addressMissing(err) {
				s.log.Warn("listener skipped: address not available on this host",
					"listener", l.AddrPort.String(), "transport", t, "error", err)
				continue
			}
			if err != nil {
				s.closeListeners()
				return fmt.Errorf("listen on %s/%s: %w", l.AddrPort, t, err)
			}
			s.log.Info("listening", "listener", l.AddrPort.String(), "transport", t)
		}
	}
	for _, sock := range s.inherited.closeRest() {
		s.log.Info("inherited socket closed: no listener uses it", "listener", sock.Address.String(), "network", sock.Network)
	}
	return nil
}

// Shutdown stops reading new queries and answers those already received
// until ctx is done, then closes every socket. Queries received means
// datagrams queued on the UDP sockets, unless a handover passed them to a
// new process, queries in progress on every transport, and queries that
// TCP and DoT clients sent within connDrainGrace of the stop.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopReading()
	if !s.handedOver.Load() {
		s.drainUDP(ctx)
	}
	done := make(chan struct{})
	go func() {
		s.work.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	for _, c := range s.udp {
		c.Close()
	}
	closers := s.closers
	s.closers = nil
	s.mu.Unlock()
	for _, c := range closers {
		c()
	}
	s.wg.Wait()
	return err
}

// connDrainGrace is how long client connections are still read after
// Shutdown begins, so that queries already sent are answered rather than
// reset with the connection.
const connDrainGrace = 200 * time.Millisecond

// stopReading closes the TCP listeners and wakes every UDP reader with an
// expired deadline; UDP sockets stay open so that queries in progress can
// still send their responses. Client connections are read for
// connDrainGrace more.
func (s *Server) stopReading() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	past := time.Unix(1, 0)
	for _, c := range s.udp {
		c.SetReadDeadline(past)
	}
	for _, l := range s.tcp {
		l.Close()
	}
	grace := time.Now().Add(connDrainGrace)
	s.stopAt.Store(grace.UnixNano())
	for c := range s.conns {
		c.SetReadDeadline(grace)
	}
}

// readDeadline returns the read deadline of a client connection that may
// stay idle for idle: later during Shutdown.
func (s *Server) readDeadline(idle time.Duration) time.Time {
	if at := s.stopAt.Load(); at != 0 {
		return time.Unix(0, at)
	}
	return time.Now().Add(idle)
}

// closeListeners closes every listener, for a start that failed half way.
func (s *Server) closeListeners() {
	s.mu.Lock()
	s.closing = true
	for _, c := range s.udp {
		c.Close()
	}
	for _, l := range s.tcp {
		l.Close()
	}
	closers := s.closers
	s.closers = nil
	s.mu.Unlock()
	for _, c := range closers {
		c()
	}
}

// tlsCheckInterval is how often the certificate files are checked for
// changes.
const tlsCheckInterval = 10 * time.Second

// startTLS loads the certificate when a listener is encrypted, and checks
// its files for changes until shutdown.
func (s *Server) startTLS() error {
	if !slices.ContainsFunc(s.cfg.Listen, config.Listener.Encrypted) {
		return nil
	}
	src, err := tlscert.Load(s.cfg.TLS.CertFile, s.cfg.TLS.KeyFile, s.cfg.TLS.Names, s.baseLog)
	if err != nil {
		return fmt.Errorf("server.tls: %w", err)
	}
	s.tlsSource = src
	s.sniFlavours = map[string]string{}
	for name, f := range s.cfg.TLS.SNIFlavours {
		s.sniFlavours[strings.ToLower(name)] = f
	}
	stop := make(chan struct{})
	s.closers = append(s.closers, func() error { close(stop); return nil })
	go src.Watch(tlsCheckInterval, stop)
	return nil
}

// isClosing reports whether Shutdown has begun.
func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// addressMissing reports whether err means the host has no such address or
// no such address family, as for [::1] on a host without IPv6.
func addressMissing(err error) bool {
	return errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EAFNOSUPPORT)
}

// reusePort sets SO_REUSEPORT so that several sockets share one address and
// the kernel spreads packets over them.
func reusePort(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	return errors.Join(err, serr)
}

func (s *Server) udpSockets() int {
	if s.cfg.UDPSockets > 0 {
		return s.cfg.UDPSockets
	}
	return runtime.NumCPU()
}

// idleTimeout is the TCP idle timeout.
func (s *Server) idleTimeout() time.Duration {
	return s.cfg.TCPIdleTimeout.D()
}
