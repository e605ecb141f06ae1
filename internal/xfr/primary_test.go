package xfr

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// memSource is a Source held in memory.
type memSource struct {
	mu      sync.Mutex
	version uint64
	names   map[string]bool
	zone    string
}

func newMemSource(zone string, names ...string) *memSource {
	s := &memSource{zone: zone, names: map[string]bool{}}
	s.set(names...)
	return s
}

func (s *memSource) set(names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.names = map[string]bool{}
	for _, n := range names {
		s.names[n] = true
	}
	s.version++
}

func (s *memSource) Version() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version
}

func (s *memSource) Records() []dns.RR {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []dns.RR
	for n := range s.names {
		rr, _ := dns.NewRR(n + "." + s.zone + " 60 IN CNAME .")
		out = append(out, rr)
	}
	return out
}

const pubZone = "pub.rpz.test."

// startPrimary runs a primary on a loopback port for the test.
func startPrimary(t *testing.T, cfg PrimaryConfig, src Source) *Primary {
	t.Helper()
	cfg.Listen = netip.MustParseAddrPort("127.0.0.1:0")
	cfg.Zones = []PublishedZone{{Name: pubZone, Source: src, TTL: 60}}
	if cfg.AllowTransfer == nil {
		cfg.AllowTransfer = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	}
	cfg.CheckInterval = time.Hour // the test calls Refresh
	p, err := NewPrimary(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), steppingClock(maxClockWait*time.Second))
	if err != nil {
		t.Fatalf("NewPrimary: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	for i := 0; i < 200 && !p.Addr().IsValid(); i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if !p.Addr().IsValid() {
		t.Fatal("primary did not start listening")
	}
	return p
}

// transferIn runs an AXFR or IXFR (from serial) and returns the records.
func transferIn(t *testing.T, p *Primary, qtype uint16, serial uint32, key *Key) ([]dns.RR, error) {
	t.Helper()
	m := new(dns.Msg)
	if qtype == dns.TypeIXFR {
		m.SetIxfr(pubZone, serial, "localhost.", "hostmaster."+pubZone)
	} else {
		m.SetAxfr(pubZone)
	}
	tr := &dns.Transfer{}
	if key != nil {
		m.SetTsig(key.Name, key.Algorithm, fudge, time.Now().Unix())
		tr.TsigProvider = key
	}
	ch, err := tr.In(m, p.Addr().String())
	if err != nil {
		return nil, err
	}
	var out []dns.RR
	for env := range ch {
		if env.Error != nil {
			return out, env.Error
		}
		out = append(out, env.RR...)
	}
	return out, nil
}

func owners(rrs []dns.RR, rrtype uint16) []string {
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == rrtype {
			out = append(out, strings.TrimSuffix(rr.Header().Name, "."+pubZone))
		}
	}
	return out
}

func TestPrimaryAXFR(t *testing.T) {
	src := newMemSource(pubZone, "bad.example", "evil.example")
	p := startPrimary(t, PrimaryConfig{}, src)
	rrs, err := transferIn(t, p, dns.TypeAXFR, 0, nil)
	if err != nil {
		t.Fatalf("AXFR: %v", err)
	}
	if len(rrs) != 5 {
		t.Fatalf("AXFR returned %d records, want 5 (SOA, NS, 2 CNAME, SOA): %v", len(rrs), rrs)
	}
	if got := strings.Join(owners(rrs, dns.TypeCNAME), ","); got != "bad.example,evil.example" {
		t.Errorf("AXFR CNAME owners = %s, want bad.example,evil.example", got)
	}
	serial, _ := p.Serial(pubZone)
	if soa, ok := rrs[0].(*dns.SOA); !ok || soa.Serial != serial {
		t.Errorf("AXFR first record = %v, want the SOA with serial %d", rrs[0], serial)
	}
}

