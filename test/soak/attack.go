package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
)

// Pacing of the UDP attack: each socket sends batches of up to
// attackBatch datagrams with one sendmmsg call, so that one core can send
// tens of thousands of queries a second.
const (
	attackSockets = 4
	attackBatch   = 64
)

// payloadFunc writes one attack datagram into buf and returns it.
type payloadFunc func(r *rand.Rand, buf []byte) []byte

// udpAttack sends datagrams made by payload at a fixed rate, from one
// source address or from many.
type udpAttack struct {
	server  *net.UDPAddr
	payload payloadFunc
	rate    int
	// sources, when not empty, are the source addresses the datagrams
	// take in turn, set per datagram with IP_PKTINFO.
	sources []net.IP

	sent, replies, replyBytes atomic.Int64
}

// attackResult is what an attack sent and received.
type attackResult struct {
	Sent, Replies, ReplyBytes int64
	Duration                  time.Duration
}

// Rate returns the datagrams or connections sent per second.
func (r attackResult) Rate() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Sent) / r.Duration.Seconds()
}

// run sends for d or until ctx is done, then drains replies for a second.
func (a *udpAttack) run(ctx context.Context, d time.Duration) (attackResult, error) {
	var conns []*ipv4.PacketConn
	for range attackSockets {
		local := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}
		if len(a.sources) > 0 {
			local = &net.UDPAddr{IP: net.IPv4zero}
		}
		c, err := net.ListenUDP("udp4", local)
		if err != nil {
			return attackResult{}, fmt.Errorf("open attack socket: %w", err)
		}
		defer c.Close()
		conns = append(conns, ipv4.NewPacketConn(c))
	}
	var readers, senders sync.WaitGroup
	for _, c := range conns {
		readers.Add(1)
		go func() {
			defer readers.Done()
			a.drain(c)
		}()
	}
	start := time.Now()
	for i, c := range conns {
		senders.Add(1)
		go func() {
			defer senders.Done()
			a.send(ctx, c, i, d, start)
		}()
	}
	senders.Wait()
	elapsed := time.Since(start)
	time.Sleep(time.Second)
	for _, c := range conns {
		c.Close()
	}
	readers.Wait()
	return attackResult{Sent: a.sent.Load(), Replies: a.replies.Load(), ReplyBytes: a.replyBytes.Load(), Duration: elapsed}, nil
}

// send paces one socket's share of the rate.
func (a *udpAttack) send(ctx context.Context, c *ipv4.PacketConn, index int, d time.Duration, start time.Time) {
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(index)))
	rate := float64(a.rate) / attackSockets
	msgs := make([]ipv4.Message, attackBatch)
	bufs := make([][]byte, attackBatch)
	for i := range msgs {
		bufs[i] = make([]byte, 0, 512)
		msgs[i].Addr = a.server
	}
	var sent int64
	for ctx.Err() == nil {
		elapsed := time.Since(start)
		if elapsed >= d {
			return
		}
		want := int64(elapsed.Seconds() * rate)
		for sent < want {
			n := min(int64(attackBatch), want-sent)
			for i := range n {
				msgs[i].Buffers = [][]byte{a.payload(r, bufs[i][:0])}
				if len(a.sources) > 0 {
					src := a.sources[r.IntN(len(a.sources))]
					msgs[i].OOB = (&ipv4.ControlMessage{Src: src}).Marshal()
				}
			}
			written, err := c.WriteBatch(msgs[:n], 0)
			if err != nil {
				// A full socket buffer: count what went out and pace on.
				written = max(written, 0)
			}
			sent += int64(written)
			a.sent.Add(int64(written))
			if written < int(n) {
				break
			}
		}
		time.Sleep(time.Millisecond)
	}
}

// drain reads replies until the socket is closed, counting them.
func (a *udpAttack) drain(c *ipv4.PacketConn) {
	msgs := make([]ipv4.Message, attackBatch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, 4096)}
	}
	for {
		n, err := c.ReadBatch(msgs, 0)
		if err != nil {
			return
		}
		a.replies.Add(int64(n))
		for _, m := range msgs[:n] {
			a.replyBytes.Add(int64(m.N))
		}
	}
}

