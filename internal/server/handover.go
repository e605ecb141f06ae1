package server

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A handover passes the listening sockets of a running Bulwark to a new
// process over a unix socket with SCM_RIGHTS (unix(7)). Both processes then
// hold the same sockets: nothing is bound again, so the kernel keeps every
// datagram queued on a UDP socket and every connection waiting in a TCP
// accept queue, and whichever process reads next responds to it. Once the new
// process serves, it reports ready, and the old one stops reading and
// answers what it has read before it exits.
//
// The exchange on the handover socket:
//
//	new -> old  "bulwark-handover 1\n"
//	old -> new  JSON list of Socket descriptions, with the descriptors
//	new -> old  "ready\n" once it serves on them

// handoverGreeting opens a handover request.
const handoverGreeting = "bulwark-handover 1\n"

// handoverPrepare may come before the greeting: the old process then saves
// its state files and responds with handoverSaved, and the new process
// loads them before it sends the greeting.
const (
	handoverPrepare = "bulwark-handover-prepare 1\n"
	handoverSaved   = "saved\n"
)

// handoverReady tells the old process that the new one serves.
const handoverReady = "ready\n"

// maxHandoverSockets is the most descriptors one handover passes, the
// kernel's SCM_MAX_FD.
const maxHandoverSockets = 253

// Socket is a listening socket that a handover passes on.
type Socket struct {
	// Network names the kind of socket. DNS listeners use "udp" (plain
	// DNS over UDP), "tcp" (TCP, DoT or DoH) and "quic" (DoQ or HTTP/3).
	// "http" is the listener of the metrics, the administration API or
	// the block page, and "xfr-tcp" and "xfr-udp" are the sockets of
	// the RPZ primary.
	Network string `json:"network"`
	// Address is the bound IP:port.
	Address netip.AddrPort `json:"address"`
	// File is a duplicate of the descriptor, owned by the receiver.
	File *os.File `json:"-"`
}

// filer is a socket whose descriptor can be duplicated.
type filer interface {
	File() (*os.File, error)
}

// ownedSocket is a socket that this Server bound or inherited.
type ownedSocket struct {
	network string
	addr    netip.AddrPort
	conn    filer
}

// inheritedSockets are the sockets a handover passed in, taken by the
// listeners at Start.
type inheritedSockets struct {
	mu    sync.Mutex
	socks []Socket
}

// take removes and returns the inherited sockets of network at addr.
func (in *inheritedSockets) take(network string, addr netip.AddrPort) []*os.File {
	in.mu.Lock()
	defer in.mu.Unlock()
	var files []*os.File
	in.socks = slices.DeleteFunc(in.socks, func(s Socket) bool {
		if s.Network != network || s.Address != addr {
			return false
		}
		files = append(files, s.File)
		return true
	})
	return files
}

// closeRest closes the inherited sockets that no listener took, those of
// listeners that the new config dropped, and returns their descriptions.
func (in *inheritedSockets) closeRest() []Socket {
	in.mu.Lock()
	defer in.mu.Unlock()
	rest := in.socks
	in.socks = nil
	for _, s := range rest {
		s.File.Close()
	}
	return rest
}

// Inherit gives s the sockets of a handover, to serve on instead of binding
// new ones. It must be called before Start, which takes ownership of them.
func (s *Server) Inherit(socks []Socket) {
	s.inherited.socks = append(s.inherited.socks, socks...)
}

// own records a socket that a handover may pass on.
func (s *Server) own(network string, addr netip.AddrPort, conn filer) {
	s.mu.Lock()
	s.owned = append(s.owned, ownedSocket{network: network, addr: addr, conn: conn})
	s.mu.Unlock()
}

// Sockets returns duplicates of every listening socket, for a handover.
// The caller owns the files.
func (s *Server) Sockets() ([]Socket, error) {
	s.mu.Lock()
	owned := slices.Clone(s.owned)
	s.mu.Unlock()
	var out []Socket
	for _, o := range owned {
		f, err := o.conn.File()
		if err != nil {
			closeSockets(out)
			return nil, fmt.Errorf("duplicate the %s socket of %s: %w", o.network, o.addr, err)
		}
		out = append(out, Socket{Network: o.network, Address: o.addr, File: f})
	}
	return out, nil
}

