package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"bulwark/internal/config"
)

func TestHandoverPassesPrimarySockets(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	addr := freeAddr(t)
	path := filepath.Join(t.TempDir(), "handover.sock")
	old := New(config.Server{}, nil, log)
	oldTCP, oldUDP, err := old.ListenPrimary(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer oldTCP.Close()
	defer oldUDP.Close()
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	if err := old.ListenHandover(path, func() {}); err != nil {
		t.Fatal(err)
	}
	defer old.Shutdown(context.Background())

	h, err := TakeOver(path)
	if err != nil {
		t.Fatalf("TakeOver = %v", err)
	}
	networks := map[string]bool{}
	for _, s := range h.Sockets {
		if s.Address == addr {
			networks[s.Network] = true
		}
	}
	if !networks["xfr-tcp"] || !networks["xfr-udp"] {
		t.Fatalf("TakeOver sockets = %+v, want xfr-tcp and xfr-udp at %s", h.Sockets, addr)
	}
	next := New(config.Server{}, nil, log)
	next.Inherit(h.Sockets)
	// Binding the port again would fail: the old process still holds it.
	tcp, udp, err := next.ListenPrimary(addr)
	if err != nil {
		h.Abort()
		t.Fatalf("ListenPrimary(%s) after TakeOver = %v, want the inherited sockets", addr, err)
	}
	defer tcp.Close()
	defer udp.Close()
	if err := next.Start(); err != nil {
		t.Fatal(err)
	}
	defer next.Shutdown(context.Background())
	h.Ready()

	// The old process stops reading: a datagram now reaches the new one.
	oldUDP.Close()
	c, err := net.Dial("udp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("ping"))
	udp.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 16)
	n, _, err := udp.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Errorf("ReadFrom on the inherited UDP socket = %q, %v, want ping", buf[:n], err)
	}
	oldTCP.Close()
	conn, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial the inherited TCP listener: %v", err)
	}
	conn.Close()
}

func TestListenPrimaryPortInUse(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	addr := freeAddr(t)
	busy, err := net.Listen("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if _, _, err := New(config.Server{}, nil, log).ListenPrimary(addr); err == nil {
		t.Fatalf("ListenPrimary(%s) with the port taken = nil error, want one", addr)
	}
}
