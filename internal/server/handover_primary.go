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
	udp, err := s.listenPacket(primaryUDP, addr, tcp.Addr().(*net.TCPAddr).AddrPort())
	if err != nil {
		tcp.Close()
		return nil, nil, fmt.Errorf("listen on UDP %s: %w", addr, err)
	}
	return tcp, udp, nil
}
