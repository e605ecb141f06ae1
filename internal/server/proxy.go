package server

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"
)

// proxySignature starts every PROXY protocol v2 header.
var proxySignature = []byte("\r\n\r\n\x00\r\nQUIT\n")

// maxProxyHeader caps the address and TLV part of a PROXY header. Load
// balancers send a few dozen bytes; the format allows 65535.
const maxProxyHeader = 4096

// readProxyHeader reads a PROXY protocol v2 header from the start of c,
// within timeout, and returns c and the client address the header carries.
// A LOCAL header, sent by the balancer for its own health checks, and one
// for an address family other than IPv4 and IPv6 carry no client: the
// address is then the zero Addr. Version 1 (text) headers are not read.
func readProxyHeader(c net.Conn, timeout time.Duration) (net.Conn, netip.Addr, error) {
	c.SetReadDeadline(time.Now().Add(timeout))
	defer c.SetReadDeadline(time.Time{})
	var hdr [16]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return nil, netip.Addr{}, fmt.Errorf("read PROXY header: %w", err)
	}
	source, n, err := parseProxyHeader(hdr[:])
	if err != nil {
		return nil, netip.Addr{}, err
	}
	rest := make([]byte, n)
	if _, err := io.ReadFull(c, rest); err != nil {
		return nil, netip.Addr{}, fmt.Errorf("read PROXY addresses: %w", err)
	}
	if source == proxyAddresses {
		return c, proxySource(hdr[13], rest), nil
	}
	return c, netip.Addr{}, nil
}

// Header kinds of parseProxyHeader.
const (
	proxyLocal = iota
	proxyAddresses
)

// parseProxyHeader checks the fixed 16 bytes of a v2 header and returns
// its kind and the length of the rest.
func parseProxyHeader(hdr []byte) (kind, rest int, err error) {
	if !bytes.Equal(hdr[:12], proxySignature) {
		return 0, 0, errors.New("no PROXY protocol v2 signature")
	}
	if hdr[12]>>4 != 2 {
		return 0, 0, fmt.Errorf("PROXY protocol version %d, want 2", hdr[12]>>4)
	}
	rest = int(binary.BigEndian.Uint16(hdr[14:]))
	if rest > maxProxyHeader {
		return 0, 0, fmt.Errorf("PROXY header of %d bytes, over the %d accepted", rest, maxProxyHeader)
	}
	switch hdr[12] & 0x0F {
	case 0:
		return proxyLocal, rest, nil
	case 1:
		return proxyAddresses, rest, nil
	}
	return 0, 0, fmt.Errorf("unknown PROXY command %d", hdr[12]&0x0F)
}

// proxySource returns the source address of a PROXY header whose family
// byte is family and whose address part is rest.
func proxySource(family byte, rest []byte) netip.Addr {
	switch family >> 4 {
	case 1: // AF_INET
		if len(rest) >= 12 {
			return netip.AddrFrom4([4]byte(rest[:4]))
		}
	case 2: // AF_INET6
		if len(rest) >= 36 {
			return netip.AddrFrom16([16]byte(rest[:16])).Unmap()
		}
	}
	return netip.Addr{}
}
