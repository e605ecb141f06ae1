// Package exchange sends queries to authoritative servers and returns their
// responses. Each UDP query uses a new socket, so the source port is chosen at
// random by the kernel, and a random ID; a response is accepted only when it
// comes from the server queried and matches the ID and the question. A
// truncated UDP response is retried over TCP. Server addresses outside the
// allowed networks are never contacted.
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

// Exchange sends q over UDP, and over TCP when the UDP response is truncated.
func (c *Client) Exchange(ctx context.Context, q Query) (Response, error) {
	if !c.Allowed(q.Server.Addr()) {
		return Response{}, fmt.Errorf("query %s to %s: %w", q.Name, q.Server, ErrForbidden)
	}
	deadline := time.Now().Add(q.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	msg := c.newQuery(q)
	start := time.Now()
	resp, err := c.exchangeUDP(msg, q.Server, deadline)
	if err != nil {
		return Response{Query: msg}, fmt.Errorf("query %s %s to %s over UDP: %w", q.Name, dns.TypeToString[q.Type], q.Server, err)
	}
	if !resp.Truncated {
		return Response{Msg: resp, Query: msg, RTT: time.Since(start)}, nil
	}
	msg.Id = uint16(rand.Uint32())
	resp, err = c.exchangeTCP(msg, q.Server, deadline)
	if err != nil {
		return Response{Query: msg}, fmt.Errorf("query %s %s to %s over TCP: %w", q.Name, dns.TypeToString[q.Type], q.Server, err)
	}
	return Response{Msg: resp, Query: msg, RTT: time.Since(start), TCP: true}, nil
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

// udpBuffers holds receive buffers of the largest UDP payload, so that a
// server ignoring the advertised EDNS size is still read whole.
var udpBuffers = sync.Pool{New: func() any {
	b := make([]byte, 65535)
	return &b
}}

func (c *Client) exchangeUDP(msg *dns.Msg, server netip.AddrPort, deadline time.Time) (*dns.Msg, error) {
	wire, err := msg.Pack()
	if err != nil {
		return nil, err
	}
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(server))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
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
			return nil, netError(err)
		}
		resp, ok := match(msg, buf[:n])
		if ok {
			return resp, nil
		}
		// A response that does not match is ignored: it may be forged or
		// late; keep waiting for the real one until the deadline.
	}
}

func (c *Client) exchangeTCP(msg *dns.Msg, server netip.AddrPort, deadline time.Time) (*dns.Msg, error) {
	d := net.Dialer{Deadline: deadline}
	conn, err := d.Dial("tcp", server.String())
	if err != nil {
		return nil, netError(err)
	}
	defer conn.Close()
	conn.SetDeadline(deadline)
	wire, err := msg.Pack()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 2, 2+len(wire))
	binary.BigEndian.PutUint16(out, uint16(len(wire)))
	if _, err := conn.Write(append(out, wire...)); err != nil {
		return nil, netError(err)
	}
	var hdr [2]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return nil, netError(err)
	}
	raw := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	if _, err := io.ReadFull(conn, raw); err != nil {
		return nil, netError(err)
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

func netError(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ErrTimeout
	}
	return err
}
