package integration

import (
	"net"
	"os"
	"os/exec"
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

// TestSIGHUPReconfiguresPolicy edits the config file of a running resolver
// and sends SIGHUP: a new list takes effect, an invalid file is rejected
// with the running config kept, and a change to a section read only at start
// is logged as waiting for a restart.
func TestSIGHUPReconfiguresPolicy(t *testing.T) {
	dnsPort := port + 89
	dir := t.TempDir()
	path := filepath.Join(dir, "reconfigure.yaml")
	logPath := filepath.Join(dir, "reconfigure.log")
	writeDerivedConfig(t, path, dnsPort, "")
	base, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := labkit.StartBulwark(binary, path, net.JoinHostPort(resolver, strconv.Itoa(dnsPort)), logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := labkit.StopProcess(cmd); err != nil {
			t.Errorf("resolver did not stop cleanly: %v", err)
		}
	})
	addr, _ := protective(t)
	const name = "sighup-target.lab-policy.example."
	listOf := func() string {
		r, err := kdig(addr, dnsPort, name, "A", "+edns")
		if err != nil {
			t.Fatal(err)
		}
		list, _ := blockText(t, r)["list"].(string)
		return list
	}
	if got := listOf(); got != "" {
		t.Fatalf("%s blocked by %q before the new list", name, got)
	}

	listFile := filepath.Join(dir, "added.txt")
	if err := os.WriteFile(listFile, []byte(strings.TrimSuffix(name, ".")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The lab's policy lists end where its dnssec section, the last one,
	// begins.
	entry := "    - name: sighup-added\n      file: " + listFile + "\n      format: domains\n      category: malware\n"
	end := strings.Index(string(base), "\ndnssec:\n")
	if end < 0 {
		t.Fatal("the lab config has no dnssec section after its policy lists")
	}
	added := string(base[:end+1]) + entry + string(base[end+1:])
	// A new metrics port: that section applies only after a restart.
	added = strings.Replace(added, "  listen: 127.0.0.1:0\n", "  listen: 127.0.0.1:1\n", 1)
	if added == string(base) {
		t.Fatal("the derived config did not change")
	}
	hup(t, cmd, path, added, logPath, "policy reconfigured")
	if got := listOf(); got != "sighup-added" {
		t.Errorf("%s after the reload: blocked by %q, want sighup-added", name, got)
	}
	logText, _ := os.ReadFile(logPath)
	if !strings.Contains(string(logText), "sections=metrics") {
		t.Errorf("no warning that the metrics section waits for a restart; log:\n%s", logText)
	}

	// An invalid file is rejected; the running policy stays.
	hup(t, cmd, path, added+"no_such_section: 1\n", logPath, "config reload failed")
	if got := listOf(); got != "sighup-added" {
		t.Errorf("%s after an invalid config: blocked by %q, want sighup-added still", name, got)
	}
	if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("resolver gone after an invalid config: %v", err)
	}
}

// hup writes text to the config at path, sends SIGHUP and waits for a new
// log line containing want.
func hup(t *testing.T, cmd *exec.Cmd, path, text, logPath, want string) {
	t.Helper()
	before, _ := os.ReadFile(logPath)
	seen := strings.Count(string(before), want)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		data, _ := os.ReadFile(logPath)
		if strings.Count(string(data), want) > seen {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log 30 seconds after SIGHUP; log:\n%s", want, data)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
