// Command soak is the fault-and-attack suite of Bulwark. It runs inside
// the network namespace that scripts/soak.sh creates, against a lab
// started there: it starts Bulwark with the lab's config, warms its cache,
// then runs one row per attack or fault, each beside a normal load of
// queries.txt whose answers it checks against expected.tsv, and prints a
// summary table. See the section "The soak suite" of docs/reliability.md.
//
// Environment: SOAK_SECONDS (seconds per row, default 30, or 5 with
// SOAK_SCALE=ci), SOAK_SCALE (full or ci; ci also kills Bulwark 10 times
// instead of 100) and SOAK_STRICT=1 (exit 1 when a row fails).
package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"bulwark/test/labkit"
)

// Load levels of every row.
const (
	normalQPS     = 2000
	attackQPS     = 20000
	clientTimeout = 5 * time.Second
)

// suite holds what every row needs.
type suite struct {
	lab       *labkit.Info
	workDir   string
	port      int // the resolver's port; extra ports are port+140 to port+149
	server    *net.UDPAddr
	queries   []question
	check     *checker
	resolver  *resolverProcess
	labZones  *labZones // read on first use by a row with affected names
	proxyBin  string
	rowLength time.Duration
}

func main() {
	labDir := flag.String("lab", "", "directory of a running lab (make lab-up LAB=...)")
	bulwark := flag.String("bulwark", "bin/bulwark", "Bulwark binary")
	proxy := flag.String("faultproxy", "bin/faultproxy", "faultproxy binary")
	workDir := flag.String("work", "", "directory for logs and state; default: LAB/soak")
	flag.Parse()
	if *labDir == "" {
		fmt.Fprintln(os.Stderr, "soak: missing -lab: pass the directory of a lab started with make lab-up")
		os.Exit(2)
	}
	code, err := run(*labDir, *bulwark, *proxy, *workDir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "soak: %v\n", err)
		os.Exit(2)
	}
	os.Exit(code)
}

// scale returns the row length and the number of kills of the restart row.
func scale() (time.Duration, int, error) {
	seconds, kills := 30, 100
	switch s := os.Getenv("SOAK_SCALE"); s {
	case "", "full":
	case "ci":
		seconds, kills = 5, 10
	default:
		return 0, 0, fmt.Errorf("invalid SOAK_SCALE %q: want full or ci", s)
	}
	if v := os.Getenv("SOAK_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 3600 {
			return 0, 0, fmt.Errorf("invalid SOAK_SECONDS %q: want whole seconds from 1 to 3600", v)
		}
		seconds = n
	}
	return time.Duration(seconds) * time.Second, kills, nil
}

func run(labDir, bulwark, proxy, workDir string) (int, error) {
	rowLength, kills, err := scale()
	if err != nil {
		return 2, err
	}
	lab, err := labkit.Open(labDir)
	if err != nil {
		return 2, err
	}
	s, err := newSuite(lab.Info, bulwark, proxy, workDir, rowLength)
	if err != nil {
		return 2, err
	}
	defer clearRules()

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	rssDone := make(chan struct{})
	go s.resolver.watchRSS(rssDone)
	defer close(rssDone)

	if err := s.resolver.start(); err != nil {
		return 2, err
	}
	defer s.resolver.stop(syscall.SIGTERM)

	fmt.Printf("soak: %d queries (%d listed in expected.tsv), %v per row, warming up\n",
		len(s.queries), s.check.listed(s.queries), rowLength)
	warm := s.warmUp(ctx)
	fmt.Printf("soak: warm-up sent %d, %.2f%% correct\n", warm.Sent, 100*warm.CorrectShare())

	only, err := rowFilter(s.rows())
	if err != nil {
		return 2, err
	}
	var results []rowResult
	for _, r := range s.rows() {
		if ctx.Err() != nil {
			break
		}
		if only != nil && !only[r.name] {
			continue
		}
		res := s.runRow(ctx, r)
		// The peak so far shows which row grew the resolver's memory.
		fmt.Printf("soak: %-14s attack %.0f/s, normal %.2f%% correct, %d lost, crashes %d, peak RSS so far %.1f MiB\n",
			res.Name, res.Attack.Rate(), 100*res.Load.CorrectShare(), res.Load.TimedOut, res.Crashes,
			float64(s.resolver.peak())/(1<<20))
		results = append(results, res)
	}
	if ctx.Err() == nil && (only == nil || only["restart"]) {
		res := s.restartRow(ctx, kills)
		fmt.Printf("soak: %-14s normal %.2f%% correct, crashes %d, bad files %d\n",
			res.Name, 100*res.Load.CorrectShare(), res.Crashes, res.BadFiles)
		results = append(results, res)
	}

	fmt.Println()
	writeTable(os.Stdout, results, s.resolver.peak())
	if ctx.Err() != nil {
		return 2, fmt.Errorf("interrupted")
	}
	for _, r := range results {
		if !r.Passed() && os.Getenv("SOAK_STRICT") == "1" {
			return 1, nil
		}
	}
	return 0, nil
}

func newSuite(lab *labkit.Info, bulwark, proxy, workDir string, rowLength time.Duration) (*suite, error) {
	if workDir == "" {
		workDir = filepath.Join(lab.Dir, "soak")
	}
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return nil, err
	}
	qs, err := readQueries(lab.Queries)
	if err != nil {
		return nil, err
	}
	rows, err := labkit.ReadExpected(lab.Expected)
	if err != nil {
		return nil, err
	}
	server, err := net.ResolveUDPAddr("udp4", lab.ResolverAddress)
	if err != nil {
		return nil, fmt.Errorf("invalid resolver address %q in lab.json: %w", lab.ResolverAddress, err)
	}
	return &suite{
		lab: lab, workDir: workDir, port: lab.ResolverPort, server: server,
		queries: qs, check: newChecker(rows), proxyBin: proxy, rowLength: rowLength,
		resolver: &resolverProcess{
			bin: bulwark, config: lab.BulwarkConfig, addr: lab.ResolverAddress,
			logPath: filepath.Join(workDir, "bulwark.log"),
		},
	}, nil
}

func (s *suite) newLoad() (*normalLoad, error) {
	return newNormalLoad(s.server, s.queries, s.check, normalQPS, clientTimeout)
}

// warmUp sends every question of queries.txt once at the normal rate.
func (s *suite) warmUp(ctx context.Context) loadResult {
	load, err := s.newLoad()
	if err != nil {
		return loadResult{}
	}
	load.next.Store(0)
	d := time.Duration(len(s.queries)) * time.Second / normalQPS
	return load.run(ctx, d)
}

// rowFilter returns the row names listed in SOAK_ROWS (comma-separated),
// or nil when it is unset: every row runs.
func rowFilter(specs []rowSpec) (map[string]bool, error) {
	v := os.Getenv("SOAK_ROWS")
	if v == "" {
		return nil, nil
	}
	known := map[string]bool{"restart": true}
	for _, r := range specs {
		known[r.name] = true
	}
	only := map[string]bool{}
	for _, name := range strings.Split(v, ",") {
		name = strings.TrimSpace(name)
		if !known[name] {
			names := slices.Sorted(maps.Keys(known))
			return nil, fmt.Errorf("invalid SOAK_ROWS: no row %q; the rows are %s", name, strings.Join(names, ", "))
		}
		only[name] = true
	}
	return only, nil
}
