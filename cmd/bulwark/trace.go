package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"bulwark/internal/admin"
	"bulwark/internal/autotrust"
	"bulwark/internal/config"
	"bulwark/internal/pipeline"
	"bulwark/internal/policyload"
	"bulwark/internal/resolver"
	"bulwark/internal/trace"

	"github.com/miekg/dns"
	"golang.org/x/net/idna"
)

const traceUsage = `usage: bulwark trace -config FILE [-flavour F] [-json] NAME [TYPE]

Resolve NAME once, with the cache, resolver and lists of FILE, and print
every step: cache hits, zone cuts, queries and responses, the DNSSEC chain
of trust and policy decisions, then the answer. TYPE defaults to A. Flags
may also follow NAME and TYPE. No listener is opened and the cache starts
empty.

`

// traceArgs are the parsed arguments of the trace command.
type traceArgs struct {
	config, flavour string
	json            bool
	name            string
	qtype           uint16
}

// parseTraceArgs parses args, which may mix flags and the positional name
// and type in any order. It writes what is wrong to stderr and returns ok
// false with the exit code: 0 for -h, 2 for invalid arguments.
func parseTraceArgs(args []string, stderr io.Writer) (a traceArgs, code int, ok bool) {
	fs := flag.NewFlagSet("trace", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, traceUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&a.config, "config", "", "path of the YAML config `file` whose settings and lists to use (required)")
	fs.StringVar(&a.flavour, "flavour", "", "`name` of the flavour whose lists apply; default: the first listener's")
	fs.BoolVar(&a.json, "json", false, "print the trace as JSON")

	var positional []string
	for {
		// The flag package writes its own errors.
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return a, 0, false
			}
			return a, 2, false
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}

	err := a.setQuestion(positional)
	if err == nil && a.config == "" {
		err = errors.New("missing -config: give the config file whose resolver settings and lists to use")
	}
	if err != nil {
		fmt.Fprintf(stderr, "bulwark trace: %v\n", err)
		return a, 2, false
	}
	return a, 0, true
}

// setQuestion sets the name and type from the positional arguments.
func (a *traceArgs) setQuestion(positional []string) error {
	switch len(positional) {
	case 0:
		return errors.New("missing name: give the name to resolve, such as example.com")
	case 1, 2:
	default:
		return fmt.Errorf("unexpected argument %q: give a name and at most one type", positional[2])
	}
	name := positional[0]
	if strings.IndexFunc(name, func(r rune) bool { return r >= 0x80 }) >= 0 {
		// An internationalised name is queried in its A-label form.
		ascii, err := idna.Lookup.ToASCII(strings.TrimSuffix(name, "."))
		if err != nil {
			return fmt.Errorf("invalid internationalised name %q: %v", name, err)
		}
		name = ascii
	}
	if _, ok := dns.IsDomainName(name); !ok || strings.IndexFunc(name, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0 {
		return fmt.Errorf("invalid name %q: use labels of 1 to 63 letters, digits or hyphens, 253 characters in all", name)
	}
	a.name, a.qtype = dns.CanonicalName(name), dns.TypeA
	if len(positional) == 2 {
		t, err := admin.ParseType(positional[1])
		if err != nil {
			return err
		}
		a.qtype = t
	}
	return nil
}

func traceCommand(args []string, stdout, stderr io.Writer) int {
	a, code, ok := parseTraceArgs(args, stderr)
	if !ok {
		return code
	}
	cfg, err := config.Load(a.config)
	if err != nil {
		fmt.Fprintf(stderr, "bulwark trace: %v\n", err)
		return 1
	}
	// Warnings and errors only: the trace itself goes to stdout.
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	pipe, err := buildTracer(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "bulwark trace: %v\n", err)
		return 1
	}

	flavour := a.flavour
	if flavour == "" {
		flavour = defaultFlavour(cfg)
	}
	rep, err := pipe.Trace(context.Background(), a.name, a.qtype, flavour)
	if err != nil {
		fmt.Fprintf(stderr, "bulwark trace: %v\n", err)
		return 2
	}

	if a.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = trace.WriteText(stdout, rep)
	}
	if err != nil {
		fmt.Fprintf(stderr, "bulwark trace: write the trace: %v\n", err)
		return 1
	}
	return 0
}

// defaultFlavour returns the flavour of the first listener of cfg, which
// is the one a client of the default setup gets.
func defaultFlavour(cfg *config.Config) string {
	if len(cfg.Server.Listen) > 0 && cfg.Server.Listen[0].Flavour != "" {
		return cfg.Server.Listen[0].Flavour
	}
	return "unfiltered"
}

// buildTracer builds the cache, resolver, lists and pipeline of cfg as
// serve does, without listeners, metrics, observers or background work.
// The lists are loaded from their files before it returns; lists that are
// downloaded or transferred have what their local copy holds.
func buildTracer(cfg *config.Config, log *slog.Logger) (*pipeline.Pipeline, error) {
	now, validationTime, err := clocks(cfg.Testing, log)
	if err != nil {
		return nil, err
	}
	c := newCache(cfg, now)

	ex := newExchangeClient(cfg)
	rcfg, err := resolver.ConfigFrom(cfg)
	if err != nil {
		return nil, err
	}
	rcfg.ValidationTime = validationTime
	if path := cfg.DNSSEC.AutoTrustAnchorFile; path != "" {
		// The state file is read, never written: serve owns it.
		st, err := autotrust.Load(path)
		if err != nil {
			return nil, fmt.Errorf("dnssec.auto_trust_anchor_file: %w", err)
		}
		st.Seed(cfg.DNSSEC.Anchors)
		rcfg.Anchors = st.TrustAnchors()
	}
	res := resolver.New(rcfg, c, ex, log, now)

	pipe := pipeline.New(pipelineConfig(cfg), c, res, log, now)
	if _, err := policyload.NewManager(cfg, pipe, log); err != nil {
		return nil, err
	}
	return pipe, nil
}
