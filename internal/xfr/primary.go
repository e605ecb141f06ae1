package xfr

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Defaults of a PrimaryConfig.
const (
	defaultCheckInterval  = time.Second
	defaultJournalDiffs   = 100
	defaultJournalRecords = 100000
	// recordsPerMessage bounds the records of one transfer message. RPZ
	// records are short, so 500 stay far below the 64 KiB of a TCP
	// message.
	recordsPerMessage = 500
	// transferWriteTimeout bounds the write of one transfer message.
	transferWriteTimeout = 30 * time.Second
)

// PublishedZone is a zone a Primary serves.
type PublishedZone struct {
	// Name is the zone, fully qualified.
	Name string
	// Source produces its records.
	Source Source
	// TTL is the TTL of the SOA and NS records, seconds.
	TTL uint32
}

// PrimaryConfig configures a Primary.
type PrimaryConfig struct {
	// Listen is the address of the UDP and TCP listeners.
	Listen netip.AddrPort
	// Zones are the zones served.
	Zones []PublishedZone
	// AllowTransfer lists the networks that may query the SOA and
	// transfer the zones. Others get REFUSED.
	AllowTransfer []netip.Prefix
	// Keys are the TSIG keys accepted on requests.
	Keys []*Key
	// RequireTSIG refuses requests not signed with one of Keys.
	RequireTSIG bool
	// Notify lists the secondaries sent a NOTIFY on each new serial.
	Notify []netip.AddrPort
	// NotifyKey signs the NOTIFY messages; nil sends them unsigned.
	NotifyKey *Key
	// CheckInterval is how often the sources' versions are read.
	// Default: 1s.
	CheckInterval time.Duration
	// JournalDiffs and JournalRecords bound the journal of each zone, in
	// diffs and in records over all diffs. Defaults: 100 and 100000.
	JournalDiffs, JournalRecords int
	// NotifyRetries is the number of NOTIFY attempts per secondary and
	// serial; NotifyTimeout the wait for the first response, doubled on
	// each retry (RFC 1996 section 3.6). Defaults: 5 and 1s.
	NotifyRetries int
	NotifyTimeout time.Duration
	// Serials persists the serials across restarts and handovers; nil
	// takes them from the clock alone (see clockSerials for what that
	// misses).
	Serials *SerialFile
}

// Primary serves generated zones to secondaries: SOA queries over UDP and
// TCP, AXFR (RFC 5936) and IXFR (RFC 1995) over TCP, from a bounded journal
// of diffs, and sends NOTIFY (RFC 1996) on each new serial.
type Primary struct {
	cfg   PrimaryConfig
	zones map[string]*servedZone
	log   *slog.Logger
	now   func() time.Time

	stats   primaryCounters
	serials serialAllocator
	// refreshMu makes Refresh calls run one at a time.
	refreshMu sync.Mutex
	// serialFailing is set while taking serials fails, so that the
	// error is logged once per run of failures.
	serialFailing bool

	mu      sync.Mutex
	servers []*dns.Server
	addr    netip.AddrPort
	// notifyCancel stops the NOTIFY retries of a zone's older serial.
	notifyCancel map[string]context.CancelFunc
}

// NewPrimary returns a primary for cfg. now may be nil for time.Now.
func NewPrimary(cfg PrimaryConfig, log *slog.Logger, now func() time.Time) (*Primary, error) {
	if now == nil {
		now = time.Now
	}
	setPrimaryDefaults(&cfg)
	p := &Primary{
		cfg: cfg, zones: map[string]*servedZone{}, now: now,
		log:          log.With("component", "xfr_primary"),
		notifyCancel: map[string]context.CancelFunc{},
		serials:      clockSerials{},
	}
	if cfg.Serials != nil {
		p.serials = cfg.Serials
	}
	for _, z := range cfg.Zones {
		name := dns.CanonicalName(z.Name)
		if _, ok := p.zones[name]; ok {
			return nil, fmt.Errorf("zone %s is published twice", name)
		}
		if z.Source == nil {
			return nil, fmt.Errorf("zone %s has no source", name)
		}
		p.zones[name] = &servedZone{
			name: name, src: z.Source, ttl: z.TTL,
			journal: journal{maxDiffs: cfg.JournalDiffs, maxRecords: cfg.JournalRecords},
		}
	}
	return p, nil
}

func setPrimaryDefaults(cfg *PrimaryConfig) {
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = defaultCheckInterval
	}
	if cfg.JournalDiffs <= 0 {
		cfg.JournalDiffs = defaultJournalDiffs
	}
	if cfg.JournalRecords <= 0 {
		cfg.JournalRecords = defaultJournalRecords
	}
	if cfg.NotifyRetries <= 0 {
		cfg.NotifyRetries = 5
	}
	if cfg.NotifyTimeout <= 0 {
		cfg.NotifyTimeout = time.Second
	}
}

