package gen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"bulwark/lab/internal/stub"
	"bulwark/lab/labspec"
)

// Probe is one readiness check of a lab listener.
type Probe struct {
	Process string `json:"process"`
	Address string `json:"address"` // host:port
	Network string `json:"network"` // udp or tcp
	QName   string `json:"qname,omitempty"`
	QType   string `json:"qtype,omitempty"`
	// Expect is an rcode name (NOERROR also requires the AA bit), "TC" for
	// a truncated reply, or "connect" for a TCP connection only.
	Expect string `json:"expect"`
	Log    string `json:"log"`
}

// ProbeFile is the content of probes.json.
type ProbeFile struct {
	PIDDir    string   `json:"pid_dir"`
	Processes []string `json:"processes"`
	QueryLogs []string `json:"query_logs"`
	Probes    []Probe  `json:"probes"`
}

// writeProbes writes probes.json: for each Knot DNS and NSD process a SOA
// query for every zone it loads on its first address and for one zone on
// every other address, and for each stub listener a check of its mode.
func (l *Lab) writeProbes() error {
	pf := ProbeFile{PIDDir: l.path(labspec.PIDDir)}
	for _, in := range l.instances {
		pf.Processes = append(pf.Processes, in.Name)
		pf.Probes = append(pf.Probes, l.instanceProbes(in)...)
	}
	pf.Processes = append(pf.Processes, stubDir)
	for _, s := range l.stubs {
		pf.Probes = append(pf.Probes, l.stubProbe(s)...)
		if s.LogName != "" && !containsString(pf.QueryLogs, l.queryLogPath(s.LogName)) {
			pf.QueryLogs = append(pf.QueryLogs, l.queryLogPath(s.LogName))
		}
	}
	return writeJSON(l.path(labspec.ProbesFile), pf)
}

func (l *Lab) instanceProbes(in *instance) []Probe {
	var out []Probe
	for i, addr := range in.Addrs {
		zones := in.Zones
		if i > 0 {
			zones = zones[:1]
		}
		for _, z := range zones {
			out = append(out, Probe{Process: in.Name, Address: l.hostPort(addr), Network: "udp",
				QName: z.Name, QType: "SOA", Expect: "NOERROR", Log: l.logPath(in.Name)})
		}
		for _, e := range in.Extra {
			out = append(out, Probe{Process: in.Name, Address: l.hostPort(addr), Network: "udp",
				QName: e.Name, QType: "SOA", Expect: "NOERROR", Log: l.logPath(in.Name)})
		}
	}
	return out
}

func (l *Lab) hostPort(addr string) string {
	return net.JoinHostPort(addr, strconv.Itoa(l.authPort()))
}

// stubProbe checks one stub listener in a way that matches its mode, with
// a zone its backend loads for proxies.
func (l *Lab) stubProbe(s *stubListener) []Probe {
	p := Probe{Process: stubDir, Address: l.hostPort(s.Addr), Network: "udp",
		QName: ".", QType: "SOA", Log: l.logPath(stubDir)}
	switch s.Mode {
	case stub.ModeSilent:
		p.Network, p.QName, p.QType, p.Expect = "tcp", "", "", "connect"
		return []Probe{p}
	case stub.ModeRefuse:
		p.Expect = "REFUSED"
		return []Probe{p}
	}

	p.QName = l.byInst[s.Backend].Zones[0].Name
	p.Expect = "NOERROR"
	if !s.TruncateUDP {
		return []Probe{p}
	}
	tcp := p
	tcp.Network = "tcp"
	p.Expect = "TC"
	return []Probe{p, tcp}
}

