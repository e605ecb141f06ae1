package server

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"bulwark/internal/config"
	"bulwark/internal/logging"
	"bulwark/internal/pipeline"

	"github.com/quic-go/quic-go/http3"
	"golang.org/x/sys/unix"
)

// dnsMessage is the media type of DoH requests and responses (RFC 8484).
const dnsMessage = "application/dns-message"

// maxDoHTTL caps the Cache-Control max-age of DoH responses.
const maxDoHTTL = 86400

// startDoH opens one DNS over HTTPS listener (RFC 8484): HTTP/1.1 and
// HTTP/2 over TLS on the TCP port, HTTP/3 over QUIC on the UDP port of the
// same number.
func (s *Server) startDoH(l config.Listener) error {
	ln, err := s.listenTCP(l.AddrPort)
	if err != nil {
		return err
	}
	h := &dohHandler{s: s, l: l}
	if !l.ProxyProtocol {
		// Behind a PROXY protocol balancer, HTTP/3 would reach Bulwark
		// without the client's address, so it is neither served nor
		// offered.
		h.altSvc = fmt.Sprintf(`h3=":%d"; ma=86400`, l.AddrPort.Port())
	}
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         s.tlsSource.Config("h2", "http/1.1"),
		ReadHeaderTimeout: s.cfg.HandshakeTimeout.D(),
		// A request has the handshake timeout to arrive whole. The
		// response then has the client timeout plus the handshake timeout
		// again to be written, so an error for a slow body is still sent.
		ReadTimeout:    s.cfg.HandshakeTimeout.D(),
		WriteTimeout:   2*s.cfg.HandshakeTimeout.D() + s.cfg.ClientTimeout.D(),
		IdleTimeout:    s.cfg.EncryptedIdleTimeout.D(),
		MaxHeaderBytes: 16 << 10,
		HTTP2:          &http.HTTP2Config{MaxConcurrentStreams: s.cfg.MaxStreamsPerConnection},
		ErrorLog:       logging.HTTPErrorLog(s.log, "DoH connection error"),
	}
	al := newAdmitListener(s, ln, l)
	if h.altSvc != "" {
		if err := s.startHTTP3(l, h); err != nil {
			ln.Close()
			return err
		}
	}
	s.mu.Lock()
	s.closers = append(s.closers, srv.Close)
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := srv.ServeTLS(al, "", "")
		if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			s.log.Error("DoH listener stopped", "listener", l.AddrPort.String(), "error", err)
		}
	}()
	return nil
}

// startHTTP3 serves h on QUIC at the UDP port of l.
func (s *Server) startHTTP3(l config.Listener, h http.Handler) error {
	h3 := &http3.Server{Handler: h}
	return s.startQUIC(l, http3.ConfigureTLSConfig(s.tlsSource.Config()), true, func(c quicConn, client netip.Addr) {
		if err := h3.ServeQUICConn(c); err != nil {
			s.log.Debug("HTTP/3 connection ended", "error", logging.RedactAddresses(err.Error()))
		}
	}, h3.Close)
}

// dohHandler answers DoH requests on one listener.
type dohHandler struct {
	s      *Server
	l      config.Listener
	altSvc string
}

func (h *dohHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var sni string
	if r.TLS != nil {
		sni = r.TLS.ServerName
	}
	client := remoteAddr(r.RemoteAddr)
	flavour, ok := h.s.flavourFor(h.l, sni, r.URL.Path, client)
	if !ok {
		http.Error(w, fmt.Sprintf("no DNS endpoint at %s: use %s", r.URL.Path, config.DefaultDoHPath), http.StatusNotFound)
		return
	}
	pkt, status, msg := readDoHQuery(r)
	if status != http.StatusOK {
		http.Error(w, msg, status)
		return
	}
	resp := h.s.answer(transportDoH, pkt, flavour, client)
	if resp == nil {
		// A dropped query (RPZ DROP): end the stream without a response,
		// as close as HTTP gets to sending nothing.
		panic(http.ErrAbortHandler)
	}
	hdr := w.Header()
	hdr.Set("Content-Type", dnsMessage)
	if ttl, ok := pipeline.MinTTL(resp); ok {
		hdr.Set("Cache-Control", "max-age="+strconv.Itoa(int(min(ttl, maxDoHTTL))))
	} else {
		hdr.Set("Cache-Control", "no-store")
	}
	if r.ProtoMajor < 3 && h.altSvc != "" {
		hdr.Set("Alt-Svc", h.altSvc)
	}
	hdr.Set("Content-Length", strconv.Itoa(len(resp)))
	w.Write(resp)
}

