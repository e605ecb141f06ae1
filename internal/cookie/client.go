package cookie

import (
	"net/netip"
	"sync"
)

// maxServers bounds the server cookies a Client keeps. Past it the table
// starts again empty: a server whose cookie was forgotten sends a new one
// with its next response.
const maxServers = 1 << 16

// Client makes the client cookies of queries to authoritative servers and
// keeps the server cookie that each server last sent. It is safe for
// concurrent use.
type Client struct {
	secret  Secret
	mu      sync.Mutex
	servers map[netip.Addr][]byte
}

// NewClient returns a Client whose client cookies derive from secret.
func NewClient(secret Secret) *Client {
	return &Client{secret: secret, servers: map[netip.Addr][]byte{}}
}

// Option returns COOKIE option data for a query to server: its client
// cookie, followed by the server cookie last received from it, if any.
func (c *Client) Option(server netip.Addr) []byte {
	cc := c.ClientCookie(server)
	c.mu.Lock()
	sc := c.servers[server.Unmap()]
	c.mu.Unlock()
	return append(cc[:], sc...)
}

// ClientCookie returns the client cookie used with server: a keyed hash of
// its address, as RFC 7873 section 4.1 suggests, so that the cookie differs
// per server and cannot be guessed by others.
func (c *Client) ClientCookie(server netip.Addr) [ClientLen]byte {
	var out [ClientLen]byte
	a := server.Unmap().As16()
	h := c.secret.hash(a[:])
	for i := range out {
		out[i] = byte(h >> (8 * i))
	}
	return out
}

// Accept checks the COOKIE option data of a response from server and
// keeps its server cookie. ok is false when the client cookie is not the
// one sent to server, which marks a forged response (RFC 7873 section
// 5.3), or when the option is malformed.
func (c *Client) Accept(server netip.Addr, data []byte) (ok bool) {
	cc, sc, err := Split(data)
	if err != nil {
		return false
	}
	want := c.ClientCookie(server)
	if string(cc) != string(want[:]) {
		return false
	}
	if len(sc) == 0 {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.servers) >= maxServers {
		clear(c.servers)
	}
	c.servers[server.Unmap()] = append([]byte(nil), sc...)
	return true
}
