// Package dnstap writes what the resolver sees as dnstap messages
// (dnstap.proto of dnstap.info) in a Frame Streams session, so that dnstap
// collectors such as fstrm_capture, dnstap-ldns or golang-dnstap read them
// unchanged.
//
// A Tap is an observe.Observer: it encodes each client query as
// CLIENT_QUERY and CLIENT_RESPONSE, and each query to an authoritative
// server as RESOLVER_QUERY and RESOLVER_RESPONSE. The client address goes
// through a privacy.Anonymiser and client ports are left out; the addresses
// of authoritative servers are kept. Frames go through a bounded queue to
// an Output, which owns the connection to the collector; the query path
// never waits for it.
package dnstap

import (
	"log/slog"
	"sync"

	"bulwark/internal/observe"
	"bulwark/internal/privacy"

	"github.com/miekg/dns"
)

// Config sets up a Tap.
type Config struct {
	Output OutputConfig
	// Identity and Version fill the fields of the same names in every
	// message; empty ones are left out.
	Identity, Version string
	// Anonymise sets how client addresses are written.
	Anonymise privacy.Config
	// Types lists the message types written: ClientQuery,
	// ClientResponse, ResolverQuery and ResolverResponse.
	Types []Type
}

// Tap turns the events of the query path into dnstap messages. Its
// methods are safe for concurrent use.
type Tap struct {
	out      *Output
	anon     *privacy.Anonymiser
	identity []byte
	version  []byte
	on       [ClientResponse + 1]bool
}

// New starts a Tap and its Output. cfg.Anonymise must be valid. Close
// stops it.
func New(cfg Config, log *slog.Logger) *Tap {
	t := &Tap{
		out:      NewOutput(cfg.Output, log.With("component", "dnstap")),
		anon:     privacy.New(cfg.Anonymise, nil),
		identity: []byte(cfg.Identity),
		version:  []byte(cfg.Version),
	}
	for _, typ := range cfg.Types {
		if typ < Type(len(t.on)) {
			t.on[typ] = true
		}
	}
	return t
}

// Close ends the session with the collector; see Output.Close.
func (t *Tap) Close() error { return t.out.Close() }

// Dropped returns the number of messages dropped because the queue was
// full or the Tap was closing, as Output.Dropped counts them.
func (t *Tap) Dropped() uint64 { return t.out.Dropped() }

// Lost returns the number of messages queued that did not reach the
// collector; see Output.Lost.
func (t *Tap) Lost() uint64 { return t.out.Lost() }

// Sent returns the number of messages written to a collector.
func (t *Tap) Sent() uint64 { return t.out.Sent() }

// protocols maps the transports of client queries to socket protocols.
var protocols = [observe.TransportCount]Protocol{
	observe.UDP: UDP, observe.TCP: TCP, observe.DoT: DOT, observe.DoH: DOH, observe.DoQ: DOQ,
}

// ClientQuery writes q as CLIENT_QUERY and, when it got a response,
// CLIENT_RESPONSE. The client port is never written, and the client
// address only as the anonymiser returns it.
func (t *Tap) ClientQuery(q *observe.Query) {
	m := Message{QueryTime: q.Received}
	if q.Transport < observe.TransportCount {
		m.Protocol = protocols[q.Transport]
	}
	if q.Client.IsValid() {
		m.Family = FamilyOf(q.Client)
		m.QueryAddress, _ = t.anon.Addr(q.Client)
	}
	if t.on[ClientQuery] {
		m.Type, m.QueryMessage = ClientQuery, q.Query
		t.send(&m)
	}
	if t.on[ClientResponse] && q.Response != nil {
		m.Type, m.QueryMessage = ClientResponse, nil
		m.ResponseTime = q.Received.Add(q.Duration)
		m.ResponseMessage = q.Response
		t.send(&m)
	}
}

// UpstreamQuery writes u as RESOLVER_QUERY and, when a response came,
// RESOLVER_RESPONSE, both naming the authoritative server.
//
// NOTE: the messages are packed again from their parsed form, so a
// response's bytes may differ from those received (name compression, record
// order of the OPT record) while meaning the same.
func (t *Tap) UpstreamQuery(u *observe.Upstream) {
	server := u.Server.Addr()
	m := Message{
		Family:          FamilyOf(server),
		Protocol:        UDP,
		ResponseAddress: server,
		ResponsePort:    u.Server.Port(),
		QueryTime:       u.Sent,
	}
	if u.Zone != "" {
		var zone [256]byte
		if n, err := dns.PackDomainName(dns.Fqdn(u.Zone), zone[:], 0, nil, false); err == nil {
			m.QueryZone = zone[:n]
		}
	}
	if u.TCP {
		m.Protocol = TCP
	}
	if t.on[ResolverQuery] && u.Query != nil {
		m.Type = ResolverQuery
		t.sendPacked(&m, u.Query, &m.QueryMessage)
		m.QueryMessage = nil
	}
	if t.on[ResolverResponse] && u.Response != nil {
		m.Type = ResolverResponse
		m.ResponseTime = u.Sent.Add(u.RTT)
		t.sendPacked(&m, u.Response, &m.ResponseMessage)
	}
}

// sendPacked packs msg into a pooled buffer, sets *field to it and sends m.
func (t *Tap) sendPacked(m *Message, msg *dns.Msg, field *[]byte) {
	if t.out.full() {
		t.out.dropped.Add(1)
		return
	}
	scratch := packPool.Get().(*[]byte)
	defer putPacked(scratch)
	packed, err := msg.PackBuffer((*scratch)[:cap(*scratch)])
	if err != nil {
		// A message that was sent or parsed packs again, so this is
		// not expected; count it with the drops rather than lose it
		// unseen.
		t.out.dropped.Add(1)
		return
	}
	*scratch = packed[:0]
	*field = packed
	t.send(m)
}

// frameSize is the room on the stack for one encoded frame. A larger frame,
// for a large response, grows on the heap.
const frameSize = 2048

// send encodes m into a frame and queues it, or counts it as dropped when
// the queue is full.
func (t *Tap) send(m *Message) {
	if t.out.full() {
		t.out.dropped.Add(1)
		return
	}
	var frame [frameSize]byte
	t.out.enqueue(AppendFrame(frame[:0], t.identity, t.version, m))
}

// maxPooledPack is the largest packing buffer kept for reuse, in bytes.
// Larger ones, made for large responses, are left to the garbage collector.
const maxPooledPack = 16 << 10

var packPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 1024)
	return &b
}}

func putPacked(b *[]byte) {
	if cap(*b) > maxPooledPack {
		return
	}
	*b = (*b)[:0]
	packPool.Put(b)
}
