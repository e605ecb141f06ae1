//go:build !(linux && (amd64 || arm64))

package server

import (
	"context"
	"net"
)

// serveUDPSocket serves conn one datagram per system call: batched I/O is
// built for 64-bit Linux only.
func (s *Server) serveUDPSocket(conn *net.UDPConn, flavour uint8) {
	s.serveUDP(conn, flavour)
}

// pollUDP does nothing: sockets read one datagram per call have no batch
// state to share.
func (s *Server) pollUDP() {}

// batchConn is the batch state of a UDP socket, which other platforms do
// not have.
type batchConn struct{}

// drainUDP does nothing here.
//
// NOTE: on these platforms Shutdown does not answer the datagrams still
// queued on the UDP sockets, and closing the sockets drops them.
func (s *Server) drainUDP(ctx context.Context) {}
