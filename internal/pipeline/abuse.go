package pipeline

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"slices"
	"time"

	"bulwark/internal/cookie"
	"bulwark/internal/resolver"

	"github.com/miekg/dns"
)

// Access sets which clients get recursion. Others get REFUSED with Extended
// DNS Error 18 (Prohibited), from the cache as well.
type Access struct {
	// Allow lists the networks of the clients that get recursion.
	Allow []netip.Prefix
	// OpenFlavours names flavours served to every client.
	OpenFlavours []string
}

// edeProhibited is the EDE option of a REFUSED response to a client
// outside the access list, made once so that refusing allocates nothing.
var edeProhibited = edeOption(&resolver.EDE{Code: 18, Text: "recursion not allowed for this client"})

// rcodeBadCookie is BADCOOKIE (RFC 7873 section 8): its low four bits go
// in the header and the rest in the OPT record's extended RCODE byte.
const rcodeBadCookie = dns.RcodeBadCookie

// recursionAllowed reports whether client gets recursion under flavour.
func (p *Pipeline) recursionAllowed(flavour uint8, client netip.Addr) bool {
	a := p.cfg.Recursion
	if a == nil {
		return true
	}
	client = client.Unmap()
	for _, prefix := range a.Allow {
		if prefix.Contains(client) {
			return true
		}
	}
	return len(a.OpenFlavours) > 0 && slices.Contains(a.OpenFlavours, p.FlavourName(flavour))
}

// appendHeader appends the header and question of q, read from pkt, as a
// response with rcode: QR set, RD and CD copied, and no records.
func appendHeader(out, pkt []byte, q *Query, rcode int, ra bool) []byte {
	out = append(out, pkt[:12+len(q.QName)+4]...)
	flags := flagQR | q.Flags&(flagRD|flagCD) | uint16(rcode&0x0f)
	if ra {
		flags |= 1 << 7
	}
	binary.BigEndian.PutUint16(out[2:], flags)
	clear(out[6:12])
	return out
}

// refuse appends to out a REFUSED response to q for a client outside the
// access list, with EDE 18 when the query had EDNS. RA is clear: recursion
// is not available to this client.
func (p *Pipeline) refuse(out, pkt []byte, q *Query, now time.Time) []byte {
	out = appendHeader(out, pkt, q, dns.RcodeRefused, false)
	if q.EDNS {
		out = p.appendOPT(out, edeProhibited, q, now)
	}
	return out
}

// cookieLen is the size of the COOKIE option added to the response to q,
// 0 when none is.
func (p *Pipeline) cookieLen(q *Query) int {
	if q.Cookie == nil || p.cfg.Cookies == nil {
		return 0
	}
	return 4 + cookie.OptionLen
}

// appendCookie appends a COOKIE option with the client cookie of q and a
// fresh server cookie, as every response to a query with a client cookie
// carries (RFC 7873 section 5.2).
func (p *Pipeline) appendCookie(out []byte, q *Query, now time.Time) []byte {
	out = binary.BigEndian.AppendUint16(out, cookie.OptionCode)
	out = binary.BigEndian.AppendUint16(out, cookie.OptionLen)
	cc := q.Cookie[:cookie.ClientLen]
	out = append(out, cc...)
	return p.cfg.Cookies.Append(out, cc, q.client, uint32(now.Unix()))
}

// CookieValid reports whether pkt carries a server cookie that this server,
// or one with the same secret, made for client and that has not expired.
// Such a client has shown that it receives responses at its address, so
// rate limits do not apply to it (RFC 7873 section 5.2.3).
func (p *Pipeline) CookieValid(pkt []byte, client netip.Addr) bool {
	if p.cfg.Cookies == nil {
		return false
	}
	q, ok := parseFast(pkt)
	if !ok || q.Cookie == nil {
		return false
	}
	cc, sc, _ := cookie.Split(q.Cookie)
	return p.cfg.Cookies.Valid(cc, sc, client, uint32(p.now().Unix()))
}

// Limited appends to out the response sent in place of a rate-limited one
// to pkt, and returns it, or nil when nothing should be sent. A query with
// a client cookie gets BADCOOKIE with a fresh server cookie: the client
// retries with it and is no longer limited (RFC 7873 section 5.2.3). Others
// get an empty response with TC set, which sends a real client to TCP.
func (p *Pipeline) Limited(pkt, out []byte, client netip.Addr) []byte {
	q, ok := parseFast(pkt)
	if !ok {
		return nil
	}
	q.client = client
	now := p.now()
	if p.cookieLen(&q) > 0 {
		out = appendHeader(out, pkt, &q, rcodeBadCookie, true)
		start := len(out)
		out = p.appendOPT(out, nil, &q, now)
		out[start+5] = byte(rcodeBadCookie >> 4)
		return out
	}
	out = appendHeader(out, pkt, &q, dns.RcodeSuccess, true)
	out[2] |= byte(flagTC >> 8)
	if q.EDNS {
		out = p.appendOPT(out, nil, &q, now)
	}
	return out
}

// errorCookie adds to r, an error response to m from client, the COOKIE
// option that the fast path adds to other responses.
func (p *Pipeline) errorCookie(r, m *dns.Msg, client netip.Addr) {
	opt, ropt := m.IsEdns0(), r.IsEdns0()
	if p.cfg.Cookies == nil || opt == nil || ropt == nil {
		return
	}
	for _, o := range opt.Option {
		c, ok := o.(*dns.EDNS0_COOKIE)
		if !ok {
			continue
		}
		sent, err := hex.DecodeString(c.Cookie)
		if _, _, errSplit := cookie.Split(sent); err != nil || errSplit != nil {
			return
		}
		cc := sent[:cookie.ClientLen]
		data := p.cfg.Cookies.Append(append([]byte(nil), cc...), cc, client, uint32(p.now().Unix()))
		ropt.Option = append(ropt.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: hex.EncodeToString(data)})
		return
	}
}
