package indicator

import (
	"testing"
	"time"
)

func TestCanonical(t *testing.T) {
	cases := []struct {
		in, want string
		ok       bool
	}{
		{"Bad.Example.COM", "bad.example.com.", true},
		{"bad.example.com.", "bad.example.com.", true},
		{" x.example ", "x.example.", true},
		{"example", "", false},
		{".", "", false},
		{"a..b", "", false},
		{"*.example.com", "", false},
		{"a b.example", "", false},
		{"0.\xaf\r.", "", false},
		{"caf\xc3\xa9.example", "", false},
		{"_dmarc.example.com", "_dmarc.example.com.", true},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := Canonical(c.in)
			if (err == nil) != c.ok || got != c.want {
				t.Errorf("Canonical(%q) = %q, %v; want %q, ok %v", c.in, got, err, c.want, c.ok)
			}
		})
	}
}

func TestExpired(t *testing.T) {
	now := time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC)
	in := Indicator{}
	if in.Expired(now) {
		t.Error("Expired with no ValidUntil = true, want false")
	}
	in.ValidUntil = now
	if !in.Expired(now) {
		t.Error("Expired at ValidUntil = false, want true")
	}
	in.ValidUntil = now.Add(time.Second)
	if in.Expired(now) {
		t.Error("Expired before ValidUntil = true, want false")
	}
}
