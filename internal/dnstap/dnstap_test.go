package dnstap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"bulwark/internal/observe"
	"bulwark/internal/privacy"

	"github.com/miekg/dns"
	"google.golang.org/protobuf/encoding/protowire"
)

var allTypes = []Type{ClientQuery, ClientResponse, ResolverQuery, ResolverResponse}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestAppendFrameFields(t *testing.T) {
	sent := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	m := Message{
		Type:            ResolverResponse,
		Family:          INET6,
		Protocol:        TCP,
		ResponseAddress: netip.MustParseAddr("2001:db8::53"),
		ResponsePort:    53,
		QueryTime:       sent,
		ResponseTime:    sent.Add(1500 * time.Microsecond),
		QueryZone:       []byte("\x07example\x00"),
		ResponseMessage: []byte{1, 2, 3},
	}
	frame := AppendFrame([]byte("prefix"), []byte("ns1"), []byte("bulwark test"), &m)
	if !bytes.HasPrefix(frame, []byte("prefix")) {
		t.Fatalf("AppendFrame overwrote the buffer: %q", frame)
	}
	frame = frame[len("prefix"):]
	if n := binary.BigEndian.Uint32(frame); int(n) != len(frame)-4 {
		t.Fatalf("frame length %d, want %d", n, len(frame)-4)
	}
	d, err := decode(frame[4:])
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if d.Identity != "ns1" || d.Version != "bulwark test" || d.Type != dnstapTypeMessage {
		t.Errorf("Dnstap = identity %q version %q type %d, want ns1, bulwark test, 1", d.Identity, d.Version, d.Type)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"type", d.Message.Type, ResolverResponse},
		{"family", d.Family, INET6},
		{"protocol", d.Protocol, TCP},
		{"response_address", d.ResponseAddress, m.ResponseAddress},
		{"response_port", d.ResponsePort, uint16(53)},
		{"query_time", d.QueryTime.UTC(), sent},
		{"response_time", d.ResponseTime.UTC(), m.ResponseTime},
		{"query_zone", string(d.QueryZone), string(m.QueryZone)},
		{"response_message", string(d.ResponseMessage), "\x01\x02\x03"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	for _, absent := range []protowire.Number{msgQueryAddress, msgQueryPort, msgQueryMessage} {
		if d.Fields[absent] {
			t.Errorf("field %d present, want it left out", absent)
		}
	}
}

// TestAppendFrameLargeMessage covers a Message longer than 127 bytes,
// whose length takes two varint bytes.
func TestAppendFrameLargeMessage(t *testing.T) {
	big := bytes.Repeat([]byte{0xab}, 3000)
	frame := AppendFrame(nil, nil, nil, &Message{Type: ClientResponse, ResponseMessage: big})
	d, err := decode(frame[4:])
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !bytes.Equal(d.ResponseMessage, big) {
		t.Errorf("response_message of %d bytes, want %d", len(d.ResponseMessage), len(big))
	}
	if d.Identity != "" || d.Version != "" {
		t.Errorf("identity %q and version %q, want both left out", d.Identity, d.Version)
	}
}

func TestParseControl(t *testing.T) {
	tests := []struct {
		name    string
		frame   []byte
		typ     uint32
		types   []string
		wantErr bool
	}{
		{"accept", appendControl(nil, controlAccept, ContentType)[8:], controlAccept, []string{ContentType}, false},
		{"two types", appendControl(nil, controlReady, "a", "b")[8:], controlReady, []string{"a", "b"}, false},
		{"finish", appendControl(nil, controlFinish)[8:], controlFinish, nil, false},
		{"unknown field skipped", []byte{0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 1, 'x'}, controlAccept, nil, false},
		{"short", []byte{0, 0}, 0, nil, true},
		{"truncated header", []byte{0, 0, 0, 1, 0, 0, 0, 1}, 0, nil, true},
		{"field past end", []byte{0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 0, 'x'}, 0, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ, types, err := parseControl(tt.frame)
			if tt.wantErr {
				if !errors.Is(err, ErrControl) {
					t.Fatalf("parseControl(%x) error = %v, want ErrControl", tt.frame, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseControl(%x): %v", tt.frame, err)
			}
			if typ != tt.typ || strings.Join(types, ",") != strings.Join(tt.types, ",") {
				t.Errorf("parseControl(%x) = %d %q, want %d %q", tt.frame, typ, types, tt.typ, tt.types)
			}
		})
	}
}

func TestReadControlRejectsDataFrame(t *testing.T) {
	_, _, err := readControl(bytes.NewReader([]byte{0, 0, 0, 5, 1, 2, 3, 4, 5}))
	if !errors.Is(err, ErrControl) {
		t.Errorf("readControl(data frame) error = %v, want ErrControl", err)
	}
	_, _, err = readControl(bytes.NewReader([]byte{0, 0, 0, 0, 0, 0, 4, 0}))
	if !errors.Is(err, ErrControl) {
		t.Errorf("readControl(1024-byte control frame) error = %v, want ErrControl", err)
	}
}

func TestHandshakeWrongContentType(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	go func() {
		defer server.Close()
		readControl(server)
		server.Write(appendControl(nil, controlAccept, "protobuf:other"))
	}()
	err := handshake(client)
	if err == nil || !strings.Contains(err.Error(), "protobuf:other") {
		t.Errorf("handshake with a collector of another content type: error %v, want one naming it", err)
	}
}

func socketPath(t *testing.T) string {
	return filepath.Join(t.TempDir(), "dnstap.sock")
}

func newTap(t *testing.T, path string, anon privacy.Mode, types ...Type) *Tap {
	t.Helper()
	return New(Config{
		Output: OutputConfig{Network: "unix", Address: path, QueueSize: 64,
			MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond},
		Identity:  "resolver-1",
		Version:   "bulwark test",
		Anonymise: privacy.Config{Mode: anon},
		Types:     types,
	}, discardLog())
}

func packed(t testing.TB, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTapClientQuery(t *testing.T) {
	path := socketPath(t)
	c := startCollector(t, "unix", path)
	tap := newTap(t, path, privacy.Truncate, allTypes...)

	query := new(dns.Msg).SetQuestion("www.example.", dns.TypeA)
	response := new(dns.Msg).SetReply(query)
	received := time.Date(2026, 3, 1, 12, 0, 0, 5000, time.UTC)
	tap.ClientQuery(&observe.Query{
		Received:  received,
		Duration:  2 * time.Millisecond,
		Transport: observe.DoT,
		Client:    netip.MustParseAddr("192.0.2.77"),
		Query:     packed(t, query),
		Response:  packed(t, response),
	})

	cq, cr := c.next(t), c.next(t)
	if err := tap.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := c.session(t); err != nil {
		t.Errorf("session: %v", err)
	}
	want := netip.MustParseAddr("192.0.2.0")
	for _, d := range []decoded{cq, cr} {
		if d.Identity != "resolver-1" || d.Version != "bulwark test" {
			t.Errorf("identity %q version %q, want resolver-1, bulwark test", d.Identity, d.Version)
		}
		if d.Family != INET || d.Protocol != DOT {
			t.Errorf("%d: family %d protocol %d, want INET, DOT", d.Message.Type, d.Family, d.Protocol)
		}
		if d.QueryAddress != want {
			t.Errorf("%d: query_address %v, want %v", d.Message.Type, d.QueryAddress, want)
		}
		if d.Fields[msgQueryPort] {
			t.Errorf("%d: query_port present, want the client port left out", d.Message.Type)
		}
		if !d.QueryTime.Equal(received) {
			t.Errorf("%d: query_time %v, want %v", d.Message.Type, d.QueryTime, received)
		}
	}
	if cq.Message.Type != ClientQuery || !bytes.Equal(cq.QueryMessage, packed(t, query)) {
		t.Errorf("first message: type %d, query_message %x; want CLIENT_QUERY with the query", cq.Message.Type, cq.QueryMessage)
	}
	if cr.Message.Type != ClientResponse || !bytes.Equal(cr.ResponseMessage, packed(t, response)) {
		t.Errorf("second message: type %d, response_message %x; want CLIENT_RESPONSE with the response", cr.Message.Type, cr.ResponseMessage)
	}
	if want := received.Add(2 * time.Millisecond); !cr.ResponseTime.Equal(want) {
		t.Errorf("response_time %v, want %v", cr.ResponseTime, want)
	}
	if got := tap.Sent(); got != 2 {
		t.Errorf("Sent() = %d, want 2", got)
	}
}

func TestTapClientAddressModes(t *testing.T) {
	client := netip.MustParseAddr("2001:db8:1234:5678::99")
	tests := []struct {
		mode privacy.Mode
		// check returns a complaint about the written address, or "".
		check func(a netip.Addr, present bool) string
	}{
		{privacy.Truncate, func(a netip.Addr, present bool) string {
			if a != netip.MustParseAddr("2001:db8:1234:5600::") {
				return "want 2001:db8:1234:5600::"
			}
			return ""
		}},
		{privacy.Hash, func(a netip.Addr, present bool) string {
			if !a.Is6() || a == client {
				return "want another IPv6 address"
			}
			return ""
		}},
		{privacy.Omit, func(a netip.Addr, present bool) string {
			if present {
				return "want the field left out"
			}
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(string(tt.mode), func(t *testing.T) {
			path := socketPath(t)
			c := startCollector(t, "unix", path)
			tap := newTap(t, path, tt.mode, ClientQuery)
			tap.ClientQuery(&observe.Query{Received: time.Now(), Client: client, Query: []byte{1}})
			d := c.next(t)
			tap.Close()
			if problem := tt.check(d.QueryAddress, d.Fields[msgQueryAddress]); problem != "" {
				t.Errorf("query_address %v (present %t): %s", d.QueryAddress, d.Fields[msgQueryAddress], problem)
			}
			if d.Family != INET6 {
				t.Errorf("socket_family %d, want INET6", d.Family)
			}
		})
	}
}

func TestTapUpstreamQuery(t *testing.T) {
	path := socketPath(t)
	c := startCollector(t, "unix", path)
	tap := newTap(t, path, privacy.Truncate, allTypes...)

	query := new(dns.Msg).SetQuestion("example.", dns.TypeNS)
	query.RecursionDesired = false
	response := new(dns.Msg).SetReply(query)
	sent := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	server := netip.MustParseAddrPort("127.53.1.1:5353")
	tap.UpstreamQuery(&observe.Upstream{
		Sent: sent, RTT: 3 * time.Millisecond, Server: server, Zone: "example.", TCP: true,
		Query: query, Response: response,
	})
	// A failed exchange has a query and no response.
	tap.UpstreamQuery(&observe.Upstream{
		Sent: sent, RTT: time.Second, Server: server, Query: query, Err: errors.New("timed out"),
	})

	rq, rr, failed := c.next(t), c.next(t), c.next(t)
	if err := tap.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if rq.Message.Type != ResolverQuery || !bytes.Equal(rq.QueryMessage, packed(t, query)) {
		t.Errorf("first message: type %d, query_message %x; want RESOLVER_QUERY with the query", rq.Message.Type, rq.QueryMessage)
	}
	if rr.Message.Type != ResolverResponse || !bytes.Equal(rr.ResponseMessage, packed(t, response)) {
		t.Errorf("second message: type %d, response_message %x; want RESOLVER_RESPONSE with the response", rr.Message.Type, rr.ResponseMessage)
	}
	for _, d := range []decoded{rq, rr} {
		if d.ResponseAddress != server.Addr() || d.ResponsePort != server.Port() {
			t.Errorf("%d: response_address %v port %d, want %v", d.Message.Type, d.ResponseAddress, d.ResponsePort, server)
		}
		if d.Family != INET || d.Protocol != TCP {
			t.Errorf("%d: family %d protocol %d, want INET, TCP", d.Message.Type, d.Family, d.Protocol)
		}
		if d.Fields[msgQueryAddress] {
			t.Errorf("%d: query_address present, want it left out", d.Message.Type)
		}
		if string(d.QueryZone) != "\x07example\x00" {
			t.Errorf("%d: query_zone %q, want example. in wire form", d.Message.Type, d.QueryZone)
		}
	}
	if failed.Fields[msgQueryZone] {
		t.Errorf("failed exchange without a zone: query_zone %q present", failed.QueryZone)
	}
	if want := sent.Add(3 * time.Millisecond); !rr.ResponseTime.Equal(want) {
		t.Errorf("response_time %v, want %v", rr.ResponseTime, want)
	}
	if failed.Message.Type != ResolverQuery || failed.Protocol != UDP {
		t.Errorf("failed exchange: type %d protocol %d, want RESOLVER_QUERY over UDP", failed.Message.Type, failed.Protocol)
	}
}

// TestTapMessageTypes turns on one type at a time: only that type is
// written.
func TestTapMessageTypes(t *testing.T) {
	for _, typ := range allTypes {
		t.Run(typeName(typ), func(t *testing.T) {
			path := socketPath(t)
			c := startCollector(t, "unix", path)
			tap := newTap(t, path, privacy.Truncate, typ)
			msg := new(dns.Msg).SetQuestion("example.", dns.TypeA)
			tap.ClientQuery(&observe.Query{
				Received: time.Now(), Client: netip.MustParseAddr("192.0.2.1"),
				Query: packed(t, msg), Response: packed(t, msg),
			})
			tap.UpstreamQuery(&observe.Upstream{
				Sent: time.Now(), Server: netip.MustParseAddrPort("192.0.2.53:53"),
				Query: msg, Response: msg,
			})
			if err := tap.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := c.session(t); err != nil {
				t.Fatalf("session: %v", err)
			}
			if got := c.next(t).Message.Type; got != typ {
				t.Errorf("message type %d, want %d", got, typ)
			}
			if n := len(c.frames); n != 0 {
				t.Errorf("%d more messages, want only one", n)
			}
		})
	}
}

func typeName(typ Type) string {
	for name, v := range messageTypes {
		if v == typ {
			return name
		}
	}
	return "unknown"
}

// TestOutputDropsWhenFull queues more frames than fit with no collector:
// the rest are dropped and counted, and Close reports those never sent.
func TestOutputDropsWhenFull(t *testing.T) {
	out := NewOutput(OutputConfig{Network: "unix", Address: socketPath(t), QueueSize: 3}, discardLog())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 10 {
			out.enqueue([]byte{0, 0, 0, 1, 'x'})
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("enqueue blocked with a full queue")
	}
	if got := out.Dropped(); got != 7 {
		t.Errorf("Dropped() = %d, want 7", got)
	}
	err := out.Close()
	if err == nil || !strings.Contains(err.Error(), "3 frames not sent") {
		t.Errorf("Close() = %v, want an error counting 3 frames not sent", err)
	}
	if got := out.Lost(); got != 3 {
		t.Errorf("Lost() = %d, want 3", got)
	}
}

// TestOutputReconnects starts with no collector, then brings one up, cuts
// its connection and checks that frames flow after each reconnection.
func TestOutputReconnects(t *testing.T) {
	path := socketPath(t)
	tap := newTap(t, path, privacy.Truncate, ClientQuery)
	query := func(id byte) {
		tap.ClientQuery(&observe.Query{Received: time.Now(), Client: netip.MustParseAddr("192.0.2.1"), Query: []byte{id}})
	}
	query(1) // waits in the queue: no collector yet

	c := startCollector(t, "unix", path)
	if got := c.next(t).QueryMessage; !bytes.Equal(got, []byte{1}) {
		t.Fatalf("first frame %x, want the one queued before the collector came up", got)
	}

	// Cut the session: the Output sees it end and connects again.
	(<-c.conns).Close()
	if err := c.session(t); err == nil {
		t.Fatal("cut session ended cleanly")
	}
	select {
	case <-c.conns:
	case <-time.After(10 * time.Second):
		t.Fatal("no reconnection within 10s")
	}
	query(2)
	if got := c.next(t).QueryMessage; !bytes.Equal(got, []byte{2}) {
		t.Errorf("frame after reconnection %x, want 02", got)
	}
	if err := tap.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := c.session(t); err != nil {
		t.Errorf("second session: %v", err)
	}
}

func TestOutputTCP(t *testing.T) {
	c := startCollector(t, "tcp", "127.0.0.1:0")
	out := NewOutput(OutputConfig{Network: "tcp", Address: c.ln.Addr().String(), QueueSize: 8}, discardLog())
	out.enqueue(AppendFrame(nil, nil, nil, &Message{Type: ClientQuery, QueryMessage: []byte{7}}))
	if got := c.next(t).QueryMessage; !bytes.Equal(got, []byte{7}) {
		t.Errorf("query_message %x, want 07", got)
	}
	if err := out.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := c.session(t); err != nil {
		t.Errorf("session: %v", err)
	}
}

func FuzzParseControl(f *testing.F) {
	f.Add(appendControl(nil, controlAccept, ContentType)[8:])
	f.Add(appendControl(nil, controlFinish)[8:])
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, frame []byte) {
		typ, types, err := parseControl(frame)
		if err != nil {
			return
		}
		// A parsed frame encodes again to no more bytes than it had.
		if again := appendControl(nil, typ, types...)[8:]; len(again) > len(frame) {
			t.Errorf("parseControl(%x) = %d %q, which encodes to %d bytes", frame, typ, types, len(again))
		}
	})
}

// BenchmarkTapClientQuery measures the query path's share of dnstap: a
// CLIENT_QUERY and a CLIENT_RESPONSE frame per operation, encoded, queued
// and written to a collector that reads and discards them.
func BenchmarkTapClientQuery(b *testing.B) {
	path := filepath.Join(b.TempDir(), "dnstap.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	c := &collector{ln: ln, sessions: make(chan error, 10), conns: make(chan net.Conn, 10), discard: true}
	go c.accept()

	tap := New(Config{
		Output:    OutputConfig{Network: "unix", Address: path, QueueSize: 16384},
		Identity:  "resolver-1",
		Version:   "bulwark bench",
		Anonymise: privacy.Config{Mode: privacy.Truncate},
		Types:     []Type{ClientQuery, ClientResponse},
	}, discardLog())
	q := benchQuery(b)

	// Wait for the session, then keep the queue from filling, so that
	// frames are encoded and written rather than dropped.
	tap.ClientQuery(&q)
	for tap.Sent() < 2 {
		time.Sleep(time.Millisecond)
	}
	offered := uint64(2)
	b.ReportAllocs()
	for b.Loop() {
		tap.ClientQuery(&q)
		offered += 2
		for offered-tap.Sent()-tap.Dropped() > 8192 {
			runtime.Gosched()
		}
	}
	b.StopTimer()

	tap.Close()
	b.ReportMetric(float64(tap.Dropped()), "dropped")
}

// benchQuery returns a client query for an A record with its one-record
// response.
func benchQuery(b *testing.B) observe.Query {
	query := new(dns.Msg).SetQuestion("www.example.", dns.TypeA)
	response := new(dns.Msg).SetReply(query)
	response.Answer = append(response.Answer, &dns.A{
		Hdr: dns.RR_Header{Name: "www.example.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
		A:   net.IPv4(192, 0, 2, 1),
	})
	return observe.Query{
		Received:  time.Now(),
		Duration:  time.Millisecond,
		Transport: observe.UDP,
		Client:    netip.MustParseAddr("192.0.2.77"),
		Query:     packed(b, query),
		Response:  packed(b, response),
	}
}
