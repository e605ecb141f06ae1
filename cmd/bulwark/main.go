// Command bulwark is a validating, protective recursive DNS resolver.
//
//	bulwark version
//	bulwark serve [-config FILE] [-handover]
//	bulwark check-config [-config FILE]
//	bulwark trace -config FILE [-flavour F] [-json] NAME [TYPE]
//	bulwark intel score [-detector dga|tunnel] [-reason] FILE
//
// Without -config, serve runs on the embedded default, which resolves from
// the IANA root servers and listens on 127.0.0.1 and ::1 port 5300.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"syscall"
	"time"

	"bulwark/internal/admin"
	"bulwark/internal/autotrust"
	"bulwark/internal/blockpage"
	"bulwark/internal/cache"
	"bulwark/internal/clock"
	"bulwark/internal/config"
	"bulwark/internal/cookie"
	"bulwark/internal/dnstap"
	"bulwark/internal/exchange"
	"bulwark/internal/guard"
	"bulwark/internal/intel/events"
	"bulwark/internal/intel/sources"
	"bulwark/internal/intel/store"
	"bulwark/internal/intel/traffic"
	"bulwark/internal/logging"
	"bulwark/internal/metrics"
	"bulwark/internal/observe"
	"bulwark/internal/pipeline"
	"bulwark/internal/policyload"
	"bulwark/internal/privacy"
	"bulwark/internal/proceed"
	"bulwark/internal/querylog"
	"bulwark/internal/resolver"
	"bulwark/internal/rrl"
	"bulwark/internal/server"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `usage: bulwark <command> [flags]

commands:
  serve         run the resolver
  check-config  load and validate a config, then exit
  trace         resolve one name and print every step
  intel score   score domain names with a threat detector (dga, tunnel)
  version       print the version

Run "bulwark <command> -h" for the flags of a command.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "version", "-version", "--version":
		fmt.Fprintf(stdout, "bulwark %s\n", version)
		return 0
	case "serve":
		return serve(args[1:], stderr)
	case "check-config":
		return checkConfig(args[1:], stdout, stderr)
	case "trace":
		return traceCommand(args[1:], stdout, stderr)
	case "intel":
		return intelCommand(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "bulwark: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// loadConfig parses the -config flag of a subcommand, and those that
// define adds when not nil, and loads the file, or the embedded default when
// the flag is absent.
func loadConfig(name string, args []string, stderr io.Writer, define func(*flag.FlagSet)) (*config.Config, int) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "path of the YAML config `file`; empty runs the embedded default")
	if define != nil {
		define(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, 0
		}
		return nil, 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bulwark %s: unexpected argument %q\n", name, fs.Arg(0))
		return nil, 2
	}
	if *path == "" {
		return config.Default(), 0
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "bulwark %s: %v\n", name, err)
		return nil, 1
	}
	return cfg, 0
}

func checkConfig(args []string, stdout, stderr io.Writer) int {
	cfg, code := loadConfig("check-config", args, stderr, nil)
	if cfg == nil {
		return code
	}
	source := cfg.File
	if source == "" {
		source = "embedded default"
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	// Parse every list too, so that a list that would stop serve shows
	// here, with the malformed lines of each.
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, _, reports, err := policyload.Load(cfg, 1, quiet)
	if err != nil {
		fmt.Fprintf(stderr, "bulwark check-config: %v\n", err)
		return 1
	}
	for _, r := range reports {
		fmt.Fprintf(stdout, "list %s: %d rules, %d malformed lines, %d duplicates, %d conflicts\n", r.Name, r.Rules, r.Bad, r.Duplicates, r.Conflicts)
	}
	fmt.Fprintf(stdout, "config %s is valid\n", source)
	return 0
}

func serve(args []string, stderr io.Writer) int {
	var handover bool
	var pprofAddr string
	cfg, code := loadConfig("serve", args, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&handover, "handover", false,
			"take the listening sockets over from the Bulwark serving on server.handover_socket, then stop it")
		fs.StringVar(&pprofAddr, "pprof", "",
			"serve Go runtime profiles (net/http/pprof) on this loopback `address:port`; empty serves none")
	})
	if cfg == nil {
		return code
	}
	log := newLogger(cfg.Log, stderr)
	source := cfg.File
	if source == "" {
		source = "embedded default"
	}
	if handover && cfg.Server.HandoverSocket == "" {
		log.Error("cannot start: -handover needs server.handover_socket in the config", "config", source)
		return 1
	}
	log.Info("starting", "version", version, "config", source, "handover", handover)
	if pprofAddr != "" {
		if err := startPprof(pprofAddr, log); err != nil {
			log.Error("cannot start", "error", err)
			return 1
		}
	}
	// The old process saves its state files first, and build loads them.
	var h *server.Handover
	if handover {
		var err error
		if h, err = server.Prepare(cfg.Server.HandoverSocket); err != nil {
			log.Error("cannot start", "error", err)
			return 1
		}
	}
	n, err := build(cfg, log)
	if err != nil {
		if h != nil {
			h.Abort()
		}
		log.Error("cannot start", "error", err)
		return 1
	}
	handedOver := make(chan struct{})
	if err := n.startServing(cfg, h, handedOver, log); err != nil {
		log.Error("cannot start", "error", err)
		return 1
	}
	if n.metrics != nil {
		n.metrics.SetReady(true)
	}
	waitForStop(log, cfg, n.lists, handedOver)
	if n.metrics != nil {
		n.metrics.SetReady(false) // load balancers stop sending first
	}
	n.shutdown(cfg.Server.ShutdownTimeout.D(), log)
	log.Info("stopped")
	return 0
}

// startServing starts n, on the sockets of the running Bulwark when h is a
// handover in progress. Then it serves handovers on server.handover_socket
// when the config sets one, and closes handedOver after one.
func (n *node) startServing(cfg *config.Config, h *server.Handover, handedOver chan struct{}, log *slog.Logger) error {
	if h != nil {
		start := time.Now()
		if err := h.Receive(); err != nil {
			h.Abort()
			return err
		}
		log.Info("handover: sockets received", "sockets", len(h.Sockets),
			"duration_seconds", time.Since(start).Seconds())
		n.server.Inherit(h.Sockets)
	}
	if err := n.start(cfg); err != nil {
		if h != nil {
			h.Abort()
		}
		return err
	}
	if h != nil {
		if err := h.Ready(); err != nil {
			n.shutdown(cfg.Server.ShutdownTimeout.D(), log)
			return err
		}
	}
	if path := cfg.Server.HandoverSocket; path != "" {
		if h != nil {
			// The old process still accepts on the file until it exits.
			os.Remove(path)
		}
		n.server.SetHandoverHooks(func() { n.handOffState(log) }, func() { n.resumeState(log) })
		if err := n.server.ListenHandover(path, func() { close(handedOver) }); err != nil {
			n.shutdown(cfg.Server.ShutdownTimeout.D(), log)
			return err
		}
	}
	return nil
}

// handOffState saves the state files that n keeps in memory, those of the
// traffic analysis and of the candidate store, and stops writing them: a
// new process is taking the sockets over and loads the files next. Events
// of the time until this process stops are not saved.
func (n *node) handOffState(log *slog.Logger) {
	if n.intel != nil {
		if err := n.intel.HandOff(); err != nil {
			log.Error("handover: the new process starts from the last saved intel state", "error", err)
		}
	}
	if n.intelStore != nil {
		if err := n.intelStore.HandOff(); err != nil {
			log.Error("handover: the new process starts from the last saved intel store", "error", err)
		}
	}
}

// resumeState lets n write its state files again after a failed handover.
func (n *node) resumeState(log *slog.Logger) {
	if n.intel != nil {
		n.intel.Resume()
	}
	if n.intelStore != nil {
		n.intelStore.Resume()
	}
	log.Info("handover failed: saving the intel state files again")
}

// shutdown stops n, giving the queries already received timeout to be
// answered.
func (n *node) shutdown(timeout time.Duration, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if n.stop != nil {
		n.stop()
	}
	if n.admin != nil {
		n.admin.Shutdown(ctx)
	}
	if n.blockPage != nil {
		n.blockPage.Shutdown(ctx)
	}
	if n.metrics != nil {
		n.metrics.Shutdown(ctx)
	}
	if err := n.server.Shutdown(ctx); err != nil {
		log.Warn("shutdown timed out; queries still in progress were dropped",
			"timeout_seconds", timeout.Seconds())
	}
	for _, c := range n.closers {
		if err := c(); err != nil {
			log.Error("closing an output failed", "error", err)
		}
	}
}

// firstProbeDelay is the wait before the first RFC 5011 probe, so that a
// restart loop does not turn into a query loop.
const firstProbeDelay = 10 * time.Second

// waitForStop returns on SIGTERM or SIGINT, or when handedOver is closed.
// SIGHUP reads the config file again and applies its policy section, then
// reloads every list.
func waitForStop(log *slog.Logger, cfg *config.Config, lists *policyload.Manager, handedOver <-chan struct{}) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	for {
		var got os.Signal
		select {
		case got = <-sig:
		case <-handedOver:
			return
		}
		if got == syscall.SIGHUP {
			cfg = reconfigure(log, cfg, lists)
			log.Info("SIGHUP: reading every list of the policy in force again")
			if err := lists.Reload(true); err != nil {
				log.Error("list reload failed; the failed lists keep their previous version", "error", err)
			}
			continue
		}
		log.Info("stopping", "signal", got.String())
		return
	}
}

// reconfigure reads the config file of cur again and applies its policy
// section to lists. Other sections are read only at start: a change there is
// logged as waiting for a restart. It returns the config now in force, cur
// when the new one is invalid or its policy could not be applied.
func reconfigure(log *slog.Logger, cur *config.Config, lists *policyload.Manager) *config.Config {
	if cur.File == "" {
		log.Info("SIGHUP: reloading the lists of the embedded default config")
		return cur
	}
	log.Info("SIGHUP: reading the config again", "config", cur.File)
	next, err := config.Load(cur.File)
	if err != nil {
		log.Error("config reload failed; the running config stays", "error", err)
		return cur
	}
	for _, w := range next.Warnings {
		log.Warn(w)
	}
	if changed := restartSections(cur, next); len(changed) > 0 {
		log.Warn("config sections changed that apply only after a restart", "sections", strings.Join(changed, ","))
	}
	if err := lists.Reconfigure(next); err != nil {
		log.Error("policy reconfiguration failed; the current policy stays", "error", err)
		return cur
	}
	// The policy section is in force; the others still run as started.
	merged := *cur
	merged.Policy = next.Policy
	return &merged
}

// restartSections returns the YAML keys of the top-level sections, other
// than policy, that differ between a and b.
func restartSections(a, b *config.Config) []string {
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	var changed []string
	for i := range va.NumField() {
		key, _, _ := strings.Cut(va.Type().Field(i).Tag.Get("yaml"), ",")
		if key == "" || key == "-" || key == "policy" {
			continue
		}
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			changed = append(changed, key)
		}
	}
	return changed
}

// build wires the cache, the resolver and the pipeline behind the listeners.
// node is one running Bulwark: the DNS server and the administration API,
// which is nil when off.
type node struct {
	server *server.Server
	admin  *admin.Server
	// probe runs the RFC 5011 trust anchor updates; nil when off.
	probe func(ctx context.Context)
	// guard protects flooded zones; nil when off.
	guard *guard.Guard
	// publish serves the published RPZ zones; nil when off.
	publish *publisher
	// sources pulls the indicator sources; nil without any.
	sources *indicatorSources
	stop    context.CancelFunc
	// lists owns the blocklists and their reloads.
	lists *policyload.Manager
	// blockPage serves the block page; nil when off.
	blockPage *http.Server
	// metrics serves the Prometheus metrics, and queryMetrics counts the
	// queries they report; both nil when off.
	metrics      *metrics.Server
	queryMetrics *metrics.Observer
	// closers flush and close the outputs of the observers at shutdown,
	// after the server has stopped.
	closers []func() error
	// dnstap sends dnstap messages; nil when off. Its Dropped and Lost
	// counts are for the metrics.
	dnstap *dnstap.Tap
	// queryLog writes the query log; nil when off.
	queryLog *querylog.Logger
	// intel analyses the traffic and intelEvents queues it; both nil
	// when off.
	intel       *traffic.Engine
	intelEvents *events.Observer
	// intelStore keeps the candidates and their blocks; nil when off.
	intelStore *store.Store
}

// outputs returns the counters of the dnstap output and the query log that
// are on.
func (n *node) outputs() []metrics.Output {
	var out []metrics.Output
	if n.dnstap != nil {
		out = append(out, metrics.Output{Name: "dnstap", Sent: n.dnstap.Sent(), Dropped: n.dnstap.Dropped(), Failed: n.dnstap.Lost()})
	}
	if n.queryLog != nil {
		st := n.queryLog.Stats()
		out = append(out, metrics.Output{Name: "query_log", Sent: st.Written, Dropped: st.Dropped, Failed: st.Failed})
	}
	return out
}

// observers returns the observers of the query path that cfg turns on, and
// adds their closers to n.
func (n *node) observers(cfg *config.Config, log *slog.Logger) (observe.Multi, error) {
	var obs observe.Multi
	if cfg.Metrics.Listen != "" {
		n.queryMetrics = metrics.NewObserver()
		obs = append(obs, n.queryMetrics)
	}
	if cfg.Dnstap.Enabled() {
		tap := dnstap.New(dnstap.ConfigFrom(&cfg.Dnstap, version), log)
		obs = append(obs, tap)
		n.closers = append(n.closers, tap.Close)
		n.dnstap = tap
	}
	if cfg.QueryLog.On() {
		ql, err := querylog.New(querylog.ConfigFrom(cfg.QueryLog), log)
		if err != nil {
			return nil, err
		}
		obs = append(obs, ql)
		n.closers = append(n.closers, ql.Close)
		n.queryLog = ql
	}
	if cfg.Intel.Enabled {
		if err := n.startIntel(cfg.Intel, log); err != nil {
			return nil, err
		}
		obs = append(obs, n.intelEvents)
	}
	return obs, nil
}

// startIntel starts the traffic analysis. It stops, saving its state,
// in a closer, once the server no longer queues events.
func (n *node) startIntel(cfg config.Intel, log *slog.Logger) error {
	// Pseudonyms are counted, never written, so the mode only has to
	// make them; the key changes every UTC day.
	anon := privacy.New(privacy.Config{Mode: privacy.Hash}, nil)
	n.intelEvents = events.NewObserver(cfg.QueueSize, anon)
	engine, err := traffic.New(traffic.ConfigFrom(cfg), n.intelEvents.Events(), log, nil)
	if err != nil {
		return fmt.Errorf("intel: %w", err)
	}
	n.intel = engine
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		engine.Run(ctx)
		close(done)
	}()
	n.closers = append(n.closers, func() error {
		cancel()
		<-done
		return nil
	})
	return nil
}

// listCheckInterval is how often list files are checked for changes.
const listCheckInterval = 5 * time.Second

func (n *node) start(cfg *config.Config) error {
	// The HTTP listeners come first: Start closes the sockets of a
	// handover that no listener has taken by then.
	lns, err := n.listenHTTP(cfg)
	if err != nil {
		return err
	}
	if err := n.server.Start(); err != nil {
		lns.close()
		return err
	}
	if n.admin != nil {
		n.admin.Serve(lns.admin)
	}
	if n.metrics != nil {
		n.metrics.Serve(lns.metrics)
	}
	if n.blockPage != nil {
		go n.blockPage.Serve(lns.blockPage)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.stop = cancel
	if n.probe != nil {
		go n.probe(ctx)
	}
	if n.guard != nil {
		go n.guard.Run(ctx)
	}
	if n.publish != nil {
		go n.publish.run(ctx, lns.xfrTCP, lns.xfrUDP)
	}
	if n.sources != nil {
		go n.sources.Run(ctx)
	}
	// These run without lists too, since SIGHUP may add some.
	go n.lists.Watch(ctx, listCheckInterval)
	n.lists.Download(ctx, nil)
	n.lists.Transfer(ctx)
	return nil
}

// httpListeners are the listeners of the HTTP services and the sockets of
// the RPZ primary; nil for a service that is off.
type httpListeners struct {
	admin, metrics, blockPage net.Listener
	xfrTCP                    net.Listener
	xfrUDP                    net.PacketConn
}

// listenHTTP opens the listeners of the HTTP services that cfg turns on,
// through the server so that a handover passes them on. On error it closes
// those already open.
func (n *node) listenHTTP(cfg *config.Config) (*httpListeners, error) {
	lns := &httpListeners{}
	services := []struct {
		on   bool
		name string
		addr netip.AddrPort
		ln   *net.Listener
	}{
		{n.admin != nil, "admin API", cfg.Admin.AddrPort, &lns.admin},
		{n.metrics != nil, "metrics", cfg.Metrics.AddrPort, &lns.metrics},
		{n.blockPage != nil, "block page", cfg.Policy.BlockPage.ListenAddr, &lns.blockPage},
	}
	for _, svc := range services {
		if !svc.on {
			continue
		}
		ln, err := n.server.ListenHTTP(svc.addr)
		if err != nil {
			lns.close()
			return nil, fmt.Errorf("%s: listen on %s: %w", svc.name, svc.addr, err)
		}
		*svc.ln = ln
	}
	if n.publish != nil {
		addr := cfg.Share.Publish.AddrPort
		tcp, udp, err := n.server.ListenPrimary(addr)
		if err != nil {
			lns.close()
			return nil, fmt.Errorf("share.publish.listen: %w: free the port or change the address", err)
		}
		lns.xfrTCP, lns.xfrUDP = tcp, udp
	}
	return lns, nil
}

// close closes the listeners that are open.
func (lns *httpListeners) close() {
	for _, ln := range []net.Listener{lns.admin, lns.metrics, lns.blockPage, lns.xfrTCP} {
		if ln != nil {
			ln.Close()
		}
	}
	if lns.xfrUDP != nil {
		lns.xfrUDP.Close()
	}
}

// trustAnchorState loads the RFC 5011 state file, seeds it with the
// configured anchors when it has none for a zone, and saves it when the
// seeding changed it.
func trustAnchorState(cfg *config.Config) (*autotrust.State, error) {
	path := cfg.DNSSEC.AutoTrustAnchorFile
	st, err := autotrust.Load(path)
	if err != nil {
		return nil, fmt.Errorf("dnssec.auto_trust_anchor_file: %w", err)
	}
	if st.Seed(cfg.DNSSEC.Anchors) {
		if err := st.Save(); err != nil {
			return nil, fmt.Errorf("dnssec.auto_trust_anchor_file: %w", err)
		}
	}
	return st, nil
}

// newCache returns the cache that cfg sets up.
func newCache(cfg *config.Config, now func() time.Time) *cache.Cache {
	return cache.New(cache.Config{
		MaxBytes:       int64(cfg.Cache.MaxBytes),
		MinTTL:         cfg.Cache.MinTTL.D(),
		MaxTTL:         cfg.Cache.MaxTTL.D(),
		MaxNegativeTTL: cfg.Cache.MaxNegativeTTL.D(),
		StaleMaxAge:    cfg.Cache.StaleMaxAge.D(),
		Now:            now,
	})
}

// newExchangeClient returns the client that queries authoritative servers
// with the settings of cfg. Its client cookie secret is new at every start.
func newExchangeClient(cfg *config.Config) *exchange.Client {
	var cookies *cookie.Client
	if *cfg.Resolver.Cookies {
		cookies = cookie.NewClient(cookie.NewSecret())
	}
	return exchange.NewClient(exchange.Config{
		BufferSize: uint16(cfg.Resolver.EDNSBufferSize),
		Allowed:    cfg.Resolver.AllowedPrefixes,
		Cookies:    cookies,
	})
}

// pipelineConfig returns the pipeline settings of cfg, without the proceed
// anyway exemptions, which only a serving node with a block page has.
func pipelineConfig(cfg *config.Config) pipeline.Config {
	return pipeline.Config{
		BufferSize:     uint16(cfg.Resolver.EDNSBufferSize),
		ClientTimeout:  cfg.Server.ClientTimeout.D(),
		FailureTTL:     cfg.Resolver.FailureTTL.D(),
		MaxResolutions: cfg.Server.MaxResolutions,
		SuspectRate:    cfg.Guard.SuspectRate,
		Proceed:        policyload.ProceedRules(cfg),
		Recursion: &pipeline.Access{
			Allow:        cfg.Server.Recursion.AllowPrefixes,
			OpenFlavours: cfg.Server.Recursion.OpenFlavours,
		},
		Cookies:            cookieServer(cfg),
		StaleAnswerTTL:     cfg.Cache.StaleAnswerTTL.D(),
		StaleClientTimeout: cfg.Cache.StaleClientTimeout.D(),
		Prefetch:           *cfg.Cache.Prefetch,
	}
}

// newGuard returns the guard of the settings g.
func newGuard(g config.Guard, log *slog.Logger, now func() time.Time) *guard.Guard {
	return guard.New(guard.Config{
		Window:       g.Window.D(),
		MinRate:      g.MinMissRate,
		FailureRatio: g.FailureRatio,
		Hold:         g.Hold.D(),
		MaxHold:      g.MaxHold.D(),
		ProbeRate:    g.ProbeRate,
		MaxInFlight:  g.MaxInFlightPerZone,
		TableSize:    g.TableSize,
		Exempt:       g.ExemptZones,
	}, log, now)
}

// cookieServer returns the maker of server cookies, with a random secret
// when the config sets none. Load has checked the secrets.
func cookieServer(cfg *config.Config) *cookie.Server {
	if cfg.Server.CookieSecret == "" {
		return cookie.NewServer(cookie.NewSecret(), nil)
	}
	current, _ := cookie.ParseSecret(cfg.Server.CookieSecret)
	if cfg.Server.CookiePreviousSecret == "" {
		return cookie.NewServer(current, nil)
	}
	previous, _ := cookie.ParseSecret(cfg.Server.CookiePreviousSecret)
	return cookie.NewServer(current, &previous)
}

func build(cfg *config.Config, log *slog.Logger) (*node, error) {
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	now, validationTime, err := clocks(cfg.Testing, log)
	if err != nil {
		return nil, err
	}
	c := newCache(cfg, now)
	n := &node{}
	obs, err := n.observers(cfg, log)
	if err != nil {
		return nil, err
	}
	var ex exchange.Exchanger = newExchangeClient(cfg)
	if len(obs) > 0 {
		ex = &observe.Exchanger{Inner: ex, Observer: obs}
	}
	rcfg, err := resolver.ConfigFrom(cfg)
	if err != nil {
		return nil, err
	}
	rcfg.ValidationTime = validationTime
	var anchorState *autotrust.State
	if cfg.DNSSEC.AutoTrustAnchorFile != "" {
		if anchorState, err = trustAnchorState(cfg); err != nil {
			return nil, err
		}
		rcfg.Anchors = anchorState.TrustAnchors()
	}
	res := resolver.New(rcfg, c, ex, log, now)
	bp := cfg.Policy.BlockPage
	pcfg := pipelineConfig(cfg)
	var exemptions *proceed.Exemptions
	if len(pcfg.Proceed) > 0 && bp.Listen != "" {
		// Only the block page grants exemptions.
		exemptions = proceed.NewExemptions(proceed.DefaultMaxEntries, log)
	}
	pcfg.Exemptions = exemptions
	pipe := pipeline.New(pcfg, c, res, log, now)
	if cfg.Guard.Enabled {
		n.guard = newGuard(cfg.Guard, log, now)
		res.SetGate(n.guard)
		pipe.SetZoneObserver(n.guard)
	}
	if cfg.Intel.Store.Enabled {
		if err := n.newIntelStore(cfg, log); err != nil {
			return nil, err
		}
	}
	if cfg.Share.Publish.Listen != "" {
		generated, err := n.zoneSources(cfg.Share.Publish)
		if err != nil {
			return nil, err
		}
		if n.publish, err = newPublisher(cfg.Share.Publish, generated, log); err != nil {
			return nil, err
		}
	}
	if len(cfg.Share.Sources) > 0 {
		var store sources.Sink
		if n.intelStore != nil {
			store = n.intelStore
		}
		if n.sources, err = newIndicatorSources(cfg.Share, store, log); err != nil {
			return nil, fmt.Errorf("share.sources: %w", err)
		}
	}
	lists, err := policyload.NewManager(cfg, pipe, log)
	if err != nil {
		return nil, err
	}
	if n.intelStore != nil {
		n.runIntelStore(cfg, lists)
	}
	if h := lists.NotifyHandler(); h != nil {
		pipe.SetNotifyHandler(h)
	}
	n.server, n.lists = server.New(cfg.Server, pipe, log), lists
	var limiter *rrl.Limiter
	if cfg.Server.RateLimit.Enabled() {
		limiter = rrl.New(cfg.Server.RateLimit.Limiter())
		n.server.SetRateLimiter(limiter)
	}
	if len(obs) > 0 {
		n.server.SetObserver(obs)
	}
	if cfg.Metrics.Listen != "" {
		src := metrics.Sources{
			Pipeline:  pipe.Stats(),
			Observer:  n.queryMetrics,
			Cache:     c.Usage,
			LimitHits: n.server.LimitHits,
			Lists:     lists.Lists,
			Outputs:   n.outputs,
		}
		if n.guard != nil {
			src.Guard = n.guard.Stats
		}
		if n.intel != nil {
			src.Intel = func() metrics.IntelStats {
				return metrics.IntelStats{Queue: n.intelEvents.Stats(), Engine: n.intel.Stats()}
			}
		}
		if limiter != nil {
			src.RateLimited = limiter.Limited
		}
		if n.publish != nil {
			src.Primary = n.publish.stats
		}
		if n.sources != nil {
			src.IntelSources = n.sources.Statuses
		}
		if n.intelStore != nil {
			src.IntelStore = n.intelStore.Counters
		}
		if limiter, ok := log.Handler().(*logging.RepeatLimiter); ok {
			src.LogSuppressed = limiter.Suppressed
		}
		n.metrics = metrics.NewServer(metrics.NewRegistry(src), log)
	}
	var reviews *blockpage.ReviewQueue
	if bp.ReviewFile != "" {
		reviews = blockpage.NewReviewQueue(bp.ReviewFile)
	}
	if bp.Listen != "" {
		page := blockpage.New(blockpage.Config{
			Organization: cfg.Policy.Organization, Contact: cfg.Policy.Contact,
			Reviews: reviews, Exemptions: exemptions, Reported: n.reportToStore,
		}, lists, log, now)
		n.blockPage = &http.Server{
			Addr: bp.ListenAddr.String(), Handler: page.Handler(), ReadHeaderTimeout: 5 * time.Second,
			ErrorLog: logging.HTTPErrorLog(log, "block page connection error"),
		}
	}
	switch {
	case anchorState != nil && cfg.Testing.Enabled:
		// Test suites see only the queries their clients cause.
		log.Warn("testing: automated trust anchor updates are off", "file", anchorState.Path())
	case anchorState != nil:
		n.probe = func(ctx context.Context) {
			res.RunTrustAnchorUpdates(ctx, anchorState, firstProbeDelay)
		}
	}
	if cfg.Admin.Listen != "" {
		// Negative trust anchors expire by the validation time.
		n.admin = admin.New(res, res, log, validationTime)
		n.admin.SetPolicy(lists)
		n.admin.SetTracer(pipe, defaultFlavour(cfg))
		if n.guard != nil {
			n.admin.SetGuard(n.guard)
		}
		if n.intel != nil {
			n.admin.SetIntel(n.intel)
		}
		if n.intelStore != nil {
			n.admin.SetIntelStore(n.intelStore)
		}
		if n.sources != nil {
			n.admin.SetIntelSources(n.sources)
		}
		n.admin.SetLookup(admin.LookupConfig{
			Organization: cfg.Policy.Organization, Contact: cfg.Policy.Contact, Reviews: reviews,
		})
	}
	return n, nil
}

// watchClockFile logs when the clock file becomes unreadable or malformed,
// and when it is good again; the clock keeps its last good time meanwhile.
// It runs for the life of the process, which ends with the server.
func watchClockFile(fc *clock.FileClock, log *slog.Logger) {
	last := ""
	for range time.Tick(time.Second) {
		fc.Now() // makes the clock check the file
		msg := ""
		if err := fc.Err(); err != nil {
			msg = err.Error()
		}
		switch {
		case msg == last:
		case msg != "":
			log.Warn("testing: cannot read the clock file; keeping the last good time", "file", fc.Path(), "error", msg)
		default:
			log.Info("testing: the clock file is readable again", "file", fc.Path())
		}
		last = msg
	}
}

// clocks returns the clock of the cache, resolver and pipeline, and the
// time signatures are checked against; nil means the system clock. Only the
// testing section changes them.
func clocks(t config.Testing, log *slog.Logger) (now, validationTime func() time.Time, err error) {
	switch {
	case t.ClockFile != "":
		clk, err := clock.FromFile(t.ClockFile)
		if err != nil {
			return nil, nil, fmt.Errorf("testing.clock_file: %w", err)
		}
		log.Warn("testing: the clock follows a file", "file", t.ClockFile, "now", clk.Now().UTC().Format(time.RFC3339))
		if fc, ok := clk.(*clock.FileClock); ok {
			go watchClockFile(fc, log)
		}
		return clk.Now, clk.Now, nil
	case t.FixedValidationTime != "":
		at, err := time.Parse(time.RFC3339, t.FixedValidationTime)
		if err != nil {
			return nil, nil, fmt.Errorf("testing.fixed_validation_time: %w", err)
		}
		log.Warn("testing: signatures are checked against a fixed time", "time", at.UTC().Format(time.RFC3339))
		return nil, clock.Fixed(at).Now, nil
	}
	return nil, nil, nil
}

func newLogger(cfg config.Log, w io.Writer) *slog.Logger {
	return logging.New(logging.Config{
		Level: cfg.Level, Format: cfg.Format,
		RepeatLimit: cfg.RepeatLimit, RepeatInterval: cfg.RepeatInterval.D(),
	}, w)
}
