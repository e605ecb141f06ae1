// Command rpzgen writes a benchmark response policy zone and the query
// files that go with it.
//
//	rpzgen -names 10000000 -out DIR [-seed 1] [-origin rpz.bench.]
//
// It writes into DIR:
//
//	rpz.zone            the zone: SOA, NS, the triggers (one in ten a
//	                    wildcard), local data and passthru records
//	queries-listed.txt  dnsperf input of blocked names ("name A")
//	queries-local.txt   dnsperf input of the local-data names and types
//	probes.env          shell assignments: counts, size and probe names
//
// The same flags always give byte-identical files. scripts/bench-rpz.sh
// runs it; see docs/benchmarks.md.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"bulwark/lab/rpzgen"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "rpzgen: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("rpzgen", flag.ContinueOnError)
	cfg := rpzgen.Config{}
	fs.IntVar(&cfg.Names, "names", 10_000_000, "number of QNAME triggers, wildcards included")
	fs.Uint64Var(&cfg.Seed, "seed", rpzgen.DefaultSeed, "seed of the name generator")
	fs.StringVar(&cfg.Origin, "origin", "rpz.bench.", "zone apex, fully qualified")
	fs.IntVar(&cfg.LocalNames, "local", 150, "names with local data (A, and AAAA or TXT on some)")
	fs.IntVar(&cfg.Passthru, "passthru", 200, "rpz-passthru records")
	fs.IntVar(&cfg.Sample, "sample", 50_000, "blocked names written to queries-listed.txt")
	out := fs.String("out", "", "output `directory`, created if missing (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("missing -out: give the directory to write the zone into")
	}
	if cfg.LocalNames < 1 {
		return fmt.Errorf("invalid -local %d: want at least 1, for the probe name", cfg.LocalNames)
	}
	cfg.Unlisted = 2
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}

	var sum *rpzgen.Summary
	err := writeAtomic(filepath.Join(*out, "rpz.zone"), func(w io.Writer) error {
		var err error
		sum, err = rpzgen.WriteZone(w, cfg)
		return err
	})
	if err != nil {
		return err
	}
	if err := writeQueries(*out, sum); err != nil {
		return err
	}
	if err := writeProbes(filepath.Join(*out, "probes.env"), cfg, sum); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d triggers (%d exact, %d wildcard), %d local-data records, %d passthru records, %d bytes (%.1f MiB)\n",
		filepath.Join(*out, "rpz.zone"), sum.Exact+sum.Wildcard, sum.Exact, sum.Wildcard,
		len(sum.Local), len(sum.Passthru), sum.Bytes, float64(sum.Bytes)/(1<<20))
	return nil
}

func writeQueries(dir string, sum *rpzgen.Summary) error {
	err := writeAtomic(filepath.Join(dir, "queries-listed.txt"), func(w io.Writer) error {
		for _, name := range sum.Listed {
			if _, err := fmt.Fprintf(w, "%s. A\n", name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, "queries-local.txt"), func(w io.Writer) error {
		for _, r := range sum.Local {
			if _, err := fmt.Fprintf(w, "%s. %s\n", r.Name, r.Type); err != nil {
				return err
			}
		}
		return nil
	})
}

// writeProbes writes shell assignments for scripts/bench-rpz.sh. Names
// hold only letters, digits, hyphens and dots, so they need no quoting.
func writeProbes(path string, cfg rpzgen.Config, sum *rpzgen.Summary) error {
	return writeAtomic(path, func(w io.Writer) error {
		vars := []struct {
			key   string
			value any
		}{
			{"RPZ_ORIGIN", cfg.Origin},
			{"RPZ_TRIGGERS", sum.Exact + sum.Wildcard},
			{"RPZ_EXACT", sum.Exact},
			{"RPZ_WILDCARD", sum.Wildcard},
			{"RPZ_LOCAL_RECORDS", len(sum.Local)},
			{"RPZ_PASSTHRU", len(sum.Passthru)},
			{"RPZ_BYTES", sum.Bytes},
			{"RPZ_LISTED_QUERIES", len(sum.Listed)},
			// The last triggers of the file: blocked only once all is read.
			{"BLOCKED_NAME", sum.LastExact + "."},
			{"WILDCARD_NAME", sum.BelowLastWildcard + "."},
			{"LOCAL_NAME", sum.Local[0].Name + "."},
			{"LOCAL_ADDR", sum.Local[0].Value},
			{"UNLISTED_NAME", sum.Unlisted[0] + "."},
			// Not in the zone: a reload adds it.
			{"NEW_NAME", sum.Unlisted[1] + "."},
		}
		for _, v := range vars {
			if _, err := fmt.Fprintf(w, "%s=%v\n", v.key, v.value); err != nil {
				return err
			}
		}
		return nil
	})
}

// writeAtomic writes path through a temporary file in the same directory,
// so that a reader never sees a partial file.
func writeAtomic(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err := write(bw); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
