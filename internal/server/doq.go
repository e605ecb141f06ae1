package server

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"time"

	"bulwark/internal/config"

	"github.com/quic-go/quic-go"
)

type quicConn = *quic.Conn

// DoQ error codes (RFC 9250 section 4.3).
const (
	doqNoError          quic.ApplicationErrorCode = 0x0
	doqProtocolError    quic.ApplicationErrorCode = 0x2
	doqRequestCancelled quic.StreamErrorCode      = 0x3
	doqExcessiveLoad    quic.ApplicationErrorCode = 0x4
)

// startDoQ opens one DNS over QUIC listener (RFC 9250): one query and its
// response per bidirectional stream, answered concurrently.
func (s *Server) startDoQ(l config.Listener) error {
	// DoQ uses bidirectional streams only (RFC 9250 section 4.2).
	return s.startQUIC(l, s.tlsSource.Config("doq"), false, func(c quicConn, client netip.Addr) {
		s.serveDoQ(c, l, client)
	}, nil)
}

// startQUIC opens a QUIC listener on the UDP address of l and hands each
// connection that the per-client limit admits to serve, on a goroutine of
// its own. uniStreams allows the client unidirectional streams, which
// HTTP/3 needs for its control and QPACK streams. closer, if set, runs at
// shutdown before the listener closes.
func (s *Server) startQUIC(l config.Listener, tlsCfg *tls.Config, uniStreams bool, serve func(quicConn, netip.Addr), closer func() error) error {
	udp, err := s.listenQUIC(l.AddrPort)
	if err != nil {
		return err
	}
	tr := &quic.Transport{Conn: udp}
	qc := &quic.Config{
		HandshakeIdleTimeout:  s.cfg.HandshakeTimeout.D(),
		MaxIdleTimeout:        s.cfg.EncryptedIdleTimeout.D(),
		MaxIncomingStreams:    int64(s.cfg.MaxStreamsPerConnection),
		MaxIncomingUniStreams: -1,
	}
	if uniStreams {
		qc.MaxIncomingUniStreams = 0 // quic-go's default
	}
	ln, err := tr.Listen(tlsCfg, qc)
	if err != nil {
		udp.Close()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.mu.Lock()
	if closer != nil {
		s.closers = append(s.closers, closer)
	}
	s.closers = append(s.closers, func() error {
		cancel()
		ln.Close()
		tr.Close()
		return udp.Close()
	})
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			client := addrOf(c.RemoteAddr())
			if !s.trackClient(client) {
				c.CloseWithError(doqExcessiveLoad, "too many connections")
				continue
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer s.untrackClient(client)
				serve(c, client)
			}()
		}
	}()
	return nil
}

// serveDoQ answers the streams of one DoQ connection until it closes.
func (s *Server) serveDoQ(c quicConn, l config.Listener, client netip.Addr) {
	flavour, _ := s.flavourFor(l, c.ConnectionState().TLS.ServerName, "", client)
	for {
		st, err := c.AcceptStream(context.Background())
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.answerDoQ(c, st, flavour, client)
		}()
	}
}

// answerDoQ reads the query of one stream and writes its response.
func (s *Server) answerDoQ(c quicConn, st *quic.Stream, flavour uint8, client netip.Addr) {
	st.SetReadDeadline(time.Now().Add(s.cfg.HandshakeTimeout.D()))
	var hdr [2]byte
	if _, err := io.ReadFull(st, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			c.CloseWithError(doqProtocolError, "query stream ended before a message")
			return
		}
		st.CancelRead(doqRequestCancelled)
		st.CancelWrite(doqRequestCancelled)
		return
	}
	pkt := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	if _, err := io.ReadFull(st, pkt); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			// The stream ended inside the message.
			c.CloseWithError(doqProtocolError, "query stream ended inside the message")
			return
		}
		st.CancelRead(doqRequestCancelled)
		st.CancelWrite(doqRequestCancelled)
		return
	}
	// The client ends its side after the query (RFC 9250 section 4.2), and
	// the message ID must be 0; either error closes the connection.
	var extra [1]byte
	if n, err := st.Read(extra[:]); n != 0 || !errors.Is(err, io.EOF) {
		c.CloseWithError(doqProtocolError, "query stream not ended after one message")
		return
	}
	if len(pkt) < 12 || pkt[0] != 0 || pkt[1] != 0 {
		c.CloseWithError(doqProtocolError, "DNS message ID is not 0")
		return
	}
	resp := s.answer(transportDoQ, pkt, flavour, client)
	if resp == nil {
		st.CancelWrite(doqRequestCancelled) // a dropped query: no response
		return
	}
	frame := make([]byte, 2, 2+len(resp))
	binary.BigEndian.PutUint16(frame, uint16(len(resp)))
	frame = append(frame, resp...)
	st.SetWriteDeadline(time.Now().Add(s.cfg.EncryptedIdleTimeout.D()))
	if _, err := st.Write(frame); err != nil {
		st.CancelWrite(doqRequestCancelled)
		return
	}
	st.Close()
}
