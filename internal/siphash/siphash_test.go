package siphash

import (
	"encoding/binary"
	"testing"
)

// TestPaperVector checks the test vector of the SipHash paper, appendix A:
// key 00 01 .. 0f and message 00 01 .. 0e.
func TestPaperVector(t *testing.T) {
	var key [16]byte
	for i := range key {
		key[i] = byte(i)
	}
	msg := make([]byte, 15)
	for i := range msg {
		msg[i] = byte(i)
	}
	k0, k1 := binary.LittleEndian.Uint64(key[:8]), binary.LittleEndian.Uint64(key[8:])
	if got, want := Sum64(k0, k1, msg), uint64(0xa129ca6149be45e5); got != want {
		t.Errorf("SipHash-2-4 = %#x, want %#x", got, want)
	}
}

func BenchmarkSum64Address(b *testing.B) {
	msg := make([]byte, 16)
	b.ReportAllocs()
	for b.Loop() {
		Sum64(1, 2, msg)
	}
}
