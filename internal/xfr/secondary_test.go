package xfr

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func timeNow() time.Time { return time.Now() }

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// Versions of the test zone. Version 2 deletes b, adds e, turns a from
// NXDOMAIN to PASSTHRU (an owner changing action), changes the local data
// of d and the TTL of f.
const (
	zoneV1 = `
@ NS ns.rpz.example.
a CNAME .
b CNAME .
*.c CNAME *.
d A 192.0.2.1
d TXT "local data"
f 300 CNAME rpz-drop.
32.1.2.0.192.rpz-ip CNAME .
`
	zoneV2 = `
@ NS ns.rpz.example.
a CNAME rpz-passthru.
*.c CNAME *.
d A 192.0.2.2
d TXT "local data"
e CNAME .
f 600 CNAME rpz-drop.
32.1.2.0.192.rpz-ip CNAME .
`
	// zoneV3 adds g, which version 4 deletes again, and deletes c,
	// which version 4 adds back.
	zoneV3 = `
@ NS ns.rpz.example.
a CNAME rpz-passthru.
d A 192.0.2.2
d TXT "local data"
e CNAME .
f 600 CNAME rpz-drop.
g CNAME .
32.1.2.0.192.rpz-ip CNAME .
`
	zoneV4 = `
@ NS ns.rpz.example.
a CNAME rpz-passthru.
*.c CNAME *.
d A 192.0.2.2
d TXT "local data"
e CNAME .
f 600 CNAME rpz-drop.
h CNAME rpz-tcp-only.
32.1.2.0.192.rpz-ip CNAME .
`
)

var testPrimary = netip.MustParseAddrPort("192.0.2.53:53")

// newTestSecondary returns a Secondary of the fake's zone with its copy in
// a temporary directory, and counts its loads.
func newTestSecondary(t *testing.T, f *fakePrimary, key *Key, primaries ...netip.AddrPort) (*Secondary, *int) {
	t.Helper()
	if len(primaries) == 0 {
		primaries = []netip.AddrPort{testPrimary}
	}
	loads := new(int)
	s := NewSecondary(Config{
		List: "feed", Zone: testZone, Primaries: primaries, Key: key,
		File:   filepath.Join(t.TempDir(), "feed.rpz"),
		Loaded: func() { *loads++ }, Dialer: f,
	}, quietLog())
	return s, loads
}

