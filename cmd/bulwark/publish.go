package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"bulwark/internal/config"
	"bulwark/internal/intel/indicator"
	"bulwark/internal/intel/sources"
	"bulwark/internal/metrics"
	"bulwark/internal/xfr"
)

// indicatorCheckInterval is how often published indicator files are
// checked for changes.
const indicatorCheckInterval = time.Second

// publisher serves the published RPZ zones and reloads their indicator
// files.
type publisher struct {
	primary  *xfr.Primary
	watchers []*indicator.CSVWatcher
}

// newPublisher returns the publisher of the zones of p. Zones with a from
// key take their records from generated, by that key.
func newPublisher(p config.Publish, generated map[string]xfr.Source, log *slog.Logger) (*publisher, error) {
	cfg := xfr.PrimaryConfig{
		Listen: p.AddrPort, AllowTransfer: p.TransferPrefixes, Notify: p.NotifyAddrs,
		RequireTSIG: p.RequireTSIG != nil && *p.RequireTSIG,
	}
	if p.TSIG.Name != "" {
		key, err := xfr.NewKey(p.TSIG.Name, config.TSIGAlgorithms[p.TSIG.Algorithm], p.TSIG.Secret)
		if err != nil {
			return nil, err
		}
		cfg.Keys, cfg.NotifyKey = []*xfr.Key{key}, key
	}
	if p.StateFile != "" {
		serials, err := xfr.OpenSerialFile(p.StateFile)
		if err != nil {
			return nil, fmt.Errorf("share.publish.state_file: %w", err)
		}
		cfg.Serials = serials
	}
	pub := &publisher{}
	for _, z := range p.Zones {
		ttl := uint32(z.TTL.D() / time.Second)
		if src := generated[z.From]; z.From != "" && src != nil {
			cfg.Zones = append(cfg.Zones, xfr.PublishedZone{Name: z.Name, Source: src, TTL: ttl})
			continue
		}
		set := indicator.NewSet(z.Name, ttl)
		pub.watchers = append(pub.watchers, indicator.NewCSVWatcher(z.Indicators, set, log.With("component", "publish")))
		cfg.Zones = append(cfg.Zones, xfr.PublishedZone{Name: z.Name, Source: set, TTL: ttl})
	}
	primary, err := xfr.NewPrimary(cfg, log, nil)
	if err != nil {
		return nil, err
	}
	pub.primary = primary
	return pub, nil
}

// run serves on tcp and udp, which the caller opened, until ctx ends.
func (pub *publisher) run(ctx context.Context, tcp net.Listener, udp net.PacketConn) {
	// The files are read before the first serial, so that it is not an
	// empty zone.
	for _, w := range pub.watchers {
		w.Check()
		go w.Run(ctx, indicatorCheckInterval)
	}
	pub.primary.Serve(ctx, tcp, udp)
}

// stats returns the primary's counters for the metrics.
func (pub *publisher) stats() metrics.PrimaryStats {
	return metrics.PrimaryStats{Counters: pub.primary.Stats(), Zones: pub.primary.Zones()}
}

// indicatorSources is the puller of share.sources and the sink that
// records the last batch of each source for the admin API. When the
// candidate store runs, every batch also goes to the store.
type indicatorSources struct {
	*sources.Puller
	*sources.Recorder
}

// sinks passes every batch to each of its sinks in turn.
type sinks []sources.Sink

func (ss sinks) Import(source string, trust int, mode indicator.Mode, items []indicator.Indicator) {
	for _, s := range ss {
		s.Import(source, trust, mode, items)
	}
}

// newIndicatorSources returns the puller of the sources of s. store may be
// nil when the candidate store is off.
func newIndicatorSources(s config.Share, store sources.Sink, log *slog.Logger) (*indicatorSources, error) {
	var srcs []sources.Source
	for _, c := range s.Sources {
		srcs = append(srcs, sources.Source{
			Name: c.Name, Type: c.Type, URL: c.URL, Collection: c.Collection,
			Trust: c.Trust, Mode: indicator.Mode(c.Mode), Interval: c.Interval.D(),
			TokenFile: c.TokenFile, Username: c.Username, PasswordFile: c.PasswordFile,
		})
	}
	rec := sources.NewRecorder(log)
	var sink sources.Sink = rec
	if store != nil {
		sink = sinks{store, rec}
	}
	puller, err := sources.New(srcs, sink, sources.Options{TAXIIState: s.TAXIIStateFile}, log)
	if err != nil {
		return nil, err
	}
	return &indicatorSources{Puller: puller, Recorder: rec}, nil
}
