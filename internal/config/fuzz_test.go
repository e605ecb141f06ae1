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

// FuzzParseRootHints checks that any hints text gives servers that each
// have an address, or an error, never a panic.
func FuzzParseRootHints(f *testing.F) {
	f.Add(". 3600000 NS a.root-servers.net.\na.root-servers.net. 3600000 A 198.41.0.4\n")
	f.Add(". NS x.\nx. AAAA 2001:db8::1\n$ORIGIN .\n")
	f.Add("$INCLUDE /etc/passwd\n")
	f.Fuzz(func(t *testing.T, text string) {
		servers, err := ParseRootHints(text)
		if err != nil {
			return
		}
		if len(servers) == 0 {
			t.Fatal("no error and no server")
		}
		for _, s := range servers {
			if len(s.Addrs) == 0 {
				t.Fatalf("server %s without an address", s.Name)
			}
		}
	})
}