// readDoHQuery returns the DNS query of a GET or POST request, or the HTTP
// status and message of a bad request.
func readDoHQuery(r *http.Request) ([]byte, int, string) {
	var pkt []byte
	switch r.Method {
	case http.MethodGet:
		param := r.URL.Query().Get("dns")
		if param == "" {
			return nil, http.StatusBadRequest, "missing dns parameter: send the query in base64url as ?dns=..."
		}
		var err error
		// RFC 8484 sends base64url without padding; some clients pad.
		pkt, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(param, "="))
		if err != nil {
			return nil, http.StatusBadRequest, "invalid dns parameter: it must be base64url: " + err.Error()
		}
	case http.MethodPost:
		ct := r.Header.Get("Content-Type")
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != dnsMessage {
			return nil, http.StatusUnsupportedMediaType, fmt.Sprintf("content type %q is not supported: send %s", ct, dnsMessage)
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 65536))
		if err != nil {
			return nil, http.StatusBadRequest, "cannot read the request body: " + err.Error()
		}
		if len(body) > 65535 {
			return nil, http.StatusRequestEntityTooLarge, "a DNS message is at most 65535 bytes"
		}
		pkt = body
	default:
		return nil, http.StatusMethodNotAllowed, "use GET or POST"
	}
	if len(pkt) < 12 {
		return nil, http.StatusBadRequest, fmt.Sprintf("a DNS message of %d bytes is shorter than its 12-byte header", len(pkt))
	}
	return pkt, http.StatusOK, ""
}

// remoteAddr parses an http.Request RemoteAddr.
func remoteAddr(s string) netip.Addr {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// admitListener hands http.Server the connections that Server.admit lets
// in. Admission, which may read a PROXY header, runs on a goroutine per
// connection, so that a slow client never holds up Accept.
type admitListener struct {
	net.Listener
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newAdmitListener(s *Server, ln net.Listener, l config.Listener) *admitListener {
	al := &admitListener{Listener: ln, conns: make(chan net.Conn), done: make(chan struct{})}
	s.mu.Lock()
	s.tcp = append(s.tcp, al)
	s.mu.Unlock()
	s.wg.Add(1)
	go s.accept(ln, l, func(c net.Conn, client netip.Addr) {
		tc := &trackedConn{Conn: c, s: s, client: client}
		if t, ok := c.(*net.TCPConn); ok {
			tc.raw, _ = t.SyscallConn()
		}
		select {
		case al.conns <- tc:
		case <-al.done:
			tc.Close()
		}
	})
	return al
}

func (al *admitListener) Accept() (net.Conn, error) {
	select {
	case c := <-al.conns:
		return c, nil
	case <-al.done:
		return nil, net.ErrClosed
	}
}

func (al *admitListener) Close() error {
	al.once.Do(func() { close(al.done) })
	return al.Listener.Close()
}

// trackedConn is an admitted connection: closing it untracks it, and its
// RemoteAddr is the client's, from the PROXY header when there was one.
type trackedConn struct {
	net.Conn
	s      *Server
	client netip.Addr
	once   sync.Once
	// raw is the socket of a TCP connection, for TCP_QUICKACK.
	raw syscall.RawConn
}

// Read turns on TCP_QUICKACK before each read, so that the kernel
// acknowledges a request's first segment at once. Clients that send a
// POST's HEADERS and DATA frames in two writes without TCP_NODELAY, such
// as dnsperf 2.10, otherwise hold the DATA frame until the delayed
// acknowledgement comes, 40 ms later on Linux. The option does not stay
// set, hence a call per read.
func (c *trackedConn) Read(p []byte) (int, error) {
	if c.raw != nil {
		c.raw.Control(func(fd uintptr) {
			unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1)
		})
	}
	return c.Conn.Read(p)
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.s.untrack(c.Conn, c.client) })
	return nil
}

func (c *trackedConn) RemoteAddr() net.Addr {
	if c.client.IsValid() {
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(c.client, 0))
	}
	return c.Conn.RemoteAddr()
}