func closeSockets(socks []Socket) {
	for _, s := range socks {
		s.File.Close()
	}
}

// listenTCP returns the TCP listener at addr: the inherited one, or a new
// one.
func (s *Server) listenTCP(addr netip.AddrPort) (*net.TCPListener, error) {
	return s.listenStream("tcp", addr)
}

// ListenHTTP returns a listener at addr for an HTTP service of Bulwark,
// such as the metrics, the administration API or the block page: the one
// that a handover passed in, or a new one. A later handover passes it on
// with the DNS listeners. The caller serves on it and closes it; Shutdown
// does not.
//
// Call it before Start, which closes the inherited sockets that no
// listener has taken.
func (s *Server) ListenHTTP(addr netip.AddrPort) (net.Listener, error) {
	ln, err := s.listenStream("http", addr)
	if err != nil {
		return nil, err
	}
	return ln, nil
}

// listenStream returns the TCP listener of network at addr: the inherited
// one, or a new one.
func (s *Server) listenStream(network string, addr netip.AddrPort) (*net.TCPListener, error) {
	var ln *net.TCPListener
	if files := s.inherited.take(network, addr); len(files) > 0 {
		l, err := fileSocket(files, net.FileListener)
		if err != nil {
			return nil, err
		}
		var ok bool
		if ln, ok = l.(*net.TCPListener); !ok {
			l.Close()
			return nil, fmt.Errorf("inherited socket of %s is not a TCP listener", addr)
		}
	} else {
		l, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(addr))
		if err != nil {
			return nil, err
		}
		ln = l
	}
	s.own(network, addr, ln)
	return ln, nil
}

// listenQUIC returns the UDP socket of a QUIC listener at addr: the
// inherited one, or a new one.
func (s *Server) listenQUIC(addr netip.AddrPort) (*net.UDPConn, error) {
	conn, err := s.listenPacket("quic", addr, addr)
	if err != nil {
		return nil, err
	}
	conn.SetReadBuffer(udpReadBuffer)
	return conn, nil
}

// listenPacket returns the UDP socket of network at addr: the inherited
// one, or a new one bound to bind.
func (s *Server) listenPacket(network string, addr, bind netip.AddrPort) (*net.UDPConn, error) {
	var conn *net.UDPConn
	if files := s.inherited.take(network, addr); len(files) > 0 {
		c, err := fileSocket(files, net.FilePacketConn)
		if err != nil {
			return nil, err
		}
		var ok bool
		if conn, ok = c.(*net.UDPConn); !ok {
			c.Close()
			return nil, fmt.Errorf("inherited socket of %s is not a UDP socket", addr)
		}
	} else {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(bind))
		if err != nil {
			return nil, err
		}
		conn = c
	}
	s.own(network, addr, conn)
	return conn, nil
}

// inheritUDP returns the inherited plain DNS UDP sockets at addr, none
// when there was no handover.
func (s *Server) inheritUDP(addr netip.AddrPort) ([]*net.UDPConn, error) {
	var conns []*net.UDPConn
	for _, f := range s.inherited.take("udp", addr) {
		c, err := net.FilePacketConn(f)
		f.Close()
		if err != nil {
			return conns, fmt.Errorf("inherited UDP socket of %s: %w", addr, err)
		}
		uc, ok := c.(*net.UDPConn)
		if !ok {
			c.Close()
			return conns, fmt.Errorf("inherited socket of %s is not a UDP socket", addr)
		}
		conns = append(conns, uc)
	}
	return conns, nil
}

// fileSocket makes a socket of the first of files, which a handover passes
// one at a time for a TCP or QUIC listener, and closes every file.
func fileSocket[T any](files []*os.File, make func(*os.File) (T, error)) (T, error) {
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	return make(files[0])
}

