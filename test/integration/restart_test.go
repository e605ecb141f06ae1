package integration

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"bulwark/test/labkit"

	"github.com/miekg/dns"
)

// writeRestartConfig writes the lab config on dnsPort with a handover
// socket in dir and two UDP sockets per listener.
func writeRestartConfig(t *testing.T, dir string, dnsPort int) (cfgPath, handover string) {
	t.Helper()
	cfgPath = filepath.Join(dir, "restart.yaml")
	handover = filepath.Join(dir, "handover.sock")
	writeDerivedConfig(t, cfgPath, dnsPort, "")
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(data), "server:\n",
		"server:\n  handover_socket: "+handover+"\n  udp_sockets: 2\n  shutdown_timeout: 5s\n", 1)
	if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfgPath, handover
}

// udpLoad sends queries for name from several sockets at a steady rate and
// records which were answered, by socket and message ID.
type udpLoad struct {
	conns    []*net.UDPConn
	sent     []atomic.Int64
	answered [][]atomic.Bool
	// lastAnswer and maxGap track the longest time without any answer.
	mu         sync.Mutex
	lastAnswer time.Time
	maxGap     time.Duration
}

const udpLoadSockets = 4

func startUDPLoad(t *testing.T, addr string, name string, perSecond int, stop <-chan struct{}) (*udpLoad, *sync.WaitGroup) {
	t.Helper()
	// Every slice has its final length before the first reader starts,
	// since the readers index them while later sockets are added.
	l := &udpLoad{
		conns: make([]*net.UDPConn, udpLoadSockets), sent: make([]atomic.Int64, udpLoadSockets),
		answered: make([][]atomic.Bool, udpLoadSockets),
	}
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	l.lastAnswer = time.Now()
	for i := range udpLoadSockets {
		c, err := net.DialUDP("udp", nil, raddr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadBuffer(4 << 20)
		l.conns[i] = c
		l.answered[i] = make([]atomic.Bool, 65536)
		go l.read(i)
		wg.Add(1)
		go l.send(i, name, perSecond/udpLoadSockets, stop, &wg)
	}
	return l, &wg
}

func (l *udpLoad) send(i int, name string, perSecond int, stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	tick := time.NewTicker(time.Second / time.Duration(perSecond))
	defer tick.Stop()
	for id := 0; id < 65536; id++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		m.Id = uint16(id)
		pkt, _ := m.Pack()
		if _, err := l.conns[i].Write(pkt); err == nil {
			l.sent[i].Add(1)
		}
	}
}

