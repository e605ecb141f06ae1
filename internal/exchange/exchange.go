// Package exchange sends queries to authoritative servers and returns their
// responses. Each UDP query uses a new socket, so the source port is chosen at
// random by the kernel, and a random ID; a response is accepted only when it
// comes from the server queried and matches the ID and the question. A
// truncated UDP response is retried over TCP. Server addresses outside the
// allowed networks are never contacted.
//
// With a cookie.Client set, every query sent with EDNS carries a DNS cookie
// (RFC 7873 section 5.1). A response whose COOKIE option does not echo the
// client cookie is dropped as forged. BADCOOKIE is retried once over UDP
// with the server cookie it brought, then over TCP (section 5.3). Responses
// of a server that ignores cookies are accepted as before.
//
// Choosing which server to ask, and what to do with the response, is left to
// the resolver.
package exchange

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"bulwark/internal/cookie"

	"github.com/miekg/dns"
)

// Errors returned by Exchange. Network errors are returned wrapped as well.
var (
	// ErrTimeout means the server sent no matching response in time.
	ErrTimeout = errors.New("upstream query timed out")
	// ErrForbidden means the address is outside the allowed networks.
	ErrForbidden = errors.New("upstream address not allowed")
	// ErrMalformed means the response could not be parsed.
	ErrMalformed = errors.New("malformed upstream response")
)

// Query is one question to one server.
type Query struct {
	Name   string
	Type   uint16
	Server netip.AddrPort
	// Zone is the zone whose server is asked, for observers; it does not
	// change the query.
	Zone string
	// Timeout bounds the whole exchange, including a retry over TCP.
	Timeout time.Duration
	// NoEDNS sends the query without an OPT record, for servers that reject
	// EDNS (RFC 6891 section 7).
	NoEDNS bool
}

// Response is a server's answer to a Query.
type Response struct {
	Msg *dns.Msg
	// Query is the message sent. It is set on errors too, once the
	// message is built.
	Query *dns.Msg
	RTT   time.Duration
	// TCP is true when the response came over TCP.
	TCP bool
	// Spoofed counts the responses dropped because their COOKIE option
	// did not echo the client cookie sent, or was malformed. It is set on
	// errors too: a query may still get the genuine response after them.
	Spoofed int
}

// Exchanger sends one query and returns the response. The resolver depends on
// this interface only, so tests can script the servers it reaches.
type Exchanger interface {
	Exchange(ctx context.Context, q Query) (Response, error)
}

// Config sets up a Client.
type Config struct {
	// BufferSize is the EDNS UDP payload size advertised, in bytes.
	BufferSize uint16
	// Allowed, when not empty, is the only set of networks queried.
	// Otherwise every address is allowed except loopback, link-local,
	// multicast and unspecified ones.
	Allowed []netip.Prefix
	// Cookies, when not nil, adds a COOKIE option to every query sent with
	// EDNS and checks the one of each response.
	Cookies *cookie.Client
}

// Client is the Exchanger that uses the network.
type Client struct {
	cfg Config
}

// NewClient returns a Client.
func NewClient(cfg Config) *Client {
	return &Client{cfg: cfg}
}

// Allowed reports whether addr may be queried.
func (c *Client) Allowed(addr netip.Addr) bool {
	addr = addr.Unmap()
	if len(c.cfg.Allowed) > 0 {
		for _, p := range c.cfg.Allowed {
			if p.Contains(addr) {
				return true
			}
		}
		return false
	}
	return addr.IsValid() && !addr.IsLoopback() && !addr.IsLinkLocalUnicast() &&
		!addr.IsMulticast() && !addr.IsUnspecified() && !addr.IsInterfaceLocalMulticast()
}