func refresh(t *testing.T, s *Secondary) {
	t.Helper()
	if err := s.Refresh(context.Background()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
}

func TestAXFRThenCondensedIXFR(t *testing.T) {
	f := newFakePrimary(t)
	f.setVersion(1, zoneV1)
	s, loads := newTestSecondary(t, f, nil)

	refresh(t, s)
	if got := f.qtypes(); got != "SOA AXFR" {
		t.Errorf("first refresh sent %q, want SOA AXFR", got)
	}
	f.wantVersion(t, s.cfg.File, 1)
	st := s.State()
	if st.Transfer != TypeAXFR || st.Serial != 1 || !st.HasCopy || st.Records != 9 {
		t.Errorf("state %+v, want AXFR serial 1 with 9 records", st)
	}

	f.setVersion(2, zoneV2)
	refresh(t, s)
	if got := f.qtypes(); got != "SOA IXFR" {
		t.Errorf("second refresh sent %q, want SOA IXFR", got)
	}
	f.wantVersion(t, s.cfg.File, 2)
	if st := s.State(); st.Transfer != TypeIXFR || st.Serial != 2 {
		t.Errorf("state %+v, want IXFR serial 2", st)
	}

	refresh(t, s)
	if got := f.qtypes(); got != "SOA" {
		t.Errorf("refresh of a current copy sent %q, want only SOA", got)
	}
	if *loads != 2 {
		t.Errorf("%d loads, want 2 (one per new copy)", *loads)
	}
}

func TestNonCondensedIXFR(t *testing.T) {
	f := newFakePrimary(t)
	f.setVersion(1, zoneV1)
	s, _ := newTestSecondary(t, f, nil)
	refresh(t, s)
	f.setVersion(2, zoneV2)
	f.setVersion(3, zoneV3)
	f.setVersion(4, zoneV4)
	f.ixfr = func(from uint32) [][]dns.RR {
		// One sequence per version, split over two messages.
		rrs := f.sequences(from, 2, 3, 4)
		return [][]dns.RR{rrs[:5], rrs[5:]}
	}
	f.qtypes()
	refresh(t, s)
	if got := f.qtypes(); got != "SOA IXFR" {
		t.Errorf("refresh sent %q, want SOA IXFR", got)
	}
	f.wantVersion(t, s.cfg.File, 4)
	if st := s.State(); st.Transfer != TypeIXFR {
		t.Errorf("transfer %q, want IXFR", st.Transfer)
	}
}

func TestIXFRAnsweredAsAXFR(t *testing.T) {
	f := newFakePrimary(t)
	f.setVersion(1, zoneV1)
	s, _ := newTestSecondary(t, f, nil)
	refresh(t, s)
	f.setVersion(2, zoneV2)
	f.ixfr = func(uint32) [][]dns.RR { return f.axfr() }
	f.qtypes()
	refresh(t, s)
	if got := f.qtypes(); got != "SOA IXFR" {
		t.Errorf("refresh sent %q, want SOA IXFR", got)
	}
	f.wantVersion(t, s.cfg.File, 2)
	if st := s.State(); st.Transfer != TypeIXFRAsAll {
		t.Errorf("transfer %q, want %q", st.Transfer, TypeIXFRAsAll)
	}
}

func TestIXFRFallsBackToAXFR(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *fakePrimary)
	}{
		{"IXFR not implemented", func(f *fakePrimary) { f.ixfrRcode = dns.RcodeNotImplemented }},
		{"deletes a record the copy lacks", func(f *fakePrimary) {
			f.ixfr = func(from uint32) [][]dns.RR {
				rrs := f.condensed(from)
				extra, _ := dns.NewRR("zz.rpz.example. 300 IN CNAME .")
				// After the new SOA and the old SOA that opens the
				// deletions.
				return [][]dns.RR{append(rrs[:2:2], append([]dns.RR{extra}, rrs[2:]...)...)}
			}
		}},
		{"broken sequence", func(f *fakePrimary) {
			f.ixfr = func(from uint32) [][]dns.RR {
				return [][]dns.RR{{soaRecord(2), soaRecord(from), soaRecord(7), soaRecord(9), soaRecord(2)}}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakePrimary(t)
			f.setVersion(1, zoneV1)
			s, _ := newTestSecondary(t, f, nil)
			refresh(t, s)
			f.setVersion(2, zoneV2)
			tt.setup(f)
			f.qtypes()
			refresh(t, s)
			if got := f.qtypes(); got != "SOA IXFR AXFR" {
				t.Errorf("refresh sent %q, want SOA IXFR AXFR", got)
			}
			f.wantVersion(t, s.cfg.File, 2)
			if st := s.State(); st.Transfer != TypeAXFR || st.Error != "" {
				t.Errorf("state %+v, want AXFR without error", st)
			}
		})
	}
}

func TestSerialWrapAsksIXFR(t *testing.T) {
	f := newFakePrimary(t)
	f.setVersion(0xFFFFFFFE, zoneV1)
	s, _ := newTestSecondary(t, f, nil)
	refresh(t, s)
	f.setVersion(3, zoneV2)
	f.qtypes()
	refresh(t, s)
	if got := f.qtypes(); got != "SOA IXFR" {
		t.Errorf("refresh across the wrap sent %q, want SOA IXFR", got)
	}
	f.wantVersion(t, s.cfg.File, 3)

	// A primary whose serial is behind the copy's is not followed.
	f.setVersion(0xFFFFFFF0, zoneV1)
	refresh(t, s)
	if got := f.qtypes(); got != "SOA" {
		t.Errorf("refresh from an older primary sent %q, want only SOA", got)
	}
	f.wantVersion(t, s.cfg.File, 3)
}

