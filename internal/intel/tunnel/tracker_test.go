package tunnel

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// feed sends n queries for names built by name, spread evenly over span.
func feed(tr *Tracker, n int, span time.Duration, qtype uint16, bytes int, name func(i int) string) {
	for i := range n {
		tr.Observe(Observation{
			Time:  epoch.Add(span * time.Duration(i) / time.Duration(n)),
			QName: name(i), QType: qtype, Bytes: bytes,
		})
	}
}

func TestTrackerScores(t *testing.T) {
	tests := []struct {
		name      string
		n         int
		qtype     uint16
		bytes     int
		qname     func(i int) string
		malicious bool
		reason    string
	}{
		{
			name: "iodine-like upstream", n: 600, qtype: qtypeNULL, bytes: 700,
			qname: func(i int) string {
				return fmt.Sprintf("p%07dx%s.t.example", i, strings.Repeat("aB3kq9Zt", 6))
			},
			malicious: true, reason: "100% of them encoded",
		},
		{
			name: "short polls with unique names", n: 400, qtype: qtypeTXT, bytes: 200,
			qname:     func(i int) string { return fmt.Sprintf("r%05d.t.example", 10000+i*7) },
			malicious: true, reason: "400 distinct names per minute",
		},
		{
			name: "popular site", n: 2000, qtype: 1, bytes: 120,
			qname: func(i int) string {
				return []string{"www.example.com", "example.com", "img.example.com", "api.example.com"}[i%4]
			},
			malicious: false, reason: "4 distinct names per minute",
		},
		{
			name: "mail checks", n: 300, qtype: qtypeTXT, bytes: 400,
			qname: func(i int) string {
				return []string{"_dmarc.example.com", "example.com", "s1._domainkey.example.com"}[i%3]
			},
			malicious: false, reason: "100% TXT or NULL",
		},
		{
			name: "too few queries", n: 5, qtype: qtypeTXT, bytes: 900,
			qname:     func(i int) string { return fmt.Sprintf("%d%s.t.example", i, strings.Repeat("Zq9+", 12)) },
			malicious: false, reason: "fewer than 10 to score",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTracker(TrackerConfig{})
			feed(tr, tt.n, 50*time.Second, tt.qtype, tt.bytes, tt.qname)
			registered := "t.example"
			if strings.HasSuffix(tt.qname(0), "example.com") {
				registered = "example.com"
			}
			r := tr.Score(registered, epoch.Add(time.Minute))
			if r.Malicious != tt.malicious {
				t.Errorf("Score(%q) = %.2f malicious %v, want %v: %s", registered, r.Score, r.Malicious, tt.malicious, r.Reason)
			}
			if !strings.Contains(r.Reason, tt.reason) {
				t.Errorf("Score(%q).Reason = %q, want it to contain %q", registered, r.Reason, tt.reason)
			}
		})
	}
}

func TestTrackerWindowsAndExpiry(t *testing.T) {
	tr := NewTracker(TrackerConfig{})
	feed(tr, 400, 50*time.Second, qtypeTXT, 200, func(i int) string { return fmt.Sprintf("r%05d.t.example", i) })

	// The finished window still scores while the next one fills.
	tr.Observe(Observation{Time: epoch.Add(70 * time.Second), QName: "r1.t.example", QType: qtypeTXT})
	if r := tr.Score("t.example", epoch.Add(75*time.Second)); !r.Malicious {
		t.Errorf("Score in the next window = %.2f (%s), want malicious from the previous window", r.Score, r.Reason)
	}

	// Two idle windows later the domain is gone.
	later := epoch.Add(70*time.Second + 2*time.Minute)
	if r := tr.Score("t.example", later); r.Score != 0 {
		t.Errorf("Score after two idle windows = %.2f, want 0", r.Score)
	}
	if n := tr.Expire(later); n != 1 {
		t.Errorf("Expire = %d, want 1", n)
	}
}

