// Package fault implements the fault-injecting DNS proxy of the soak
// suite. A Proxy listens on UDP and TCP addresses, forwards each query to
// the backend of its listener from the listener's own address, and spoils
// the reply as its Mode sets. Which traffic reaches the proxy is decided
// elsewhere: the soak suite redirects a lab server's address to it with
// nftables dnat and exempts the proxy's own addresses from that rule.
package fault

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Modes of a Proxy.
const (
	// ModePass forwards queries and replies unchanged.
	ModePass = "pass"
	// ModeDelay holds every reply for Config.Delay before sending it.
	ModeDelay = "delay"
	// ModeTruncate answers every UDP query with TC=1 and no records; TCP
	// queries are forwarded unchanged, so a resolver that retries over
	// TCP gets the answer.
	ModeTruncate = "truncate"
	// ModeGarbage answers every query with random bytes of the length of
	// the real reply.
	ModeGarbage = "garbage"
	// ModeWrongID sends the real reply with its message ID changed.
	ModeWrongID = "wrong-id"
	// ModeBlackHole never replies to a query whose name is Config.Zone or
	// below it, and forwards the others.
	ModeBlackHole = "black-hole"
)

// Modes lists every mode, in the order help text shows them.
var Modes = []string{ModePass, ModeDelay, ModeTruncate, ModeGarbage, ModeWrongID, ModeBlackHole}

// backendTimeout bounds one forwarded exchange.
const backendTimeout = 3 * time.Second

// Route maps one listen address to the backend its queries go to.
type Route struct {
	Listen  string // IP:port
	Backend string // IP:port
}

// Config is the fault a Proxy injects and where it listens.
type Config struct {
	Mode   string
	Delay  time.Duration // ModeDelay only
	Zone   string        // ModeBlackHole only, fully qualified
	Routes []Route
}

// Validate checks the mode, its parameters and every route.
func (c Config) Validate() error {
	switch c.Mode {
	case ModePass, ModeTruncate, ModeGarbage, ModeWrongID:
	case ModeDelay:
		if c.Delay <= 0 || c.Delay > time.Minute {
			return fmt.Errorf("invalid delay %v for mode %s: want more than 0 and at most 1m", c.Delay, c.Mode)
		}
	case ModeBlackHole:
		if _, ok := dns.IsDomainName(c.Zone); !ok || !dns.IsFqdn(c.Zone) {
			return fmt.Errorf("invalid zone %q for mode %s: want a fully qualified name such as org.", c.Zone, c.Mode)
		}
	default:
		return fmt.Errorf("unknown mode %q: want one of %s", c.Mode, strings.Join(Modes, ", "))
	}
	if len(c.Routes) == 0 {
		return fmt.Errorf("no routes: give at least one listen=backend pair")
	}
	for _, r := range c.Routes {
		for _, hp := range []string{r.Listen, r.Backend} {
			host, _, err := net.SplitHostPort(hp)
			if err != nil || net.ParseIP(host) == nil {
				return fmt.Errorf("invalid address %q in route %s=%s: want IP:port", hp, r.Listen, r.Backend)
			}
		}
	}
	return nil
}

// ParseRoute parses "listen=backend", both in IP:port form.
func ParseRoute(s string) (Route, error) {
	listen, backend, ok := strings.Cut(s, "=")
	if !ok {
		return Route{}, fmt.Errorf("invalid route %q: want LISTEN_IP:PORT=BACKEND_IP:PORT", s)
	}
	return Route{Listen: listen, Backend: backend}, nil
}

// Proxy serves the routes of one Config.
type Proxy struct {
	cfg     Config
	logger  *slog.Logger
	servers []*dns.Server
	// Forwarded counts queries received; Spoiled counts replies that the
	// fault changed, delayed or dropped.
	Forwarded, Spoiled atomic.Int64
	errors             atomic.Int64
}

// New returns a Proxy for a validated cfg; Start binds its sockets.
func New(cfg Config, logger *slog.Logger) *Proxy {
	return &Proxy{cfg: cfg, logger: logger.With("component", "faultproxy")}
}