func TestPrimaryIXFR(t *testing.T) {
	src := newMemSource(pubZone, "bad.example", "evil.example")
	p := startPrimary(t, PrimaryConfig{}, src)
	first, _ := p.Serial(pubZone)

	src.set("bad.example", "new.example")
	p.Refresh(context.Background())
	second, _ := p.Serial(pubZone)
	if !SerialLess(first, second) {
		t.Fatalf("serial after a change = %d, want newer than %d", second, first)
	}
	rrs, err := transferIn(t, p, dns.TypeIXFR, first, nil)
	if err != nil {
		t.Fatalf("IXFR from %d: %v", first, err)
	}
	// SOA(new) SOA(old) -evil SOA(new) +new SOA(new)
	if len(rrs) != 6 {
		t.Fatalf("IXFR returned %d records, want 6: %v", len(rrs), rrs)
	}
	if got := rrs[2].Header().Name; got != "evil.example."+pubZone {
		t.Errorf("IXFR deleted %s, want evil.example.%s", got, pubZone)
	}
	if got := rrs[4].Header().Name; got != "new.example."+pubZone {
		t.Errorf("IXFR added %s, want new.example.%s", got, pubZone)
	}
	if st := p.Stats(); st.IXFR != 1 || st.IXFRFallback != 0 {
		t.Errorf("Stats = %+v, want IXFR 1, IXFRFallback 0", st)
	}

	// A client that is current gets one SOA.
	rrs, err = transferIn(t, p, dns.TypeIXFR, second, nil)
	if err != nil || len(rrs) != 1 {
		t.Errorf("IXFR from the current serial = %d records, %v; want 1 SOA", len(rrs), err)
	}
}

func TestPrimaryIXFRFallsBackToAXFR(t *testing.T) {
	src := newMemSource(pubZone, "a.example")
	p := startPrimary(t, PrimaryConfig{JournalDiffs: 1}, src)
	first, _ := p.Serial(pubZone)
	src.set("b.example")
	p.Refresh(context.Background())
	src.set("c.example")
	p.Refresh(context.Background())

	rrs, err := transferIn(t, p, dns.TypeIXFR, first, nil)
	if err != nil {
		t.Fatalf("IXFR from %d: %v", first, err)
	}
	if got := strings.Join(owners(rrs, dns.TypeCNAME), ","); got != "c.example" || len(rrs) != 4 {
		t.Errorf("IXFR beyond the journal = %v, want the whole zone with c.example only", rrs)
	}
	if st := p.Stats(); st.IXFRFallback != 1 {
		t.Errorf("Stats.IXFRFallback = %d, want 1", st.IXFRFallback)
	}
}

func TestPrimaryNoChangeKeepsSerial(t *testing.T) {
	src := newMemSource(pubZone, "a.example")
	p := startPrimary(t, PrimaryConfig{}, src)
	first, _ := p.Serial(pubZone)
	src.set("a.example") // new version, same records
	p.Refresh(context.Background())
	if got, _ := p.Serial(pubZone); got != first {
		t.Errorf("serial after an unchanged version = %d, want %d", got, first)
	}
}

