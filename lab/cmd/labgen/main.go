// Command labgen generates the lab internet and waits for it to come up.
//
//	labgen generate -data lab/data -out DIR [-offset N]
//	labgen sign -lab DIR
//	labgen wait -lab DIR [-timeout 90s]
//
// generate writes zone files, Knot DNS, NSD and labstub configs,
// bulwark.yaml, root.hints, queries.txt, expected.tsv and lab.json into DIR;
// the same inputs always give byte-identical files. sign makes the DNSSEC
// keys, signs the zones that generate marked as signed (or imports their
// keys for Knot DNS) and writes the root trust anchor files. Its output
// depends on the time it runs. wait polls every
// listener of a started lab until it replies as expected, and otherwise
// names the servers that did not, with their log files. lab/up.sh runs all three.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"bulwark/lab/internal/gen"
)

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(os.Args[1:], logger); err != nil {
		logger.Error("labgen failed", "error", err)
		os.Exit(1)
	}
}

func run(args []string, logger *slog.Logger) error {
	if len(args) == 0 {
		return fmt.Errorf("missing subcommand: want generate, sign or wait")
	}
	switch args[0] {
	case "generate":
		return generate(args[1:], logger)
	case "sign":
		return sign(args[1:], logger)
	case "wait":
		return wait(args[1:], logger)
	}
	return fmt.Errorf("unknown subcommand %q: want generate, sign or wait", args[0])
}

func generate(args []string, logger *slog.Logger) error {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	opts := gen.Options{}
	fs.StringVar(&opts.DataDir, "data", "lab/data", "directory with popular.csv and tlds.txt")
	fs.StringVar(&opts.OutDir, "out", "", "lab directory to write (required)")
	fs.IntVar(&opts.PortOffset, "offset", 0, "added to every lab port: authoritative servers listen on 53+offset, Bulwark on 5300+offset")
	fs.IntVar(&opts.PopularZones, "zones", gen.DefaultPopularZones, "number of registered domains taken from the popular names")
	fs.IntVar(&opts.ExtraTLDs, "extra-tlds", gen.DefaultExtraTLDs, "number of TLDs added beyond those the popular names use")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if opts.OutDir == "" {
		return fmt.Errorf("missing -out: pass the lab directory")
	}
	if opts.PortOffset < 0 || opts.PortOffset > 60000 {
		return fmt.Errorf("invalid -offset %d: want 0 to 60000", opts.PortOffset)
	}

	start := time.Now()
	l, err := gen.Generate(opts)
	if err != nil {
		return err
	}
	if err := l.Write(); err != nil {
		return err
	}
	logger.Info("lab generated", "dir", opts.OutDir, "duration_seconds", time.Since(start).Seconds())
	return nil
}

func sign(args []string, logger *slog.Logger) error {
	fs := flag.NewFlagSet("sign", flag.ContinueOnError)
	dir := fs.String("lab", "", "generated lab directory (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("missing -lab: pass the lab directory")
	}
	return gen.Sign(*dir, time.Now(), logger)
}

func wait(args []string, logger *slog.Logger) error {
	fs := flag.NewFlagSet("wait", flag.ContinueOnError)
	dir := fs.String("lab", "", "lab directory (required)")
	timeout := fs.Duration("timeout", 90*time.Second, "how long to wait for every listener")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("missing -lab: pass the lab directory")
	}

	start := time.Now()
	if err := gen.Wait(*dir, *timeout); err != nil {
		return err
	}
	logger.Info("lab listeners answer", "dir", *dir, "duration_seconds", time.Since(start).Seconds())
	return nil
}
