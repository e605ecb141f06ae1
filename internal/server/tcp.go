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
	"bulwark/internal/pipeline"
)

// startTCP opens one TCP listener.
func (s *Server) startTCP(l config.Listener) error {
	ln, err := net.Listen("tcp", l.AddrPort.String())
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.tcp = append(s.tcp, ln)
	s.mu.Unlock()
	s.wg.Add(1)
	go s.acceptTCP(ln, s.pipe.FlavourID(l.Flavour))
	return nil
}

func (s *Server) acceptTCP(ln net.Listener, flavour uint8) {
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
		if !s.track(c) {
			c.Close()
			continue
		}
		f := flavour
		var client netip.Addr
		if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
			client = ap.Addr()
			f = s.pipe.ClientFlavour(client, flavour)
		}
		s.wg.Add(1)
		go s.serveTCP(c, client, f)
	}
}

// track registers a connection, refusing it past the connection limit or
// during shutdown.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || len(s.conns) >= s.cfg.MaxTCPConnections {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

// maxPipelined caps the queries of one TCP connection being answered at
// once; past it, the connection is not read until one completes.
const maxPipelined = 64

// serveTCP reads length-prefixed queries (RFC 1035 section 4.2.2) until the
// client closes, stays idle too long, or sends a bad frame. Queries are
// answered concurrently and each response is written as it is ready.
func (s *Server) serveTCP(c net.Conn, client netip.Addr, flavour uint8) {
	defer s.wg.Done()
	w := &tcpWriter{conn: c, timeout: s.idleTimeout()}
	inflight := make(chan struct{}, maxPipelined)
	var pending sync.WaitGroup
	defer func() {
		pending.Wait()
		s.untrack(c)
	}()
	var hdr [2]byte
	for {
		c.SetReadDeadline(time.Now().Add(s.idleTimeout()))
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		pkt := make([]byte, binary.BigEndian.Uint16(hdr[:]))
		if _, err := io.ReadFull(c, pkt); err != nil {
			return
		}
		resp, outcome := s.pipe.HandleFast(pkt, nil, false, flavour)
		switch outcome {
		case pipeline.Answered:
			if !w.send(resp) {
				return
			}
		case pipeline.Slow:
			if !s.pipe.TryAcquire() {
				if resp := s.pipe.Busy(pkt); resp != nil && !w.send(resp) {
					return
				}
				continue
			}
			inflight <- struct{}{}
			pending.Add(1)
			s.work.Add(1)
			go func() {
				defer s.work.Done()
				defer pending.Done()
				defer func() { <-inflight }()
				if resp := s.answerSlow(pkt, client, false, flavour); resp != nil {
					w.send(resp)
				}
			}()
		}
	}
}

// answerSlow resolves pkt holding a resolution slot, and gives the slot back
// before the response is written, so that a client that does not read holds
// no slot.
func (s *Server) answerSlow(pkt []byte, client netip.Addr, udp bool, flavour uint8) []byte {
	defer s.pipe.Release()
	defer s.recoverQuery()
	return s.pipe.HandleSlowFrom(pkt, client, udp, flavour)
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
