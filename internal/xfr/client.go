package xfr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Dialer opens connections to primaries; *net.Dialer is one.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Timeouts of the exchanges with a primary.
const (
	// queryTimeout bounds one SOA query.
	queryTimeout = 5 * time.Second
	// readTimeout bounds the wait for each message of a transfer; a
	// large zone may take much longer in all.
	readTimeout = 30 * time.Second
)

// client runs the SOA queries and transfers of one zone.
type client struct {
	zone   string
	key    *Key
	dialer Dialer
	now    func() time.Time
}

// dial connects to primary and closes the connection when ctx ends.
func (c *client) dial(ctx context.Context, network string, primary netip.AddrPort) (*dns.Conn, func(), error) {
	conn, err := c.dialer.DialContext(ctx, network, primary.String())
	if err != nil {
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	return &dns.Conn{Conn: conn, UDPSize: dns.MaxMsgSize}, func() {
		stop()
		conn.Close()
	}, nil
}

// querySOA queries primary for the zone's SOA record, over UDP and again over
// TCP when the response is truncated.
func (c *client) querySOA(ctx context.Context, primary netip.AddrPort) (*dns.SOA, error) {
	resp, err := c.exchangeSOA(ctx, "udp", primary)
	if err == nil && resp.Truncated {
		resp, err = c.exchangeSOA(ctx, "tcp", primary)
	}
	if err != nil {
		return nil, err
	}
	if resp.Rcode != dns.RcodeSuccess {
		return nil, rcodeError("SOA query", resp.Rcode)
	}
	for _, rr := range resp.Answer {
		if soa, ok := rr.(*dns.SOA); ok && strings.EqualFold(soa.Hdr.Name, c.zone) {
			return soa, nil
		}
	}
	return nil, fmt.Errorf("the response to the SOA query has no SOA record for %s: check that the primary serves the zone", c.zone)
}

func (c *client) exchangeSOA(ctx context.Context, network string, primary netip.AddrPort) (*dns.Msg, error) {
	conn, done, err := c.dial(ctx, network, primary)
	if err != nil {
		return nil, err
	}
	defer done()
	conn.SetDeadline(time.Now().Add(queryTimeout))
	q := new(dns.Msg)
	q.SetQuestion(c.zone, dns.TypeSOA)
	q.RecursionDesired = false
	wire, mac, err := sign(q, c.key, "", c.now().Unix())
	if err != nil {
		return nil, err
	}
	if _, err := conn.Write(wire); err != nil {
		return nil, err
	}
	for {
		p, err := conn.ReadMsgHeader(nil)
		if err != nil {
			return nil, fmt.Errorf("SOA query over %s: %w", network, err)
		}
		m := new(dns.Msg)
		if err := m.Unpack(p); err != nil {
			return nil, fmt.Errorf("SOA query over %s: malformed response: %w", network, err)
		}
		if !m.Response || m.Id != q.Id {
			if network == "udp" {
				continue // a stray datagram: wait for the response
			}
			return nil, fmt.Errorf("SOA query over TCP: the response does not match the query ID")
		}
		if _, err := checkResponse(m, p, c.key, mac, false); err != nil {
			return nil, err
		}
		return m, nil
	}
}

// rcodeError describes an error rcode from a primary, with what to check.
func rcodeError(what string, rcode int) error {
	hint := ""
	switch rcode {
	case dns.RcodeRefused, dns.RcodeNotAuth:
		hint = ": check that the primary allows transfers of the zone to this address and key"
	case dns.RcodeNameError:
		hint = ": check the zone name"
	}
	return fmt.Errorf("%s returned %s%s", what, rcodeName(rcode), hint)
}

// stream reads the records of one AXFR or IXFR response, message after
// message, checking the TSIG record of each (RFC 8945 section 5.3.1).
type stream struct {
	conn     *dns.Conn
	key      *Key
	id       uint16
	mac      string
	messages int
	rrs      []dns.RR
}

// open sends the transfer query q to primary.
func (c *client) open(ctx context.Context, primary netip.AddrPort, q *dns.Msg) (*stream, func(), error) {
	conn, done, err := c.dial(ctx, "tcp", primary)
	if err != nil {
		return nil, nil, err
	}
	conn.SetWriteDeadline(time.Now().Add(queryTimeout))
	wire, mac, err := sign(q, c.key, "", c.now().Unix())
	if err == nil {
		_, err = conn.Write(wire)
	}
	if err != nil {
		done()
		return nil, nil, err
	}
	return &stream{conn: conn, key: c.key, id: q.Id, mac: mac}, done, nil
}

// next returns the next record of the response.
//
// NOTE: RFC 8945 section 5.3.1 lets a primary leave up to 99 messages in
// a row unsigned. Such a response is rejected here, because every message
// must carry a valid TSIG record when a key is set. Knot DNS, the primary
// of the integration test, signs every message.
func (s *stream) next() (dns.RR, error) {
	for len(s.rrs) == 0 {
		s.conn.SetReadDeadline(time.Now().Add(readTimeout))
		p, err := s.conn.ReadMsgHeader(nil)
		if err != nil {
			return nil, fmt.Errorf("read message %d of the response: %w", s.messages+1, err)
		}
		m := new(dns.Msg)
		if err := m.Unpack(p); err != nil {
			return nil, fmt.Errorf("message %d of the response is malformed: %w", s.messages+1, err)
		}
		if !m.Response || m.Id != s.id {
			return nil, fmt.Errorf("message %d of the response does not match the query ID", s.messages+1)
		}
		mac, err := checkResponse(m, p, s.key, s.mac, s.messages > 0)
		if err != nil {
			return nil, err
		}
		if s.key != nil {
			s.mac = mac
		}
		if m.Rcode != dns.RcodeSuccess {
			return nil, rcodeError("the transfer", m.Rcode)
		}
		s.messages++
		if len(m.Answer) == 0 {
			return nil, fmt.Errorf("message %d of the response has no records", s.messages)
		}
		s.rrs = m.Answer
	}
	rr := s.rrs[0]
	s.rrs = s.rrs[1:]
	return rr, nil
}

// zoneSOA returns rr as the zone's SOA record, which opens every
// transfer response (RFC 5936 section 2.2, RFC 1995 section 4).
func (c *client) zoneSOA(rr dns.RR) (*dns.SOA, error) {
	soa, ok := rr.(*dns.SOA)
	if !ok || !strings.EqualFold(soa.Hdr.Name, c.zone) {
		return nil, fmt.Errorf("the response does not start with the SOA record of %s", c.zone)
	}
	return soa, nil
}

// axfr transfers the whole zone from primary into a new copy at path.
func (c *client) axfr(ctx context.Context, primary netip.AddrPort, path string) (*Copy, error) {
	q := new(dns.Msg)
	q.SetAxfr(c.zone)
	s, done, err := c.open(ctx, primary, q)
	if err != nil {
		return nil, err
	}
	defer done()
	first, err := s.next()
	if err != nil {
		return nil, err
	}
	soa, err := c.zoneSOA(first)
	if err != nil {
		return nil, err
	}
	cp := &Copy{Zone: c.zone, SOA: soa, Transfer: TypeAXFR, Time: c.now(), Primary: primary.String()}
	return cp, c.writeZone(s, cp, path, nil)
}

// writeZone writes a new copy at path from a full zone in s, whose first
// SOA record has been read into cp, and pending, records read after it.
// The zone ends with its SOA record again (RFC 5936 section 2.2).
func (c *client) writeZone(s *stream, cp *Copy, path string, pending []dns.RR) error {
	cw, err := newCopyWriter(path)
	if err != nil {
		return err
	}
	if err := c.copyZone(s, cp, cw, pending); err != nil {
		cw.abort()
		return err
	}
	cp.Records = cw.records
	return cw.commit()
}

func (c *client) copyZone(s *stream, cp *Copy, cw *copyWriter, pending []dns.RR) error {
	if err := cw.start(cp); err != nil {
		return err
	}
	for {
		var rr dns.RR
		if len(pending) > 0 {
			rr, pending = pending[0], pending[1:]
		} else {
			var err error
			if rr, err = s.next(); err != nil {
				return err
			}
		}
		if soa, ok := rr.(*dns.SOA); ok {
			if soa.Serial != cp.SOA.Serial || !strings.EqualFold(soa.Hdr.Name, c.zone) {
				return fmt.Errorf("unexpected SOA record %s inside the zone", soa.Hdr.Name)
			}
			return nil
		}
		// Records outside the zone are not the primary's to give.
		if !dns.IsSubDomain(c.zone, rr.Header().Name) {
			continue
		}
		if err := cw.record(rr); err != nil {
			return err
		}
	}
}

// errNoIncrement means an IXFR brought nothing newer than the copy, although
// the SOA query showed a newer serial.
var errNoIncrement = errors.New("the IXFR response has no newer version of the zone")

// ixfr requests from primary the changes since the copy have, kept at path, and
// writes the new copy: the copy with the changes applied, or the whole
// zone when the primary answers AXFR-style (RFC 1995 section 4).
func (c *client) ixfr(ctx context.Context, primary netip.AddrPort, have *Copy, path string) (*Copy, error) {
	q := new(dns.Msg)
	q.SetIxfr(c.zone, have.SOA.Serial, have.SOA.Ns, have.SOA.Mbox)
	s, done, err := c.open(ctx, primary, q)
	if err != nil {
		return nil, err
	}
	defer done()
	first, err := s.next()
	if err != nil {
		return nil, err
	}
	soa, err := c.zoneSOA(first)
	if err != nil {
		return nil, err
	}
	if !SerialLess(have.SOA.Serial, soa.Serial) {
		return nil, errNoIncrement
	}

	// An old SOA record second opens the deletions of an incremental
	// response; anything else is the second record of a whole zone.
	cp := &Copy{Zone: c.zone, SOA: soa, Transfer: TypeIXFR, Time: c.now(), Primary: primary.String()}
	second, err := s.next()
	if err != nil {
		return nil, err
	}
	if old, ok := second.(*dns.SOA); ok && old.Serial == have.SOA.Serial && old.Serial != soa.Serial {
		d, err := c.readDiffs(s, soa.Serial, old.Serial)
		if err != nil {
			return nil, err
		}
		return cp, c.applyDiff(d, cp, path)
	}
	cp.Transfer = TypeIXFRAsAll
	return cp, c.writeZone(s, cp, path, []dns.RR{second})
}

// readDiffs reads the difference sequences of an incremental IXFR
// response, whose first deletion SOA record (serial from) has been read,
// up to the closing SOA record of serial to. Each sequence deletes
// records after an SOA record of its old serial and adds records after an
// SOA record of its new serial (RFC 1995 section 4). A condensed response
// has one sequence; the others have one per version.
func (c *client) readDiffs(s *stream, to, from uint32) (*diff, error) {
	d := newDiff()
	adding := false
	current := from // the version the sequence being read leads to
	for {
		rr, err := s.next()
		if err != nil {
			return nil, err
		}
		soa, ok := rr.(*dns.SOA)
		switch {
		case !ok:
			if !dns.IsSubDomain(c.zone, rr.Header().Name) {
				continue
			}
			if adding {
				d.add(rr)
			} else {
				d.remove(rr)
			}
		case !adding:
			current, adding = soa.Serial, true
		case current == to && soa.Serial == to:
			return d, nil
		case soa.Serial != current:
			return nil, fmt.Errorf("IXFR sequence from serial %d follows changes up to serial %d", soa.Serial, current)
		default:
			adding = false
		}
	}
}

// applyDiff writes the copy at path changed by d as a new copy.
func (c *client) applyDiff(d *diff, cp *Copy, path string) error {
	cw, err := newCopyWriter(path)
	if err != nil {
		return err
	}
	if err := d.apply(path, cp, cw); err != nil {
		cw.abort()
		return err
	}
	cp.Records = cw.records
	return cw.commit()
}