// randomLabel returns n random lowercase letters and digits.
func randomLabel(r *rand.Rand, n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

// query packs a recursive query for name and qtype into buf, with EDNS
// and the given UDP buffer size.
func query(r *rand.Rand, buf []byte, name string, qtype uint16, udpSize uint16) []byte {
	msg := new(dns.Msg)
	msg.SetQuestion(name, qtype)
	msg.Id = uint16(r.UintN(1 << 16))
	msg.SetEdns0(udpSize, true)
	out, err := msg.PackBuffer(buf)
	if err != nil {
		panic(fmt.Sprintf("pack attack query %s: %v", name, err))
	}
	return out
}

// randomSubdomains asks for A records of random names one label below
// zone, which no cache can answer.
func randomSubdomains(zone string) payloadFunc {
	return func(r *rand.Rand, buf []byte) []byte {
		return query(r, buf, randomLabel(r, 12)+"."+zone, dns.TypeA, 1232)
	}
}

// largeAnswer is a question with a large answer, for the amplification row.
type largeAnswer struct {
	name  string
	qtype uint16
}

// amplification asks the questions of large in turn with a 4096-byte
// buffer and the DO bit, as a reflection attack does.
func amplification(large []largeAnswer) payloadFunc {
	return func(r *rand.Rand, buf []byte) []byte {
		q := large[r.IntN(len(large))]
		return query(r, buf, q.name, q.qtype, 4096)
	}
}

// malformed returns a packet that no DNS parser should accept, one of
// five kinds chosen at random. The kinds are random bytes, a header that
// promises records it lacks, a label longer than 63 bytes, a compression
// pointer to itself, and a query with QR set and an unknown opcode.
func malformed(r *rand.Rand, buf []byte) []byte {
	header := func(qd, an uint16, flags uint16) []byte {
		b := binary.BigEndian.AppendUint16(buf, uint16(r.UintN(1<<16)))
		b = binary.BigEndian.AppendUint16(b, flags)
		b = binary.BigEndian.AppendUint16(b, qd)
		b = binary.BigEndian.AppendUint16(b, an)
		return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(b, 0), 0)
	}
	switch r.IntN(5) {
	case 0:
		n := 1 + r.IntN(300)
		for range n {
			buf = append(buf, byte(r.UintN(256)))
		}
		return buf
	case 1:
		return append(header(3, 7, 0x0100), 3, 'w', 'w', 'w')
	case 2:
		b := append(header(1, 0, 0x0100), 64)
		for range 64 {
			b = append(b, 'a')
		}
		return append(b, 0, 0, 1, 0, 1)
	case 3:
		return append(header(1, 0, 0x0100), 0xc0, 12, 0, 1, 0, 1)
	default:
		b := append(header(1, 0, 0x8000|0x7800), 1, 'x', 0)
		return append(b, 0, 1, 0, 1)
	}
}

// tcpFlood opens connections at a fixed rate and keeps each open as a slow
// client: a third send nothing, a third send one byte of the length
// prefix, and a third trickle a whole query one byte every 500 ms. Each
// connection closes after hold, and at most maxOpen are open at once.
type tcpFlood struct {
	server  string
	rate    int
	hold    time.Duration
	maxOpen int

	sent, refused atomic.Int64
	open          atomic.Int64
}

func (f *tcpFlood) run(ctx context.Context, d time.Duration) attackResult {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var conns sync.WaitGroup
	start := time.Now()
	var started int64
	dialer := &net.Dialer{Timeout: 2 * time.Second}
	for ctx.Err() == nil {
		want := int64(time.Since(start).Seconds() * float64(f.rate))
		for ; started < want && f.open.Load() < int64(f.maxOpen); started++ {
			f.open.Add(1)
			f.sent.Add(1)
			conns.Add(1)
			go func(kind int64) {
				defer conns.Done()
				defer f.open.Add(-1)
				f.slowClient(ctx, dialer, kind%3)
			}(started)
		}
		time.Sleep(2 * time.Millisecond)
	}
	elapsed := time.Since(start)
	conns.Wait()
	return attackResult{Sent: f.sent.Load(), Replies: f.refused.Load(), Duration: elapsed}
}

func (f *tcpFlood) slowClient(ctx context.Context, dialer *net.Dialer, kind int64) {
	conn, err := dialer.DialContext(ctx, "tcp", f.server)
	if err != nil {
		f.refused.Add(1)
		return
	}
	defer conn.Close()
	msg := new(dns.Msg)
	msg.SetQuestion("www.example.com.", dns.TypeA)
	packed, _ := msg.Pack()
	wire := binary.BigEndian.AppendUint16(nil, uint16(len(packed)))
	wire = append(wire, packed...)

	hold := time.NewTimer(f.hold)
	defer hold.Stop()
	switch kind {
	case 0:
	case 1:
		conn.Write(wire[:1])
	default:
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < len(wire); i++ {
			select {
			case <-ctx.Done():
				return
			case <-hold.C:
				return
			case <-tick.C:
			}
			if _, err := conn.Write(wire[i : i+1]); err != nil {
				return
			}
		}
	}
	select {
	case <-ctx.Done():
	case <-hold.C:
	}
}
