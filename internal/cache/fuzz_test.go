package cache

import (
	"testing"

	"github.com/miekg/dns"
)

// FuzzTTLOffsets checks that walking any byte string neither panics nor
// returns an offset outside it.
func FuzzTTLOffsets(f *testing.F) {
	m := new(dns.Msg)
	m.SetQuestion("www.example.", dns.TypeA)
	rr, _ := dns.NewRR("www.example. 300 IN A 192.0.2.1")
	m.Answer = []dns.RR{rr}
	wire, _ := m.Pack()
	f.Add(wire)
	f.Add([]byte{0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0xc0})
	f.Fuzz(func(t *testing.T, wire []byte) {
		offs, err := ttlOffsets(wire)
		if err != nil {
			return
		}
		for _, off := range offs {
			if int(off)+4 > len(wire) {
				t.Fatalf("TTL offset %d past the end of %d bytes", off, len(wire))
			}
		}
	})
}
