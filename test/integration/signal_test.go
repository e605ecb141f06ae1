package integration

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"bulwark/test/labkit"
)

// TestSIGHUPReloadsLists sends SIGHUP to a running resolver: its lists are
// read again and a new policy version is installed, while it keeps
// answering.
func TestSIGHUPReloadsLists(t *testing.T) {
	dnsPort := port + 99
	dir := t.TempDir()
	path := filepath.Join(dir, "hup.yaml")
	logPath := filepath.Join(dir, "hup.log")
	writeDerivedConfig(t, path, dnsPort, "")
	cmd, err := labkit.StartBulwark(binary, path, net.JoinHostPort(resolver, strconv.Itoa(dnsPort)), logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := labkit.StopProcess(cmd); err != nil {
			t.Errorf("resolver did not stop cleanly: %v", err)
		}
	})
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		data, _ := os.ReadFile(logPath)
		if strings.Contains(string(data), "policy reloaded") && strings.Contains(string(data), "generation=2") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new policy version 30 seconds after SIGHUP; log:\n%s", data)
		}
		time.Sleep(100 * time.Millisecond)
	}
	addr, _ := protective(t)
	r, err := kdig(addr, dnsPort, lab.Info.Policy.ListedName, "A", "+edns")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != "NXDOMAIN" {
		t.Errorf("listed name after the reload: %s, want NXDOMAIN\n%s", r.Status, r.Output)
	}
	if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("resolver gone after SIGHUP: %v", err)
	}
}