func TestRestartContinuesWithIXFR(t *testing.T) {
	f := newFakePrimary(t)
	f.setVersion(1, zoneV1)
	s, _ := newTestSecondary(t, f, nil)
	refresh(t, s)

	again := NewSecondary(s.cfg, quietLog())
	if st := again.State(); !st.HasCopy || st.Serial != 1 || st.Transfer != TypeAXFR {
		t.Fatalf("state after a restart %+v, want the copy of serial 1 from an AXFR", st)
	}
	f.setVersion(2, zoneV2)
	f.qtypes()
	refresh(t, again)
	if got := f.qtypes(); got != "SOA IXFR" {
		t.Errorf("refresh after a restart sent %q, want SOA IXFR", got)
	}
	f.wantVersion(t, s.cfg.File, 2)
}

func TestForeignFileGetsAXFR(t *testing.T) {
	f := newFakePrimary(t)
	f.setVersion(1, zoneV1)
	s, _ := newTestSecondary(t, f, nil)
	foreign := "$ORIGIN rpz.example.\n@ SOA ns admin 1 3600 600 86400 60\na CNAME .\n"
	if err := os.WriteFile(s.cfg.File, []byte(foreign), 0o644); err != nil {
		t.Fatal(err)
	}
	again := NewSecondary(s.cfg, quietLog())
	if again.State().HasCopy {
		t.Fatal("a file without the header line is taken as a copy")
	}
	refresh(t, again)
	if got := f.qtypes(); got != "SOA AXFR" {
		t.Errorf("refresh sent %q, want SOA AXFR", got)
	}
	f.wantVersion(t, s.cfg.File, 1)
}

func testKey(t *testing.T, secret string) *Key {
	t.Helper()
	k, err := NewKey("xfr-key", "hmac-sha256", secret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestTSIGSignsTransfers(t *testing.T) {
	key := testKey(t, "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=")
	f := newFakePrimary(t)
	f.key = key
	f.setVersion(1, zoneV1)
	s, _ := newTestSecondary(t, f, key)
	refresh(t, s)
	f.setVersion(2, zoneV2)
	refresh(t, s)
	f.wantVersion(t, s.cfg.File, 2)
}

func TestTSIGErrors(t *testing.T) {
	good := testKey(t, "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=")
	other := testKey(t, "b3RoZXItb3RoZXItb3RoZXItb3RoZXItb3RoZXI=")
	sha1Key, err := NewKey("xfr-key", "hmac-sha1", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		primary   *Key // the primary's key
		signWith  *Key // the key the primary signs responses with, if another
		secondary *Key
		want      string
	}{
		{"wrong secret", good, nil, other, "the primary rejected the TSIG signature: BADSIG"},
		{"primary signs with another secret", good, other, good, "TSIG check of the response failed: dns: bad signature"},
		{"unsigned response", nil, nil, good, "TSIG check of the response failed: the response is not signed"},
		{"weaker algorithm", good, sha1Key, good, "TSIG record names another key or algorithm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakePrimary(t)
			f.setVersion(1, zoneV1)
			s, _ := newTestSecondary(t, f, nil)
			refresh(t, s) // a copy made without TSIG

			f.key, f.wrongKey = tt.primary, tt.signWith
			signed, loads := newTestSecondary(t, f, tt.secondary)
			signed.cfg.File = s.cfg.File
			signed = NewSecondary(signed.cfg, quietLog())
			f.setVersion(2, zoneV2)
			err := signed.Refresh(context.Background())
			var tsigErr *TSIGError
			if !errors.As(err, &tsigErr) {
				t.Fatalf("Refresh = %v, want a TSIGError", err)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "primary 192.0.2.53:53") {
				t.Errorf("Refresh = %q, want the primary and %q", err, tt.want)
			}
			st := signed.State()
			if st.Error != err.Error() || st.LastFailure.IsZero() {
				t.Errorf("state error %q at %v, want %q", st.Error, st.LastFailure, err)
			}
			if *loads != 0 {
				t.Errorf("%d loads after a failed refresh, want 0", *loads)
			}
			f.wantVersion(t, s.cfg.File, 1) // the old copy stays
		})
	}
}

func TestSecondPrimaryUsed(t *testing.T) {
	f := newFakePrimary(t)
	f.setVersion(1, zoneV1)
	second := netip.MustParseAddrPort("192.0.2.54:53")
	s, _ := newTestSecondary(t, f, nil, testPrimary, second)
	s.client.dialer = dialerFunc(func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == testPrimary.String() {
			return nil, errors.New("connection refused")
		}
		return f.DialContext(ctx, network, addr)
	})
	refresh(t, s)
	if st := s.State(); st.Primary != second.String() || st.Error != "" {
		t.Errorf("state %+v, want the copy from %s without error", st, second)
	}
}

