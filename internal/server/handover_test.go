package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"bulwark/internal/config"
)

// serveText serves body on ln until the returned server is shut down.
func serveText(ln net.Listener, body string) *http.Server {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, body)
	})}
	go srv.Serve(ln)
	return srv
}

func getText(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// freeAddr returns a loopback TCP address that nothing listens on.
func freeAddr(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

func TestHandoverPassesHTTPListener(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	addr := freeAddr(t)
	url := "http://" + addr.String() + "/"
	path := filepath.Join(t.TempDir(), "handover.sock")

	old := New(config.Server{}, nil, log)
	oldLn, err := old.ListenHTTP(addr)
	if err != nil {
		t.Fatalf("ListenHTTP(%s) = %v", addr, err)
	}
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	oldHTTP := serveText(oldLn, "old")
	handedOver := make(chan struct{})
	if err := old.ListenHandover(path, func() { close(handedOver) }); err != nil {
		t.Fatal(err)
	}
	defer old.Shutdown(context.Background())
	if got := getText(t, url); got != "old" {
		t.Fatalf("GET before the handover = %q, want %q", got, "old")
	}

	h, err := TakeOver(path)
	if err != nil {
		t.Fatalf("TakeOver = %v", err)
	}
	next := New(config.Server{}, nil, log)
	next.Inherit(h.Sockets)
	// Binding the port again would fail: the old process still holds it.
	nextLn, err := next.ListenHTTP(addr)
	if err != nil {
		h.Abort()
		t.Fatalf("ListenHTTP(%s) after TakeOver = %v, want the inherited listener", addr, err)
	}
	if err := next.Start(); err != nil {
		t.Fatal(err)
	}
	defer next.Shutdown(context.Background())
	nextHTTP := serveText(nextLn, "new")
	defer nextHTTP.Close()
	if err := h.Ready(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-handedOver:
	case <-time.After(5 * time.Second):
		t.Fatal("the old server did not report the handover within 5s")
	}
	oldHTTP.Shutdown(context.Background())

	for range 3 {
		if got := getText(t, url); got != "new" {
			t.Errorf("GET after the handover = %q, want %q", got, "new")
		}
	}
}

func TestStartClosesUnclaimedHTTPSocket(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	addr := freeAddr(t)
	path := filepath.Join(t.TempDir(), "handover.sock")
	old := New(config.Server{}, nil, log)
	oldLn, err := old.ListenHTTP(addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	if err := old.ListenHandover(path, func() {}); err != nil {
		t.Fatal(err)
	}
	defer old.Shutdown(context.Background())

	h, err := TakeOver(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Sockets) != 1 || h.Sockets[0].Network != "http" || h.Sockets[0].Address != addr {
		t.Fatalf("TakeOver sockets = %+v, want one http socket at %s", h.Sockets, addr)
	}
	next := New(config.Server{}, nil, log)
	next.Inherit(h.Sockets)
	// A config without the service: Start closes the inherited copy. Once
	// the old server has closed its listener and the duplicate it sent,
	// which it does when the handover ends, the port is free again.
	if err := next.Start(); err != nil {
		t.Fatal(err)
	}
	defer next.Shutdown(context.Background())
	h.Abort()
	oldLn.Close()
	var listenErr error
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var ln net.Listener
		if ln, listenErr = net.Listen("tcp", addr.String()); listenErr == nil {
			ln.Close()
			return
		}
	}
	t.Errorf("listen on %s after every copy closed: %v", addr, listenErr)
}

func TestHandoverPrepareHooks(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	addr := freeAddr(t)
	path := filepath.Join(t.TempDir(), "handover.sock")
	old := New(config.Server{}, nil, log)
	if _, err := old.ListenHTTP(addr); err != nil {
		t.Fatal(err)
	}
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	var prepared, failed atomic.Int32
	old.SetHandoverHooks(func() { prepared.Add(1) }, func() { failed.Add(1) })
	handedOver := make(chan struct{})
	if err := old.ListenHandover(path, func() { close(handedOver) }); err != nil {
		t.Fatal(err)
	}
	defer old.Shutdown(context.Background())

	// A prepare request that the new process abandons: the old process
	// saved its state, then writes it again.
	h, err := Prepare(path)
	if err != nil {
		t.Fatalf("Prepare = %v", err)
	}
	if n := prepared.Load(); n != 1 {
		t.Errorf("prepare hook called %d times once Prepare returned, want 1", n)
	}
	h.Abort()
	waitFor(t, "the failed hook after Abort", func() bool { return failed.Load() == 1 })

	// A whole handover: the prepare hook runs first, the failed hook not.
	h, err = Prepare(path)
	if err != nil {
		t.Fatalf("Prepare = %v", err)
	}
	if err := h.Receive(); err != nil {
		t.Fatalf("Receive = %v", err)
	}
	if len(h.Sockets) != 1 || h.Sockets[0].Address != addr {
		t.Errorf("Receive sockets = %+v, want the http socket at %s", h.Sockets, addr)
	}
	closeSockets(h.Sockets)
	if err := h.Ready(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-handedOver:
	case <-time.After(5 * time.Second):
		t.Fatal("the old server did not report the handover within 5s")
	}
	if p, f := prepared.Load(), failed.Load(); p != 2 || f != 1 {
		t.Errorf("hooks called: prepare %d, failed %d; want 2 and 1", p, f)
	}
}

// waitFor polls cond every 10 ms for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}
