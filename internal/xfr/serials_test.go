package xfr

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// manualClock is a clock the test sets.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) read() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// serialTestStart is the Unix time the serial tests start at.
const serialTestStart = 1_800_000_000

// newRefreshedPrimary returns a primary of src that the test drives with
// Refresh, without listeners, after its first Refresh.
func newRefreshedPrimary(t *testing.T, src Source, serials *SerialFile, clock *manualClock) *Primary {
	t.Helper()
	cfg := PrimaryConfig{Zones: []PublishedZone{{Name: pubZone, Source: src, TTL: 60}}, Serials: serials}
	p, err := NewPrimary(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), clock.read)
	if err != nil {
		t.Fatalf("NewPrimary: %v", err)
	}
	p.Refresh(context.Background())
	return p
}

func serialOf(t *testing.T, p *Primary) uint32 {
	t.Helper()
	s, ok := p.Serial(pubZone)
	if !ok {
		t.Fatalf("Serial(%s) = not served", pubZone)
	}
	return s
}

func openSerialFile(t *testing.T, path string) *SerialFile {
	t.Helper()
	f, err := OpenSerialFile(path)
	if err != nil {
		t.Fatalf("OpenSerialFile(%s): %v", path, err)
	}
	return f
}

func TestClockSerials(t *testing.T) {
	clock := &manualClock{now: time.Unix(serialTestStart, 0)}
	src := newMemSource(pubZone, "a.example")
	p := newRefreshedPrimary(t, src, nil, clock)
	if got := serialOf(t, p); got != serialTestStart+1 {
		t.Fatalf("first serial = %d, want the Unix time plus one, %d", got, serialTestStart+1)
	}

	// A change before the clock passes the serial waits for it.
	src.set("b.example")
	clock.set(time.Unix(serialTestStart+1, 0))
	p.Refresh(context.Background())
	if got := serialOf(t, p); got != serialTestStart+1 {
		t.Errorf("serial after a change within the serial's second = %d, want it held at %d", got, serialTestStart+1)
	}
	clock.set(time.Unix(serialTestStart+2, 0))
	p.Refresh(context.Background())
	if got := serialOf(t, p); got != serialTestStart+2 {
		t.Errorf("serial once the clock passed = %d, want the Unix time %d", got, serialTestStart+2)
	}

	// A process started in the same second starts above.
	next := newRefreshedPrimary(t, newMemSource(pubZone, "c.example"), nil, clock)
	if got := serialOf(t, next); !SerialLess(serialTestStart+2, got) {
		t.Errorf("serial of a process started in the same second = %d, want newer than %d", got, serialTestStart+2)
	}

	// A clock that moved back by more than maxClockWait seconds does not
	// hold changes back: the serial counts on.
	clock.set(time.Unix(serialTestStart-3600, 0))
	src.set("d.example")
	p.Refresh(context.Background())
	if got := serialOf(t, p); got != serialTestStart+3 {
		t.Errorf("serial after the clock moved back an hour = %d, want %d", got, serialTestStart+3)
	}
}

func TestSerialFileSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "serials.json")
	clock := &manualClock{now: time.Unix(serialTestStart, 0)}

	// The first process makes three changes within one second, so its
	// serial runs ahead of the clock.
	src := newMemSource(pubZone, "a.example")
	first := newRefreshedPrimary(t, src, openSerialFile(t, path), clock)
	for _, name := range []string{"b.example", "c.example", "d.example"} {
		src.set(name)
		first.Refresh(context.Background())
	}
	last := serialOf(t, first)
	if last != serialTestStart+3 {
		t.Fatalf("serial after three changes in one second = %d, want %d", last, serialTestStart+3)
	}

	// The next process starts with the clock moved back by a day.
	clock.set(time.Unix(serialTestStart-86400, 0))
	second := newRefreshedPrimary(t, newMemSource(pubZone, "e.example"), openSerialFile(t, path), clock)
	if got := serialOf(t, second); !SerialLess(last, got) {
		t.Errorf("serial of the next process = %d, want newer than the earlier process's %d", got, last)
	}
}

func TestSerialFileHandoverOverlap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "serials.json")
	clock := &manualClock{now: time.Unix(serialTestStart, 0)}
	oldSrc := newMemSource(pubZone, "a.example")
	old := newRefreshedPrimary(t, oldSrc, openSerialFile(t, path), clock)
	successor := newRefreshedPrimary(t, newMemSource(pubZone, "a.example", "b.example"), openSerialFile(t, path), clock)
	taken := serialOf(t, successor)
	if !SerialLess(serialOf(t, old), taken) {
		t.Fatalf("successor's first serial %d, want newer than the old process's %d", taken, serialOf(t, old))
	}

	// The old process still changes its zone before it stops.
	oldSrc.set("c.example")
	old.Refresh(context.Background())
	oldLast := serialOf(t, old)
	if !SerialLess(taken, oldLast) {
		t.Fatalf("old process's serial after the successor's = %d, want newer than %d", oldLast, taken)
	}

	// The successor takes a newer serial for its own records, and the
	// old process does not take another serial in turn.
	successor.Refresh(context.Background())
	bumped := serialOf(t, successor)
	if !SerialLess(oldLast, bumped) {
		t.Errorf("successor's serial after the old process's %d = %d, want newer", oldLast, bumped)
	}
	old.Refresh(context.Background())
	if got := serialOf(t, old); got != oldLast {
		t.Errorf("old process's serial after the successor overtook it = %d, want it kept at %d", got, oldLast)
	}
	successor.Refresh(context.Background())
	if got := serialOf(t, successor); got != bumped {
		t.Errorf("successor's serial with nothing new = %d, want it kept at %d", got, bumped)
	}

	// The successor's journal covers the step without changes.
	_, records, diffs, ok := successor.zones[pubZone].snapshot(taken)
	if !ok || len(diffs) != 1 || len(diffs[0].Added)+len(diffs[0].Deleted) != 0 || len(records) != 2 {
		t.Errorf("successor's journal from %d = %v, %v; want one empty diff and the 2 records kept", taken, diffs, ok)
	}
}

func TestSerialFileInvalid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "serials.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSerialFile(path); err == nil {
		t.Errorf("OpenSerialFile of an invalid file = nil error, want one that says to remove it")
	}
}

func TestSerialFileUnwritable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	serials := openSerialFile(t, filepath.Join(dir, "serials.json"))
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	clock := &manualClock{now: time.Unix(serialTestStart, 0)}
	cfg := PrimaryConfig{
		Listen:        netip.MustParseAddrPort("127.0.0.1:0"),
		Zones:         []PublishedZone{{Name: pubZone, Source: newMemSource(pubZone, "a.example"), TTL: 60}},
		AllowTransfer: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Serials:       serials, CheckInterval: time.Hour,
	}
	p, err := NewPrimary(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), clock.read)
	if err != nil {
		t.Fatalf("NewPrimary: %v", err)
	}
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	udp, err := net.ListenPacket("udp", tcp.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Serve(ctx, tcp, udp); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	m := new(dns.Msg)
	m.SetQuestion(pubZone, dns.TypeSOA)
	// The socket is open, so the query waits in it until Serve reads.
	resp, err := dns.Exchange(m, udp.LocalAddr().String())
	if err != nil || resp.Rcode != dns.RcodeServerFailure {
		t.Errorf("SOA query of a zone without a serial = %v, %v; want SERVFAIL", resp, err)
	}
}
