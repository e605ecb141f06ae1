package cookie

import (
	"net/netip"
	"sync"
)

// Size of the server cookie table of a Client. Each slot holds one server
// and takes 72 bytes on 64-bit machines, so the table takes 1.1 MiB
// whatever the number of servers queried.
const (
	tableSlots   = 1 << 14
	tableStripes = 64
)

// Client makes the client cookies of queries to authoritative servers and
// keeps the server cookie that each server last sent (RFC 7873 section
// 5.1). Server cookies live in a fixed-size table indexed by a keyed hash
// of the server address: a server whose slot another server took sends a
// new cookie with its next response. It is safe for concurrent use.
type Client struct {
	secret  Secret
	stripes [tableStripes]sync.Mutex
	slots   []serverSlot
}

// serverSlot is the last server cookie from server, valid only with the
// client cookie of the query it came in response to.
type serverSlot struct {
	server netip.Addr
	client [ClientLen]byte
	n      uint8
	cookie [maxServerLen]byte
}

// NewClient returns a Client whose client cookies derive from secret.
func NewClient(secret Secret) *Client {
	return &Client{secret: secret, slots: make([]serverSlot, tableSlots)}
}

// ClientCookie returns the client cookie for queries from client to server.
// It is a SipHash-2-4 of both addresses under the secret, as RFC 7873
// section 5.1 recommends, so it differs per server and per source address
// and others cannot guess it. client is the zero Addr when unknown.
func (c *Client) ClientCookie(client, server netip.Addr) [ClientLen]byte {
	var buf [2 * 17]byte
	msg := appendAddr(buf[:0], client)
	msg = appendAddr(msg, server)
	h := c.secret.hash(msg)
	var out [ClientLen]byte
	for i := range out {
		out[i] = byte(h >> (8 * i))
	}
	return out
}

// appendAddr appends a length byte and the bytes of addr, so that no two
// address pairs hash the same input.
func appendAddr(dst []byte, addr netip.Addr) []byte {
	addr = addr.Unmap()
	switch {
	case addr.Is4():
		a := addr.As4()
		return append(append(dst, 4), a[:]...)
	case addr.Is6():
		a := addr.As16()
		return append(append(dst, 16), a[:]...)
	}
	return append(dst, 0)
}

// AppendOption appends COOKIE option data for a query from client to
// server to dst: the client cookie, followed by the server cookie last
// received for it, if any. It does not allocate when dst has room for
// ClientLen plus 32 bytes.
func (c *Client) AppendOption(dst []byte, client, server netip.Addr) []byte {
	cc := c.ClientCookie(client, server)
	dst = append(dst, cc[:]...)
	server = server.Unmap()
	i := c.slotIndex(server)
	mu := &c.stripes[i%tableStripes]
	mu.Lock()
	s := &c.slots[i]
	if s.server == server && s.client == cc {
		dst = append(dst, s.cookie[:s.n]...)
	}
	mu.Unlock()
	return dst
}

// Accept checks the COOKIE option data of a response from server to a
// query sent from client, and keeps its server cookie. ok is false when the
// option is malformed or its client cookie is not the one sent, which
// marks a forged response that must be dropped (RFC 7873 section 5.3).
func (c *Client) Accept(client, server netip.Addr, data []byte) (ok bool) {
	cc, sc, err := Split(data)
	if err != nil {
		return false
	}
	want := c.ClientCookie(client, server)
	if string(cc) != string(want[:]) {
		return false
	}
	if len(sc) == 0 {
		return true
	}
	server = server.Unmap()
	i := c.slotIndex(server)
	mu := &c.stripes[i%tableStripes]
	mu.Lock()
	s := &c.slots[i]
	s.server, s.client, s.n = server, want, uint8(copy(s.cookie[:], sc))
	mu.Unlock()
	return true
}

// slotIndex returns the table slot of server. The hash is keyed, so that
// without the secret no one can choose servers that share a slot.
func (c *Client) slotIndex(server netip.Addr) int {
	var buf [17]byte
	h := c.secret.hash(appendAddr(buf[:0], server))
	return int(h % tableSlots)
}