// Serial returns the current serial of zone, and false for a zone the
// primary does not serve.
func (p *Primary) Serial(zone string) (uint32, bool) {
	z := p.zones[dns.CanonicalName(zone)]
	if z == nil {
		return 0, false
	}
	return z.currentSerial(), true
}

// Addr returns the address of the TCP listener once Run has opened it,
// with the port chosen by the system when Listen has port 0.
func (p *Primary) Addr() netip.AddrPort {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

// Run opens the listeners at PrimaryConfig.Listen and serves on them, as
// Serve does. It returns an error when a listener cannot be opened.
func (p *Primary) Run(ctx context.Context) error {
	// TCP first, so that with port 0 UDP takes the port TCP got.
	tcp, err := net.Listen("tcp", p.cfg.Listen.String())
	if err != nil {
		return fmt.Errorf("publish: listen on TCP %s: %w", p.cfg.Listen, err)
	}
	udp, err := net.ListenPacket("udp", tcp.Addr().String())
	if err != nil {
		tcp.Close()
		return fmt.Errorf("publish: listen on UDP %s: %w", p.cfg.Listen, err)
	}
	p.Serve(ctx, tcp, udp)
	return nil
}

// Serve loads the zones and serves on tcp and udp, which the caller
// opened, until ctx ends; then it closes them. Opening them apart lets
// the caller report a listen failure at start and pass the sockets on in
// a handover.
func (p *Primary) Serve(ctx context.Context, tcp net.Listener, udp net.PacketConn) {
	p.Refresh(ctx)
	p.mu.Lock()
	if a, ok := tcp.Addr().(*net.TCPAddr); ok {
		p.addr = a.AddrPort()
	}
	p.mu.Unlock()
	p.serve(&dns.Server{PacketConn: udp}, &dns.Server{Listener: tcp})
	p.log.Info("primary listening", "listener", tcp.Addr().String(), "zones", len(p.zones))

	t := time.NewTicker(p.cfg.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			p.shutdown()
			return
		case <-t.C:
			p.Refresh(ctx)
		}
	}
}

func (p *Primary) serve(servers ...*dns.Server) {
	provider := keyring(p.cfg.Keys)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range servers {
		s.Handler = dns.HandlerFunc(p.handle)
		s.TsigProvider = provider
		s.WriteTimeout = transferWriteTimeout
		p.servers = append(p.servers, s)
		go func() {
			if err := s.ActivateAndServe(); err != nil {
				p.log.Error("primary listener stopped", "listener", p.cfg.Listen.String(), "err", err)
			}
		}()
	}
}

func (p *Primary) shutdown() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.servers {
		s.Shutdown()
	}
	for _, cancel := range p.notifyCancel {
		cancel()
	}
}

// Refresh reads the sources whose version changed and sends NOTIFY for
// each zone with a new serial. It also takes a new serial for a zone of
// which an earlier process, still running during a handover, published a
// newer one. Run calls it every CheckInterval.
func (p *Primary) Refresh(ctx context.Context) {
	p.refreshMu.Lock()
	defer p.refreshMu.Unlock()
	var failed error
	for _, z := range p.zones {
		overtaken := false
		if z.isLoaded() {
			var err error
			overtaken, err = p.serials.overtaken(z.name, z.currentSerial())
			failed = cmp.Or(failed, err)
		}
		serial, changed, err := z.refresh(p.now(), p.serials, overtaken)
		failed = cmp.Or(failed, err)
		if !changed {
			continue
		}
		p.stats.serials.Add(1)
		p.log.Info("zone updated", "zone", z.name, "serial", serial, "records", z.recordCount(), "overtaken", overtaken)
		p.notifyAll(ctx, z.name, serial)
	}
	p.logSerialFailure(failed)
}

// logSerialFailure logs the first failure of a run of failures to take a
// serial and the recovery after it. While it fails, changed zones keep
// their serial, so secondaries keep the old records.
func (p *Primary) logSerialFailure(err error) {
	switch {
	case err != nil && !p.serialFailing:
		p.log.Error("failed to take a new serial: changed zones keep their serial until the serial file can be written", "err", err)
	case err == nil && p.serialFailing:
		p.log.Info("serial file written again")
	}
	p.serialFailing = err != nil
}

// keyring is a dns.TsigProvider over several keys, chosen by the name in
// the TSIG record.
type keyring []*Key

func (r keyring) find(t *dns.TSIG) (*Key, error) {
	for _, k := range r {
		if k.matches(t) {
			return k, nil
		}
	}
	return nil, errKeyMismatch
}

// Generate implements dns.TsigProvider.
func (r keyring) Generate(msg []byte, t *dns.TSIG) ([]byte, error) {
	k, err := r.find(t)
	if err != nil {
		return nil, err
	}
	return k.Generate(msg, t)
}

// Verify implements dns.TsigProvider.
func (r keyring) Verify(msg []byte, t *dns.TSIG) error {
	k, err := r.find(t)
	if err != nil {
		return err
	}
	return k.Verify(msg, t)
}