func TestRefreshIntervals(t *testing.T) {
	soa := soaRecord(1)
	tests := []struct {
		name   string
		soa    func() *dns.SOA
		failed bool
		want   time.Duration
	}{
		{"refresh after success", func() *dns.SOA { return soa }, false, time.Hour},
		{"retry after failure", func() *dns.SOA { return soa }, true, 10 * time.Minute},
		{"no copy yet", func() *dns.SOA { return nil }, true, retryWithoutCopy},
		{"refresh too short", func() *dns.SOA { s := *soa; s.Refresh = 0; return &s }, false, minInterval},
		{"retry too long", func() *dns.SOA { s := *soa; s.Retry = 1 << 30; return &s }, true, maxInterval},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nextInterval(tt.soa(), tt.failed); got != tt.want {
				t.Errorf("nextInterval(failed=%v) = %v, want %v", tt.failed, got, tt.want)
			}
		})
	}
}

func TestExpiredCopyKeepsServing(t *testing.T) {
	f := newFakePrimary(t)
	f.setVersion(1, zoneV1)
	s, _ := newTestSecondary(t, f, nil)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.cfg.Now = func() time.Time { return now }
	refresh(t, s)
	if st := s.State(); st.Expires != now.Add(24*time.Hour) {
		t.Errorf("expires %v, want a day after the refresh (SOA expire 86400)", st.Expires)
	}

	f.rcode = dns.RcodeRefused
	f.mu.Lock()
	f.versions[2] = zoneRecords(t, 2, zoneV2)
	f.current = 2
	f.mu.Unlock()
	now = now.Add(23 * time.Hour)
	if err := s.Refresh(context.Background()); err == nil {
		t.Fatal("Refresh = nil error, want the REFUSED transfer")
	}
	if s.State().Expired {
		t.Error("copy expired before the SOA expire timer")
	}
	now = now.Add(2 * time.Hour)
	s.Refresh(context.Background())
	st := s.State()
	if !st.Expired || !strings.Contains(st.Error, "REFUSED") {
		t.Errorf("state %+v, want expired with the REFUSED error", st)
	}
	f.wantVersion(t, s.cfg.File, 1)

	f.rcode = 0
	refresh(t, s)
	if st := s.State(); st.Expired || st.Serial != 2 {
		t.Errorf("state %+v, want serial 2, no longer expired", st)
	}
}

func TestRunRefreshesOnNotify(t *testing.T) {
	f := newFakePrimary(t)
	f.setVersion(1, zoneV1)
	s, _ := newTestSecondary(t, f, nil)
	loaded := make(chan uint32, 4)
	s.cfg.Loaded = func() { loaded <- s.State().Serial }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		s.Run(ctx)
		close(done)
	}()
	defer func() {
		cancel()
		<-done
	}()

	wantLoad := func(serial uint32) {
		t.Helper()
		select {
		case got := <-loaded:
			if got != serial {
				t.Fatalf("loaded serial %d, want %d", got, serial)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("serial %d not loaded within 5s", serial)
		}
	}
	wantLoad(1) // the refresh at start
	f.setVersion(2, zoneV2)
	s.Notify()
	wantLoad(2)
	f.wantVersion(t, s.cfg.File, 2)
	if st := s.State(); st.NextRefresh.IsZero() || st.Transfer != TypeIXFR {
		t.Errorf("state %+v, want an IXFR and a next refresh", st)
	}
}
