//go:build linux && (amd64 || arm64)

package server

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"bulwark/internal/pipeline"
)

// udpBatch is the most datagrams read or written by one system call.
const udpBatch = 32

// udpQueryBuffer is the size of each receive buffer. The kernel truncates a
// longer datagram, and such a query is dropped: DNS queries over UDP are far
// shorter.
const udpQueryBuffer = 4096

// udpResponseBuffer is the capacity kept for each response of a batch; a
// longer response is built in a buffer of its own.
const udpResponseBuffer = 4096

// mmsghdr is struct mmsghdr of recvmmsg(2) and sendmmsg(2) on 64-bit Linux.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// batchConn reads and writes one UDP socket in batches with recvmmsg and
// sendmmsg, through the runtime's poller. Every buffer is allocated once, so
// a batch of cache hits costs two system calls and no heap allocation.
//
// mu is held by the goroutine that reads and answers a batch: the socket's
// own reader, or a goroutine that has just finished a resolution and polls
// the socket on its way out (see pollUDP).
type batchConn struct {
	mu      sync.Mutex
	conn    *net.UDPConn
	flavour uint8
	raw     syscall.RawConn
	// locked is set by readBatch when it took mu for the reader.
	locked bool

	recv      [udpBatch]mmsghdr
	recvIOV   [udpBatch]unix.Iovec
	recvNames [udpBatch]unix.RawSockaddrInet6
	bufs      [udpBatch][udpQueryBuffer]byte
	received  int

	send      [udpBatch]mmsghdr
	sendIOV   [udpBatch]unix.Iovec
	sendNames [udpBatch]unix.RawSockaddrInet6
	out       [udpBatch][]byte
	queued    int
	sent      int

	err error
	// readFn and writeFn are the runtime poller's callbacks, and pollCall
	// that of pollUDP, made once.
	readFn, writeFn func(fd uintptr) bool
	pollCall        func(fd uintptr)
}

func newBatchConn(conn *net.UDPConn, flavour uint8) (*batchConn, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	b := &batchConn{conn: conn, flavour: flavour, raw: raw}
	for i := range udpBatch {
		b.recvIOV[i].Base = &b.bufs[i][0]
		b.recvIOV[i].SetLen(udpQueryBuffer)
		b.recv[i].hdr.Iov = &b.recvIOV[i]
		b.recv[i].hdr.SetIovlen(1)
		b.recv[i].hdr.Name = (*byte)(unsafe.Pointer(&b.recvNames[i]))
		b.send[i].hdr.Iov = &b.sendIOV[i]
		b.send[i].hdr.SetIovlen(1)
		b.send[i].hdr.Name = (*byte)(unsafe.Pointer(&b.sendNames[i]))
		b.out[i] = make([]byte, 0, udpResponseBuffer)
	}
	b.readFn, b.writeFn, b.pollCall = b.readBatch, b.writeBatch, b.pollBatch
	return b, nil
}

// read waits for at least one datagram and reads up to udpBatch, for the
// socket's reader. It returns how many were read, with mu held, or locked
// false when another goroutine held mu: that one answers what is waiting,
// and the reader tries again.
func (b *batchConn) read() (n int, locked bool, err error) {
	// Only the reader touches locked; received and err belong to the
	// holder of mu.
	b.locked = false
	if err := b.raw.Read(b.readFn); err != nil {
		if b.locked {
			b.mu.Unlock()
		}
		return 0, false, err
	}
	if !b.locked {
		return 0, false, nil
	}
	return b.received, true, b.err
}

// reset prepares the receive headers for a call.
func (b *batchConn) reset() {
	for i := range udpBatch {
		b.recv[i].hdr.Namelen = unix.SizeofSockaddrInet6
		b.recv[i].hdr.Flags = 0
		b.recv[i].len = 0
	}
}

