package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// IntelStore sets the candidate store, which turns findings and feed
// indicators into reviewed entries and blocks. See docs/intel.md.
type IntelStore struct {
	// Enabled turns the store on; it needs intel.enabled for findings.
	// Default: false.
	Enabled bool `yaml:"enabled"`
	// StateFile keeps the entries across restarts; relative to the
	// config file's directory. Default "": kept in memory only.
	StateFile string `yaml:"state_file"`
	// MaxEntries bounds the entries; observed ones seen longest ago are
	// dropped first. Default: 100000.
	MaxEntries int `yaml:"max_entries"`
	// MaxHistory bounds the events kept per entry. Default: 50.
	MaxHistory int `yaml:"max_history"`
	// SuspiciousScore is the entry score, 0 to 1, from which an entry is
	// suspicious. Default: 0.6.
	SuspiciousScore float64 `yaml:"suspicious_score"`
	// AutoBlockScore is the entry score from which an entry blocks
	// without review, unless its domain is steadily popular or
	// allowlisted. Default: 0.95.
	AutoBlockScore float64 `yaml:"auto_block_score"`
	// MinFindings is the malicious findings of BlockingDetectors or feed
	// reports an entry needs before it blocks without review. Default: 2.
	MinFindings int `yaml:"min_findings"`
	// BlockingDetectors names the detectors whose findings may block
	// without review. Default: dga and tunnel.
	BlockingDetectors []string `yaml:"blocking_detectors"`
	// FeedBlockTrust is the trust, 1 to 100, from which one report of an
	// enforce-mode source blocks without review, after the source's
	// false positives lower its trust. Default: 80.
	FeedBlockTrust int `yaml:"feed_block_trust"`
	// Expiry is how long an entry lives after its last evidence. Unit:
	// duration. Default: 168h.
	Expiry Duration `yaml:"expiry"`
	// DecisionExpiry is how long a confirmed or rejected entry lives
	// after the decision or its last evidence. Unit: duration. Default:
	// 2160h (90 days).
	DecisionExpiry Duration `yaml:"decision_expiry"`
	// Allowlist lists domains never blocked without review, with the
	// names below them. Default: none.
	Allowlist []string `yaml:"allowlist"`
	// Flavours are the flavours that apply the store's blocks, each to
	// the entries of the categories it blocks (botnet, malware,
	// phishing). Default: the four protective flavours.
	Flavours []string `yaml:"flavours"`
	// Action is the action of the blocks: nxdomain, nodata or redirect.
	// Default: redirect, which answers NXDOMAIN without a block page.
	Action string `yaml:"action"`
	// PublishInterval is how often changed blocks are handed to the
	// policy. Unit: duration, 100ms to 4s. Default: 1s.
	PublishInterval Duration `yaml:"publish_interval"`
}

// storeDetectors are the detectors of the traffic analysis, by the names
// of their findings.
var storeDetectors = []string{"nod", "dga", "tunnel", "nxdomain", "unique", "flux", "spike"}

func defaultIntelStore() IntelStore {
	return IntelStore{
		MaxEntries: 100_000, MaxHistory: 50, SuspiciousScore: 0.6, AutoBlockScore: 0.95,
		MinFindings: 2, FeedBlockTrust: 80, BlockingDetectors: []string{"dga", "tunnel"},
		Expiry: Duration(7 * 24 * time.Hour), DecisionExpiry: Duration(90 * 24 * time.Hour),
		Flavours:        []string{"protective", "protective-ads", "protective-child", "protective-child-ads"},
		Action:          "redirect",
		PublishInterval: Duration(time.Second),
	}
}

// intelStoreActions are the actions a store block may take.
var intelStoreActions = []string{"nxdomain", "nodata", "redirect"}

func (v *validator) intelStore(in *Intel) error {
	st := &in.Store
	if err := v.intelStoreNumbers(st); err != nil {
		return err
	}
	if !slices.Contains(intelStoreActions, st.Action) {
		return v.errorf("intel.store.action", "unknown action %q: use %s", st.Action, strings.Join(intelStoreActions, ", "))
	}
	for i, name := range st.Allowlist {
		n := dns.CanonicalName(strings.TrimSpace(name))
		if _, ok := dns.IsDomainName(n); !ok || n == "." {
			return v.errorf("intel.store.allowlist", "invalid domain %q (entry %d): give a name such as example.com", name, i)
		}
		st.Allowlist[i] = n
	}
	if err := v.intelStoreFlavours(st); err != nil {
		return err
	}
	return v.stateFile("intel.store.state_file", &st.StateFile)
}

func (v *validator) intelStoreNumbers(st *IntelStore) error {
	if err := v.intRange("intel.store.max_entries", st.MaxEntries, 1, maxIntelTable, "entries"); err != nil {
		return err
	}
	if err := v.intRange("intel.store.max_history", st.MaxHistory, 2, 10_000, "events"); err != nil {
		return err
	}
	if err := v.intRange("intel.store.min_findings", st.MinFindings, 1, 1000, "findings"); err != nil {
		return err
	}
	for _, d := range st.BlockingDetectors {
		if !slices.Contains(storeDetectors, d) {
			return v.errorf("intel.store.blocking_detectors", "unknown detector %q: use some of %s", d, strings.Join(storeDetectors, ", "))
		}
	}
	if err := v.intRange("intel.store.feed_block_trust", st.FeedBlockTrust, 1, 100, "(trust level)"); err != nil {
		return err
	}
	for key, score := range map[string]float64{"intel.store.suspicious_score": st.SuspiciousScore, "intel.store.auto_block_score": st.AutoBlockScore} {
		if !(score > 0 && score <= 1) {
			return v.errorf(key, "invalid score %g: use above 0 and at most 1, such as 0.95", score)
		}
	}
	if st.SuspiciousScore > st.AutoBlockScore {
		return v.errorf("intel.store.suspicious_score", "suspicious score %g is above the auto-block score %g: lower it", st.SuspiciousScore, st.AutoBlockScore)
	}
	if st.Expiry.D() < time.Minute || st.DecisionExpiry.D() < time.Minute {
		return v.errorf("intel.store.expiry", "invalid expiry %s or decision_expiry %s: use at least 1m", st.Expiry.D(), st.DecisionExpiry.D())
	}
	if p := st.PublishInterval.D(); p < 100*time.Millisecond || p > 4*time.Second {
		return v.errorf("intel.store.publish_interval", "invalid interval %s: use 100ms to 4s, so that blocks apply within 5 seconds", p)
	}
	return nil
}

// intelStoreFlavours checks that every flavour named exists, built in or
// configured.
func (v *validator) intelStoreFlavours(st *IntelStore) error {
	known := []string{"unfiltered", "protective", "protective-ads", "protective-child", "protective-child-ads"}
	for _, f := range v.cfg.Policy.Flavours {
		known = append(known, f.Name)
	}
	for _, name := range st.Flavours {
		if !slices.Contains(known, name) {
			return v.errorf("intel.store.flavours", "unknown flavour %q: use one of %s", name, strings.Join(known, ", "))
		}
	}
	return nil
}

// StoreZoneSource returns what a published zone's from key names: "store"
// for the store's blocks, or the NOD window for "nod:WINDOW".
func StoreZoneSource(from string) (store bool, nodWindow time.Duration, err error) {
	if from == "store" {
		return true, 0, nil
	}
	if w, ok := strings.CutPrefix(from, "nod:"); ok {
		d, err := time.ParseDuration(w)
		if err == nil && d > 0 {
			return false, d, nil
		}
	}
	return false, 0, fmt.Errorf("unknown source %q: use store or nod:WINDOW, such as nod:10m", from)
}