// ListenHandover serves handover requests on the unix socket at path until
// Shutdown. After a new process reports that it serves on the sockets it
// received, handedOver is called, once: the caller then shuts s down. A
// socket file left by a process that is gone is replaced; one on which a
// process still accepts is an error.
func (s *Server) ListenHandover(path string, handedOver func()) error {
	if err := removeStaleSocket(path); err != nil {
		return err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return fmt.Errorf("handover socket %s: %w", path, err)
	}
	// The next process replaces the file while this one still runs: the
	// file must stay when this listener closes.
	ln.SetUnlinkOnClose(false)
	os.Chmod(path, 0o600)
	s.mu.Lock()
	s.closers = append(s.closers, ln.Close)
	s.mu.Unlock()
	var once sync.Once
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.AcceptUnix()
			if err != nil {
				return
			}
			if err := s.handOver(c); err != nil {
				s.log.Error("handover failed; this process keeps serving", "error", err)
				continue
			}
			s.log.Info("handover done: the new process serves; stopping")
			s.handedOver.Store(true)
			once.Do(handedOver)
		}
	}()
	return nil
}

// SetHandoverHooks sets prepare, called when a new process sends a prepare
// request before it requests the sockets, and failed, called when that
// handover then fails and this process keeps serving. In prepare a process
// saves the state files that the new one loads next. Either may be nil.
// Call it before ListenHandover.
func (s *Server) SetHandoverHooks(prepare, failed func()) {
	s.prepareHandover, s.handoverFailed = prepare, failed
}

// removeStaleSocket removes a unix socket file at path on which nothing
// accepts any more, as after kill -9.
func removeStaleSocket(path string) error {
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("handover socket %s: another Bulwark serves on it: start this one with -handover, or stop that one first", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.ENOTSOCK) {
		return fmt.Errorf("handover socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("handover socket %s: remove the stale file: %w", path, err)
	}
	return nil
}

// handoverTimeout bounds each step of a handover exchange. The new process
// loads its config, lists and state files after a prepare request, and
// starts serving once it has the sockets: those two steps have the longer
// startTimeout, since lists of millions of names take minutes to load.
const (
	handoverTimeout = 10 * time.Second
	startTimeout    = 10 * time.Minute
)

// handOver runs the old process's side of one handover on c.
func (s *Server) handOver(c *net.UnixConn) (err error) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(handoverTimeout))
	r := bufio.NewReader(c)
	greeting, err := r.ReadString('\n')
	if err == nil && greeting == handoverPrepare {
		if s.prepareHandover != nil {
			s.prepareHandover()
		}
		if s.handoverFailed != nil {
			defer func() {
				if err != nil {
					s.handoverFailed()
				}
			}()
		}
		if _, err := c.Write([]byte(handoverSaved)); err != nil {
			return fmt.Errorf("report the state files saved: %w", err)
		}
		// The new process loads its config, lists and state files now.
		c.SetDeadline(time.Now().Add(startTimeout))
		greeting, err = r.ReadString('\n')
	}
	if err != nil || greeting != handoverGreeting {
		return fmt.Errorf("invalid handover request %q: %v", greeting, err)
	}
	c.SetDeadline(time.Now().Add(handoverTimeout))
	socks, err := s.Sockets()
	if err != nil {
		return err
	}
	defer closeSockets(socks)
	if len(socks) > maxHandoverSockets {
		return fmt.Errorf("%d sockets to hand over, more than the kernel's limit of %d: lower server.udp_sockets", len(socks), maxHandoverSockets)
	}
	desc, err := json.Marshal(socks)
	if err != nil {
		return err
	}
	fds := make([]int, len(socks))
	for i, sock := range socks {
		fds[i] = int(sock.File.Fd())
	}
	if _, _, err := c.WriteMsgUnix(append(desc, '\n'), unix.UnixRights(fds...), nil); err != nil {
		return fmt.Errorf("send %d sockets: %w", len(socks), err)
	}
	c.SetDeadline(time.Now().Add(startTimeout))
	ready, err := r.ReadString('\n')
	if err != nil || ready != handoverReady {
		return fmt.Errorf("the new process did not report ready (%q): %v", ready, err)
	}
	return nil
}

// Handover is the new process's side of a handover in progress.
type Handover struct {
	conn *net.UnixConn
	path string
	// Sockets are the sockets received, for Server.Inherit.
	Sockets []Socket
}

