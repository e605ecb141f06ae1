package stub

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// backendTimeout bounds one proxied exchange. Lab backends are on loopback
// and answer in well under a millisecond when they are up.
const backendTimeout = 3 * time.Second

// errorLogLimit is how many backend errors a listener logs one by one;
// after that only every hundredth is logged, with the running count.
const errorLogLimit = 20

// Server runs every listener of one Config.
type Server struct {
	cfg     *Config
	logger  *slog.Logger
	servers []*dns.Server
	logs    []*os.File
}

// New prepares a Server; Start binds the sockets.
func New(cfg *Config, logger *slog.Logger) *Server {
	return &Server{cfg: cfg, logger: logger.With("component", "labstub")}
}

// Start binds UDP and TCP sockets for every listener and serves them in the
// background. It returns once every socket is bound, or the first error
// after closing what it had opened.
func (s *Server) Start() error {
	for _, l := range s.cfg.Listeners {
		h, err := s.newHandler(l)
		if err != nil {
			s.Shutdown()
			return err
		}
		for _, network := range []string{"udp", "tcp"} {
			if err := s.listen(l, network, h); err != nil {
				s.Shutdown()
				return err
			}
		}
		s.logger.Info("listener started", "listener", l.Name, "address", l.HostPort(), "mode", l.Mode)
	}
	return nil
}

func (s *Server) newHandler(l Listener) (*handler, error) {
	h := &handler{
		cfg:      l,
		logger:   s.logger.With("listener", l.Name),
		nxdomain: lowerSet(l.NXDOMAINFor),
	}
	if l.Log == "" {
		return h, nil
	}

	f, err := os.OpenFile(l.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open query log of listener %q: %w", l.Name, err)
	}
	s.logs = append(s.logs, f)
	h.queryLog = f
	return h, nil
}

// listen binds one socket and serves it in a goroutine.
func (s *Server) listen(l Listener, network string, h *handler) error {
	started := make(chan struct{})
	srv := &dns.Server{
		Addr:              l.HostPort(),
		Net:               network,
		Handler:           h.forNetwork(network),
		NotifyStartedFunc: func() { close(started) },
	}
	failed := make(chan error, 1)
	go func() {
		failed <- srv.ListenAndServe()
	}()

	select {
	case <-started:
		s.servers = append(s.servers, srv)
		go s.watch(l, network, failed)
		return nil
	case err := <-failed:
		return fmt.Errorf("listen %s %s for listener %q: %w", network, l.HostPort(), l.Name, err)
	}
}

// watch logs a listener that stops serving before Shutdown.
func (s *Server) watch(l Listener, network string, failed <-chan error) {
	if err := <-failed; err != nil {
		s.logger.Error("listener stopped", "listener", l.Name, "network", network, "error", err)
	}
}

// Shutdown stops every listener and closes the query logs.
func (s *Server) Shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	for _, srv := range s.servers {
		if err := srv.ShutdownContext(ctx); err != nil {
			s.logger.Warn("listener shutdown failed", "address", srv.Addr, "network", srv.Net, "error", err)
		}
	}
	for _, f := range s.logs {
		if err := f.Close(); err != nil {
			s.logger.Warn("close query log failed", "file", f.Name(), "error", err)
		}
	}
	s.servers = nil
	s.logs = nil
}

// handler serves one listener; the same handler serves its UDP and TCP
// sockets, so the query log and error counter are shared.
type handler struct {
	cfg      Listener
	logger   *slog.Logger
	nxdomain map[string]bool
	queryLog *os.File
	logMu    sync.Mutex
	errors   atomic.Int64
}

// forNetwork returns a dns.Handler that knows the transport it serves.
func (h *handler) forNetwork(network string) dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		h.serve(network, w, req)
	})
}

func (h *handler) serve(network string, w dns.ResponseWriter, req *dns.Msg) {
	h.logQuery(network, req)

	resp := h.reply(network, req)
	if resp == nil {
		return
	}
	if h.cfg.DelayMS > 0 {
		time.Sleep(time.Duration(h.cfg.DelayMS) * time.Millisecond)
	}
	if err := w.WriteMsg(resp); err != nil {
		h.logError("write reply failed", err)
	}
}

// reply builds the response to req, or returns nil to send nothing.
func (h *handler) reply(network string, req *dns.Msg) *dns.Msg {
	switch h.cfg.Mode {
	case ModeSilent:
		return nil
	case ModeRefuse:
		return refused(req)
	}

	if network == "udp" && h.cfg.TruncateUDP {
		return truncated(req)
	}
	resp, err := h.exchange(network, req)
	if err != nil {
		h.logError("backend exchange failed", err)
		return serverFailure(req)
	}
	h.rewriteENT(req, resp)
	return resp
}

// exchange forwards req unchanged to the backend and returns its reply
// with the client's message ID.
func (h *handler) exchange(network string, req *dns.Msg) (*dns.Msg, error) {
	client := &dns.Client{Net: network, Timeout: backendTimeout, UDPSize: dns.MaxMsgSize}
	resp, _, err := client.Exchange(req, h.cfg.Backend)
	if err != nil {
		return nil, fmt.Errorf("exchange with backend %s over %s: %w", h.cfg.Backend, network, err)
	}
	resp.Id = req.Id
	return resp, nil
}

// rewriteENT turns a NODATA reply for a listed name into NXDOMAIN.
func (h *handler) rewriteENT(req, resp *dns.Msg) {
	if len(h.nxdomain) == 0 || len(req.Question) != 1 {
		return
	}
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 0 {
		return
	}
	if h.nxdomain[strings.ToLower(req.Question[0].Name)] {
		resp.Rcode = dns.RcodeNameError
	}
}

// logQuery appends one line per question to the query log.
func (h *handler) logQuery(network string, req *dns.Msg) {
	if h.queryLog == nil {
		return
	}

	var b strings.Builder
	now := time.Now().Unix()
	for _, q := range req.Question {
		fmt.Fprintf(&b, "%d %s %s %s\n", now, network, q.Name, dns.Type(q.Qtype))
	}
	if len(req.Question) == 0 {
		fmt.Fprintf(&b, "%d %s - -\n", now, network)
	}

	h.logMu.Lock()
	defer h.logMu.Unlock()
	if _, err := h.queryLog.WriteString(b.String()); err != nil {
		h.logError("write query log failed", err)
	}
}

// logError logs the first errorLogLimit errors of a listener, then every
// hundredth, so a flood of failures cannot fill the disk.
func (h *handler) logError(msg string, err error) {
	n := h.errors.Add(1)
	if n <= errorLogLimit || n%100 == 0 {
		h.logger.Warn(msg, "error", err, "errors_total", n)
	}
}

func refused(req *dns.Msg) *dns.Msg {
	resp := new(dns.Msg)
	resp.SetRcode(req, dns.RcodeRefused)
	copyEDNS(req, resp)
	return resp
}

func serverFailure(req *dns.Msg) *dns.Msg {
	resp := new(dns.Msg)
	resp.SetRcode(req, dns.RcodeServerFailure)
	copyEDNS(req, resp)
	return resp
}

// truncated returns a TC=1 reply that keeps the question and the OPT
// record but has no answer, authority or other additional records.
func truncated(req *dns.Msg) *dns.Msg {
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Truncated = true
	copyEDNS(req, resp)
	return resp
}

// copyEDNS adds an OPT record to resp when req carried one.
func copyEDNS(req, resp *dns.Msg) {
	if opt := req.IsEdns0(); opt != nil {
		resp.SetEdns0(1232, false)
	}
}
