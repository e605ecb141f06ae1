package server

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"bulwark/internal/config"
	"bulwark/internal/pipeline"
	"bulwark/internal/rrl"
)

// udpReadBuffer is the receive buffer asked for each UDP socket, so that a
// burst of queries waits in the kernel instead of being dropped. The kernel
// caps it at net.core.rmem_max.
const udpReadBuffer = 4 << 20

// startUDP opens the SO_REUSEPORT sockets of one UDP listener, or takes
// those a handover passed in.
func (s *Server) startUDP(l config.Listener) error {
	conns, err := s.inheritUDP(l.AddrPort)
	if err != nil {
		closeUDP(conns)
		return err
	}
	if len(conns) == 0 {
		// SO_REUSEPORT would let this process share the address with
		// another one that set it too, each with its own cache. A plain
		// bind first fails if anyone holds the address; a handover is
		// the explicit way to share it.
		probe, err := net.ListenPacket("udp", l.AddrPort.String())
		if err != nil {
			return err
		}
		probe.Close()
	}
	lc := net.ListenConfig{Control: reusePort}
	for len(conns) < s.udpSockets() {
		pc, err := lc.ListenPacket(context.Background(), "udp", l.AddrPort.String())
		if err != nil {
			closeUDP(conns)
			return err
		}
		conns = append(conns, pc.(*net.UDPConn))
	}
	for _, conn := range conns {
		conn.SetReadBuffer(udpReadBuffer)
		s.own("udp", l.AddrPort, conn)
		s.mu.Lock()
		s.udp = append(s.udp, conn)
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serveUDPSocket(conn, s.pipe.FlavourID(l.Flavour))
	}
	return nil
}

func closeUDP(conns []*net.UDPConn) {
	for _, c := range conns {
		c.Close()
	}
}

// serveUDP reads one socket a datagram at a time, where batched I/O is not
// available. Cache hits are answered here, without a new goroutine or an
// allocation; misses go to a goroutine of their own.
func (s *Server) serveUDP(conn *net.UDPConn, flavour uint8) {
	defer s.wg.Done()
	buf := make([]byte, 65535)
	out := make([]byte, 0, 65535)
	for {
		n, addr, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.isClosing() {
				return
			}
			continue
		}
		pkt := buf[:n]
		received := s.received()
		s.queries[transportUDP].Add(1)
		client := addr.Addr()
		f := s.pipe.ClientFlavour(client, flavour)
		resp, outcome, tag := s.pipe.HandleFast(pkt, out, true, f, client)
		switch outcome {
		case pipeline.Answered:
			resp = s.limitUDP(pkt, resp, client)
			if resp != nil {
				conn.WriteToUDPAddrPort(resp, addr)
			}
			s.report(transportUDP, f, client, received, pkt, resp, true, tag)
		case pipeline.Dropped:
			s.report(transportUDP, f, client, received, pkt, nil, false, 0)
		case pipeline.Slow:
			s.slowUDP(conn, addr, pkt, f, received)
		}
	}
}

// slowUDP answers a cache miss on a goroutine of its own, or SERVFAIL at once
// when every resolution slot is taken.
func (s *Server) slowUDP(conn *net.UDPConn, addr netip.AddrPort, pkt []byte, flavour uint8, received time.Time) {
	if !s.pipe.TryAcquire() {
		resp := s.limitUDP(pkt, s.pipe.Busy(pkt), addr.Addr())
		if resp != nil {
			conn.WriteToUDPAddrPort(resp, addr)
		}
		s.report(transportUDP, flavour, addr.Addr(), received, pkt, resp, false, 0)
		return
	}
	pkt = append([]byte(nil), pkt...)
	s.work.Add(1)
	go func() {
		defer s.work.Done()
		resp, tag := s.answerSlow(pkt, true, flavour, addr.Addr())
		resp = s.limitUDP(pkt, resp, addr.Addr())
		if resp != nil {
			conn.WriteToUDPAddrPort(resp, addr)
		}
		s.report(transportUDP, flavour, addr.Addr(), received, pkt, resp, false, tag)
		s.pollUDP()
	}()
}

// SetRateLimiter limits UDP responses with l; nil, the default, sends
// every response. It must be called before Start.
func (s *Server) SetRateLimiter(l *rrl.Limiter) { s.rrl = l }

// limitUDP applies response rate limiting to resp, the response to pkt from
// client. It returns the response to send: resp, a truncated or BADCOOKIE
// response built over resp's memory in its place, or nil to send nothing.
// Exempt networks and clients with a valid server cookie are checked only
// once the client's bucket is empty, which keeps the common case to one
// atomic operation.
func (s *Server) limitUDP(pkt, resp []byte, client netip.Addr) []byte {
	l := s.rrl
	if l == nil || resp == nil {
		return resp
	}
	action := l.Check(client, l.Now())
	if action == rrl.Send || l.Exempt(client) || s.pipe.CookieValid(pkt, client) {
		return resp
	}
	l.Record(action)
	if action == rrl.Drop {
		return nil
	}
	return s.pipe.Limited(pkt, resp[:0], client)
}
