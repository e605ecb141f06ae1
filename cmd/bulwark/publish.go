package main

import (
	"context"
	"log/slog"
	"time"

	"bulwark/internal/config"
	"bulwark/internal/intel/indicator"
	"bulwark/internal/xfr"
)

// indicatorCheckInterval is how often published indicator files are
// checked for changes.
const indicatorCheckInterval = time.Second

// newPublisher returns the function that serves the published RPZ zones
// of p and reloads their indicator files until its context ends. Zones
// with a from key take their records from generated, by that key.
func newPublisher(p config.Publish, generated map[string]xfr.Source, log *slog.Logger) (func(ctx context.Context), error) {
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
	var watchers []*indicator.CSVWatcher
	for _, z := range p.Zones {
		ttl := uint32(z.TTL.D() / time.Second)
		if src := generated[z.From]; z.From != "" && src != nil {
			cfg.Zones = append(cfg.Zones, xfr.PublishedZone{Name: z.Name, Source: src, TTL: ttl})
			continue
		}
		set := indicator.NewSet(z.Name, ttl)
		watchers = append(watchers, indicator.NewCSVWatcher(z.Indicators, set, log.With("component", "publish")))
		cfg.Zones = append(cfg.Zones, xfr.PublishedZone{Name: z.Name, Source: set, TTL: ttl})
	}
	primary, err := xfr.NewPrimary(cfg, log, nil)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) {
		// The files are read before the first serial, so that it is not
		// an empty zone.
		for _, w := range watchers {
			w.Check()
			go w.Run(ctx, indicatorCheckInterval)
		}
		if err := primary.Run(ctx); err != nil {
			log.Error("RPZ primary not started", "err", err)
		}
	}, nil
}
