package detect

import "testing"

func TestSplit(t *testing.T) {
	tests := []struct {
		name, sub, label, suffix, registered string
	}{
		{"a.b.example.co.uk", "a.b", "example", "co.uk", "example.co.uk"},
		{"www.Example.COM.", "www", "Example", "COM", "Example.COM"},
		{"example.com", "", "example", "com", "example.com"},
		{"khmfxcglt.dyndns.org", "", "khmfxcglt", "dyndns.org", "khmfxcglt.dyndns.org"},
		{"com", "", "", "com", ""},
		{"co.uk.", "", "", "co.uk", ""},
		{"x.y.tunnel.example", "x.y", "tunnel", "example", "tunnel.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Split(tt.name)
			if p.Sub != tt.sub || p.Label != tt.label || p.Suffix != tt.suffix {
				t.Errorf("Split(%q) = %+v, want sub %q label %q suffix %q", tt.name, p, tt.sub, tt.label, tt.suffix)
			}
			if got := p.Registered; got != tt.registered {
				t.Errorf("Split(%q).Registered = %q, want %q", tt.name, got, tt.registered)
			}
		})
	}
}