// Wait polls every probe of the lab in dir until all pass or timeout
// passes, then empties the query logs so they start with real traffic.
// It fails early when a lab process has exited.
func Wait(dir string, timeout time.Duration) error {
	var pf ProbeFile
	data, err := os.ReadFile(dir + "/" + labspec.ProbesFile)
	if err != nil {
		return fmt.Errorf("read probes: %w", err)
	}
	if err := json.Unmarshal(data, &pf); err != nil {
		return fmt.Errorf("parse probes of lab %s: %w", dir, err)
	}

	deadline := time.Now().Add(timeout)
	pending := pf.Probes
	for len(pending) > 0 {
		if err := checkProcesses(pf, dir); err != nil {
			return err
		}
		failed := runProbes(pending)
		if len(failed) > 0 && time.Now().After(deadline) {
			return probeTimeout(failed, timeout)
		}
		pending = pending[:0]
		for _, f := range failed {
			pending = append(pending, f.Probe)
		}
		if len(pending) > 0 {
			time.Sleep(200 * time.Millisecond)
		}
	}

	for _, log := range pf.QueryLogs {
		if err := os.Truncate(log, 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("empty query log: %w", err)
		}
	}
	return nil
}

// checkProcesses fails when a recorded process is no longer running.
func checkProcesses(pf ProbeFile, dir string) error {
	for _, name := range pf.Processes {
		pidPath := pf.PIDDir + "/" + name + ".pid"
		data, err := os.ReadFile(pidPath)
		if err != nil {
			return fmt.Errorf("process %s has no PID file: %w", name, err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil {
			return fmt.Errorf("invalid PID in %s: %w", pidPath, err)
		}
		if err := syscall.Kill(pid, 0); err != nil {
			return fmt.Errorf("process %s (pid %d) exited during startup; see %s/%s/%s.log", name, pid, dir, name, name)
		}
	}
	return nil
}

// probeFailure is a probe with the error of its last run.
type probeFailure struct {
	Probe
	err error
}

// runProbes runs probes with bounded concurrency and returns those that
// failed.
func runProbes(probes []Probe) []probeFailure {
	var (
		mu     sync.Mutex
		failed []probeFailure
		wg     sync.WaitGroup
	)
	sem := make(chan struct{}, 32)
	for _, p := range probes {
		wg.Add(1)
		sem <- struct{}{}
		go func(p Probe) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := p.run(); err != nil {
				mu.Lock()
				failed = append(failed, probeFailure{p, err})
				mu.Unlock()
			}
		}(p)
	}
	wg.Wait()
	sort.Slice(failed, func(i, j int) bool { return failed[i].Address+failed[i].QName < failed[j].Address+failed[j].QName })
	return failed
}

// probeTimeout describes the probes still failing at the deadline.
func probeTimeout(pending []probeFailure, timeout time.Duration) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%d lab probes still failing after %s", len(pending), timeout)
	for i, p := range pending {
		if i == 5 {
			fmt.Fprintf(&b, "\n  and %d more", len(pending)-i)
			break
		}
		fmt.Fprintf(&b, "\n  server %s at %s (%s) did not answer %s %s as expected (%s): %v; see %s",
			p.Process, p.Address, p.Network, p.QName, p.QType, p.Expect, p.err, p.Log)
	}
	return errors.New(b.String())
}

// run performs the probe once.
func (p Probe) run() error {
	if p.Expect == "connect" {
		conn, err := net.DialTimeout("tcp", p.Address, time.Second)
		if err != nil {
			return err
		}
		return conn.Close()
	}

	msg := new(dns.Msg)
	msg.SetQuestion(p.QName, dns.StringToType[p.QType])
	msg.RecursionDesired = false
	msg.SetEdns0(1232, false)
	client := &dns.Client{Net: p.Network, Timeout: 500 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, _, err := client.ExchangeContext(ctx, msg, p.Address)
	if err != nil {
		return err
	}
	return p.check(resp)
}

func (p Probe) check(resp *dns.Msg) error {
	got := dns.RcodeToString[resp.Rcode]
	switch {
	case p.Expect == "TC":
		if !resp.Truncated {
			return fmt.Errorf("reply has TC=0, rcode %s", got)
		}
	case got != p.Expect:
		return fmt.Errorf("rcode %s", got)
	case p.Expect == "NOERROR" && !resp.Authoritative:
		return errors.New("reply is not authoritative")
	}
	return nil
}
