package xfr

import "testing"

func TestSerialLess(t *testing.T) {
	tests := []struct {
		name string
		a, b uint32
		want bool
	}{
		{"equal", 5, 5, false},
		{"one more", 5, 6, true},
		{"one less", 6, 5, false},
		{"wrap past zero", 0xFFFFFFFF, 0, true},
		{"wrap back", 0, 0xFFFFFFFF, false},
		{"large step forward", 1, 1 + (1<<31 - 1), true},
		{"large step back", 1 + (1<<31 - 1), 1, false},
		{"half the space apart is undefined", 0, 1 << 31, false},
		{"half the space apart, other way", 1 << 31, 0, false},
		{"across the wrap", 0xFFFFFFF0, 0x10, true},
		{"zero to one", 0, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SerialLess(tt.a, tt.b); got != tt.want {
				t.Errorf("SerialLess(%d, %d) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
		})
	}
}
