package dnstap

import (
	"bytes"
	"net"
	"os"
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
