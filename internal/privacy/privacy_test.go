package privacy

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestTruncate(t *testing.T) {
	a := New(Config{Mode: Truncate}, nil)
	tests := []struct{ in, want string }{
		{"192.0.2.77", "192.0.2.0/24"},
		{"::ffff:192.0.2.77", "192.0.2.0/24"},
		{"2001:db8:1234:5678:9abc::1", "2001:db8:1234:5600::/56"},
	}
	for _, tt := range tests {
		if got := a.String(netip.MustParseAddr(tt.in)); got != tt.want {
			t.Errorf("String(%s) = %q, want %q", tt.in, got, tt.want)
		}
	}
	got, ok := a.Addr(netip.MustParseAddr("198.51.100.9"))
	if !ok || got != netip.MustParseAddr("198.51.100.0") {
		t.Errorf("Addr = %v, %v; want 198.51.100.0, true", got, ok)
	}
}

func TestTruncateShorterPrefix(t *testing.T) {
	a := New(Config{Mode: Truncate, IPv4Prefix: 16, IPv6Prefix: 48}, nil)
	if got := a.String(netip.MustParseAddr("192.0.2.77")); got != "192.0.0.0/16" {
		t.Errorf("IPv4: got %q", got)
	}
	if got := a.String(netip.MustParseAddr("2001:db8:1:2::1")); got != "2001:db8:1::/48" {
		t.Errorf("IPv6: got %q", got)
	}
}

func TestHashStableWithinDay(t *testing.T) {
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	a := New(Config{Mode: Hash}, func() time.Time { return now })
	addr := netip.MustParseAddr("192.0.2.77")
	first := a.String(addr)
	if !strings.HasPrefix(first, "h:") || len(first) != 18 {
		t.Fatalf("pseudonym %q: want h: and 16 hex digits", first)
	}
	if strings.Contains(first, "192") {
		t.Errorf("pseudonym %q contains the address", first)
	}
	now = now.Add(13 * time.Hour) // 23:00, same day
	if got := a.String(addr); got != first {
		t.Errorf("same day: got %q, want %q", got, first)
	}
	if other := a.String(netip.MustParseAddr("192.0.2.78")); other == first {
		t.Errorf("two addresses share pseudonym %q", first)
	}
	now = now.Add(2 * time.Hour) // next UTC day: a new key
	if got := a.String(addr); got == first {
		t.Errorf("next day: pseudonym %q did not change", got)
	}
}

func TestHashKeyPerProcess(t *testing.T) {
	addr := netip.MustParseAddr("2001:db8::1")
	a, b := New(Config{Mode: Hash}, nil), New(Config{Mode: Hash}, nil)
	if a.String(addr) == b.String(addr) {
		t.Error("two anonymisers made the same pseudonym: keys are not random")
	}
	got, ok := a.Addr(addr)
	if !ok || !got.Is6() || got == addr {
		t.Errorf("Addr = %v, %v; want another IPv6 address", got, ok)
	}
}

func TestOmit(t *testing.T) {
	a := New(Config{Mode: Omit}, nil)
	addr := netip.MustParseAddr("192.0.2.1")
	if got := a.String(addr); got != "" {
		t.Errorf("String = %q, want empty", got)
	}
	if _, ok := a.Addr(addr); ok {
		t.Error("Addr: ok for omit")
	}
}

func TestValidate(t *testing.T) {
	bad := []Config{
		{Mode: "full"},
		{Mode: Truncate, IPv4Prefix: 32},
		{Mode: Truncate, IPv6Prefix: 64},
		{Mode: Truncate, IPv4Prefix: -1},
	}
	for _, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", c)
		}
	}
	if err := (Config{Mode: Hash}).Validate(); err != nil {
		t.Errorf("hash: %v", err)
	}
}

func BenchmarkPseudonym(b *testing.B) {
	a := New(Config{Mode: Truncate}, nil)
	addr := netip.MustParseAddr("2001:db8::1")
	b.ReportAllocs()
	for b.Loop() {
		a.Pseudonym(addr)
	}
}