func TestTrackerPartialWindow(t *testing.T) {
	tests := []struct {
		name      string
		n         int
		span      time.Duration
		scoreAt   time.Duration
		malicious bool
		reason    string
	}{
		// 40 names in 5 s would be 480 a minute if extrapolated, but
		// the window contains 40.
		{name: "burst of five seconds", n: 40, span: 5 * time.Second, scoreAt: 5 * time.Second,
			malicious: false, reason: " 40 distinct names per minute"},
		{name: "same burst scored later", n: 40, span: 5 * time.Second, scoreAt: 50 * time.Second,
			malicious: false, reason: " 40 distinct names per minute"},
		// A partial window that already contains a full window's worth
		// of names still scores.
		{name: "tunnel within ten seconds", n: 400, span: 10 * time.Second, scoreAt: 10 * time.Second,
			malicious: true, reason: " 400 distinct names per minute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTracker(TrackerConfig{})
			feed(tr, tt.n, tt.span, qtypeTXT, 200, func(i int) string { return fmt.Sprintf("r%05d.t.example", i) })
			r := tr.Score("t.example", epoch.Add(tt.scoreAt))
			if r.Malicious != tt.malicious {
				t.Errorf("Score(%q) after %d names in %s = %.2f malicious %v, want %v: %s",
					"t.example", tt.n, tt.span, r.Score, r.Malicious, tt.malicious, r.Reason)
			}
			if !strings.Contains(r.Reason, tt.reason) {
				t.Errorf("Score(%q).Reason = %q, want it to contain %q", "t.example", r.Reason, tt.reason)
			}
		})
	}
}

func TestTrackerBounds(t *testing.T) {
	tr := NewTracker(TrackerConfig{MaxDomains: 2, MaxNames: 50})
	for i, d := range []string{"a.example", "b.example", "c.example"} {
		tr.Observe(Observation{Time: epoch.Add(time.Duration(i) * time.Second), QName: "x." + d})
	}
	if got := tr.Dropped(); got != 1 {
		t.Errorf("Dropped = %d, want 1 with MaxDomains 2 and three domains", got)
	}

	feed(tr, 500, 30*time.Second, 1, 100, func(i int) string { return fmt.Sprintf("n%d.a.example", i) })
	r := tr.Score("a.example", epoch.Add(30*time.Second))
	if !strings.Contains(r.Reason, " 50 distinct names per minute") {
		t.Errorf("Score with MaxNames 50 = %q, want the count capped at 50 names in the one-minute window", r.Reason)
	}

	// Once a.example and b.example are idle for two windows, c.example
	// gets room.
	tr.Observe(Observation{Time: epoch.Add(3 * time.Minute), QName: "x.c.example"})
	if got := tr.Dropped(); got != 1 {
		t.Errorf("Dropped = %d after idle domains expired, want still 1", got)
	}
}

func BenchmarkObserveFullTracker(b *testing.B) {
	tr := NewTracker(TrackerConfig{MaxDomains: 10_000})
	names := make([]string, 20_000)
	for i := range names {
		names[i] = fmt.Sprintf("www.d%d.example", i)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		tr.Observe(Observation{Time: epoch.Add(time.Duration(i) * time.Microsecond), QName: names[i%len(names)]})
	}
}

// BenchmarkObserve sends 4,096 distinct names in turn: the first round
// scores each new name, later rounds find them seen.
func BenchmarkObserve(b *testing.B) {
	tr := NewTracker(TrackerConfig{MaxNames: 1 << 20})
	names := make([]string, 4096)
	for i := range names {
		names[i] = fmt.Sprintf("%dpabqmikqzk3sB7x%d.t.example", i, i*31)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		tr.Observe(Observation{Time: epoch, QName: names[i%len(names)], QType: qtypeTXT, Bytes: 300})
	}
}

func TestTrackerConcurrentUse(t *testing.T) {
	tr := NewTracker(TrackerConfig{})
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 200 {
				tr.Observe(Observation{Time: epoch, QName: fmt.Sprintf("n%d-%d.t.example", g, i), QType: qtypeTXT, Bytes: 100})
				tr.Score("t.example", epoch)
			}
		}()
	}
	for range 4 {
		<-done
	}
	if r := tr.Score("t.example", epoch.Add(time.Second)); !strings.Contains(r.Reason, "800 queries") {
		t.Errorf("Score after 4 x 200 concurrent queries = %q, want 800 queries counted", r.Reason)
	}
}
