package config

import (
	"errors"
	"testing"
)

// FuzzParse checks that any input gives a config or a *config.Error, never a
// panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte(defaultYAML))
	f.Add([]byte("server:\n  listen:\n    - address: 127.0.0.1:53\n"))
	f.Add([]byte("cache:\n  max_bytes: 64MiB\n  min_ttl: 5s\n"))
	f.Add([]byte("resolver: [1, 2]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.yaml")
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Parse error %v is %T, want *config.Error", err, err)
			}
			return
		}
		if len(c.Server.Listen) == 0 {
			t.Fatal("valid config without listeners")
		}
	})
}
