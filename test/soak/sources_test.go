package main

import (
	"context"
	"net"
	"os"
	"testing"
	"time"
)

// TestAttackSources needs a network namespace of its own, because the
// attack socket binds the wildcard address: scripts/soak.sh runs it there
// with SOAK_IN_NETNS=1 before the suite.
func TestAttackSources(t *testing.T) {
	if os.Getenv("SOAK_IN_NETNS") != "1" {
		t.Skip("set SOAK_IN_NETNS=1 and run inside a network namespace, as scripts/soak.sh does")
	}
	server, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	sources := manySources(3)
	a := &udpAttack{server: server.LocalAddr().(*net.UDPAddr), payload: malformed, rate: 300, sources: sources}
	go a.run(context.Background(), 300*time.Millisecond)

	seen := map[string]bool{}
	buf := make([]byte, 1024)
	server.SetReadDeadline(time.Now().Add(2 * time.Second))
	for range 30 {
		_, from, err := server.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("read attack datagram: %v (got sources %v)", err, seen)
		}
		seen[from.IP.String()] = true
	}
	for ip := range seen {
		found := false
		for _, s := range sources {
			found = found || s.String() == ip
		}
		if !found {
			t.Errorf("datagram from %s, want one of %v", ip, sources)
		}
	}
	if len(seen) < 2 {
		t.Errorf("datagrams came from %d source addresses %v, want several of %v", len(seen), seen, sources)
	}
}
