package dnstap

import (
	"bytes"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// slowConn is a net.Conn to a collector that reads budget bytes per write
// deadline. A write past them writes what fits, then fails as a timed-out
// write does. Only Write and SetWriteDeadline may be called.
type slowConn struct {
	net.Conn
	budget  int
	left    int
	written []byte
}

func (c *slowConn) SetWriteDeadline(time.Time) error {
	c.left = c.budget
	return nil
}

func (c *slowConn) Write(b []byte) (int, error) {
	n := min(len(b), c.left)
	c.written = append(c.written, b[:n]...)
	c.left -= n
	if n < len(b) {
		return n, os.ErrDeadlineExceeded
	}
	return n, nil
}

// idleOutput returns an Output with no collector listening, so that frames
// stay queued until the test writes them.
func idleOutput(t *testing.T, queueSize int) *Output {
	t.Helper()
	out := NewOutput(OutputConfig{Network: "unix", Address: socketPath(t), QueueSize: queueSize,
		MinBackoff: time.Hour}, discardLog())
	t.Cleanup(func() { out.Close() })
	return out
}

// TestOutputWriteSlowCollector writes a backlog of several times maxWrite
// bytes to a collector that reads maxWrite bytes per write deadline: the
// deadline bounds each part of the backlog, not the whole.
func TestOutputWriteSlowCollector(t *testing.T) {
	out := idleOutput(t, 1000)
	frame := AppendFrame(nil, nil, nil, &Message{Type: ClientQuery, QueryMessage: make([]byte, 3000)})
	count := 4*maxWrite/len(frame) + 1
	var want []byte
	for range count {
		out.enqueue(frame)
		want = append(want, frame...)
	}

	conn := &slowConn{budget: maxWrite}
	if err := out.write(&session{conn: conn}); err != nil {
		t.Fatalf("write of %d bytes: %v", len(want), err)
	}
	if !bytes.Equal(conn.written, want) {
		t.Errorf("collector got %d bytes, want the %d queued", len(conn.written), len(want))
	}
	if got := out.Sent(); got != uint64(count) {
		t.Errorf("Sent() = %d, want %d", got, count)
	}
	if got := out.Lost(); got != 0 {
		t.Errorf("Lost() = %d, want 0", got)
	}
}

// TestOutputWriteFailsMidFrame cuts a write in the third of five frames:
// the two written in full count as sent, the other three as lost.
func TestOutputWriteFailsMidFrame(t *testing.T) {
	out := idleOutput(t, 8)
	frame := AppendFrame(nil, nil, nil, &Message{Type: ClientQuery, QueryMessage: []byte{1, 2, 3}})
	for range 5 {
		out.enqueue(frame)
	}

	conn := &slowConn{budget: 2*len(frame) + len(frame)/2}
	if err := out.write(&session{conn: conn}); err == nil {
		t.Fatal("write past the budget succeeded, want the timeout")
	}
	if got := out.Sent(); got != 2 {
		t.Errorf("Sent() = %d, want 2", got)
	}
	if got := out.Lost(); got != 3 {
		t.Errorf("Lost() = %d, want 3", got)
	}
}

// TestOutputEnqueueAfterClose offers a frame once Close has returned: no
// writer will take it, so it is dropped and counted, not kept.
func TestOutputEnqueueAfterClose(t *testing.T) {
	out := idleOutput(t, 8)
	if err := out.Close(); err != nil {
		t.Fatalf("Close with an empty queue: %v", err)
	}
	out.enqueue(AppendFrame(nil, nil, nil, &Message{Type: ClientQuery, QueryMessage: []byte{1}}))
	if got := out.Dropped(); got != 1 {
		t.Errorf("Dropped() = %d, want 1", got)
	}
	if got := out.queued.Load(); got != 0 {
		t.Errorf("%d frames queued after Close, want 0", got)
	}
}

// TestOutputCloseWhileSending closes the Output while several goroutines
// send frames: every frame offered is counted once, as sent, dropped or
// lost, and every frame that the collector reads decodes.
func TestOutputCloseWhileSending(t *testing.T) {
	path := socketPath(t)
	c := startCollector(t, "unix", path)
	out := NewOutput(OutputConfig{Network: "unix", Address: path, QueueSize: 64}, discardLog())
	frame := AppendFrame(nil, nil, nil, &Message{Type: ClientQuery, QueryMessage: make([]byte, 2100)})

	// The collector buffers up to 1000 frames, so it never blocks here.
	const senders, perSender = 4, 200
	var wg sync.WaitGroup
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perSender {
				out.enqueue(frame)
			}
		}()
	}
	c.next(t)
	if err := out.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()

	sent, dropped, lost := out.Sent(), out.Dropped(), out.Lost()
	if total := sent + dropped + lost; total != senders*perSender {
		t.Errorf("sent %d + dropped %d + lost %d = %d, want the %d offered", sent, dropped, lost, total, senders*perSender)
	}
	if err := c.session(t); err != nil {
		t.Fatalf("session: %v", err)
	}
	// The session ended with STOP and FINISH, so the collector read every
	// frame sent.
	if got := uint64(len(c.frames)) + 1; got != sent {
		t.Errorf("collector read %d frames, want the %d sent", got, sent)
	}
	for range len(c.frames) {
		c.next(t)
	}
}
