package exchange

import (
	"net/netip"

	"github.com/miekg/dns"
)

// maxCookieLen is the longest COOKIE option data: a client cookie and a
// server cookie of 32 bytes (RFC 7873 section 4).
const maxCookieLen = 40

// setCookie puts the COOKIE option for a query from local to server into
// the OPT record of msg, replacing the one of an earlier attempt. It does
// nothing when cookies are off or msg has no OPT record.
func (c *Client) setCookie(msg *dns.Msg, local, server netip.Addr) {
	opt := msg.IsEdns0()
	if c.cfg.Cookies == nil || opt == nil {
		return
	}
	var buf [maxCookieLen]byte
	data := hexString(c.cfg.Cookies.AppendOption(buf[:0], local, server))
	for _, o := range opt.Option {
		if co, ok := o.(*dns.EDNS0_COOKIE); ok {
			co.Cookie = data
			return
		}
	}
	opt.Option = append(opt.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: data})
}

// acceptCookie checks the COOKIE option of resp, a response from server to
// a query sent from local, and keeps its server cookie. It returns false
// when the option is malformed or does not echo the client cookie, so the
// response must be dropped (RFC 7873 section 5.3). A response without the
// option passes: the server does not implement cookies, or answered
// without EDNS.
func (c *Client) acceptCookie(resp *dns.Msg, local, server netip.Addr) bool {
	if c.cfg.Cookies == nil {
		return true
	}
	opt := resp.IsEdns0()
	if opt == nil {
		return true
	}
	for _, o := range opt.Option {
		co, ok := o.(*dns.EDNS0_COOKIE)
		if !ok {
			continue
		}
		var buf [maxCookieLen]byte
		data, ok := decodeHex(buf[:0], co.Cookie)
		return ok && c.cfg.Cookies.Accept(local, server, data)
	}
	return true
}

const hexDigits = "0123456789abcdef"

// hexString returns b in hexadecimal, the form miekg/dns keeps COOKIE
// option data in, with one allocation.
func hexString(b []byte) string {
	var buf [2 * maxCookieLen]byte
	for i, v := range b {
		buf[2*i], buf[2*i+1] = hexDigits[v>>4], hexDigits[v&0x0f]
	}
	return string(buf[:2*len(b)])
}

// decodeHex appends the bytes that the hexadecimal text s encodes to dst.
// ok is false when s has an odd length, a character that is not a
// hexadecimal digit, or more than cap(dst) bytes, so that the result never
// allocates when dst has room for maxCookieLen bytes.
func decodeHex(dst []byte, s string) (out []byte, ok bool) {
	if len(s)%2 != 0 || len(s)/2 > cap(dst)-len(dst) {
		return nil, false
	}
	for i := 0; i < len(s); i += 2 {
		hi, ok1 := hexValue(s[i])
		lo, ok2 := hexValue(s[i+1])
		if !ok1 || !ok2 {
			return nil, false
		}
		dst = append(dst, hi<<4|lo)
	}
	return dst, true
}

func hexValue(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
