package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// nftTable is the nftables table the suite creates inside its network
// namespace; each fault replaces its rules and clear deletes it.
const nftTable = "bulwark_soak"

// proxyNet is the network of the fault proxy's listen addresses. The dnat
// rule exempts it, so the proxy's own queries reach the real servers.
const proxyNet = "127.53.9.0/24"

// nft runs nft with a script on standard input.
func nft(script string) error {
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft: %w\n%s\nscript:\n%s", err, out, script)
	}
	return nil
}

// clearRules deletes the suite's table, if any.
func clearRules() {
	exec.Command("nft", "delete", "table", "ip", nftTable).Run()
}

// addressSet formats addresses as an nftables set.
func addressSet(addrs []string) string {
	return "{ " + strings.Join(addrs, ", ") + " }"
}

// dropRules drops percent of the UDP and TCP packets sent to addrs on
// port, chosen at random per packet.
func dropRules(addrs []string, port, percent int) string {
	return fmt.Sprintf(`table ip %[1]s {
	chain output {
		type filter hook output priority 0; policy accept;
		ip daddr %[2]s meta l4proto { udp, tcp } th dport %[3]d numgen random mod 100 < %[4]d drop
	}
}
`, nftTable, addressSet(addrs), port, percent)
}

// redirectRules sends what leaves for each target on port to its proxy
// address, except the proxy's own queries.
func redirectRules(routes []proxyRoute, port int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table ip %s {\n\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n", nftTable)
	for _, r := range routes {
		fmt.Fprintf(&b, "\t\tip saddr != %s ip daddr %s meta l4proto { udp, tcp } th dport %d dnat to %s\n",
			proxyNet, r.target, port, r.listen)
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}

// proxyRoute is one lab address whose traffic the fault proxy takes.
type proxyRoute struct {
	target string // lab server IP
	listen string // proxy IP:port
}

// faultProxy is a running lab/cmd/faultproxy.
type faultProxy struct {
	cmd *exec.Cmd
}

// startProxy starts faultproxy with args and the routes, and installs the
// dnat rules once it listens.
func startProxy(bin string, args []string, routes []proxyRoute, authPort int, logPath string) (*faultProxy, error) {
	for _, r := range routes {
		args = append(args, "-route", r.listen+"="+net.JoinHostPort(r.target, strconv.Itoa(authPort)))
	}
	args = append(args, "-lifetime", "15m")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start faultproxy: %w", err)
	}
	p := &faultProxy{cmd: cmd}
	if err := waitListening(routes[len(routes)-1].listen, 10*time.Second); err != nil {
		p.stop()
		return nil, fmt.Errorf("faultproxy: %w; see %s", err, logPath)
	}
	if err := nft(redirectRules(routes, authPort)); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// waitListening waits until a TCP connection to addr succeeds.
func waitListening(addr string, timeout time.Duration) error {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
	}
	return fmt.Errorf("nothing listens on %s after %v", addr, timeout)
}

// stop removes the rules, then stops the proxy.
func (p *faultProxy) stop() {
	clearRules()
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		p.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

// readPID reads a lab PID file.
func readPID(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, fmt.Errorf("invalid pid in %s: %q", path, data)
	}
	return pid, nil
}
