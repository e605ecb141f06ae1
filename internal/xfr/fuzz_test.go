package xfr

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// FuzzNotify feeds arbitrary messages to the NOTIFY handler of a zone with
// a key: it must not panic, and it may accept only a message signed with
// the key.
func FuzzNotify(f *testing.F) {
	key, err := NewKey("xfr-key", "hmac-sha256", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=")
	if err != nil {
		f.Fatal(err)
	}
	for _, k := range []*Key{nil, key} {
		m := new(dns.Msg)
		m.SetNotify(testZone)
		wire, _, err := sign(m, k, "", time.Now().Unix())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(wire)
	}
	f.Fuzz(func(t *testing.T, wire []byte) {
		sec := NewSecondary(Config{List: "feed", Zone: testZone, Key: key, File: t.TempDir() + "/feed.rpz",
			Primaries: []netip.AddrPort{testPrimary}, Dialer: newFakePrimary(t)}, quietLog())
		h := NewNotifyHandler([]*Secondary{sec}, quietLog(), nil)
		req := new(dns.Msg)
		if req.Unpack(wire) != nil || req.Opcode != dns.OpcodeNotify {
			return
		}
		// Verifying a TSIG record changes the message in place.
		original := append([]byte(nil), wire...)
		out := h.Notify(req, wire, testPrimary.Addr())
		if h.Stats().Accepted == 0 {
			return
		}
		if t := req.IsTsig(); t == nil || dns.TsigVerifyWithProvider(original, key, "", false) != nil {
			panic("accepted a NOTIFY without a valid signature")
		}
		if out == nil {
			panic("accepted a NOTIFY without a response")
		}
	})
}

// FuzzReadCopy checks that any file content gives a copy of the asked zone
// with its SOA record, or an error, never a panic.
func FuzzReadCopy(f *testing.F) {
	f.Add([]byte("; bulwark zone copy zone=rpz.example. serial=7 transfer=AXFR time=2026-01-02T03:04:05Z primary=127.0.0.1:53\n" +
		"rpz.example. 300 IN SOA ns. h. 7 60 60 60 60\nbad.rpz.example. 300 IN CNAME .\n"))
	f.Add([]byte("; bulwark zone copy zone=rpz.example.\n\n"))
	f.Add([]byte(""))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "copy.zone")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := ReadCopy(path, "rpz.example.")
		if err != nil {
			return
		}
		if c.Zone != "rpz.example." || c.SOA == nil {
			t.Fatalf("copy of zone %q with SOA %v, want rpz.example. and its SOA", c.Zone, c.SOA)
		}
	})
}
