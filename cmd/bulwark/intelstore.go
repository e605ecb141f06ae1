package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"bulwark/internal/config"
	"bulwark/internal/intel/store"
	"bulwark/internal/policy"
	"bulwark/internal/policyload"
	"bulwark/internal/xfr"
)

// storeExpireInterval is how often expired store entries are removed.
const storeExpireInterval = 10 * time.Second

// newIntelStore opens the candidate store of cfg and makes it the sink of
// the traffic analysis, when that is on.
func (n *node) newIntelStore(cfg *config.Config, log *slog.Logger) error {
	sc := cfg.Intel.Store
	st, err := store.New(store.Config{
		Path: sc.StateFile, MaxEntries: sc.MaxEntries, MaxHistory: sc.MaxHistory,
		SuspiciousScore: sc.SuspiciousScore, AutoBlockScore: sc.AutoBlockScore,
		MinFindings: sc.MinFindings, FeedBlockTrust: sc.FeedBlockTrust, BlockingDetectors: sc.BlockingDetectors,
		Expiry: sc.Expiry.D(), DecisionExpiry: sc.DecisionExpiry.D(), Allowlist: sc.Allowlist,
	}, log, nil)
	if err != nil {
		return err
	}
	n.intelStore = st
	if n.intel != nil {
		n.intel.SetSink(st)
	}
	return nil
}

// runIntelStore guards the store with the popularity history and the
// policy allowlists, and hands its blocks to lists until the node stops.
// A closer added to the node stops it and saves the entries.
func (n *node) runIntelStore(cfg *config.Config, lists *policyload.Manager) {
	var guard store.Guard
	if n.intel != nil {
		guard = n.intel
	}
	n.intelStore.SetGuard(guard, lists)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() {
		n.intelStore.Run(ctx, storeExpireInterval, cfg.Intel.SaveInterval.D())
		done <- struct{}{}
	}()
	go func() {
		feedPolicy(ctx, n.intelStore, lists, cfg.Intel.Store)
		done <- struct{}{}
	}()
	n.closers = append(n.closers, func() error {
		cancel()
		<-done
		<-done
		return nil
	})
}

// feedPolicy installs the store's blocks as one list per policy category
// whenever they change, checking every publish interval.
func feedPolicy(ctx context.Context, st *store.Store, lists *policyload.Manager, cfg config.IntelStore) {
	action, _ := policy.ParseAction(cfg.Action)
	var installed uint64
	t := time.NewTicker(cfg.PublishInterval.D())
	defer t.Stop()
	for {
		if v := st.Version(); v != installed {
			installed = v
			lists.SetMemoryLists(storeLists(st.Blocking(), action), cfg.Flavours)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// storeLists compiles blocks into one list per policy category, named
// intel-CATEGORY.
func storeLists(blocks []store.Block, action policy.Action) []*policy.List {
	rules := map[string][]policyload.MemoryRule{}
	for _, b := range blocks {
		c := store.PolicyCategory(b.Category)
		rules[c] = append(rules[c], policyload.MemoryRule{Name: b.Name, Reason: b.Reason})
	}
	var out []*policy.List
	for _, c := range store.PolicyCategories {
		out = append(out, policyload.NewMemoryList("intel-"+c, c, action, rules[c]))
	}
	return out
}

// zoneSources returns the generated sources that published zones may
// name in their from key: the store, and each NOD window of the traffic
// analysis.
func (n *node) zoneSources(p config.Publish) (map[string]xfr.Source, error) {
	out := map[string]xfr.Source{}
	for _, z := range p.Zones {
		if z.From == "" {
			continue
		}
		isStore, window, err := config.StoreZoneSource(z.From)
		ttl := uint32(z.TTL.D() / time.Second)
		switch {
		case err != nil:
			return nil, err
		case isStore && n.intelStore == nil:
			return nil, fmt.Errorf("share.publish zone %s: from store needs intel.store.enabled", z.Name)
		case isStore:
			out[z.From] = n.intelStore.RPZ(z.Name, ttl)
		case n.intel == nil:
			return nil, fmt.Errorf("share.publish zone %s: from %s needs intel.enabled", z.Name, z.From)
		case !slices.Contains(n.intel.NOD().Windows(), window):
			return nil, fmt.Errorf("share.publish zone %s: %s is not one of intel.nod.windows", z.Name, z.From)
		default:
			out[z.From] = store.NewNODZone(n.intel.NOD(), window, z.Name, ttl, nil)
		}
	}
	return out, nil
}

// reportToStore sends a block page report to the candidate store, which
// moves a blocking entry of the name back to review.
func (n *node) reportToStore(name, comment string) {
	if n.intelStore != nil {
		n.intelStore.ReportMistake(name, comment)
	}
}
