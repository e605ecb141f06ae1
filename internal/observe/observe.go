// Package observe carries what happens on the query path to the parts that
// record it: metrics, the query log and dnstap. The server reports each client
// query with its response, and the resolver's exchanger each query to an
// authoritative server.
//
// Events hold wire data that is valid only during the call, so an observer
// copies what it keeps. Observers run on the query path, so they must return
// quickly and must not block: one that queues work should drop and count
// events when its queue is full.
package observe

import (
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Transport is the protocol a client query came over.
type Transport uint8

// Transports, in the order of their config names.
const (
	UDP Transport = iota
	TCP
	DoT
	DoH
	DoQ
	TransportCount
)

var transportNames = [TransportCount]string{"udp", "tcp", "dot", "doh", "doq"}

// String returns the config name of t: udp, tcp, dot, doh or doq.
func (t Transport) String() string {
	if t >= TransportCount {
		return "unknown"
	}
	return transportNames[t]
}

// Query is one client query and the response sent to it.
type Query struct {
	// Received is when the query was read.
	Received time.Time
	// Duration is the time from Received until the response was ready.
	Duration  time.Duration
	Transport Transport
	// Flavour is the id of the flavour that handled the query, and
	// FlavourName its name.
	Flavour     uint8
	FlavourName string
	// Client is the address the query came from. Observers that write it
	// anywhere pass it through a privacy.Anonymiser first.
	Client netip.Addr
	// Query is the query message as received.
	Query []byte
	// Response is the response message as sent, or nil when the query got
	// no response (a policy drop or a malformed packet).
	Response []byte
	// Cached is true when the response came from the answer cache without
	// a resolution.
	Cached bool
	// List and Category name the policy list that decided the response,
	// and Action is what it did, such as nxdomain or allow. All three are
	// empty when no list decided.
	List, Category, Action string
}

// Upstream is one query to an authoritative server and its outcome.
type Upstream struct {
	// Sent is when the query was sent.
	Sent time.Time
	// RTT is the time until the response arrived, or until the exchange
	// failed.
	RTT    time.Duration
	Server netip.AddrPort
	// Zone is the zone whose server was asked, as a fully qualified
	// name.
	Zone string
	// TCP is true when the response came over TCP.
	TCP bool
	// Query is the message sent; Response is nil when Err is set.
	Query    *dns.Msg
	Response *dns.Msg
	Err      error
	// Spoofed counts the responses dropped because their COOKIE option
	// did not echo the client cookie sent, whether or not the genuine
	// response came after them.
	Spoofed int
}

// Observer receives the events of the query path. Its methods may be called
// from many goroutines at once.
type Observer interface {
	ClientQuery(q *Query)
	UpstreamQuery(u *Upstream)
}

// Multi sends every event to each of its observers in turn.
type Multi []Observer

// ClientQuery sends q to each observer.
func (m Multi) ClientQuery(q *Query) {
	for _, o := range m {
		o.ClientQuery(q)
	}
}

// UpstreamQuery sends u to each observer.
func (m Multi) UpstreamQuery(u *Upstream) {
	for _, o := range m {
		o.UpstreamQuery(u)
	}
}

// queryPool holds Query values, so that reporting a query does not
// allocate: a value passed to an interface method escapes to the heap.
var queryPool = sync.Pool{New: func() any { return new(Query) }}

// GetQuery returns a zeroed Query from a pool; PutQuery gives it back once
// every observer has returned.
func GetQuery() *Query { return queryPool.Get().(*Query) }

// PutQuery clears q and returns it to the pool.
func PutQuery(q *Query) {
	*q = Query{}
	queryPool.Put(q)
}
