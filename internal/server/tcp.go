package server

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
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
	go s.acceptTCP(ln)
	return nil
}

func (s *Server) acceptTCP(ln net.Listener) {
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
		s.wg.Add(1)
		go s.serveTCP(c)
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

// serveTCP reads length-prefixed queries (RFC 1035 section 4.2.2) until the
// client closes, stays idle too long, or sends a bad frame. Queries are
// answered concurrently and each response is written as it is ready.
func (s *Server) serveTCP(c net.Conn) {
	defer s.wg.Done()
	var writeMu sync.Mutex
	var pending sync.WaitGroup
	defer func() {
		pending.Wait()
		s.untrack(c)
	}()
	send := func(resp []byte) {
		frame := make([]byte, 2, 2+len(resp))
		binary.BigEndian.PutUint16(frame, uint16(len(resp)))
		writeMu.Lock()
		c.SetWriteDeadline(time.Now().Add(s.idleTimeout()))
		c.Write(append(frame, resp...))
		writeMu.Unlock()
	}
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
		resp, outcome := s.pipe.HandleFast(pkt, nil, false)
		switch outcome {
		case pipeline.Answered:
			send(resp)
		case pipeline.Slow:
			if !s.pipe.TryAcquire() {
				if resp := s.pipe.Busy(pkt); resp != nil {
					send(resp)
				}
				continue
			}
			pending.Add(1)
			s.work.Add(1)
			go func() {
				defer s.work.Done()
				defer pending.Done()
				defer s.pipe.Release()
				defer s.recoverQuery()
				if resp := s.pipe.HandleSlow(pkt, false); resp != nil {
					send(resp)
				}
			}()
		}
	}
}

// recoverQuery logs a panic in a query handler with its stack; the listener
// keeps serving.
func (s *Server) recoverQuery() {
	if v := recover(); v != nil {
		s.log.Error("panic while answering a query", "panic", v, "stack", string(debug.Stack()))
	}
}
