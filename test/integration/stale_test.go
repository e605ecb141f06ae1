package integration

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"bulwark/test/labkit"
)

// staleZoneInstance is the lab process that alone serves staleZone.
const (
	staleZone         = "3m.com."
	staleZoneInstance = "nsd-sld"
)

// staleResolver is a Bulwark started for the serve-stale tests, with its
// clock read from a file that the tests move forward.
type staleResolver struct {
	port      int
	metrics   string
	clockPath string
	base      time.Time
}

// startStaleResolver starts Bulwark on port+100 with metrics on port+101,
// the lab's root hints and trust anchor, and testing.clock_file.
func startStaleResolver(t *testing.T) *staleResolver {
	t.Helper()
	dir := t.TempDir()
	s := &staleResolver{
		port: port + 100, metrics: net.JoinHostPort(resolver, strconv.Itoa(port+101)),
		clockPath: filepath.Join(dir, "clock"), base: time.Now().UTC().Truncate(time.Second),
	}
	s.setClock(t, 0)
	labCfg, err := os.ReadFile(lab.Info.BulwarkConfig)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(labCfg), "\ndnssec:\n")
	if i < 0 {
		t.Fatalf("%s has no dnssec section", lab.Info.BulwarkConfig)
	}
	cfg := fmt.Sprintf(`server:
  listen:
    - address: %s
      transports: [udp, tcp]
  client_timeout: 3s
resolver:
  root_hints: %s
  upstream_port: %d
  allowed_upstream_networks: [127.0.0.0/8, ::1/128]
  failure_ttl: 5s
cache:
  max_bytes: 64MiB
  stale_max_age: 24h
  stale_answer_ttl: 30s
  stale_client_timeout: 1.8s
  prefetch: true
metrics:
  listen: %s
testing:
  enabled: true
  clock_file: %s
%s`, net.JoinHostPort(resolver, strconv.Itoa(s.port)), lab.Info.RootHints, lab.Info.AuthPort,
		s.metrics, s.clockPath, labCfg[i+1:])
	path := filepath.Join(dir, "stale.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, err := labkit.StartBulwark(binary, path, net.JoinHostPort(resolver, strconv.Itoa(s.port)), filepath.Join(dir, "stale.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := labkit.StopProcess(cmd); err != nil {
			t.Errorf("resolver did not stop cleanly: %v", err)
		}
	})
	return s
}

// setClock moves the resolver's clock to base plus offset. The resolver
// checks the file every 100ms.
func (s *staleResolver) setClock(t *testing.T, offset time.Duration) {
	t.Helper()
	text := "@" + s.base.Add(offset).Format("2006-01-02 15:04:05") + "\n"
	if err := os.WriteFile(s.clockPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
}

// counter returns the value of an unlabelled counter of the resolver.
func (s *staleResolver) counter(t *testing.T, name string) float64 {
	t.Helper()
	saved := lab.Info.MetricsAddress
	lab.Info.MetricsAddress = s.metrics
	defer func() { lab.Info.MetricsAddress = saved }()
	return scrape(t)[name]
}

// pauseInstance stops the lab process name with SIGSTOP and returns the
// function that resumes it; the function is safe to call more than once
// and also runs at the end of the test.
func pauseInstance(t *testing.T, name string) func() {
	t.Helper()
	pid := 0
	for _, in := range lab.Info.Instances {
		if in.Name != name {
			continue
		}
		data, err := os.ReadFile(in.PIDFile)
		if err != nil {
			t.Fatal(err)
		}
		if pid, err = strconv.Atoi(strings.TrimSpace(string(data))); err != nil {
			t.Fatalf("pid file %s: %v", in.PIDFile, err)
		}
	}
	if pid <= 0 {
		t.Fatalf("lab has no process %s", name)
	}
	// NSD answers from child processes of child processes: they are
	// stopped too.
	pids := descendants(t, pid)
	var once sync.Once
	resume := func() {
		once.Do(func() {
			for _, p := range pids {
				if err := syscall.Kill(p, syscall.SIGCONT); err != nil {
					t.Errorf("SIGCONT %s (pid %d): %v", name, p, err)
				}
			}
		})
	}
	t.Cleanup(resume)
	for _, p := range pids {
		if err := syscall.Kill(p, syscall.SIGSTOP); err != nil {
			t.Fatalf("SIGSTOP %s (pid %d): %v", name, p, err)
		}
	}
	return resume
}

// descendants returns pid and its child processes at every depth, from
// /proc.
func descendants(t *testing.T, pid int) []int {
	t.Helper()
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, childPIDs(t, out[i])...)
	}
	return out
}

// childPIDs returns the child processes of pid, from /proc.
func childPIDs(t *testing.T, pid int) []int {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, path := range tasks {
		data, err := os.ReadFile(path)
		if err != nil {
			continue // the thread ended
		}
		for _, f := range strings.Fields(string(data)) {
			if child, err := strconv.Atoi(f); err == nil {
				out = append(out, child)
			}
		}
	}
	return out
}

