package dnstap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// collector is an in-process Frame Streams reader: it accepts writers on a
// listener, runs the bidirectional handshake and passes on each data frame.
type collector struct {
	ln     net.Listener
	frames chan []byte
	// sessions receives the outcome of each session: nil after STOP and
	// FINISH.
	sessions chan error
	// conns receives each accepted connection, so a test can cut one.
	conns chan net.Conn
	// discard makes serve read data frames without passing them on, as
	// a benchmark's collector.
	discard bool
}

func startCollector(t *testing.T, network, address string) *collector {
	t.Helper()
	ln, err := net.Listen(network, address)
	if err != nil {
		t.Fatalf("listen on %s %s: %v", network, address, err)
	}
	c := &collector{
		ln:       ln,
		frames:   make(chan []byte, 1000),
		sessions: make(chan error, 10),
		conns:    make(chan net.Conn, 10),
	}
	t.Cleanup(func() { ln.Close() })
	go c.accept()
	return c
}

func (c *collector) accept() {
	for {
		conn, err := c.ln.Accept()
		if err != nil {
			return
		}
		c.conns <- conn
		go func() {
			defer conn.Close()
			c.sessions <- c.serve(conn)
		}()
	}
}

// serve reads one session as a Frame Streams reader.
func (c *collector) serve(conn net.Conn) error {
	ready, err := expectControl(conn, controlReady)
	if err != nil {
		return fmt.Errorf("READY: %w", err)
	}
	if !slices.Contains(ready, ContentType) {
		return fmt.Errorf("READY offers %q", ready)
	}
	if _, err := conn.Write(appendControl(nil, controlAccept, ContentType)); err != nil {
		return err
	}
	start, err := expectControl(conn, controlStart)
	if err != nil {
		return fmt.Errorf("START: %w", err)
	}
	if !slices.Equal(start, []string{ContentType}) {
		return fmt.Errorf("START names %q", start)
	}
	if c.discard {
		_, err := io.Copy(io.Discard, conn)
		return err
	}
	for {
		var head [4]byte
		if _, err := io.ReadFull(conn, head[:]); err != nil {
			return fmt.Errorf("read frame: %w", err)
		}
		n := binary.BigEndian.Uint32(head[:])
		if n == 0 {
			return c.stop(conn)
		}
		frame := make([]byte, n)
		if _, err := io.ReadFull(conn, frame); err != nil {
			return fmt.Errorf("read frame: %w", err)
		}
		c.frames <- frame
	}
}

// stop reads the rest of a control frame, which must be STOP, and answers
// FINISH.
func (c *collector) stop(conn net.Conn) error {
	var length [4]byte
	if _, err := io.ReadFull(conn, length[:]); err != nil {
		return err
	}
	frame := make([]byte, binary.BigEndian.Uint32(length[:]))
	if _, err := io.ReadFull(conn, frame); err != nil {
		return err
	}
	typ, _, err := parseControl(frame)
	if err != nil {
		return err
	}
	if typ != controlStop {
		return fmt.Errorf("control frame type %d after START, want STOP", typ)
	}
	_, err = conn.Write(appendControl(nil, controlFinish))
	return err
}

// next returns the next data frame, decoded.
func (c *collector) next(t *testing.T) decoded {
	t.Helper()
	select {
	case f := <-c.frames:
		d, err := decode(f)
		if err != nil {
			t.Fatalf("decode frame %x: %v", f, err)
		}
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no frame within 10s")
	}
	return decoded{}
}

// session waits for the end of a session and returns its outcome.
func (c *collector) session(t *testing.T) error {
	t.Helper()
	select {
	case err := <-c.sessions:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("session did not end within 10s")
	}
	return nil
}

// decoded is a Dnstap payload as a reader sees it.
type decoded struct {
	Identity, Version string
	Type              uint64 // Dnstap.type
	Message
	// Fields lists the Message field numbers present.
	Fields map[protowire.Number]bool
}

// decode parses a Dnstap payload with the field numbers of dnstap.proto.
func decode(b []byte) (decoded, error) {
	d := decoded{Fields: map[protowire.Number]bool{}}
	err := eachField(b, func(num protowire.Number, v uint64, bytes []byte) error {
		switch num {
		case dnstapIdentity:
			d.Identity = string(bytes)
		case dnstapVersion:
			d.Version = string(bytes)
		case dnstapType:
			d.Type = v
		case dnstapMessage:
			return eachField(bytes, d.messageField)
		}
		return nil
	})
	return d, err
}

func (d *decoded) messageField(num protowire.Number, v uint64, b []byte) error {
	d.Fields[num] = true
	var err error
	switch num {
	case msgType:
		d.Message.Type = Type(v)
	case msgSocketFamily:
		d.Family = Family(v)
	case msgSocketProtocol:
		d.Protocol = Protocol(v)
	case msgQueryAddress:
		d.QueryAddress, err = addrOf(b)
	case msgResponseAddress:
		d.ResponseAddress, err = addrOf(b)
	case msgResponsePort:
		d.ResponsePort = uint16(v)
	case msgQueryTimeSec:
		d.QueryTime = time.Unix(int64(v), int64(d.QueryTime.Nanosecond()))
	case msgQueryTimeNsec:
		d.QueryTime = time.Unix(d.QueryTime.Unix(), int64(v))
	case msgResponseTimeSec:
		d.ResponseTime = time.Unix(int64(v), int64(d.ResponseTime.Nanosecond()))
	case msgResponseTimeNsec:
		d.ResponseTime = time.Unix(d.ResponseTime.Unix(), int64(v))
	case msgQueryMessage:
		d.QueryMessage = b
	case msgQueryZone:
		d.QueryZone = b
	case msgResponseMessage:
		d.ResponseMessage = b
	}
	return err
}

func addrOf(b []byte) (netip.Addr, error) {
	a, ok := netip.AddrFromSlice(b)
	if !ok {
		return a, fmt.Errorf("address of %d bytes", len(b))
	}
	return a, nil
}

// eachField calls fn with each field of the protobuf message b: v holds a
// varint or fixed32 value, bytes a length-delimited one.
func eachField(b []byte, fn func(num protowire.Number, v uint64, bytes []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v uint64
		var bytes []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var v32 uint32
			v32, n = protowire.ConsumeFixed32(b)
			v = uint64(v32)
		case protowire.BytesType:
			bytes, n = protowire.ConsumeBytes(b)
		default:
			return errors.New("unexpected wire type")
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		if err := fn(num, v, bytes); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
