package labkit

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// BuildBulwark builds bin/bulwark's sources into dir, with the race detector
// when race is true, and returns the binary's path.
func BuildBulwark(dir string, race bool) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "bulwark")
	args := []string{"build", "-o", out}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./cmd/bulwark")...)
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build bulwark: %w\n%s", err, msg)
	}
	return out, nil
}

// StartBulwark runs `bin serve --config cfg` with its log in logPath and
// waits until it answers the root NS query (with CD set) on addr (IP:port), for up to 20
// seconds. Stop it with StopProcess.
func StartBulwark(bin, cfg, addr, logPath string) (*exec.Cmd, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "serve", "--config", cfg)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start bulwark: %w", err)
	}

	probe := new(dns.Msg)
	probe.SetQuestion(".", dns.TypeNS)
	// CD: a config whose root fails validation still counts as up.
	probe.CheckingDisabled = true
	client := &dns.Client{Timeout: time.Second}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if r, _, err := client.Exchange(probe, addr); err == nil && r.Rcode == dns.RcodeSuccess {
			return cmd, nil
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	return nil, fmt.Errorf("bulwark did not answer on %s within 20s; see %s", addr, logPath)
}

// StopProcess sends SIGTERM and waits up to 10 seconds for a clean exit,
// then kills the process.
func StopProcess(cmd *exec.Cmd) error {
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		return errors.New("no exit within 10s of SIGTERM")
	}
}
