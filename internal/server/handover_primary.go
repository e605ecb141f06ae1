package server

import (
	"fmt"
	"net"
	"net/netip"
)

// Networks of the RPZ primary's sockets in a handover.
const (
	primaryTCP = "xfr-tcp"
	primaryUDP = "xfr-udp"
)

// ListenPrimary returns the TCP listener and UDP socket of the RPZ
// primary at addr: those a handover passed in, or new ones. A later
// handover passes them on with the DNS listeners, so that secondaries
// never find the port closed. With port 0 the UDP socket takes the port
// the system chose for TCP. The caller serves on both and closes them;
// Shutdown does not.
//
// Call it before Start, which closes the inherited sockets that no
// listener has taken.
func (s *Server) ListenPrimary(addr netip.AddrPort) (*net.TCPListener, *net.UDPConn, error) {
	tcp, err := s.listenStream(primaryTCP, addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on TCP %s: %w", addr, err)
	}
	udp, err := s.listenPrimaryUDP(addr, tcp.Addr().(*net.TCPAddr).AddrPort())
	if err != nil {
		tcp.Close()
		return nil, nil, fmt.Errorf("listen on UDP %s: %w", addr, err)
	}
	return tcp, udp, nil
}

// listenPrimaryUDP returns the inherited UDP socket of the primary at
// addr, or a new one bound to bind.
func (s *Server) listenPrimaryUDP(addr, bind netip.AddrPort) (*net.UDPConn, error) {
	var conn *net.UDPConn
	if files := s.inherited.take(primaryUDP, addr); len(files) > 0 {
		c, err := fileSocket(files, net.FilePacketConn)
		if err != nil {
			return nil, err
		}
		var ok bool
		if conn, ok = c.(*net.UDPConn); !ok {
			c.Close()
			return nil, fmt.Errorf("inherited socket of %s is not a UDP socket", addr)
		}
	} else {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(bind))
		if err != nil {
			return nil, err
		}
		conn = c
	}
	s.own(primaryUDP, addr, conn)
	return conn, nil
}
