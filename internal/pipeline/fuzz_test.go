package pipeline

import (
	"encoding/hex"
	"testing"

	"github.com/miekg/dns"
)

// FuzzHandle feeds arbitrary packets through both paths: nothing may panic,
// and every response must echo the query's ID and parse, unless it is a bare
// header.
func FuzzHandle(f *testing.F) {
	for _, h := range []string{
		"1234010000020000000000000161076578616d706c6500000100010162076578616d706c650000010001",
		"23450000000000000000000100002904d000000000000c000a00080102030405060708",
		"345678000001000000000000076578616d706c650000010001",
		"456701000001000000000002076578616d706c65000001000100002904d000000000000000002904d0000000000000",
		"567801000001000000000001076578616d706c65000001000100002904d0000100000000",
		"abcd01000001000000000000c00c00010001",
	} {
		pkt, _ := hex.DecodeString(h)
		f.Add(pkt)
	}
	m := new(dns.Msg)
	m.SetQuestion("www.example.", dns.TypeA)
	m.SetEdns0(1232, true)
	wire, _ := m.Pack()
	f.Add(wire)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		p, _, _ := newTestPipeline(t)
		resp := handle(p, pkt, true)
		if resp == nil {
			return
		}
		if len(resp) < 12 || resp[0] != pkt[0] || resp[1] != pkt[1] {
			t.Fatalf("response %x does not echo the ID of %x", resp, pkt)
		}
		if len(resp) > 12 {
			if err := new(dns.Msg).Unpack(resp); err != nil {
				t.Fatalf("response %x to %x does not parse: %v", resp, pkt, err)
			}
		}
		if len(resp) > 1232 {
			t.Fatalf("UDP response of %d bytes, want at most 1232", len(resp))
		}
	})
}
