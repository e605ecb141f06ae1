package server

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"time"

	"bulwark/internal/config"
	"bulwark/internal/observe"
	"bulwark/internal/pipeline"
)

// startTCP opens one TCP listener.
func (s *Server) startTCP(l config.Listener) error {
	ln, err := s.listenTCP(l.AddrPort)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.tcp = append(s.tcp, ln)
	s.mu.Unlock()
	s.wg.Add(1)
	go s.accept(ln, l, func(c net.Conn, client netip.Addr) {
		s.serveStream(c, session{
			tracked:   c,
			flavour:   s.pipe.ClientFlavour(client, s.pipe.FlavourID(l.Flavour)),
			client:    client,
			idle:      s.cfg.TCPIdleTimeout.D(),
			inflight:  maxPipelined,
			transport: transportTCP,
		})
	})
	return nil
}

// accept accepts connections on ln for listener l until ln is closed. Each
// connection that the limits admit, and whose PROXY protocol header reads
// when l expects one, goes to serve on a goroutine of its own, which owns
// it: serve must end with s.untrack.
func (s *Server) accept(ln net.Listener, l config.Listener, serve func(c net.Conn, client netip.Addr)) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors or similar: wait a little.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			c, client, ok := s.admit(c, l)
			if !ok {
				return
			}
			serve(c, client)
		}()
	}
}

// maxPipelined caps the queries of one TCP connection being answered at
// once; past it, the connection is not read until one completes.
const maxPipelined = 64

// session holds the settings of one client connection.
type session struct {
	// tracked is the connection as track registered it, before any TLS
	// layer.
	tracked net.Conn
	flavour uint8
	client  netip.Addr
	// idle is how long the connection may stay without a query.
	idle time.Duration
	// inflight caps the queries being answered at once.
	inflight int
	// pad pads responses to padded queries (RFC 7830), on encrypted
	// transports.
	pad bool
	// transport is transportTCP or transportDoT, for the query counters.
	transport observe.Transport
}

// serveStream reads length-prefixed queries (RFC 1035 section 4.2.2) until
// the client closes, stays idle too long, or sends a bad frame. Queries are
// answered concurrently and each response is written as it is ready, so a
// cached answer can overtake a slow one (RFC 7766 section 6.2.1.1).
func (s *Server) serveStream(c net.Conn, sess session) {
	w := &tcpWriter{conn: c, timeout: sess.idle}
	inflight := make(chan struct{}, sess.inflight)
	var pending sync.WaitGroup
	defer func() {
		pending.Wait()
		s.untrack(sess.tracked, sess.client)
	}()
	var hdr [2]byte
	for {
		c.SetReadDeadline(s.readDeadline(sess.idle))
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		pkt := make([]byte, binary.BigEndian.Uint16(hdr[:]))
		if _, err := io.ReadFull(c, pkt); err != nil {
			return
		}
		received := s.received()
		s.queries[sess.transport].Add(1)
		resp, outcome, tag := s.pipe.HandleFast(pkt, nil, false, sess.flavour, sess.client)
		switch outcome {
		case pipeline.Dropped:
			s.report(sess.transport, sess.flavour, sess.client, received, pkt, nil, false, 0)
		case pipeline.Answered:
			if sess.pad {
				resp = pipeline.Pad(resp, pkt, pipeline.PaddingBlock)
			}
			sent := w.send(resp)
			s.report(sess.transport, sess.flavour, sess.client, received, pkt, resp, true, tag)
			if !sent {
				return
			}
		case pipeline.Slow:
			select {
			case inflight <- struct{}{}:
			default:
				// Stop reading until a query of this connection completes.
				s.limitHit(limitStreams)
				inflight <- struct{}{}
			}
			if !s.pipe.TryAcquire() {
				<-inflight
				resp := s.pipe.Busy(pkt)
				s.report(sess.transport, sess.flavour, sess.client, received, pkt, resp, false, 0)
				if resp != nil && !w.send(resp) {
					return
				}
				continue
			}
			pending.Add(1)
			s.work.Add(1)
			go func() {
				defer s.work.Done()
				defer pending.Done()
				defer func() { <-inflight }()
				resp, tag := s.answerSlow(pkt, false, sess.flavour, sess.client)
				if resp != nil && sess.pad {
					resp = pipeline.Pad(resp, pkt, pipeline.PaddingBlock)
				}
				s.report(sess.transport, sess.flavour, sess.client, received, pkt, resp, false, tag)
				if resp != nil {
					w.send(resp)
				}
				s.pollUDP()
			}()
		}
	}
}

// answer answers pkt for a transport that waits for each response on
// its own stream, such as DoH and DoQ: from the cache, or by resolving it
// with a resolution slot, or SERVFAIL when none is free. It pads the
// response when the query asks for padding, and returns nil when nothing
// should be sent. t names the transport for the observer.
func (s *Server) answer(t observe.Transport, pkt []byte, flavour uint8, client netip.Addr) []byte {
	received := s.received()
	s.queries[t].Add(1)
	resp, cached, tag := s.answerPacket(pkt, flavour, client)
	if resp != nil {
		resp = pipeline.Pad(resp, pkt, pipeline.PaddingBlock)
	}
	s.report(t, flavour, client, received, pkt, resp, cached, tag)
	return resp
}

// answerPacket returns the response to pkt, or nil for none, whether it
// came from the answer cache, and the pipeline's tag of the list that
// decided it.
func (s *Server) answerPacket(pkt []byte, flavour uint8, client netip.Addr) (resp []byte, cached bool, tag uint32) {
	resp, outcome, tag := s.pipe.HandleFast(pkt, nil, false, flavour, client)
	switch outcome {
	case pipeline.Dropped:
		return nil, false, 0
	case pipeline.Slow:
		if !s.pipe.TryAcquire() {
			return s.pipe.Busy(pkt), false, 0
		}
		s.work.Add(1)
		defer s.work.Done()
		defer s.pollUDP()
		resp, tag = s.answerSlow(pkt, false, flavour, client)
		return resp, false, tag
	}
	return resp, true, tag
}

// answerSlow resolves pkt holding a resolution slot, and gives the slot back
// before the response is written, so that a client that does not read holds
// no slot.
func (s *Server) answerSlow(pkt []byte, udp bool, flavour uint8, client netip.Addr) ([]byte, uint32) {
	defer s.pipe.Release()
	defer s.recoverQuery()
	return s.pipe.HandleSlow(pkt, udp, flavour, client)
}

// tcpWriter writes length-prefixed responses to one connection. After a
// failed or partial write the stream framing is lost, so the connection is
// closed and later writes are dropped.
type tcpWriter struct {
	mu      sync.Mutex
	conn    net.Conn
	timeout time.Duration
	broken  bool
}

// send writes resp and reports whether the connection is still usable.
func (w *tcpWriter) send(resp []byte) bool {
	frame := make([]byte, 2, 2+len(resp))
	binary.BigEndian.PutUint16(frame, uint16(len(resp)))
	frame = append(frame, resp...)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.broken {
		return false
	}
	w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
	if _, err := w.conn.Write(frame); err != nil {
		w.broken = true
		w.conn.Close()
		return false
	}
	return true
}

// recoverQuery logs a panic in a query handler with its stack; the listener
// keeps serving.
func (s *Server) recoverQuery() {
	if v := recover(); v != nil {
		s.log.Error("panic while answering a query", "panic", v, "stack", string(debug.Stack()))
	}
}