// read records answers until result closes the socket.
func (l *udpLoad) read(i int) {
	buf := make([]byte, 4096)
	for {
		n, err := l.conns[i].Read(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil || n < 12 {
			continue
		}
		l.answered[i][int(buf[0])<<8|int(buf[1])].Store(true)
		now := time.Now()
		l.mu.Lock()
		if gap := now.Sub(l.lastAnswer); gap > l.maxGap {
			l.maxGap = gap
		}
		l.lastAnswer = now
		l.mu.Unlock()
	}
}

// result waits for late answers and returns the queries sent and those
// never answered.
func (l *udpLoad) result() (sent, lost int) {
	time.Sleep(2 * time.Second)
	for i, c := range l.conns {
		c.Close()
		n := int(l.sent[i].Load())
		sent += n
		for id := range n {
			if !l.answered[i][id].Load() {
				lost++
			}
		}
	}
	return sent, lost
}

// tcpClient keeps one TCP connection with window queries in flight for
// unique names behind the slow lab server. When the server closes the
// connection, it reconnects and sends the unanswered queries again.
type tcpClient struct {
	addr     string
	window   int
	sent     atomic.Int64
	answered atomic.Int64
	// resent counts queries sent again after the server closed the
	// connection before answering them.
	resent atomic.Int64
	// unanswered counts queries still without an answer at the end.
	unanswered atomic.Int64
}

func (c *tcpClient) run(t *testing.T, prefix string, stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	var pending []*dns.Msg
	var conn *dns.Conn
	seq := 0
	for attempt := 0; ; {
		select {
		case <-stop:
			if len(pending) == 0 {
				if conn != nil {
					conn.Close()
				}
				return
			}
		default:
		}
		if conn == nil {
			nc, err := net.DialTimeout("tcp", c.addr, time.Second)
			if err != nil {
				attempt++
				if attempt > 50 {
					c.unanswered.Add(int64(len(pending)))
					return
				}
				time.Sleep(20 * time.Millisecond)
				continue
			}
			conn = &dns.Conn{Conn: nc}
			for _, m := range pending {
				conn.WriteMsg(m)
				c.resent.Add(1)
			}
		}
		for len(pending) < c.window && !closed(stop) {
			m := new(dns.Msg)
			m.SetQuestion(fmt.Sprintf("%s-%d.%s", prefix, seq, dns.Fqdn(lab.Info.SlowName)), dns.TypeA)
			seq++
			pending = append(pending, m)
			c.sent.Add(1)
			conn.WriteMsg(m)
		}
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		r, err := conn.ReadMsg()
		if err != nil {
			conn.Close()
			conn = nil
			continue
		}
		for i, m := range pending {
			if m.Id == r.Id {
				pending = append(pending[:i], pending[i+1:]...)
				c.answered.Add(1)
				break
			}
		}
	}
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestHandoverLosesNoQuery restarts the resolver with serve -handover while
// clients send UDP queries at a steady rate and keep TCP queries for slow
// names in flight, and checks that every query gets its answer.
func TestHandoverLosesNoQuery(t *testing.T) {
	dnsPort := port + 130
	dir := t.TempDir()
	cfgPath, _ := writeRestartConfig(t, dir, dnsPort)
	services := fixHTTPPorts(t, cfgPath, port+135, port+136, port+137)
	addr := net.JoinHostPort(resolver, strconv.Itoa(dnsPort))
	old, err := labkit.StartBulwark(binary, cfgPath, addr, filepath.Join(dir, "old.log"))
	if err != nil {
		t.Fatal(err)
	}
	oldDone := make(chan error, 1)
	go func() { oldDone <- old.Wait() }()
	t.Cleanup(func() { old.Process.Kill() })

	stop := make(chan struct{})
	load, udpWG := startUDPLoad(t, addr, ".", 2000, stop)
	var tcpWG sync.WaitGroup
	clients := make([]*tcpClient, 4)
	for i := range clients {
		clients[i] = &tcpClient{addr: addr, window: 4}
		tcpWG.Add(1)
		go clients[i].run(t, fmt.Sprintf("handover%d", i), stop, &tcpWG)
	}
	httpLoad := startHTTPLoad(services, stop, &tcpWG)
	time.Sleep(2 * time.Second)

	started := time.Now()
	next := exec.Command(binary, "serve", "-config", cfgPath, "-handover")
	logFile, err := os.Create(filepath.Join(dir, "new.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	next.Stdout, next.Stderr = logFile, logFile
	if err := next.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := labkit.StopProcess(next); err != nil {
			t.Errorf("new resolver did not stop cleanly: %v", err)
		}
	})
	select {
	case err := <-oldDone:
		if err != nil {
			t.Errorf("old resolver exit: %v", err)
		}
	case <-time.After(30 * time.Second):
		data, _ := os.ReadFile(filepath.Join(dir, "new.log"))
		t.Fatalf("old resolver still runs 30s after the handover began; new log:\n%s", data)
	}
	restart := time.Since(started)
	time.Sleep(2 * time.Second)
	close(stop)
	udpWG.Wait()
	tcpWG.Wait()
	sent, lost := load.result()

	t.Logf("handover: old process gone %.3fs after the new one started; longest UDP gap %.3fs",
		restart.Seconds(), load.maxGap.Seconds())
	t.Logf("UDP: %d queries sent, %d lost", sent, lost)
	if lost != 0 {
		t.Errorf("UDP queries lost across the handover: %d of %d", lost, sent)
	}
	if sent < 5000 {
		t.Errorf("UDP queries sent = %d, want at least 5000 for a meaningful load", sent)
	}
	var tcpSent, tcpAnswered, resent, unanswered int64
	for _, c := range clients {
		tcpSent += c.sent.Load()
		tcpAnswered += c.answered.Load()
		resent += c.resent.Load()
		unanswered += c.unanswered.Load()
	}
	t.Logf("TCP: %d queries sent, %d answered, %d sent again after the server closed the connection", tcpSent, tcpAnswered, resent)
	if tcpAnswered != tcpSent || unanswered != 0 {
		t.Errorf("TCP queries answered = %d of %d (%d never answered), want all", tcpAnswered, tcpSent, unanswered)
	}
	if tcpSent < 20 {
		t.Errorf("TCP queries sent = %d, want at least 20", tcpSent)
	}
	oldLog, _ := os.ReadFile(filepath.Join(dir, "old.log"))
	if !strings.Contains(string(oldLog), "handover done") {
		t.Errorf("old log has no handover line:\n%s", oldLog)
	}
	httpLoad.check(t)
	// Only the new process holds the listeners now.
	for _, svc := range services {
		if err := svc.get(); err != nil {
			t.Errorf("%s after the handover: %v", svc.name, err)
		}
	}
}

// httpService is an HTTP listener of Bulwark on a fixed port, with a URL
// that returns status 200.
type httpService struct {
	name, url string
}

// get requests s.url on a new connection and returns an error unless the
// status is 200.
func (s httpService) get() error {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(s.url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", s.url, resp.Status)
	}
	return nil
}

// fixHTTPPorts puts the metrics, the administration API and the block page
// of the config at cfgPath on fixed ports, which a handover cannot bind a
// second time, and returns a URL of each.
func fixHTTPPorts(t *testing.T, cfgPath string, metricsPort, adminPort, blockPagePort int) []httpService {
	t.Helper()
	text := readText(t, cfgPath)
	for _, r := range []struct{ old, new string }{
		{"metrics:\n  listen: 127.0.0.1:0\n", fmt.Sprintf("metrics:\n  listen: 127.0.0.1:%d\n", metricsPort)},
		{"  block_page:\n", fmt.Sprintf("  block_page:\n    listen: 127.0.0.1:%d\n", blockPagePort)},
	} {
		if !strings.Contains(text, r.old) {
			t.Fatalf("config %s has no %q", cfgPath, r.old)
		}
		text = strings.Replace(text, r.old, r.new, 1)
	}
	text += fmt.Sprintf("admin:\n  listen: 127.0.0.1:%d\n", adminPort)
	if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return []httpService{
		{"metrics", fmt.Sprintf("http://127.0.0.1:%d/healthz", metricsPort)},
		{"admin API", fmt.Sprintf("http://127.0.0.1:%d/v1/policy/lists", adminPort)},
		{"block page", fmt.Sprintf("http://127.0.0.1:%d/", blockPagePort)},
	}
}

// httpLoad requests every service on a new connection every 50 ms and
// records the failures.
type httpLoad struct {
	requests atomic.Int64
	mu       sync.Mutex
	failures []string
}

func startHTTPLoad(services []httpService, stop <-chan struct{}, wg *sync.WaitGroup) *httpLoad {
	l := &httpLoad{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !closed(stop) {
			for _, svc := range services {
				l.requests.Add(1)
				if err := svc.get(); err != nil {
					l.mu.Lock()
					l.failures = append(l.failures, fmt.Sprintf("%s: %v", svc.name, err))
					l.mu.Unlock()
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return l
}

func (l *httpLoad) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("HTTP: %d requests to the metrics, admin API and block page, %d failed", l.requests.Load(), len(l.failures))
	if len(l.failures) > 0 {
		t.Errorf("HTTP requests failed across the handover: %d, first: %s", len(l.failures), l.failures[0])
	}
	if l.requests.Load() < 30 {
		t.Errorf("HTTP requests = %d, want at least 30", l.requests.Load())
	}
}

// TestSIGTERMAnswersQueuedQueries sends a burst of UDP queries and TCP
// queries for slow names, then SIGTERM at once: every query already sent
// gets its answer before the process exits.
func TestSIGTERMAnswersQueuedQueries(t *testing.T) {
	dnsPort := port + 131
	dir := t.TempDir()
	cfgPath, _ := writeRestartConfig(t, dir, dnsPort)
	addr := net.JoinHostPort(resolver, strconv.Itoa(dnsPort))
	cmd, err := labkit.StartBulwark(binary, cfgPath, addr, filepath.Join(dir, "term.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })

	// Uncached slow names keep resolutions in flight; the burst leaves
	// datagrams queued in the socket buffers.
	raddr, _ := net.ResolveUDPAddr("udp", addr)
	uc, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	// The answers wait here until the burst is sent: a small buffer would
	// drop them on the client's side.
	uc.SetReadBuffer(4 << 20)
	const burst = 2000
	for id := range burst {
		m := new(dns.Msg)
		name := "."
		if id%10 == 0 {
			name = fmt.Sprintf("term-%d.%s", id, dns.Fqdn(lab.Info.SlowName))
		}
		m.SetQuestion(name, dns.TypeA)
		m.Id = uint16(id)
		pkt, _ := m.Pack()
		uc.Write(pkt)
	}
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	tc := &dns.Conn{Conn: nc}
	// One answer first, so that the connection has left the accept queue:
	// a plain stop resets connections still waiting there.
	first := new(dns.Msg)
	first.SetQuestion(".", dns.TypeNS)
	tc.WriteMsg(first)
	tc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := tc.ReadMsg(); err != nil {
		t.Fatalf("first TCP query: %v", err)
	}
	const tcpQueries = 8
	for i := range tcpQueries {
		m := new(dns.Msg)
		m.SetQuestion(fmt.Sprintf("term-tcp-%d.%s", i, dns.Fqdn(lab.Info.SlowName)), dns.TypeA)
		tc.WriteMsg(m)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	answered := make([]bool, burst)
	got := 0
	uc.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	for got < burst {
		n, err := uc.Read(buf)
		if err != nil {
			break
		}
		if id := int(buf[0])<<8 | int(buf[1]); n >= 12 && id < burst && !answered[id] {
			answered[id] = true
			got++
		}
	}
	tcpGot := 0
	tc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for tcpGot < tcpQueries {
		if _, err := tc.ReadMsg(); err != nil {
			break
		}
		tcpGot++
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	t.Logf("SIGTERM: %d of %d UDP and %d of %d TCP queries answered", got, burst, tcpGot, tcpQueries)
	if got != burst {
		t.Errorf("UDP queries answered after SIGTERM = %d, want %d", got, burst)
	}
	if tcpGot != tcpQueries {
		t.Errorf("TCP queries answered after SIGTERM = %d, want %d", tcpGot, tcpQueries)
	}
}

// TestSIGHUPLosesNoQuery reloads the config with SIGHUP several times,
// adding and removing a list, while clients send UDP queries at a steady
// rate and keep TCP queries for slow names in flight. Every query gets its
// answer and no TCP connection is closed.
func TestSIGHUPLosesNoQuery(t *testing.T) {
	dnsPort := port + 138
	dir := t.TempDir()
	cfgPath, _ := writeRestartConfig(t, dir, dnsPort)
	listFile := filepath.Join(dir, "sighup.txt")
	if err := os.WriteFile(listFile, []byte("blocked.sighup.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	without := readText(t, cfgPath)
	if !strings.Contains(without, "  lists:\n") {
		t.Fatalf("config %s has no policy.lists", cfgPath)
	}
	with := strings.Replace(without, "  lists:\n", "  lists:\n    - name: sighup\n      file: "+listFile+
		"\n      format: domains\n      category: malware\n", 1)
	addr := net.JoinHostPort(resolver, strconv.Itoa(dnsPort))
	logPath := filepath.Join(dir, "sighup.log")
	cmd, err := labkit.StartBulwark(binary, cfgPath, addr, logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := labkit.StopProcess(cmd); err != nil {
			t.Errorf("resolver did not stop cleanly: %v", err)
		}
	})

	stop := make(chan struct{})
	load, udpWG := startUDPLoad(t, addr, ".", 2000, stop)
	var tcpWG sync.WaitGroup
	clients := make([]*tcpClient, 4)
	for i := range clients {
		clients[i] = &tcpClient{addr: addr, window: 4}
		tcpWG.Add(1)
		go clients[i].run(t, fmt.Sprintf("sighup%d", i), stop, &tcpWG)
	}
	time.Sleep(time.Second)

	// An odd number of reloads ends with the list in force.
	const reloads = 7
	for i := range reloads {
		text := with
		if i%2 == 1 {
			text = without
		}
		if err := os.WriteFile(cfgPath+".new", []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(cfgPath+".new", cfgPath); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(700 * time.Millisecond)
	}
	time.Sleep(time.Second)
	close(stop)
	udpWG.Wait()
	tcpWG.Wait()
	sent, lost := load.result()

	t.Logf("SIGHUP: %d reloads; longest UDP gap %.3fs", reloads, load.maxGap.Seconds())
	t.Logf("UDP: %d queries sent, %d lost", sent, lost)
	if lost != 0 {
		t.Errorf("UDP queries lost across SIGHUP: %d of %d", lost, sent)
	}
	if sent < 5000 {
		t.Errorf("UDP queries sent = %d, want at least 5000 for a meaningful load", sent)
	}
	var tcpSent, tcpAnswered, resent, unanswered int64
	for _, c := range clients {
		tcpSent += c.sent.Load()
		tcpAnswered += c.answered.Load()
		resent += c.resent.Load()
		unanswered += c.unanswered.Load()
	}
	t.Logf("TCP: %d queries sent, %d answered, %d sent again after the server closed the connection", tcpSent, tcpAnswered, resent)
	if tcpAnswered != tcpSent || unanswered != 0 {
		t.Errorf("TCP queries answered = %d of %d (%d never answered), want all", tcpAnswered, tcpSent, unanswered)
	}
	if resent != 0 {
		t.Errorf("TCP queries sent again = %d, want 0: a reload closes no connection", resent)
	}
	if tcpSent < 20 {
		t.Errorf("TCP queries sent = %d, want at least 20", tcpSent)
	}

	log := readText(t, logPath)
	if got := strings.Count(log, "policy reconfigured"); got != reloads {
		t.Errorf("log has %d \"policy reconfigured\" lines, want %d, one per SIGHUP; log in %s", got, reloads, logPath)
	}
	r, err := kdig("127.0.0.2", dnsPort, "blocked.sighup.test.", "A", "+edns")
	if err != nil {
		t.Fatal(err)
	}
	if r.EDE < 0 {
		t.Errorf("kdig blocked.sighup.test on the protective listener after the reloads = %s with no EDE, want a block\n%s", r.Status, r.Output)
	}
}
