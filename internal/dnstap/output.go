package dnstap

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Timeouts of the connection to the collector.
const (
	dialTimeout      = 5 * time.Second
	handshakeTimeout = 5 * time.Second
	// writeTimeout bounds the write of each part of at most maxWrite
	// bytes, so a collector that reads less than that in this time is
	// dropped and reconnected.
	writeTimeout = 5 * time.Second
	// finishTimeout bounds the wait for FINISH after STOP at shutdown.
	finishTimeout = 2 * time.Second
)

// flushInterval is how long a frame may wait in the queue before the writer
// takes it, and wakeFrames how many queued frames wake the writer sooner.
// The query path only appends to the queue: it wakes the writer once per
// wakeFrames frames at most, so that one write to the collector carries
// many frames and the writer's wake-ups cost the query path little at any
// rate.
const (
	flushInterval = 20 * time.Millisecond
	wakeFrames    = 256
)

// maxWrite is the largest part of the queue written under one write
// deadline, in bytes. The queue taken after an outage may contain many
// megabytes, which a collector that keeps reading may take longer than
// writeTimeout to read.
const maxWrite = 256 << 10

// maxKeptBuffer is the largest queue buffer kept for reuse after a write,
// in bytes. A larger one, grown while the collector was away, is left to
// the garbage collector.
const maxKeptBuffer = 1 << 20

// Default reconnection backoff: the wait doubles after each failed
// attempt, from DefaultMinBackoff up to DefaultMaxBackoff.
const (
	DefaultMinBackoff = 250 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
)

// OutputConfig sets up an Output.
type OutputConfig struct {
	// Network is "unix" or "tcp", and Address the socket path or IP:port
	// of the collector.
	Network, Address string
	// QueueSize is the number of frames that wait for the collector;
	// more are dropped and counted.
	QueueSize int
	// MinBackoff and MaxBackoff bound the wait between connection
	// attempts. Zero means DefaultMinBackoff and DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
}

// Output sends dnstap frames to a Frame Streams collector over a
// bidirectional session, from a bounded queue. It connects in the
// background and reconnects with backoff when the collector goes away;
// frames wait in the queue meanwhile. It is safe for concurrent use.
type Output struct {
	cfg OutputConfig
	log *slog.Logger

	// mu guards the queue: pending contains the queued frames back to back,
	// as they go on the wire, and spare is the writer's last buffer,
	// kept for the next swap. queued is the number of frames in
	// pending, written under mu and read without it. closed is set
	// before the writer's last take at shutdown, and enqueue drops
	// frames from then on.
	mu      sync.Mutex
	pending []byte
	spare   []byte
	queued  atomic.Int64
	closed  bool

	// wake signals the writer that wakeAt or more frames are queued.
	wake   chan struct{}
	wakeAt int64

	dropped, lost, sent atomic.Uint64

	// ctx is cancelled by Close; stopped is closed when run has returned.
	ctx      context.Context
	cancel   context.CancelFunc
	stopped  chan struct{}
	closeErr error
}

// NewOutput starts an Output. Close stops it.
func NewOutput(cfg OutputConfig, log *slog.Logger) *Output {
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.MinBackoff)
	}
	cfg.QueueSize = max(cfg.QueueSize, 1)
	o := &Output{
		cfg:     cfg,
		log:     log.With("collector", cfg.Network+":"+cfg.Address),
		wake:    make(chan struct{}, 1),
		wakeAt:  int64(max(1, min(wakeFrames, cfg.QueueSize/4))),
		stopped: make(chan struct{}),
	}
	o.ctx, o.cancel = context.WithCancel(context.Background())
	go o.run()
	return o
}

// Dropped returns the number of frames dropped because the queue was full
// or the Output was shutting down.
func (o *Output) Dropped() uint64 { return o.dropped.Load() }

// Lost returns the number of frames taken from the queue that were not
// written to a collector: the frame that a failed write cut and those after
// it, and those still queued at shutdown with no collector.
func (o *Output) Lost() uint64 { return o.lost.Load() }

// Sent returns the number of frames written and flushed to a collector.
func (o *Output) Sent() uint64 { return o.sent.Load() }

// full reports whether the queue is full, so that a caller can skip
// encoding a frame that would be dropped.
func (o *Output) full() bool { return o.queued.Load() >= int64(o.cfg.QueueSize) }

// enqueue copies frame, a whole Frame Streams data frame, to the queue
// without blocking, or drops and counts it when the queue is full or
// closed.
func (o *Output) enqueue(frame []byte) {
	o.mu.Lock()
	n := o.queued.Load()
	if n >= int64(o.cfg.QueueSize) || o.closed {
		o.mu.Unlock()
		o.dropped.Add(1)
		return
	}
	o.pending = append(o.pending, frame...)
	o.queued.Store(n + 1)
	o.mu.Unlock()
	if n+1 >= o.wakeAt {
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}
}

// take empties the queue and returns its frames, back to back, and how
// many there are. The caller owns the buffer until it hands it back with
// reuse.
func (o *Output) take() ([]byte, int64) {
	o.mu.Lock()
	b, n := o.pending, o.queued.Load()
	o.pending, o.spare = o.spare, nil
	o.queued.Store(0)
	o.mu.Unlock()
	return b, n
}

// seal closes the queue to new frames, so that the writer's last take at
// shutdown leaves none behind.
func (o *Output) seal() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
}

