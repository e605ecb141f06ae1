package main

import (
	"testing"

	"github.com/miekg/dns"
)

func TestRespondAnswersQuestion(t *testing.T) {
	q := new(dns.Msg)
	q.SetQuestion("www.example.com.", dns.TypeA)
	q.SetEdns0(1232, false)
	wire, _ := q.Pack()
	resp, ok := respond(wire, nil)
	if !ok {
		t.Fatal("no response to a plain query")
	}
	r := new(dns.Msg)
	if err := r.Unpack(resp); err != nil {
		t.Fatalf("response does not parse: %v", err)
	}
	if r.Id != q.Id || !r.Response || !r.RecursionDesired || !r.RecursionAvailable {
		t.Errorf("header %+v, want the query's ID with QR, RD and RA", r.MsgHdr)
	}
	if len(r.Answer) != 1 || r.Answer[0].Header().Name != "www.example.com." {
		t.Fatalf("answer %v, want one A record for www.example.com.", r.Answer)
	}
	if a, ok := r.Answer[0].(*dns.A); !ok || a.A.String() != "192.0.2.1" {
		t.Errorf("answer %v, want 192.0.2.1", r.Answer[0])
	}
	if len(r.Extra) != 0 {
		t.Errorf("additional section %v, want none", r.Extra)
	}
}

func TestRespondRejectsNonQueries(t *testing.T) {
	q := new(dns.Msg)
	q.SetQuestion("example.", dns.TypeA)
	wire, _ := q.Pack()
	response := append([]byte(nil), wire...)
	response[2] |= 0x80
	for name, pkt := range map[string][]byte{
		"short":     wire[:11],
		"response":  response,
		"truncated": wire[:len(wire)-2],
	} {
		if _, ok := respond(pkt, nil); ok {
			t.Errorf("%s: got a response, want none", name)
		}
	}
}
