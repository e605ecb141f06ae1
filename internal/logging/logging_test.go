package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// fakeTimers holds the functions that RepeatLimiter scheduled, to run them
// when a test decides.
type fakeTimers struct {
	delays []time.Duration
	funcs  []func()
}

func (f *fakeTimers) schedule(d time.Duration, fn func()) {
	f.delays = append(f.delays, d)
	f.funcs = append(f.funcs, fn)
}

func (f *fakeTimers) fire() {
	funcs := f.funcs
	f.funcs = nil
	for _, fn := range funcs {
		fn()
	}
}

func newTestLimiter(buf *bytes.Buffer, limit int, now *time.Time) (*slog.Logger, *RepeatLimiter, *fakeTimers) {
	h := NewRepeatLimiter(slog.NewJSONHandler(buf, nil), limit, time.Minute)
	timers := &fakeTimers{}
	h.state.now = func() time.Time { return *now }
	h.state.schedule = timers.schedule
	return slog.New(h), h, timers
}

func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestRepeatLimiterLimitsAndReports(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	log, h, timers := newTestLimiter(&buf, 3, &now)
	component := log.With("component", "server")
	for range 10 {
		component.Warn("client limit reached", "limit", "tcp")
		now = now.Add(time.Second)
	}
	log.Warn("other message")
	log.Info("client limit reached") // another level counts apart

	got := lines(t, &buf)
	if len(got) != 5 {
		t.Fatalf("%d lines before the interval ends, want 3 repeats and 2 others:\n%s", len(got), buf.String())
	}
	if h.Suppressed() != 7 {
		t.Errorf("Suppressed() = %d, want 7", h.Suppressed())
	}
	if len(timers.delays) != 1 || timers.delays[0] != 57*time.Second {
		t.Errorf("report scheduled after %v, want once after 57s (the end of the interval)", timers.delays)
	}

	timers.fire()
	got = lines(t, &buf)
	last := got[len(got)-1]
	if last["msg"] != "log message repeated" || last["message"] != "client limit reached" {
		t.Errorf("report line = %v, want msg \"log message repeated\" about \"client limit reached\"", last)
	}
	if last["repeats_not_logged"] != 7.0 || last["level"] != "WARN" || last["component"] != "server" {
		t.Errorf("report line = %v, want repeats_not_logged 7 at WARN with component server", last)
	}
}

func TestRepeatLimiterNewInterval(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	log, _, timers := newTestLimiter(&buf, 1, &now)
	log.Error("cannot write")
	log.Error("cannot write")
	now = now.Add(time.Minute)
	timers.fire()
	log.Error("cannot write")
	log.Error("cannot write")
	got := lines(t, &buf)
	msgs := []string{}
	for _, l := range got {
		msgs = append(msgs, l["msg"].(string))
	}
	want := []string{"cannot write", "log message repeated", "cannot write"}
	if strings.Join(msgs, "|") != strings.Join(want, "|") {
		t.Errorf("lines %q, want %q", msgs, want)
	}
	if len(timers.funcs) != 1 {
		t.Errorf("%d reports scheduled in the second interval, want 1", len(timers.funcs))
	}
}

func TestNewLevelsAndFormats(t *testing.T) {
	tests := []struct {
		name, level, format string
		wantDebug           bool
		wantPrefix          string
	}{
		{"text info", "info", "text", false, "time="},
		{"json debug", "debug", "json", true, "{"},
		{"unknown level means info", "loud", "text", false, "time="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := New(Config{Level: tt.level, Format: tt.format, RepeatLimit: 2, RepeatInterval: time.Minute}, &buf)
			log.Debug("debug line")
			log.Info("info line")
			if got := strings.Contains(buf.String(), "debug line"); got != tt.wantDebug {
				t.Errorf("debug line written = %v, want %v:\n%s", got, tt.wantDebug, buf.String())
			}
			if !strings.HasPrefix(buf.String(), tt.wantPrefix) {
				t.Errorf("output %q does not start with %q", buf.String(), tt.wantPrefix)
			}
		})
	}
}

func TestRedactAddresses(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http: TLS handshake error from 192.0.2.7:41234: EOF", "http: TLS handshake error from ADDRESS: EOF"},
		{"read tcp [2001:db8::1]:853->[2001:db8::2]:5012: reset", "read tcp ADDRESS->ADDRESS: reset"},
		{"peer fe80::1 gone", "peer ADDRESS gone"},
		{"read tcp 127.0.0.1:853->198.51.100.9:4444: i/o timeout", "read tcp ADDRESS->ADDRESS: i/o timeout"},
		{"from [2001:db8::7]:443: bad", "from ADDRESS: bad"},
		{"remote error: tls: bad certificate", "remote error: tls: bad certificate"},
		{"no address here: timeout", "no address here: timeout"},
	}
	for _, tt := range tests {
		if got := RedactAddresses(tt.in); got != tt.want {
			t.Errorf("RedactAddresses(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestHTTPErrorLog(t *testing.T) {
	var buf bytes.Buffer
	l := HTTPErrorLog(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), "block page connection error")
	l.Printf("http: panic serving 198.51.100.23:5555: boom")
	if strings.Contains(buf.String(), "198.51.100.23") {
		t.Errorf("address logged: %s", buf.String())
	}
	if !strings.Contains(buf.String(), "level=DEBUG") || !strings.Contains(buf.String(), "panic serving ADDRESS") {
		t.Errorf("got %q, want a debug line with the redacted text", buf.String())
	}
}

func TestClientNetwork(t *testing.T) {
	tests := []struct{ in, want string }{
		{"192.0.2.77", "192.0.2.0/24"},
		{"::ffff:192.0.2.77", "192.0.2.0/24"},
		{"2001:db8:1:2ff::9", "2001:db8:1:200::/56"},
	}
	for _, tt := range tests {
		if got := ClientNetwork(netip.MustParseAddr(tt.in)).String(); got != tt.want {
			t.Errorf("ClientNetwork(%s) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