// readBatch and writeBatch make raw system calls, which skip the runtime's
// bookkeeping of blocking calls (and the wake-up of its monitor thread that
// comes with it, a context switch a packet on one core). That is safe
// because the socket is non-blocking, so neither call ever waits.
func (b *batchConn) readBatch(fd uintptr) bool {
	if !b.mu.TryLock() {
		return true
	}
	b.locked = true
	b.received, b.err = 0, nil
	b.reset()
	n, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.recv[0])),
		udpBatch, unix.MSG_WAITFORONE, 0, 0)
	switch errno {
	case 0:
		b.received = int(n)
		return true
	case unix.EAGAIN, unix.EINTR:
		// Nothing waits: let go of the socket while the reader sleeps,
		// so that other goroutines can poll it.
		b.locked = false
		b.mu.Unlock()
		return false
	}
	b.err = errno
	return true
}

// pollBatch reads what is waiting, without waiting, for a goroutine that
// holds mu and polls the socket.
func (b *batchConn) pollBatch(fd uintptr) {
	b.reset()
	n, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.recv[0])),
		udpBatch, unix.MSG_DONTWAIT, 0, 0)
	if errno == 0 {
		b.received = int(n)
	}
}

// datagram returns datagram i of the last read and its source. ok is false
// for a truncated datagram or an unknown address family.
func (b *batchConn) datagram(i int) (pkt []byte, from netip.AddrPort, ok bool) {
	m := &b.recv[i]
	if m.hdr.Flags&unix.MSG_TRUNC != 0 {
		return nil, netip.AddrPort{}, false
	}
	from, ok = sockaddrAddrPort(&b.recvNames[i])
	return b.bufs[i][:m.len], from, ok
}

// sockaddrAddrPort converts a raw IPv4 or IPv6 socket address.
func sockaddrAddrPort(sa *unix.RawSockaddrInet6) (netip.AddrPort, bool) {
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port), true
	case unix.AF_INET6:
		// Scoped (link-local) sources lose their zone: the resolver
		// listens on configured addresses, not on link-local ones.
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), port), true
	}
	return netip.AddrPort{}, false
}

// responseBuffer returns the buffer for the next queued response.
func (b *batchConn) responseBuffer() []byte { return b.out[b.queued][:0] }

// queue adds resp, the response to datagram i of the last read, to the
// batch written by flush. resp is usually built in responseBuffer; one that
// outgrew it is kept alive by the I/O vector's pointer until the flush.
func (b *batchConn) queue(i int, resp []byte) {
	j := b.queued
	b.sendNames[j] = b.recvNames[i]
	b.send[j].hdr.Namelen = b.recv[i].hdr.Namelen
	b.sendIOV[j].Base = &resp[0]
	b.sendIOV[j].SetLen(len(resp))
	b.queued++
}

// flush writes the queued responses. A response the kernel rejects, such
// as one to an unreachable address, is skipped.
func (b *batchConn) flush() error {
	if b.queued == 0 {
		return nil
	}
	b.sent, b.err = 0, nil
	err := b.raw.Write(b.writeFn)
	b.queued = 0
	if err != nil {
		return err
	}
	return b.err
}

func (b *batchConn) writeBatch(fd uintptr) bool {
	for b.sent < b.queued {
		n, _, errno := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.send[b.sent])),
			uintptr(b.queued-b.sent), 0, 0, 0)
		switch errno {
		case 0:
			b.sent += int(n)
		case unix.EAGAIN:
			return false
		case unix.EINTR:
		case unix.EBADF:
			b.err = errno
			return true
		default:
			b.sent++ // this message failed; send the rest
		}
	}
	return true
}

// serveUDPBatch reads one socket in batches. Cache hits are answered in the
// batch, without a new goroutine or an allocation; misses go to a goroutine
// of their own and are answered on their own.
func (s *Server) serveUDPBatch(b *batchConn) {
	defer s.wg.Done()
	for {
		n, locked, err := b.read()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.isClosing() {
				return
			}
			continue
		}
		if !locked {
			// A goroutine polling the socket answers what waits; yield
			// to it rather than spin.
			runtime.Gosched()
			continue
		}
		closed := s.answerBatch(b, n)
		b.mu.Unlock()
		if closed {
			return
		}
	}
}

