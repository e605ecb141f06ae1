package xfr

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// notifyMsg returns a NOTIFY for zone, signed with key when not nil.
func notifyMsg(t *testing.T, zone string, key *Key, signedAt time.Time) ([]byte, *dns.Msg) {
	t.Helper()
	m := new(dns.Msg)
	m.SetNotify(zone)
	wire, _, err := sign(m, key, "", signedAt.Unix())
	if err != nil {
		t.Fatal(err)
	}
	parsed := new(dns.Msg)
	if err := parsed.Unpack(wire); err != nil {
		t.Fatal(err)
	}
	return wire, parsed
}

func TestNotify(t *testing.T) {
	key := testKey(t, "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=")
	other := testKey(t, "b3RoZXItb3RoZXItb3RoZXItb3RoZXItb3RoZXI=")
	otherName, err := NewKey("another-key", "hmac-sha256", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=")
	if err != nil {
		t.Fatal(err)
	}
	primary := netip.MustParseAddr("192.0.2.53")
	now := time.Now()
	tests := []struct {
		name      string
		zoneKey   *Key // the zone's configured key
		zone      string
		from      string
		signWith  *Key
		signedAt  time.Time
		rcode     int
		tsigError uint16 // in the response's TSIG record
		signed    bool   // the response verifies with the zone's key
		reason    string // "" when accepted
	}{
		{"from the primary", nil, testZone, "192.0.2.53", nil, now, dns.RcodeSuccess, 0, false, ""},
		{"zone name in upper case", nil, "RPZ.Example.", "192.0.2.53", nil, now, dns.RcodeSuccess, 0, false, ""},
		{"from an allowed prefix", nil, testZone, "198.51.100.7", nil, now, dns.RcodeSuccess, 0, false, ""},
		{"mapped IPv4 source", nil, testZone, "::ffff:192.0.2.53", nil, now, dns.RcodeSuccess, 0, false, ""},
		{"signed", key, testZone, "192.0.2.53", key, now, dns.RcodeSuccess, 0, true, ""},
		{"unknown zone", nil, "other.example.", "192.0.2.53", nil, now, dns.RcodeNotAuth, 0, false, RefusedZone},
		{"unlisted address", nil, testZone, "203.0.113.9", nil, now, dns.RcodeRefused, 0, false, RefusedAddress},
		{"unsigned for a zone with a key", key, testZone, "192.0.2.53", nil, now, dns.RcodeRefused, 0, false, RefusedTSIG},
		{"wrong secret", key, testZone, "192.0.2.53", other, now, dns.RcodeNotAuth, dns.RcodeBadSig, false, RefusedTSIG},
		{"unknown key name", key, testZone, "192.0.2.53", otherName, now, dns.RcodeNotAuth, dns.RcodeBadKey, false, RefusedTSIG},
		{"signed without a configured key", nil, testZone, "192.0.2.53", key, now, dns.RcodeNotAuth, dns.RcodeBadKey, false, RefusedTSIG},
		{"signed an hour ago", key, testZone, "192.0.2.53", key, now.Add(-time.Hour), dns.RcodeNotAuth, dns.RcodeBadTime, false, RefusedTSIG},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakePrimary(t)
			sec, _ := newTestSecondary(t, f, tt.zoneKey)
			sec.cfg.Primaries = []netip.AddrPort{netip.AddrPortFrom(primary, 53)}
			sec.cfg.AllowNotify = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}
			h := NewNotifyHandler([]*Secondary{sec}, quietLog(), nil)

			wire, req := notifyMsg(t, tt.zone, tt.signWith, tt.signedAt)
			out := h.Notify(req, wire, netip.MustParseAddr(tt.from))
			resp := new(dns.Msg)
			if err := resp.Unpack(out); err != nil {
				t.Fatalf("Notify returned %d bytes that do not parse: %v", len(out), err)
			}
			if resp.Rcode != tt.rcode || resp.Opcode != dns.OpcodeNotify || resp.Id != req.Id || !resp.Response {
				t.Errorf("response rcode %s opcode %d id %d, want %s to the NOTIFY %d", rcodeName(resp.Rcode), resp.Opcode, resp.Id, rcodeName(tt.rcode), req.Id)
			}
			var gotTSIGError uint16
			if ts := resp.IsTsig(); ts != nil {
				gotTSIGError = ts.Error
			}
			if gotTSIGError != tt.tsigError {
				t.Errorf("response TSIG error %d, want %d", gotTSIGError, tt.tsigError)
			}
			// BADTIME is signed (RFC 8945 section 5.2.3); the dns
			// package verifies no NOTAUTH response, so only the MAC is
			// checked.
			if ts := resp.IsTsig(); tt.tsigError == dns.RcodeBadTime && (ts == nil || ts.MAC == "") {
				t.Errorf("BADTIME response without a MAC")
			}
			if tt.signed {
				if err := dns.TsigVerifyWithProvider(out, tt.zoneKey, req.IsTsig().MAC, false); err != nil {
					t.Errorf("response does not verify with the zone's key: %v", err)
				}
			}

			queued := len(sec.notify) == 1
			stats := h.Stats()
			if tt.reason == "" {
				if !queued || stats.Accepted != 1 {
					t.Errorf("refresh queued %v, %d accepted, want a refresh and 1 accepted", queued, stats.Accepted)
				}
				return
			}
			if queued || stats.Refused[tt.reason] != 1 {
				t.Errorf("refresh queued %v, refused %v, want no refresh and 1 refused for %s", queued, stats.Refused, tt.reason)
			}
		})
	}
}

