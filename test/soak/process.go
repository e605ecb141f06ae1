package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// resolverProcess is the Bulwark process under test. An exit that the
// suite did not request counts as a crash.
type resolverProcess struct {
	bin, config, addr, logPath string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	killing bool
	crashes int
	peakRSS int64 // bytes
}

// start runs Bulwark and waits until it answers on addr, for up to 20 s.
func (p *resolverProcess) start() error {
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open resolver log: %w", err)
	}
	defer logFile.Close()
	args := []string{"serve", "-config", p.config}
	if addr := os.Getenv("SOAK_PPROF"); addr != "" {
		// Runtime profiles, to fetch inside the namespace while a row runs.
		args = append(args, "-pprof", addr)
	}
	cmd := exec.Command(p.bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Bulwark dies with the runner, even when the runner is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.bin, err)
	}
	exited := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.exited, p.killing = cmd, exited, false
	p.mu.Unlock()
	go p.wait(cmd, exited)

	if err := waitServing(p.addr, 20*time.Second, exited); err != nil {
		return fmt.Errorf("%w; see %s", err, p.logPath)
	}
	return nil
}

// wait reaps the process and counts an exit that stop did not request.
func (p *resolverProcess) wait(cmd *exec.Cmd, exited chan struct{}) {
	err := cmd.Wait()
	p.mu.Lock()
	if !p.killing {
		p.crashes++
		fmt.Fprintf(os.Stderr, "soak: resolver pid %d exited by itself: %v\n", cmd.Process.Pid, err)
	}
	p.mu.Unlock()
	close(exited)
}

// waitServing polls addr with a root NS query (CD set, so that a failing
// validation still counts as serving) until it is answered.
func waitServing(addr string, timeout time.Duration, exited <-chan struct{}) error {
	probe := new(dns.Msg)
	probe.SetQuestion(".", dns.TypeNS)
	probe.CheckingDisabled = true
	client := &dns.Client{Timeout: 500 * time.Millisecond}
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-exited:
			return fmt.Errorf("resolver exited before it served on %s", addr)
		default:
		}
		if r, _, err := client.Exchange(probe, addr); err == nil && r.Rcode == dns.RcodeSuccess {
			return nil
		}
	}
	return fmt.Errorf("resolver did not answer on %s within %v", addr, timeout)
}

// alive reports whether the process runs.
func (p *resolverProcess) alive() bool {
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	if exited == nil {
		return false
	}
	select {
	case <-exited:
		return false
	default:
		return true
	}
}

// stop sends sig (SIGKILL or SIGTERM) and waits up to 15 s for the exit.
func (p *resolverProcess) stop(sig syscall.Signal) error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.killing = true
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	cmd.Process.Signal(sig)
	select {
	case <-exited:
		return nil
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-exited
		return fmt.Errorf("resolver pid %d ignored %v for 15s", cmd.Process.Pid, sig)
	}
}

// crashCount returns how many times the process died by itself.
func (p *resolverProcess) crashCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.crashes
}

// watchRSS samples the resident set size every 250 ms until done closes,
// keeping the peak.
func (p *resolverProcess) watchRSS(done <-chan struct{}) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		p.mu.Lock()
		cmd := p.cmd
		p.mu.Unlock()
		if cmd == nil {
			continue
		}
		if rss, err := readRSS(cmd.Process.Pid); err == nil {
			p.mu.Lock()
			p.peakRSS = max(p.peakRSS, rss)
			p.mu.Unlock()
		}
	}
}

func (p *resolverProcess) peak() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peakRSS
}

// readRSS returns VmRSS of pid in bytes.
func readRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}
