package events

import (
	"net/netip"
	"testing"
	"time"

	"bulwark/internal/observe"
	"bulwark/internal/privacy"

	"github.com/miekg/dns"
)

func pack(t testing.TB, m *dns.Msg) []byte {
	t.Helper()
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return wire
}

// answer returns a query for qname and a response with a CNAME and the
// given addresses, compressed as servers send them.
func answer(t testing.TB, qname string, addrs ...string) (query, response []byte) {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(qname, dns.TypeA)
	r := new(dns.Msg)
	r.SetReply(q)
	r.Compress = true
	r.Answer = append(r.Answer, &dns.CNAME{
		Hdr: dns.RR_Header{Name: dns.Fqdn(qname), Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 300}, Target: "edge.cdn.example.",
	})
	for i, a := range addrs {
		hdr := dns.RR_Header{Name: "edge.cdn.example.", Class: dns.ClassINET, Ttl: uint32(60 + i)}
		ip := netip.MustParseAddr(a)
		if ip.Is4() {
			hdr.Rrtype = dns.TypeA
			r.Answer = append(r.Answer, &dns.A{Hdr: hdr, A: ip.AsSlice()})
		} else {
			hdr.Rrtype = dns.TypeAAAA
			r.Answer = append(r.Answer, &dns.AAAA{Hdr: hdr, AAAA: ip.AsSlice()})
		}
	}
	return pack(t, q), pack(t, r)
}

func TestParseAnswer(t *testing.T) {
	query, response := answer(t, "WWW.Example.COM.", "192.0.2.1", "2001:db8::1")
	var ev Event
	if !Parse(query, response, &ev) {
		t.Fatal("Parse = false, want true")
	}
	if got := ev.QName(); got != "www.example.com" {
		t.Errorf("QName() = %q, want %q", got, "www.example.com")
	}
	if ev.QType != dns.TypeA || !ev.Answered || ev.Rcode != dns.RcodeSuccess {
		t.Errorf("QType %d Answered %v Rcode %d, want A, true, NOERROR", ev.QType, ev.Answered, ev.Rcode)
	}
	if ev.NAddrs != 2 || ev.Addrs[0] != netip.MustParseAddr("192.0.2.1") || ev.Addrs[1] != netip.MustParseAddr("2001:db8::1") {
		t.Errorf("addresses = %v (%d), want 192.0.2.1 and 2001:db8::1", ev.Addrs[:ev.NAddrs], ev.NAddrs)
	}
	if ev.TTLs[0] != 60 || ev.TTLs[1] != 61 {
		t.Errorf("TTLs = %v, want 60 and 61", ev.TTLs[:2])
	}
	if int(ev.QuerySize) != len(query) || int(ev.ResponseSize) != len(response) {
		t.Errorf("sizes = %d/%d, want %d/%d", ev.QuerySize, ev.ResponseSize, len(query), len(response))
	}
}

func TestParseCases(t *testing.T) {
	nx := new(dns.Msg)
	nx.SetQuestion("x.example.", dns.TypeTXT)
	nxResp := new(dns.Msg)
	nxResp.SetRcode(nx, dns.RcodeNameError)
	many := make([]string, MaxAddrs+3)
	for i := range many {
		many[i] = netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}).String()
	}
	manyQ, manyR := answer(t, "many.example.", many...)
	tests := []struct {
		name         string
		query, resp  []byte
		ok, answered bool
		rcode        uint8
		naddrs, more int
		qname        string
	}{
		{"nxdomain", pack(t, nx), pack(t, nxResp), true, true, dns.RcodeNameError, 0, 0, "x.example"},
		{"no response", pack(t, nx), nil, true, false, 0, 0, 0, "x.example"},
		{"short query", []byte{1, 2, 3}, nil, false, false, 0, 0, 0, ""},
		{"truncated response", pack(t, nx), pack(t, nxResp)[:14], true, true, dns.RcodeNameError, 0, 0, "x.example"},
		{"more addresses than kept", manyQ, manyR, true, true, 0, MaxAddrs, 3, "many.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev Event
			if got := Parse(tt.query, tt.resp, &ev); got != tt.ok {
				t.Fatalf("Parse = %v, want %v", got, tt.ok)
			}
			if !tt.ok {
				return
			}
			if ev.QName() != tt.qname || ev.Answered != tt.answered || ev.Rcode != tt.rcode {
				t.Errorf("got qname %q answered %v rcode %d, want %q %v %d", ev.QName(), ev.Answered, ev.Rcode, tt.qname, tt.answered, tt.rcode)
			}
			if int(ev.NAddrs) != tt.naddrs || int(ev.MoreAddrs) != tt.more {
				t.Errorf("NAddrs %d MoreAddrs %d, want %d %d", ev.NAddrs, ev.MoreAddrs, tt.naddrs, tt.more)
			}
		})
	}
}

func TestParseRejectsPointerInQuestion(t *testing.T) {
	msg := []byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1}
	var ev Event
	if Parse(msg, nil, &ev) {
		t.Error("Parse(question with a pointer) = true, want false")
	}
}

func TestObserverDropsWhenFull(t *testing.T) {
	query, response := answer(t, "a.example.", "192.0.2.1")
	o := NewObserver(2, privacy.New(privacy.Config{Mode: privacy.Hash}, nil))
	q := &observe.Query{Received: time.Unix(100, 0), Client: netip.MustParseAddr("192.0.2.9"), Query: query, Response: response}
	for range 5 {
		o.ClientQuery(q)
	}
	o.ClientQuery(&observe.Query{Query: []byte{0}})
	st := o.Stats()
	if st.Queued != 2 || st.Dropped != 3 || st.Skipped != 1 {
		t.Errorf("Stats() = %+v, want 2 queued, 3 dropped, 1 skipped", st)
	}
	ev := <-o.Events()
	if ev.Client == 0 || !ev.Time.Equal(time.Unix(100, 0)) {
		t.Errorf("event client %x time %v, want a pseudonym and the receive time", ev.Client, ev.Time)
	}
}

func FuzzParse(f *testing.F) {
	query, response := answer(f, "www.example.com.", "192.0.2.1", "2001:db8::1")
	f.Add(query, response)
	f.Add(query, []byte{})
	f.Fuzz(func(t *testing.T, query, response []byte) {
		var ev Event
		if Parse(query, response, &ev) && int(ev.NAddrs) > MaxAddrs {
			t.Fatalf("NAddrs = %d, past MaxAddrs", ev.NAddrs)
		}
	})
}

// BenchmarkClientQuery measures the observer's cost on the query path,
// without the client pseudonym and with it.
func BenchmarkClientQuery(b *testing.B) {
	query, response := answer(b, "www.example.com.", "192.0.2.1", "192.0.2.2", "2001:db8::1")
	for _, bc := range []struct {
		name string
		anon *privacy.Anonymiser
	}{
		{"no pseudonym", nil},
		{"pseudonym", privacy.New(privacy.Config{Mode: privacy.Hash}, nil)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			o := NewObserver(1024, bc.anon)
			q := &observe.Query{Received: time.Now(), Client: netip.MustParseAddr("192.0.2.9"), Query: query, Response: response}
			go func() {
				for range o.Events() {
				}
			}()
			b.ReportAllocs()
			for b.Loop() {
				o.ClientQuery(q)
			}
		})
	}
}