// Exchange sends q over UDP, and over TCP when the UDP response is
// truncated or a server insists on BADCOOKIE. It returns ctx's error as
// soon as ctx is cancelled.
func (c *Client) Exchange(ctx context.Context, q Query) (Response, error) {
	if !c.Allowed(q.Server.Addr()) {
		return Response{}, fmt.Errorf("query %s to %s: %w", q.Name, q.Server, ErrForbidden)
	}
	deadline := time.Now().Add(q.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	out := Response{Query: c.newQuery(q)}
	start := time.Now()
	resp, err := c.exchangeUDP(ctx, out.Query, q.Server, deadline, &out.Spoofed)
	if errors.Is(err, errOversized) {
		// The server ignored the advertised size: the whole response
		// can only come over TCP.
		return c.retryTCP(ctx, q, out, deadline, start)
	}
	if err == nil && c.badCookie(resp) {
		// RFC 7873 section 5.3: retry once with the server cookie that
		// the BADCOOKIE response brought, and over TCP after a second one.
		out.Query.Id = uint16(rand.Uint32())
		resp, err = c.exchangeUDP(ctx, out.Query, q.Server, deadline, &out.Spoofed)
	}
	if err != nil {
		return out, fmt.Errorf("query %s %s to %s over UDP: %w", q.Name, dns.TypeToString[q.Type], q.Server, err)
	}
	if !resp.Truncated && !c.badCookie(resp) {
		out.Msg, out.RTT = resp, time.Since(start)
		return out, nil
	}
	return c.retryTCP(ctx, q, out, deadline, start)
}

// retryTCP sends out.Query again over TCP with a new ID.
func (c *Client) retryTCP(ctx context.Context, q Query, out Response, deadline, start time.Time) (Response, error) {
	out.Query.Id = uint16(rand.Uint32())
	resp, err := c.exchangeTCP(ctx, out.Query, q.Server, deadline)
	if err != nil {
		return out, fmt.Errorf("query %s %s to %s over TCP: %w", q.Name, dns.TypeToString[q.Type], q.Server, err)
	}
	out.Msg, out.RTT, out.TCP = resp, time.Since(start), true
	return out, nil
}

// badCookie reports whether resp is a BADCOOKIE response to a query that
// carried a cookie.
func (c *Client) badCookie(resp *dns.Msg) bool {
	return c.cfg.Cookies != nil && resp.Rcode == dns.RcodeBadCookie
}

func (c *Client) newQuery(q Query) *dns.Msg {
	m := new(dns.Msg)
	m.Id = uint16(rand.Uint32())
	m.RecursionDesired = false
	m.Question = []dns.Question{{Name: q.Name, Qtype: q.Type, Qclass: dns.ClassINET}}
	if !q.NoEDNS {
		// DO asks for the RRSIG, NSEC and NSEC3 records that validation
		// needs (RFC 3225, RFC 4035 section 4.1).
		m.SetEdns0(c.cfg.BufferSize, true)
	}
	return m
}

// udpReceiveSize is the size of the UDP receive buffers: one byte more than
// the largest EDNS size the configuration allows, so that a datagram that
// fills a buffer is known to exceed it. Buffers of the largest UDP payload
// would keep 64 KiB for each query in flight.
const udpReceiveSize = 4096 + 1

// errOversized is returned by exchangeUDP for a response that does not fit
// in a receive buffer: the server ignored the advertised size.
var errOversized = errors.New("UDP response larger than 4096 bytes")

// udpBuffers holds the receive buffers.
var udpBuffers = sync.Pool{New: func() any {
	b := make([]byte, udpReceiveSize)
	return &b
}}

// exchangeUDP sends msg from a new socket and waits for its response until
// deadline or until ctx is cancelled. Datagrams that do not answer msg,
// such as garbage or responses with another ID, are dropped and the wait
// goes on (RFC 5452 section 9.1). With cookies on, it sets the COOKIE option of msg for the
// socket's source address first, and counts in spoofed the responses it
// drops for a wrong client cookie.
func (c *Client) exchangeUDP(ctx context.Context, msg *dns.Msg, server netip.AddrPort, deadline time.Time, spoofed *int) (*dns.Msg, error) {
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(server))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	defer interruptOnCancel(ctx, conn)()
	local := conn.LocalAddr().(*net.UDPAddr).AddrPort().Addr()
	c.setCookie(msg, local, server.Addr())
	wire, err := msg.Pack()
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(deadline)
	if _, err := conn.Write(wire); err != nil {
		return nil, err
	}
	bufp := udpBuffers.Get().(*[]byte)
	defer udpBuffers.Put(bufp)
	buf := *bufp
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return nil, ctxError(ctx, err)
		}
		if n == len(buf) && binary.BigEndian.Uint16(buf) == msg.Id {
			return nil, errOversized
		}
		resp, ok := match(msg, buf[:n])
		if !ok {
			// A response that does not match is ignored: it may be
			// forged or late; keep waiting for the real one until the
			// deadline.
			continue
		}
		if !c.acceptCookie(resp, local, server.Addr()) {
			*spoofed++
			continue
		}
		return resp, nil
	}
}

func (c *Client) exchangeTCP(ctx context.Context, msg *dns.Msg, server netip.AddrPort, deadline time.Time) (*dns.Msg, error) {
	d := net.Dialer{Deadline: deadline}
	conn, err := d.DialContext(ctx, "tcp", server.String())
	if err != nil {
		return nil, ctxError(ctx, err)
	}
	defer conn.Close()
	defer interruptOnCancel(ctx, conn)()
	conn.SetDeadline(deadline)
	wire, err := msg.Pack()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 2, 2+len(wire))
	binary.BigEndian.PutUint16(out, uint16(len(wire)))
	if _, err := conn.Write(append(out, wire...)); err != nil {
		return nil, ctxError(ctx, err)
	}
	var hdr [2]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return nil, ctxError(ctx, err)
	}
	raw := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	if _, err := io.ReadFull(conn, raw); err != nil {
		return nil, ctxError(ctx, err)
	}
	resp, ok := match(msg, raw)
	if !ok {
		return nil, ErrMalformed
	}
	return resp, nil
}

// match parses wire and reports whether it answers msg: same ID, a response,
// and the same question, names compared without regard to case.
func match(msg *dns.Msg, wire []byte) (*dns.Msg, bool) {
	resp := new(dns.Msg)
	if err := resp.Unpack(wire); err != nil {
		return nil, false
	}
	if resp.Id != msg.Id || !resp.Response {
		return nil, false
	}
	if len(resp.Question) == 0 {
		// Some servers send no question with FORMERR or NOTIMP; accept
		// those rcodes only.
		return resp, resp.Rcode == dns.RcodeFormatError || resp.Rcode == dns.RcodeNotImplemented
	}
	q, rq := msg.Question[0], resp.Question[0]
	if len(resp.Question) != 1 || q.Qtype != rq.Qtype || q.Qclass != rq.Qclass ||
		!strings.EqualFold(q.Name, rq.Name) {
		return nil, false
	}
	return resp, true
}

// interruptOnCancel makes the pending and future reads and writes of conn
// fail at once when ctx is cancelled. The returned function stops that.
func interruptOnCancel(ctx context.Context, conn net.Conn) func() {
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	return func() { stop() }
}

// ctxError returns ctx's error when ctx was cancelled, and netError(err)
// otherwise: a ctx whose deadline passed is a timeout like any other.
func ctxError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); errors.Is(ctxErr, context.Canceled) {
		return ctxErr
	}
	return netError(err)
}

func netError(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ErrTimeout
	}
	return err
}
