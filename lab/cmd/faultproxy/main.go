// Command faultproxy forwards DNS queries to lab servers and spoils the
// replies: it delays them, truncates them, replaces them with random bytes,
// changes their message ID or drops every query under one zone. The soak
// suite (scripts/soak.sh) starts it for one fault at a time and sends a
// lab server's traffic through it with an nftables dnat rule. It exits on
// SIGTERM or SIGINT, or after -lifetime.
//
// Usage:
//
//	faultproxy -mode garbage -route 127.53.9.1:5440=127.53.1.3:53 [-route ...]
package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"bulwark/lab/internal/fault"
)

// routeFlags collects repeated -route flags.
type routeFlags []fault.Route

func (r *routeFlags) String() string { return fmt.Sprint(*r) }

func (r *routeFlags) Set(s string) error {
	route, err := fault.ParseRoute(s)
	if err != nil {
		return err
	}
	*r = append(*r, route)
	return nil
}

func main() {
	var cfg fault.Config
	var routes routeFlags
	flag.StringVar(&cfg.Mode, "mode", "", "fault to inject: "+strings.Join(fault.Modes, ", "))
	flag.DurationVar(&cfg.Delay, "delay", 0, "how long mode delay holds each reply, such as 1500ms")
	flag.StringVar(&cfg.Zone, "zone", "", "fully qualified zone whose queries mode black-hole drops, such as org.")
	flag.Var(&routes, "route", "LISTEN_IP:PORT=BACKEND_IP:PORT; repeat for more addresses")
	lifetime := flag.Duration("lifetime", 30*time.Minute, "exit after this long even without a signal")
	flag.Parse()
	cfg.Routes = routes

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(cfg, *lifetime, logger); err != nil {
		logger.Error("faultproxy failed", "error", err)
		os.Exit(1)
	}
}

func run(cfg fault.Config, lifetime time.Duration, logger *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if lifetime <= 0 {
		return errors.New("invalid -lifetime: want a positive duration such as 10m")
	}
	p := fault.New(cfg, logger)
	if err := p.Start(); err != nil {
		return err
	}
	defer p.Shutdown()
	logger.Info("faultproxy started", "mode", cfg.Mode, "routes", len(cfg.Routes), "pid", os.Getpid())

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	select {
	case sig := <-signals:
		logger.Info("faultproxy stopping", "signal", sig.String())
	case <-time.After(lifetime):
		logger.Info("faultproxy stopping", "reason", "lifetime reached")
	}
	logger.Info("faultproxy counts", "queries", p.Forwarded.Load(), "spoiled", p.Spoiled.Load())
	return nil
}