func TestNotifyRefusalLogIsRateLimited(t *testing.T) {
	f := newFakePrimary(t)
	sec, _ := newTestSecondary(t, f, nil)
	var buf bytes.Buffer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := NewNotifyHandler([]*Secondary{sec}, slog.New(slog.NewTextHandler(&buf, nil)), func() time.Time { return now })
	stranger := netip.MustParseAddr("203.0.113.9")
	for range 5 {
		wire, req := notifyMsg(t, testZone, nil, now)
		h.Notify(req, wire, stranger)
		now = now.Add(time.Second)
	}
	if n := strings.Count(buf.String(), "NOTIFY refused"); n != 1 {
		t.Errorf("%d log lines for 5 refusals within 5s, want 1:\n%s", n, buf.String())
	}
	now = now.Add(refusalLogInterval)
	wire, req := notifyMsg(t, testZone, nil, now)
	h.Notify(req, wire, stranger)
	if !strings.Contains(buf.String(), "not_logged_since=4") {
		t.Errorf("second log line does not count the 4 refusals not logged:\n%s", buf.String())
	}
	if strings.Contains(buf.String(), "203.0.113.9") {
		t.Errorf("the source address is logged at info level:\n%s", buf.String())
	}
	if got := h.Stats().Refused[RefusedAddress]; got != 6 {
		t.Errorf("%d refusals counted, want 6", got)
	}
	if got := sec.State().NotifiesRefused; got != 6 {
		t.Errorf("zone state counts %d refused NOTIFY messages, want 6", got)
	}
}

func TestNotifyMalformed(t *testing.T) {
	h := NewNotifyHandler(nil, quietLog(), nil)
	m := new(dns.Msg)
	m.SetNotify(testZone)
	m.Question[0].Qtype = dns.TypeA
	wire, _ := m.Pack()
	out := h.Notify(m, wire, netip.MustParseAddr("192.0.2.53"))
	resp := new(dns.Msg)
	if err := resp.Unpack(out); err != nil || resp.Rcode != dns.RcodeFormatError {
		t.Errorf("NOTIFY of type A: rcode %d (%v), want FORMERR", resp.Rcode, err)
	}
}

func TestNotifyRefusalDebugLogHasNetworkOnly(t *testing.T) {
	f := newFakePrimary(t)
	sec, _ := newTestSecondary(t, f, nil)
	var buf bytes.Buffer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := NewNotifyHandler([]*Secondary{sec}, log, func() time.Time { return now })
	wire, req := notifyMsg(t, testZone, nil, now)
	h.Notify(req, wire, netip.MustParseAddr("203.0.113.109"))
	if strings.Contains(buf.String(), "203.0.113.109") {
		t.Errorf("the source address is logged at debug level:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), "source_network=203.0.113.0/24") {
		t.Errorf("debug line has no source_network=203.0.113.0/24:\n%s", buf.String())
	}
}
