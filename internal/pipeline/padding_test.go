package pipeline

import (
	"testing"

	"github.com/miekg/dns"
)

func paddedQuery(t testing.TB, pad bool) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("www.example.", dns.TypeA)
	m.SetEdns0(1232, true)
	if pad {
		opt := m.IsEdns0()
		opt.Option = append(opt.Option, &dns.EDNS0_PADDING{Padding: make([]byte, 20)})
	}
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return wire
}

func response(t testing.TB, query []byte, answers int) []byte {
	t.Helper()
	q := new(dns.Msg)
	if err := q.Unpack(query); err != nil {
		t.Fatal(err)
	}
	m := new(dns.Msg)
	m.SetReply(q)
	for i := range answers {
		rr, _ := dns.NewRR("www.example. 300 IN A 192.0.2." + string(rune('1'+i%9)))
		m.Answer = append(m.Answer, rr)
	}
	m.SetEdns0(1232, true)
	m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_EDE{InfoCode: 15, ExtraText: "x"})
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return wire
}

func TestPadToBlock(t *testing.T) {
	q := paddedQuery(t, true)
	for _, answers := range []int{0, 1, 5, 30} {
		resp := response(t, q, answers)
		padded := Pad(resp, q, PaddingBlock)
		if len(padded)%PaddingBlock != 0 {
			t.Errorf("%d answers: padded length %d is not a multiple of %d", answers, len(padded), PaddingBlock)
		}
		m := new(dns.Msg)
		if err := m.Unpack(padded); err != nil {
			t.Fatalf("%d answers: padded response does not parse: %v", answers, err)
		}
		if len(m.Answer) != answers {
			t.Errorf("%d answers: %d after padding", answers, len(m.Answer))
		}
		var hasEDE, hasPad bool
		for _, o := range m.IsEdns0().Option {
			switch o.(type) {
			case *dns.EDNS0_EDE:
				hasEDE = true
			case *dns.EDNS0_PADDING:
				hasPad = true
			}
		}
		if !hasEDE || !hasPad {
			t.Errorf("%d answers: EDE %v, padding %v; want both", answers, hasEDE, hasPad)
		}
	}
}

func TestPadOnlyWhenAsked(t *testing.T) {
	q := paddedQuery(t, false)
	resp := response(t, q, 1)
	if got := Pad(resp, q, PaddingBlock); len(got) != len(resp) {
		t.Errorf("a query without padding got a padded response (%d bytes, was %d)", len(got), len(resp))
	}
	m := new(dns.Msg)
	m.SetQuestion("www.example.", dns.TypeA)
	plain, _ := m.Pack()
	if got := Pad(plain, paddedQuery(t, true), PaddingBlock); len(got) != len(plain) {
		t.Error("a response without OPT was changed")
	}
	if got := Pad([]byte{1, 2, 3}, q, PaddingBlock); len(got) != 3 {
		t.Error("a malformed response was changed")
	}
}

func FuzzPad(f *testing.F) {
	f.Add([]byte{}, []byte{})
	q := paddedQuery(f, true)
	f.Add(response(f, q, 3), q)
	f.Fuzz(func(t *testing.T, resp, query []byte) {
		out := Pad(append([]byte(nil), resp...), query, PaddingBlock)
		if len(out) != len(resp) && len(out)%PaddingBlock != 0 {
			t.Fatalf("padded to %d bytes", len(out))
		}
	})
}

func TestMinTTL(t *testing.T) {
	m := new(dns.Msg)
	m.SetQuestion("www.example.", dns.TypeA)
	a, _ := dns.NewRR("www.example. 300 IN A 192.0.2.1")
	b, _ := dns.NewRR("www.example. 120 IN A 192.0.2.2")
	soa, _ := dns.NewRR("example. 60 IN SOA ns. host. 1 2 3 4 5")
	m.Answer = []dns.RR{a, b}
	wire, _ := m.Pack()
	if ttl, ok := MinTTL(wire); !ok || ttl != 120 {
		t.Errorf("MinTTL of two answers = %d, %v; want 120", ttl, ok)
	}
	m.Answer, m.Ns = nil, []dns.RR{soa}
	wire, _ = m.Pack()
	if ttl, ok := MinTTL(wire); !ok || ttl != 60 {
		t.Errorf("MinTTL of a negative answer = %d, %v; want 60", ttl, ok)
	}
	m.Ns = nil
	wire, _ = m.Pack()
	if _, ok := MinTTL(wire); ok {
		t.Error("MinTTL of a response without records reported one")
	}
	if _, ok := MinTTL(wire[:15]); ok {
		t.Error("MinTTL of a truncated message reported one")
	}
}
