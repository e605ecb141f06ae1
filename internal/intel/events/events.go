// Package events turns each client query into a compact Event and queues it
// for the traffic analysis of internal/intel/traffic. It runs on the query
// path, so it parses the wire messages itself, keeps no client address and
// never blocks: when the queue is full the event is dropped and counted.
// Aggregating and scoring the events is left to the consumer of the queue.
package events

import (
	"net/netip"
	"sync/atomic"
	"time"

	"bulwark/internal/observe"
	"bulwark/internal/privacy"
)

// MaxAddrs is the number of A and AAAA records of an answer that an Event
// keeps; the rest are counted in Event.MoreAddrs.
const MaxAddrs = 8

// Event is one client query and its response, without the client's
// address. It is a plain value, so queueing it does not allocate.
type Event struct {
	// Time is when the query was read.
	Time time.Time
	// Client is the client's keyed pseudonym under the day's key of
	// internal/privacy: equal for one address within one UTC day, and
	// unlinkable to it once the day is over.
	Client uint64
	qname  [255]byte
	// qnameLen is the length of the qname in qname, without the final
	// dot; 0 for the root.
	qnameLen uint8
	// QType is the question's type.
	QType uint16
	// Rcode is the response code; valid when Answered is set.
	Rcode uint8
	// Answered is false when the query got no response.
	Answered bool
	// Cached is true when the response came from the answer cache.
	Cached bool
	// Blocked is true when a policy list decided the response.
	Blocked bool
	// NAddrs is the number of entries used in Addrs and TTLs.
	NAddrs uint8
	// MoreAddrs counts the A and AAAA records past MaxAddrs.
	MoreAddrs uint16
	// Addrs and TTLs are the addresses of the A and AAAA records of the
	// answer section and their TTLs in seconds, in answer order.
	Addrs [MaxAddrs]netip.Addr
	TTLs  [MaxAddrs]uint32
	// QuerySize and ResponseSize are the sizes of the messages on the
	// wire in bytes; ResponseSize is 0 without a response.
	QuerySize, ResponseSize uint16
}

// QName returns the query name in lowercase without the final dot, or ""
// for the root. It allocates the string.
func (e *Event) QName() string { return string(e.qname[:e.qnameLen]) }

// SetQName sets the query name, for building events in tests and tools.
// A name longer than 255 bytes is cut.
func (e *Event) SetQName(name string) {
	e.qnameLen = uint8(copy(e.qname[:], name))
}

// AddAddr appends an answer address and its TTL, or counts it in
// MoreAddrs when Addrs is full.
func (e *Event) AddAddr(addr netip.Addr, ttl uint32) {
	if int(e.NAddrs) == MaxAddrs {
		e.MoreAddrs++
		return
	}
	e.Addrs[e.NAddrs], e.TTLs[e.NAddrs] = addr, ttl
	e.NAddrs++
}

// Observer is an observe.Observer that queues an Event per client query.
// Its methods are safe for concurrent use.
type Observer struct {
	queue   chan Event
	anon    *privacy.Anonymiser
	queued  atomic.Uint64
	dropped atomic.Uint64
	skipped atomic.Uint64
}

// NewObserver returns an Observer with a queue of size events. anon makes
// the client pseudonyms; nil leaves Client at 0.
func NewObserver(size int, anon *privacy.Anonymiser) *Observer {
	return &Observer{queue: make(chan Event, size), anon: anon}
}

// Events returns the queue that the consumer reads. It is never closed.
func (o *Observer) Events() <-chan Event { return o.queue }

// ClientQuery turns q into an Event and queues it, or counts it as
// dropped when the queue is full and as skipped when the query cannot be
// parsed. It does not block.
func (o *Observer) ClientQuery(q *observe.Query) {
	var ev Event
	if !Parse(q.Query, q.Response, &ev) {
		o.skipped.Add(1)
		return
	}
	ev.Time, ev.Cached, ev.Blocked = q.Received, q.Cached, q.List != ""
	if o.anon != nil && q.Client.IsValid() {
		ev.Client = o.anon.Pseudonym(q.Client)
	}
	select {
	case o.queue <- ev:
		o.queued.Add(1)
	default:
		o.dropped.Add(1)
	}
}

// UpstreamQuery ignores queries to authoritative servers.
func (o *Observer) UpstreamQuery(*observe.Upstream) {}

// Stats are the counters of an Observer.
type Stats struct {
	// Queued counts events put on the queue, Dropped those left out
	// because it was full, and Skipped queries whose message could not
	// be parsed.
	Queued, Dropped, Skipped uint64
}

// Stats returns the counters of o.
func (o *Observer) Stats() Stats {
	return Stats{Queued: o.queued.Load(), Dropped: o.dropped.Load(), Skipped: o.skipped.Load()}
}

var _ observe.Observer = (*Observer)(nil)
