// Package integration runs bin/bulwark against the lab internet, Knot DNS and
// NSD serving generated zones on loopback, and checks it with real clients:
// kdig for single queries and dnsperf for a replay of the lab's query list.
//
// The lab comes up in a temporary directory with LAB_PORT_OFFSET (default 0),
// or is taken as running in BULWARK_LAB. The tests need root (servers bind
// port 53 on 127.53.0.0/16) and the Debian packages that `make deps`
// installs.
package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"bulwark/test/labkit"
)

var (
	lab      *labkit.Lab
	binary   string
	resolver string // address of the resolver under test
	port     int
	// bulwarkPID is the process of the resolver under test.
	bulwarkPID int
	// defaultErr is the outcome of starting the embedded default config,
	// checked before the lab resolver takes port 5300. defaultChecked is
	// false when the check did not run.
	defaultErr     error
	defaultChecked bool
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "bulwark-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	if binary, err = labkit.BuildBulwark(tmp, true); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	stop, err := startLab(tmp)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	// The embedded default listens on port 5300 whatever the offset, where
	// on a machine shared by labs at other offsets another resolver may
	// run, so only a lab at offset 0 (make test) starts it.
	if lab.Info.PortOffset == 0 {
		defaultErr = checkDefaultConfig(binary, filepath.Join(tmp, "default.log"))
		defaultChecked = true
	}
	resolver = "127.0.0.1"
	port = lab.Info.ResolverPort
	proc, err := labkit.StartBulwark(binary, lab.Info.BulwarkConfig, lab.Info.ResolverAddress, filepath.Join(lab.Dir, "bulwark.log"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	bulwarkPID = proc.Process.Pid
	code := m.Run()
	if err := labkit.StopProcess(proc); err != nil {
		fmt.Fprintf(os.Stderr, "bulwark did not stop cleanly: %v\n", err)
		code = 1
	}
	return code
}

// startLab brings the lab up, or opens the one named by BULWARK_LAB, and
// returns the function that takes it down again.
func startLab(tmp string) (func(), error) {
	if dir := os.Getenv("BULWARK_LAB"); dir != "" {
		l, err := labkit.Open(dir)
		if err != nil {
			return nil, err
		}
		lab = l
		return func() {}, nil
	}
	offset := 0
	if s := os.Getenv("LAB_PORT_OFFSET"); s != "" {
		var err error
		if offset, err = strconv.Atoi(s); err != nil {
			return nil, fmt.Errorf("invalid LAB_PORT_OFFSET %q: %w", s, err)
		}
	}
	l, err := labkit.Up(filepath.Join(tmp, "lab"), offset)
	if err != nil {
		return nil, fmt.Errorf("lab-up: %w", err)
	}
	lab = l
	return func() {
		if err := l.Down(); err != nil {
			fmt.Fprintf(os.Stderr, "lab-down: %v\n", err)
		}
	}, nil
}

// checkDefaultConfig starts the embedded default, checks that it listens on
// 127.0.0.1 and ::1 port 5300 over UDP and TCP, and stops it. It sends no
// query: the default would resolve from the real root servers.
func checkDefaultConfig(bin, logPath string) error {
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "serve")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return err
	}
	listening := waitListening([]string{"127.0.0.1:5300", "[::1]:5300"}, 15*time.Second)
	stopErr := labkit.StopProcess(cmd)
	if listening != nil {
		return fmt.Errorf("%w; log in %s", listening, logPath)
	}
	if stopErr != nil {
		return fmt.Errorf("default config did not stop cleanly on SIGTERM: %w", stopErr)
	}
	return nil
}

// waitListening waits until every address accepts TCP connections and has a
// bound UDP socket (a plain bind to it fails).
func waitListening(addrs []string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, a := range addrs {
		for {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if ctx.Err() != nil {
				return fmt.Errorf("nothing listens on tcp %s", a)
			}
			time.Sleep(100 * time.Millisecond)
		}
		pc, err := net.ListenPacket("udp", a)
		if err == nil {
			pc.Close()
			return fmt.Errorf("nothing listens on udp %s", a)
		}
	}
	return nil
}

func TestDefaultConfigListens(t *testing.T) {
	if !defaultChecked {
		t.Skipf("the embedded default is started only with a lab at offset 0, not %d", lab.Info.PortOffset)
	}
	if defaultErr != nil {
		t.Errorf("embedded default: %v", defaultErr)
	}
}