// Start binds UDP and TCP on every listen address and serves them in the
// background. It returns once all are bound, or the first error after
// closing what it had opened.
func (p *Proxy) Start() error {
	for _, r := range p.cfg.Routes {
		for _, network := range []string{"udp", "tcp"} {
			if err := p.listen(r, network); err != nil {
				p.Shutdown()
				return err
			}
		}
	}
	return nil
}

func (p *Proxy) listen(r Route, network string) error {
	started := make(chan struct{})
	srv := &dns.Server{
		Addr:              r.Listen,
		Net:               network,
		Handler:           p.handler(r, network),
		NotifyStartedFunc: func() { close(started) },
	}
	failed := make(chan error, 1)
	go func() { failed <- srv.ListenAndServe() }()
	select {
	case <-started:
		p.servers = append(p.servers, srv)
		return nil
	case err := <-failed:
		return fmt.Errorf("listen %s %s: %w", network, r.Listen, err)
	}
}

// Shutdown stops every listener.
func (p *Proxy) Shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range p.servers {
		if err := srv.ShutdownContext(ctx); err != nil {
			p.logger.Warn("listener shutdown failed", "address", srv.Addr, "network", srv.Net, "error", err)
		}
	}
	p.servers = nil
}

func (p *Proxy) handler(r Route, network string) dns.Handler {
	host, _, _ := net.SplitHostPort(r.Listen)
	client := &dns.Client{Net: network, Timeout: backendTimeout, UDPSize: dns.MaxMsgSize}
	// Queries leave from the listen address, which the redirecting rule
	// exempts, so they reach the real backend instead of looping back.
	if network == "udp" {
		client.Dialer = &net.Dialer{Timeout: backendTimeout, LocalAddr: &net.UDPAddr{IP: net.ParseIP(host)}}
	} else {
		client.Dialer = &net.Dialer{Timeout: backendTimeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(host)}}
	}
	return dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		p.Forwarded.Add(1)
		p.serve(w, req, network, client, r.Backend)
	})
}

func (p *Proxy) serve(w dns.ResponseWriter, req *dns.Msg, network string, client *dns.Client, backend string) {
	if p.cfg.Mode == ModeBlackHole && len(req.Question) == 1 && dns.IsSubDomain(p.cfg.Zone, req.Question[0].Name) {
		p.Spoiled.Add(1)
		return
	}
	if p.cfg.Mode == ModeTruncate && network == "udp" {
		p.Spoiled.Add(1)
		p.write(w, truncated(req))
		return
	}
	resp, _, err := client.Exchange(req, backend)
	if err != nil {
		p.logError("backend exchange failed", err)
		return
	}
	resp.Id = req.Id
	switch p.cfg.Mode {
	case ModeDelay:
		p.Spoiled.Add(1)
		time.Sleep(p.cfg.Delay)
	case ModeWrongID:
		p.Spoiled.Add(1)
		resp.Id = req.Id ^ 0x5a5a
	case ModeGarbage:
		p.Spoiled.Add(1)
		p.writeGarbage(w, resp)
		return
	}
	p.write(w, resp)
}

func (p *Proxy) write(w dns.ResponseWriter, resp *dns.Msg) {
	if err := w.WriteMsg(resp); err != nil {
		p.logError("write reply failed", err)
	}
}

// writeGarbage sends random bytes as long as the packed reply.
func (p *Proxy) writeGarbage(w dns.ResponseWriter, resp *dns.Msg) {
	n := resp.Len()
	if n < 12 {
		n = 12
	}
	garbage := make([]byte, n)
	rand.Read(garbage)
	if _, err := w.Write(garbage); err != nil {
		p.logError("write reply failed", err)
	}
}

// logError logs the first 20 errors, then every hundredth with the count,
// so a flood of failures cannot fill the disk.
func (p *Proxy) logError(msg string, err error) {
	n := p.errors.Add(1)
	if n <= 20 || n%100 == 0 {
		p.logger.Warn(msg, "error", err, "errors_total", n)
	}
}

// truncated returns a TC=1 reply with the question and, when the query
// had one, an OPT record, and nothing else.
func truncated(req *dns.Msg) *dns.Msg {
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Truncated = true
	if req.IsEdns0() != nil {
		resp.SetEdns0(1232, false)
	}
	return resp
}