// answerBatch answers the n datagrams of the last read of b, which the
// caller holds. It reports whether the socket is closed.
func (s *Server) answerBatch(b *batchConn, n int) (closed bool) {
	received := s.received()
	for i := range n {
		pkt, addr, ok := b.datagram(i)
		if !ok {
			continue
		}
		s.queries[transportUDP].Add(1)
		client := addr.Addr()
		f := s.pipe.ClientFlavour(client, b.flavour)
		resp, outcome, tag := s.pipe.HandleFast(pkt, b.responseBuffer(), true, f, client)
		switch outcome {
		case pipeline.Answered:
			resp = s.limitUDP(pkt, resp, client)
			if resp != nil {
				b.queue(i, resp)
			}
			s.report(transportUDP, f, client, received, pkt, resp, true, tag)
		case pipeline.Dropped:
			s.report(transportUDP, f, client, received, pkt, nil, false, 0)
		case pipeline.Slow:
			s.slowUDP(b.conn, addr, pkt, f, received)
		}
	}
	err := b.flush()
	return err != nil && (errors.Is(err, net.ErrClosed) || s.isClosing())
}

// pollUDP reads and answers what waits on each batched UDP socket that no
// other goroutine is reading. Goroutines call it when they finish a
// resolution. The runtime looks for ready sockets only once its run queue
// is empty, so with few cores a socket's reader would otherwise wait behind
// every resolution that became ready meanwhile. Under a flood of uncached
// names, cached answers then waited milliseconds.
func (s *Server) pollUDP() {
	batches := s.batches.Load()
	if batches == nil {
		return
	}
	for _, b := range *batches {
		if !b.mu.TryLock() {
			continue
		}
		b.received, b.err = 0, nil
		// Control keeps the descriptor open during the call without the
		// read lock, which the reader holds while it waits for data.
		if err := b.raw.Control(b.pollCall); err == nil && b.received > 0 {
			s.answerBatch(b, b.received)
		}
		b.mu.Unlock()
	}
}

// serveUDPSocket serves conn, in batches where the socket allows it.
func (s *Server) serveUDPSocket(conn *net.UDPConn, flavour uint8) {
	b, err := newBatchConn(conn, flavour)
	if err != nil {
		s.log.Warn("batched UDP unavailable; reading one datagram per call", "error", err)
		s.serveUDP(conn, flavour)
		return
	}
	s.addBatch(b)
	s.serveUDPBatch(b)
}

// addBatch makes b one of the sockets that pollUDP polls.
func (s *Server) addBatch(b *batchConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var next []*batchConn
	if old := s.batches.Load(); old != nil {
		next = append(next, *old...)
	}
	next = append(next, b)
	s.batches.Store(&next)
}

// udpDrainLimit bounds how long Shutdown reads the datagrams queued on the
// UDP sockets; clients that keep sending would otherwise keep it reading.
const udpDrainLimit = time.Second

// drainUDP reads and answers the datagrams queued on each batched UDP
// socket, once its reader has stopped, until the queue is empty, ctx is
// done or udpDrainLimit has passed.
func (s *Server) drainUDP(ctx context.Context) {
	batches := s.batches.Load()
	if batches == nil {
		return
	}
	deadline := time.Now().Add(udpDrainLimit)
	for _, b := range *batches {
		for ctx.Err() == nil && time.Now().Before(deadline) {
			b.mu.Lock()
			b.received, b.err = 0, nil
			n := 0
			if err := b.raw.Control(b.pollCall); err == nil {
				n = b.received
			}
			if n > 0 {
				s.answerBatch(b, n)
			}
			b.mu.Unlock()
			if n == 0 {
				break
			}
		}
	}
}
