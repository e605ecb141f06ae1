package xfr

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// notifyAll sends a NOTIFY for zone's serial to every configured
// secondary, in the background, and stops the retries for the zone's
// older serial: the new NOTIFY replaces them.
func (p *Primary) notifyAll(ctx context.Context, zone string, serial uint32) {
	if len(p.cfg.Notify) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	p.mu.Lock()
	if old := p.notifyCancel[zone]; old != nil {
		old()
	}
	p.notifyCancel[zone] = cancel
	p.mu.Unlock()
	for _, target := range p.cfg.Notify {
		go p.notifyTarget(ctx, zone, serial, target)
	}
}

// notifyTarget sends a NOTIFY to target until it answers NOERROR, retrying
// with a doubling timeout up to NotifyRetries attempts (RFC 1996 section
// 3.6).
func (p *Primary) notifyTarget(ctx context.Context, zone string, serial uint32, target netip.AddrPort) {
	timeout := p.cfg.NotifyTimeout
	var err error
	for range p.cfg.NotifyRetries {
		if err = p.sendNotify(ctx, zone, serial, target, timeout); err == nil {
			p.stats.notifyAcked.Add(1)
			p.log.Debug("NOTIFY acknowledged", "zone", zone, "serial", serial, "secondary", target.String())
			return
		}
		if ctx.Err() != nil {
			return
		}
		timeout *= 2
	}
	p.stats.notifyFailed.Add(1)
	p.log.Warn("NOTIFY not acknowledged", "zone", zone, "serial", serial, "secondary", target.String(), "attempts", p.cfg.NotifyRetries, "err", err)
}

// sendNotify sends one NOTIFY over UDP and waits up to timeout for a
// NOERROR response with the same ID, checked against NotifyKey.
func (p *Primary) sendNotify(ctx context.Context, zone string, serial uint32, target netip.AddrPort, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", target.String())
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	m := new(dns.Msg)
	m.SetNotify(zone)
	m.Authoritative = true
	// RFC 1996 section 3.7: the answer section may carry the new SOA.
	z := p.zones[zone]
	m.Answer = []dns.RR{z.soa(serial)}
	wire, mac, err := sign(m, p.cfg.NotifyKey, "", p.now().Unix())
	if err != nil {
		return err
	}
	if _, err := conn.Write(wire); err != nil {
		return err
	}
	dc := &dns.Conn{Conn: conn, UDPSize: dns.MaxMsgSize}
	for {
		buf, err := dc.ReadMsgHeader(nil)
		if err != nil {
			return fmt.Errorf("no response to NOTIFY: %w", err)
		}
		r := new(dns.Msg)
		if r.Unpack(buf) != nil || !r.Response || r.Id != m.Id {
			continue // a stray datagram: wait for the response
		}
		if _, err := checkResponse(r, buf, p.cfg.NotifyKey, mac, false); err != nil {
			return err
		}
		if r.Rcode != dns.RcodeSuccess {
			return rcodeError("NOTIFY", r.Rcode)
		}
		return nil
	}
}