// Prepare requests that the Bulwark serving handovers on the unix socket
// at path save the state files it keeps in memory and stop writing them,
// so that this process loads them next. Then Receive requests the sockets
// on the Handover returned, or Abort lets the old process write its files
// again and serve on.
func Prepare(path string) (*Handover, error) {
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("handover: connect to the running Bulwark on %s: %w; if no Bulwark runs, start without -handover", path, err)
	}
	c.SetDeadline(time.Now().Add(handoverTimeout))
	if _, err := c.Write([]byte(handoverPrepare)); err != nil {
		c.Close()
		return nil, fmt.Errorf("handover: send the request on %s: %w", path, err)
	}
	// One byte at a time, so that nothing of the socket message after
	// the line is read here.
	var line []byte
	b := make([]byte, 1)
	for len(line) < len(handoverSaved) {
		if _, err := c.Read(b); err != nil {
			c.Close()
			return nil, fmt.Errorf("handover on %s: the running Bulwark did not save its state: %w", path, err)
		}
		line = append(line, b[0])
		if b[0] == '\n' {
			break
		}
	}
	if string(line) != handoverSaved {
		c.Close()
		return nil, fmt.Errorf("handover on %s: invalid response %q to the prepare request", path, line)
	}
	return &Handover{conn: c, path: path}, nil
}

// Receive requests the listening sockets from the old process of a
// Handover made by Prepare, as TakeOver does.
func (h *Handover) Receive() error {
	h.conn.SetDeadline(time.Now().Add(handoverTimeout))
	if _, err := h.conn.Write([]byte(handoverGreeting)); err != nil {
		return fmt.Errorf("handover: send the request on %s: %w", h.path, err)
	}
	socks, err := receiveSockets(h.conn)
	if err != nil {
		return fmt.Errorf("handover on %s: %w", h.path, err)
	}
	h.Sockets = socks
	return nil
}

// TakeOver asks the Bulwark serving handovers on the unix socket at path
// for its listening sockets. The caller passes them to Server.Inherit,
// starts serving, and then calls Ready, or Abort on failure, which leaves
// the old process serving.
func TakeOver(path string) (*Handover, error) {
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("handover: connect to the running Bulwark on %s: %w; if no Bulwark runs, start without -handover", path, err)
	}
	c.SetDeadline(time.Now().Add(handoverTimeout))
	if _, err := c.Write([]byte(handoverGreeting)); err != nil {
		c.Close()
		return nil, fmt.Errorf("handover: send the request on %s: %w", path, err)
	}
	socks, err := receiveSockets(c)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("handover on %s: %w", path, err)
	}
	return &Handover{conn: c, path: path, Sockets: socks}, nil
}

// receiveSockets reads the descriptions and descriptors sent by handOver.
func receiveSockets(c *net.UnixConn) ([]Socket, error) {
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4*maxHandoverSockets))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("receive the sockets: %w", err)
	}
	var fds []int
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, fmt.Errorf("parse the control message: %w", err)
	}
	for _, m := range msgs {
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			return nil, fmt.Errorf("parse the control message: %w", err)
		}
		fds = append(fds, got...)
	}
	var socks []Socket
	err = json.Unmarshal(buf[:n], &socks)
	if err == nil && len(socks) != len(fds) {
		err = fmt.Errorf("%d sockets described but %d received", len(socks), len(fds))
	}
	if err != nil {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("invalid socket list: %w", err)
	}
	for i := range socks {
		socks[i].File = os.NewFile(uintptr(fds[i]), socks[i].Network+" "+socks[i].Address.String())
	}
	return socks, nil
}

// Ready tells the old process that this one serves: it stops reading and
// exits once it has answered what it read.
func (h *Handover) Ready() error {
	defer h.conn.Close()
	h.conn.SetDeadline(time.Now().Add(handoverTimeout))
	if _, err := h.conn.Write([]byte(handoverReady)); err != nil {
		return fmt.Errorf("handover: report ready: %w", err)
	}
	return nil
}

// Abort ends the handover without taking over: the old process keeps
// serving. Sockets that Server.Inherit has not taken are closed.
func (h *Handover) Abort() {
	h.conn.Close()
}