// reuse keeps b, a buffer returned by take, for the next swap.
func (o *Output) reuse(b []byte) {
	if cap(b) > maxKeptBuffer {
		return
	}
	o.mu.Lock()
	if o.spare == nil {
		o.spare = b[:0]
	}
	o.mu.Unlock()
}

// Close sends the queued frames, ends the session with STOP and waits for
// the collector's FINISH. It returns an error when the session did not end
// cleanly or frames were left unsent. Close is safe to call more than once.
func (o *Output) Close() error {
	o.cancel()
	<-o.stopped
	return o.closeErr
}

func (o *Output) run() {
	defer close(o.stopped)
	wait := o.cfg.MinBackoff
	failing := false
	for o.ctx.Err() == nil {
		s, err := o.connect()
		if err == nil {
			o.log.Info("dnstap collector connected")
			wait = o.cfg.MinBackoff
			stopping, err := o.serve(s)
			if stopping {
				o.closeErr = err
				return
			}
			o.log.Warn("dnstap collector connection lost; reconnecting", "error", err)
			failing = true
		} else if !failing {
			o.log.Warn("dnstap collector unreachable; retrying", "error", err)
			failing = true
		}
		if !o.sleep(wait) {
			break
		}
		wait = min(2*wait, o.cfg.MaxBackoff)
	}
	o.closeErr = o.last()
}

// last makes one more attempt at shutdown, when frames wait and no
// collector is connected, so that a collector that came back during the
// backoff still gets them.
func (o *Output) last() error {
	o.seal()
	if o.queued.Load() == 0 {
		return nil
	}
	s, err := o.connect()
	if err != nil {
		return o.discard()
	}
	return o.finish(s)
}

// sleep waits about d, with jitter so that many resolvers do not reconnect
// at once, and returns false when Close was called meanwhile.
func (o *Output) sleep(d time.Duration) bool {
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-o.ctx.Done():
		return false
	}
}

// discard empties the queue at shutdown when no collector is connected.
func (o *Output) discard() error {
	_, n := o.take()
	if n == 0 {
		return nil
	}
	o.lost.Add(uint64(n))
	return fmt.Errorf("dnstap: no collector at %s:%s at shutdown: %d frames not sent",
		o.cfg.Network, o.cfg.Address, n)
}

// session is one Frame Streams session with the collector.
type session struct {
	conn net.Conn
	// control receives the outcome of reading the collector's next
	// control frame: nil for FINISH, or the error that ended the read.
	control chan error
}

func (o *Output) connect() (*session, error) {
	// The dial is not cancelled by Close, which makes a last attempt.
	conn, err := net.DialTimeout(o.cfg.Network, o.cfg.Address, dialTimeout)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := handshake(conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	conn.SetDeadline(time.Time{})

	// In a bidirectional session the collector sends nothing more until
	// FINISH, so a read that ends early means it went away.
	s := &session{conn: conn, control: make(chan error, 1)}
	go func() {
		_, err := expectControl(conn, controlFinish)
		s.control <- err
	}()
	return s, nil
}

// serve writes queued frames to s until the connection fails or Close is
// called. stopping is true in the second case, with the outcome of ending
// the session in err.
func (o *Output) serve(s *session) (stopping bool, err error) {
	tick := time.NewTicker(flushInterval)
	defer tick.Stop()
	for {
		select {
		case <-o.wake:
		case <-tick.C:
		case err := <-s.control:
			s.conn.Close()
			if err == nil {
				err = errors.New("the collector finished the session")
			}
			return false, err
		case <-o.ctx.Done():
			return true, o.finish(s)
		}
		if err := o.write(s); err != nil {
			s.conn.Close()
			return false, err
		}
	}
}

// write takes the queued frames and writes them to s, in parts of at most
// maxWrite bytes with a write deadline each.
func (o *Output) write(s *session) error {
	b, n := o.take()
	defer o.reuse(b)
	for written := 0; written < len(b); {
		end := min(len(b), written+maxWrite)
		s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		k, err := s.conn.Write(b[written:end])
		written += k
		if err != nil {
			// The frames written in full count as sent, as they would
			// after a write that succeeded.
			whole := wholeFrames(b[:written])
			o.sent.Add(whole)
			o.lost.Add(uint64(n) - whole)
			return err
		}
	}
	o.sent.Add(uint64(n))
	return nil
}

// wholeFrames returns the number of whole data frames at the start of b,
// which contains frames back to back.
func wholeFrames(b []byte) uint64 {
	var n uint64
	for len(b) >= 4 {
		size := 4 + uint64(binary.BigEndian.Uint32(b))
		if size > uint64(len(b)) {
			break
		}
		b = b[size:]
		n++
	}
	return n
}

// finish sends the queued frames and STOP, and waits for FINISH.
func (o *Output) finish(s *session) error {
	defer s.conn.Close()
	o.seal()
	if err := o.write(s); err != nil {
		o.discard()
		return fmt.Errorf("dnstap: send the queued frames at shutdown: %w", err)
	}
	s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := s.conn.Write(appendControl(nil, controlStop)); err != nil {
		return fmt.Errorf("dnstap: send STOP: %w", err)
	}
	t := time.NewTimer(finishTimeout)
	defer t.Stop()
	select {
	case err := <-s.control:
		if err != nil {
			return fmt.Errorf("dnstap: read FINISH: %w", err)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("dnstap: no FINISH from the collector %s after STOP within %s",
			s.conn.RemoteAddr(), finishTimeout)
	}
}
