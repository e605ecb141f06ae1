// Command labstub runs the misbehaving and logging DNS servers of the lab:
// silent servers, servers that reply REFUSED, and proxies in front of the
// lab's Knot DNS and NSD servers that log queries, truncate UDP replies,
// delay replies or rewrite NODATA to NXDOMAIN. It reads the JSON config
// written by labgen, writes its PID file once every socket is bound and
// exits on SIGTERM or SIGINT.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"bulwark/lab/internal/stub"
)

func main() {
	configPath := flag.String("config", "", "path of the labstub JSON config written by labgen")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*configPath, logger); err != nil {
		logger.Error("labstub failed", "error", err)
		os.Exit(1)
	}
}

func run(configPath string, logger *slog.Logger) error {
	if configPath == "" {
		return fmt.Errorf("missing -config: pass the stub.json file of a lab directory")
	}
	cfg, err := stub.ReadConfig(configPath)
	if err != nil {
		return err
	}

	srv := stub.New(cfg, logger)
	if err := srv.Start(); err != nil {
		return err
	}
	defer srv.Shutdown()

	if cfg.PIDFile != "" {
		pid := fmt.Sprintf("%d\n", os.Getpid())
		if err := os.WriteFile(cfg.PIDFile, []byte(pid), 0o644); err != nil {
			return fmt.Errorf("write pid file: %w", err)
		}
		defer os.Remove(cfg.PIDFile)
	}

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	logger.Info("labstub started", "listeners", len(cfg.Listeners), "pid", os.Getpid())
	sig := <-signals
	logger.Info("labstub stopping", "signal", sig.String())
	return nil
}
