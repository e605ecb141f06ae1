package pipeline

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// recordingNotify answers every NOTIFY with NOERROR and keeps the
// source address.
type recordingNotify struct {
	from netip.Addr
	n    int
}

func (r *recordingNotify) Notify(req *dns.Msg, wire []byte, from netip.Addr) []byte {
	r.n, r.from = r.n+1, from
	m := new(dns.Msg)
	m.SetReply(req)
	out, _ := m.Pack()
	return out
}

func notifyQuery(t *testing.T) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetNotify("rpz.example.")
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return wire
}

func TestNotifyWithoutHandler(t *testing.T) {
	p, _, _ := newTestPipeline(t)
	out, _ := p.HandleSlow(notifyQuery(t), true, 0, netip.MustParseAddr("192.0.2.1"))
	r := new(dns.Msg)
	if err := r.Unpack(out); err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeNotImplemented {
		t.Errorf("NOTIFY without a handler: rcode %s, want NOTIMP", dns.RcodeToString[r.Rcode])
	}
}

func TestNotifyGoesToHandler(t *testing.T) {
	p, res, _ := newTestPipeline(t)
	h := &recordingNotify{}
	p.SetNotifyHandler(h)
	from := netip.MustParseAddr("192.0.2.1")
	out, _ := p.HandleSlow(notifyQuery(t), true, 0, from)
	r := new(dns.Msg)
	if err := r.Unpack(out); err != nil {
		t.Fatal(err)
	}
	if h.n != 1 || h.from != from {
		t.Errorf("handler called %d times from %v, want once from %v", h.n, h.from, from)
	}
	if r.Rcode != dns.RcodeSuccess || r.Opcode != dns.OpcodeNotify {
		t.Errorf("response rcode %d opcode %d, want the handler's NOERROR to the NOTIFY", r.Rcode, r.Opcode)
	}
	if res.calls.Load() != 0 {
		t.Errorf("%d resolutions for a NOTIFY, want 0", res.calls.Load())
	}

	// Other opcodes still get NOTIMP.
	m := new(dns.Msg)
	m.SetQuestion("rpz.example.", dns.TypeSOA)
	m.Opcode = dns.OpcodeUpdate
	wire, _ := m.Pack()
	resp, _ := p.HandleSlow(wire, true, 0, from)
	if err := r.Unpack(resp); err != nil || r.Rcode != dns.RcodeNotImplemented {
		t.Errorf("UPDATE: rcode %d (%v), want NOTIMP", r.Rcode, err)
	}
	if h.n != 1 {
		t.Errorf("handler called %d times after an UPDATE, want still once", h.n)
	}
}
