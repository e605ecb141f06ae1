package rrl

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// FuzzLimiter drives one bucket with responses at times taken from the
// input and checks that no more were sent than the burst plus the rate
// times the time passed, whatever the order and spacing.
func FuzzLimiter(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 1, 0, 0, 0, 5, 0, 100}, uint8(3))
	f.Add(make([]byte, 64), uint8(0))
	f.Fuzz(func(t *testing.T, steps []byte, slip uint8) {
		cfg := Config{Rate: 20, Burst: 5, Slip: int(slip % (MaxSlip + 1)), IPv4Prefix: 24, IPv6Prefix: 56, TableSize: 16}
		l := New(cfg)
		client := netip.MustParseAddr("192.0.2.1")
		now, sent := uint32(0), 0
		for len(steps) >= 2 {
			now += uint32(binary.BigEndian.Uint16(steps) % 300)
			steps = steps[2:]
			if l.Check(client, now) == Send {
				sent++
			}
		}
		if limit := cfg.Burst + int(uint64(now)*uint64(cfg.Rate)/1000); sent > limit {
			t.Fatalf("sent %d responses in %d ms, want at most %d", sent, now, limit)
		}
	})
}
