package clock

import (
	"testing"
	"time"
)

// FuzzParseFileTime checks that a clock file parses to a UTC time that
// formats back to the same text, or gives an error.
func FuzzParseFileTime(f *testing.F) {
	f.Add([]byte("@2018-01-29 12:00:00\n"))
	f.Add([]byte("@2018-02-30 25:00:00"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		at, err := ParseFileTime(data)
		if err != nil {
			return
		}
		if at.Location() != time.UTC {
			t.Fatalf("time %v is not in UTC", at)
		}
		again, err := ParseFileTime([]byte("@" + at.Format(fileTimeLayout)))
		if err != nil || !again.Equal(at) {
			t.Fatalf("%q parsed to %v, which does not parse back: %v, %v", data, at, again, err)
		}
	})
}