func TestServeStaleFromLab(t *testing.T) {
	s := startStaleResolver(t)
	www, nx, never := "www."+staleZone, "nx-stale."+staleZone, "never-cached."+staleZone
	if r, err := kdig(resolver, s.port, www, "A", "+edns"); err != nil || r.Status != "NOERROR" || r.EDE != -1 {
		t.Fatalf("fresh %s A: %+v, %v; want NOERROR without EDE", www, r, err)
	}
	if r, err := kdig(resolver, s.port, nx, "A", "+edns"); err != nil || r.Status != "NXDOMAIN" {
		t.Fatalf("fresh %s A: %+v, %v; want NXDOMAIN", nx, r, err)
	}

	// Past the A TTL (600s) and the negative TTL (300s), with the zone's
	// only server stopped.
	s.setClock(t, 20*time.Minute)
	resume := pauseInstance(t, staleZoneInstance)
	before := s.counter(t, "bulwark_cache_stale_answers_total")

	r, err := kdig(resolver, s.port, www, "A", "+edns")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != "NOERROR" || r.EDE != 3 || len(r.Answer) != 1 {
		t.Errorf("stale %s A: status %s, EDE %d, %d records; want NOERROR, EDE 3, one A\n%s", www, r.Status, r.EDE, len(r.Answer), r.Output)
	} else if ttl := r.Answer[0].Header().Ttl; ttl != 30 {
		t.Errorf("stale %s A: TTL %d, want 30", www, ttl)
	}
	if r.Elapsed > 3*time.Second {
		t.Errorf("stale %s A took %s, want about the 1.8s client timer", www, r.Elapsed)
	}

	r, err = kdig(resolver, s.port, nx, "A", "+edns")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != "NXDOMAIN" || r.EDE != 19 {
		t.Errorf("stale %s A: status %s, EDE %d; want NXDOMAIN, EDE 19\n%s", nx, r.Status, r.EDE, r.Output)
	}

	r, err = kdig(resolver, s.port, never, "A", "+edns")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != "SERVFAIL" {
		t.Errorf("%s A, never cached: status %s, want SERVFAIL\n%s", never, r.Status, r.Output)
	}
	if r.Elapsed > 4500*time.Millisecond {
		t.Errorf("%s A took %s, want at most the 3s client timeout and some slack", never, r.Elapsed)
	}
	if got := s.counter(t, "bulwark_cache_stale_answers_total") - before; got < 2 {
		t.Errorf("bulwark_cache_stale_answers_total grew by %v, want at least 2", got)
	}

	// Once the server runs again and the failure and hold-down times have
	// passed, answers are fresh.
	resume()
	s.setClock(t, 20*time.Minute+2*time.Minute)
	r, err = kdig(resolver, s.port, www, "A", "+edns")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != "NOERROR" || r.EDE != -1 || len(r.Answer) != 1 || r.Answer[0].Header().Ttl <= 30 {
		t.Errorf("%s A after SIGCONT: %s, EDE %d; want a fresh NOERROR without EDE and TTL above 30\n%s", www, r.Status, r.EDE, r.Output)
	}
}

func TestPrefetchFromLab(t *testing.T) {
	s := startStaleResolver(t)
	name := staleZone // A with TTL 600
	if r, err := kdig(resolver, s.port, name, "A", "+edns"); err != nil || r.Status != "NOERROR" {
		t.Fatalf("%s A: %+v, %v; want NOERROR", name, r, err)
	}
	before := s.counter(t, "bulwark_cache_prefetches_total")

	// With 55s of 600 left, a hit is answered from the cache and starts
	// one refresh.
	s.setClock(t, 545*time.Second)
	r, err := kdig(resolver, s.port, name, "A", "+edns")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Answer) != 1 || r.Answer[0].Header().Ttl > 60 {
		t.Fatalf("%s A near expiry: %s; want the cached A with at most 60s left", name, r.Output)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.counter(t, "bulwark_cache_prefetches_total")-before < 1 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if got := s.counter(t, "bulwark_cache_prefetches_total") - before; got != 1 {
		t.Fatalf("bulwark_cache_prefetches_total grew by %v, want 1", got)
	}
	time.Sleep(500 * time.Millisecond) // the refresh is one lab round trip

	// Past the first answer's expiry, the refreshed answer is served from
	// the cache: its TTL counts down from the refresh at 545s.
	s.setClock(t, 700*time.Second)
	r, err = kdig(resolver, s.port, name, "A", "+edns")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != "NOERROR" || r.EDE != -1 || len(r.Answer) != 1 {
		t.Fatalf("%s A past the first expiry: %s", name, r.Output)
	}
	if ttl := r.Answer[0].Header().Ttl; ttl < 440 || ttl > 450 {
		t.Errorf("%s A past the first expiry: TTL %d, want about 445, counted from the prefetch", name, ttl)
	}
}
