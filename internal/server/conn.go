package server

import (
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"bulwark/internal/config"
	"bulwark/internal/observe"
)

// Limits whose hits are counted and logged.
type limit int

const (
	limitConnections limit = iota // connections over all listeners
	limitPerClient                // connections from one client address
	limitStreams                  // queries in progress on one connection
	limitHandshake                // TLS handshakes that timed out
	limitProxy                    // connections with a bad or untrusted PROXY header
	limitCount
)

var limitNames = [limitCount]string{
	limitConnections: "max_tcp_connections",
	limitPerClient:   "max_connections_per_client",
	limitStreams:     "max_streams_per_connection",
	limitHandshake:   "handshake_timeout",
	limitProxy:       "proxy_protocol",
}

// limitLogInterval is the shortest time between two log lines for hits of
// one limit; the lines carry the count since the last one.
const limitLogInterval = 10 * time.Second

// limitState counts the hits of one limit.
type limitState struct {
	hits    atomic.Uint64
	logged  atomic.Uint64 // hits when the last line was logged
	lastLog atomic.Int64  // unix nanoseconds of the last line
}

// limitHit counts a hit of limit l and logs it, at most once per
// limitLogInterval. The client's address is never logged.
func (s *Server) limitHit(l limit) {
	st := &s.limits[l]
	n := st.hits.Add(1)
	now := time.Now().UnixNano()
	last := st.lastLog.Load()
	if now-last < int64(limitLogInterval) || !st.lastLog.CompareAndSwap(last, now) {
		return
	}
	since := n - st.logged.Swap(n)
	s.log.Warn("client limit reached", "limit", limitNames[l], "hits", since, "total_hits", n)
}

// Transports, indexing the query counters.
const (
	transportUDP   = observe.UDP
	transportTCP   = observe.TCP
	transportDoT   = observe.DoT
	transportDoH   = observe.DoH
	transportDoQ   = observe.DoQ
	transportCount = observe.TransportCount
)

// Queries returns the queries read on each transport, by its config name.
func (s *Server) Queries() map[string]uint64 {
	out := make(map[string]uint64, transportCount)
	for t := range transportCount {
		out[t.String()] = s.queries[t].Load()
	}
	return out
}

// SetObserver makes s report each client query and its response to o. It
// must be called before Start.
func (s *Server) SetObserver(o observe.Observer) { s.obs = o }

// received returns the time a query was read, or the zero time when no
// observer needs it.
func (s *Server) received() time.Time {
	if s.obs == nil {
		return time.Time{}
	}
	return time.Now()
}

// report sends one client query and its response, nil for none, to the
// observer. tag is the pipeline's tag of the list that decided the
// response.
func (s *Server) report(t observe.Transport, flavour uint8, client netip.Addr, received time.Time, pkt, resp []byte, cached bool, tag uint32) {
	if s.obs == nil {
		return
	}
	q := observe.GetQuery()
	q.Received, q.Duration = received, time.Since(received)
	q.Transport, q.Flavour, q.FlavourName = t, flavour, s.pipe.FlavourName(flavour)
	q.Client, q.Query, q.Response, q.Cached = client, pkt, resp, cached
	q.List, q.Category, q.Action, _ = s.pipe.PolicyOf(tag)
	s.obs.ClientQuery(q)
	observe.PutQuery(q)
}

// LimitHits returns the hits of each limit by its config key name, for
// metrics.
func (s *Server) LimitHits() map[string]uint64 {
	out := make(map[string]uint64, limitCount)
	for l := range limitCount {
		out[limitNames[l]] = s.limits[l].hits.Load()
	}
	return out
}

// admit checks a new connection against the limits and reads its PROXY
// protocol header when l expects one. It returns the connection to use and
// the client address; when ok is false the connection is closed.
func (s *Server) admit(c net.Conn, l config.Listener) (net.Conn, netip.Addr, bool) {
	peer := addrOf(c.RemoteAddr())
	client := peer
	if l.ProxyProtocol {
		if !s.proxyTrusted(peer) {
			s.limitHit(limitProxy)
			c.Close()
			return nil, netip.Addr{}, false
		}
		pc, source, err := readProxyHeader(c, s.cfg.HandshakeTimeout.D())
		if err != nil {
			s.limitHit(limitProxy)
			c.Close()
			return nil, netip.Addr{}, false
		}
		c = pc
		if source.IsValid() {
			client = source
		}
	}
	if !s.track(c, client) {
		c.Close()
		return nil, netip.Addr{}, false
	}
	return c, client, true
}

func (s *Server) proxyTrusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.cfg.ProxyFrom {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// track registers a connection of client, refusing it past the connection
// limits or during shutdown.
func (s *Server) track(c net.Conn, client netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	if len(s.conns) >= s.cfg.MaxTCPConnections {
		s.limitHit(limitConnections)
		return false
	}
	if s.perClient[client] >= s.cfg.MaxConnectionsPerClient {
		s.limitHit(limitPerClient)
		return false
	}
	s.conns[c] = struct{}{}
	s.perClient[client]++
	return true
}

// untrack closes a connection registered by track.
func (s *Server) untrack(c net.Conn, client netip.Addr) {
	s.mu.Lock()
	delete(s.conns, c)
	s.releaseClient(client)
	s.mu.Unlock()
	c.Close()
}

// trackClient counts a connection of client that is not a net.Conn, such
// as a QUIC connection.
func (s *Server) trackClient(client netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	if s.perClient[client] >= s.cfg.MaxConnectionsPerClient {
		s.limitHit(limitPerClient)
		return false
	}
	s.perClient[client]++
	return true
}

func (s *Server) untrackClient(client netip.Addr) {
	s.mu.Lock()
	s.releaseClient(client)
	s.mu.Unlock()
}

// releaseClient drops one connection of client; s.mu is held.
func (s *Server) releaseClient(client netip.Addr) {
	if n := s.perClient[client]; n > 1 {
		s.perClient[client] = n - 1
	} else {
		delete(s.perClient, client)
	}
}

// addrOf returns the IP address of a network address, or the zero Addr.
func addrOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		addr, _ := netip.AddrFromSlice(a.IP)
		return addr.Unmap()
	case *net.UDPAddr:
		addr, _ := netip.AddrFromSlice(a.IP)
		return addr.Unmap()
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}
