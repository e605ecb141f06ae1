package policyload

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"reflect"
	"slices"

	"bulwark/internal/config"
	"bulwark/internal/policy"
)

// ErrRestartNeeded means a new policy section changes something that only a
// restart applies; nothing of it was applied.
var ErrRestartNeeded = errors.New("restart needed")

// downloads is the state of the running list downloads, so that a new
// config can restart them.
type downloads struct {
	ctx    context.Context
	client *http.Client
	cancel context.CancelFunc
}

// Reconfigure applies the policy section of cfg in place of the current
// one: lists added, removed or changed, the categories and lists of each
// flavour, client subnets, and the data blocked answers carry. Unchanged
// lists keep their loaded version; new and changed ones are read now, and
// downloads restart when a downloaded list changed. Queries are answered by
// the old version until the new one is installed.
//
// A change that the running node cannot take is rejected whole with
// ErrRestartNeeded: flavours or tenants added or removed (listeners hold
// flavour ids), transferred lists added, removed or changed, proceed anyway
// settings, and the block page's listener or review file. A list that
// cannot be read is rejected too, and the current version stays.
func (m *Manager) Reconfigure(cfg *config.Config) error {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	if err := m.restartNeeded(cfg); err != nil {
		return err
	}
	old := map[string]config.PolicyList{}
	for _, l := range m.cfg.Policy.Lists {
		old[l.Name] = l
	}
	read := map[string]*ListState{}
	loaded := map[string]*policy.List{}
	downloadsChanged := false
	for _, l := range cfg.Policy.Lists {
		prev, ok := old[l.Name]
		if ok && reflect.DeepEqual(prev, l) {
			continue
		}
		if l.URL != "" || prev.URL != "" {
			downloadsChanged = true
		}
		list, st, err := m.readList(l)
		if err != nil {
			return err
		}
		loaded[l.Name], read[l.Name] = list, st
	}
	for name, l := range old {
		if l.URL != "" && !slices.ContainsFunc(cfg.Policy.Lists, func(n config.PolicyList) bool { return n.Name == name }) {
			downloadsChanged = true
		}
	}

	m.mu.Lock()
	lists := map[string]*policy.List{}
	state := map[string]*ListState{}
	for _, l := range cfg.Policy.Lists {
		if list, ok := loaded[l.Name]; ok {
			lists[l.Name], state[l.Name] = list, read[l.Name]
			continue
		}
		lists[l.Name], state[l.Name] = m.lists[l.Name], m.state[l.Name]
	}
	m.lists, m.state, m.cfg = lists, state, cfg
	m.mu.Unlock()
	m.install()
	m.log.Info("policy reconfigured", "generation", m.snapshotGeneration(),
		"lists_read", len(loaded), "lists", len(cfg.Policy.Lists))
	if downloadsChanged {
		m.restartDownloads()
	}
	return nil
}

// readList loads list l for a new config and returns it with its state. A
// list to download that has no copy yet starts empty, as at start.
func (m *Manager) readList(l config.PolicyList) (*policy.List, *ListState, error) {
	st := &ListState{Name: l.Name, File: l.File, Format: l.Format, Category: l.Category}
	info, statErr := os.Stat(l.File)
	list, report, err := loadList(l, m.log)
	if err == nil && statErr != nil {
		err = statErr
	}
	if err != nil {
		if l.Remote() {
			st.Error = err.Error()
			return emptyList(l), st, nil
		}
		return nil, nil, fmt.Errorf("policy list %s: %w", l.Name, err)
	}
	st.Rules, st.Lines, st.Bad = report.Rules, report.Lines, report.Bad
	st.Duplicates, st.Conflicts = report.Duplicates, report.Conflicts
	st.Loaded, st.Modified, st.file = list.Loaded, info.ModTime(), info
	return list, st, nil
}

// restartNeeded returns an error naming what in cfg's policy section only a
// restart applies.
func (m *Manager) restartNeeded(cfg *config.Config) error {
	var changed []string
	if !slices.Equal(flavourNames(m.cfg), flavourNames(cfg)) {
		changed = append(changed, "the set of flavours or tenants")
	}
	if !reflect.DeepEqual(transferred(m.cfg), transferred(cfg)) {
		changed = append(changed, "transferred lists")
	}
	if !reflect.DeepEqual(ProceedRules(m.cfg), ProceedRules(cfg)) {
		changed = append(changed, "proceed anyway settings")
	}
	ob, nb := m.cfg.Policy.BlockPage, cfg.Policy.BlockPage
	if ob.Listen != nb.Listen || ob.ReviewFile != nb.ReviewFile {
		changed = append(changed, "policy.block_page.listen or review_file")
	}
	if len(changed) > 0 {
		return fmt.Errorf("%w to change %v: the current policy stays", ErrRestartNeeded, changed)
	}
	return nil
}

// flavourNames returns the sorted names of the flavours cfg defines, built-in
// ones and tenants' included.
func flavourNames(cfg *config.Config) []string {
	set := map[string]bool{}
	for name := range policy.Builtin {
		set[name] = true
	}
	for _, f := range cfg.Policy.Flavours {
		set[f.Name] = true
	}
	for _, tn := range cfg.Policy.Tenants {
		set[TenantFlavour(tn.Name)] = true
	}
	return slices.Sorted(maps.Keys(set))
}

// transferred returns the transferred lists of cfg by name.
func transferred(cfg *config.Config) map[string]config.PolicyList {
	out := map[string]config.PolicyList{}
	for _, l := range cfg.Policy.Lists {
		if l.Transferred() {
			out[l.Name] = l
		}
	}
	return out
}

// restartDownloads stops the downloads of the old config and starts those
// of the current one.
func (m *Manager) restartDownloads() {
	m.mu.Lock()
	d := m.downloads
	m.mu.Unlock()
	if d == nil {
		return // Download has not run yet; it will use the current config
	}
	d.cancel()
	m.Download(d.ctx, d.client)
}