func TestPrimaryAccess(t *testing.T) {
	key, err := NewKey("xfr-key", "hmac-sha256", "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewKey("xfr-key", "hmac-sha256", "b3RoZXJvdGhlcm90aGVyb3RoZXI=")
	src := newMemSource(pubZone, "a.example")

	t.Run("tsig", func(t *testing.T) {
		p := startPrimary(t, PrimaryConfig{Keys: []*Key{key}, RequireTSIG: true}, src)
		if _, err := transferIn(t, p, dns.TypeAXFR, 0, key); err != nil {
			t.Errorf("AXFR signed with the key: %v", err)
		}
		if _, err := transferIn(t, p, dns.TypeAXFR, 0, nil); err == nil {
			t.Error("unsigned AXFR = nil error, want REFUSED")
		}
		if _, err := transferIn(t, p, dns.TypeAXFR, 0, other); err == nil {
			t.Error("AXFR signed with a wrong secret = nil error, want NOTAUTH")
		}
		if st := p.Stats(); st.RefusedBy["tsig"] != 2 || st.Refused != 2 || st.AXFR != 1 {
			t.Errorf("stats = %+v, want 2 refused for tsig and 1 AXFR", st)
		}
	})
	t.Run("address", func(t *testing.T) {
		cfg := PrimaryConfig{AllowTransfer: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}
		p := startPrimary(t, cfg, src)
		if _, err := transferIn(t, p, dns.TypeAXFR, 0, nil); err == nil {
			t.Error("AXFR from an address not allowed = nil error, want REFUSED")
		}
		if got := p.Stats().RefusedBy["address"]; got != 1 {
			t.Errorf("refused for address = %d, want 1", got)
		}
	})
	t.Run("udp", func(t *testing.T) {
		p := startPrimary(t, PrimaryConfig{}, src)
		m := new(dns.Msg)
		m.SetAxfr(pubZone)
		r, err := dns.Exchange(m, p.Addr().String())
		if err != nil || r.Rcode != dns.RcodeFormatError {
			t.Errorf("AXFR over UDP = %v, %v; want FORMERR", r, err)
		}
		m.SetQuestion(pubZone, dns.TypeSOA)
		r, err = dns.Exchange(m, p.Addr().String())
		if err != nil || len(r.Answer) != 1 || !r.Authoritative {
			t.Errorf("SOA over UDP = %v, %v; want an authoritative SOA", r, err)
		}
		m.SetQuestion("other.test.", dns.TypeSOA)
		r, err = dns.Exchange(m, p.Addr().String())
		if err != nil || r.Rcode != dns.RcodeRefused {
			t.Errorf("SOA of a zone not served = %v, %v; want REFUSED", r, err)
		}
		st := p.Stats()
		if st.RefusedBy["transport"] != 1 || st.RefusedBy["zone"] != 1 || st.SOA != 1 {
			t.Errorf("stats = %+v, want 1 refused for transport, 1 for zone and 1 SOA", st)
		}
		zones := p.Zones()
		if len(zones) != 1 || zones[0].Name != pubZone || zones[0].Records != 1 || zones[0].Serial == 0 {
			t.Errorf("Zones() = %+v, want %s with the 1 record of the source and a serial", zones, pubZone)
		}
	})
}

func TestPrimaryNotify(t *testing.T) {
	key, _ := NewKey("notify-key", "hmac-sha256", "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0")
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	got := make(chan *dns.Msg, 10)
	srv := &dns.Server{PacketConn: pc, TsigProvider: key, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		if w.TsigStatus() != nil {
			t.Errorf("NOTIFY TSIG check: %v", w.TsigStatus())
		}
		got <- r
		if len(got) == 1 {
			return // no response to the first attempt: the primary retries
		}
		m := new(dns.Msg)
		m.SetReply(r)
		t := r.IsTsig()
		m.SetTsig(t.Hdr.Name, t.Algorithm, fudge, time.Now().Unix())
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	defer srv.Shutdown()

	target := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	cfg := PrimaryConfig{Notify: []netip.AddrPort{target}, NotifyKey: key, NotifyTimeout: 100 * time.Millisecond}
	src := newMemSource(pubZone, "a.example")
	p := startPrimary(t, cfg, src)
	deadline := time.After(5 * time.Second)
	for p.Stats().NotifyAcked == 0 {
		select {
		case <-deadline:
			t.Fatalf("no NOTIFY acknowledged; stats %+v", p.Stats())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if n := len(got); n != 2 {
		t.Errorf("NOTIFY attempts = %d, want 2 (one unanswered, one answered)", n)
	}
	m := <-got
	if m.Opcode != dns.OpcodeNotify || m.Question[0].Name != pubZone || m.Question[0].Qtype != dns.TypeSOA {
		t.Errorf("NOTIFY = %v, want opcode NOTIFY for %s SOA", m, pubZone)
	}
}

// steppingClock returns a clock that starts at the current time and moves
// on by step at each reading. Each change the test makes then gets a
// serial at once, instead of waiting for the clock to pass the last one.
// It stays within the 300 s of clock skew that TSIG allows for about 100
// readings.
func steppingClock(step time.Duration) func() time.Time {
	var mu sync.Mutex
	now := time.Now()
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(step)
		return now
	}
}
