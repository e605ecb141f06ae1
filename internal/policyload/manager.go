package policyload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"bulwark/internal/config"
	"bulwark/internal/pipeline"
	"bulwark/internal/policy"
	"bulwark/internal/proceed"
	"bulwark/internal/xfr"
)

// Target receives each new policy version.
type Target interface {
	SetPolicy(s *policy.Snapshot, b pipeline.BlockConfig)
}

// ListState is the state of one list, for operators.
type ListState struct {
	Name     string `json:"name"`
	File     string `json:"file"`
	Format   string `json:"format"`
	Category string `json:"category"`
	Rules    int    `json:"rules"`
	Lines    int    `json:"lines"`
	Bad      int    `json:"malformed_lines"`
	// Duplicates and Conflicts count rules dropped because another rule
	// had the same trigger, with the same or a different action.
	Duplicates int       `json:"duplicates"`
	Conflicts  int       `json:"conflicts"`
	Loaded     time.Time `json:"loaded"`
	Modified   time.Time `json:"file_modified"`
	// Error is the last failure to read the file or, for a transferred
	// list, to refresh the zone. The list then keeps the version loaded
	// before.
	Error string `json:"error,omitempty"`
	// Transfer is the zone transfer state of a transferred list.
	Transfer *xfr.State `json:"transfer,omitempty"`

	// file is the file as loaded, to tell a replaced file from the same
	// one: a file written twice within the file system's timestamp
	// granularity keeps its modification time.
	file os.FileInfo
}

// Manager owns the lists: it loads them, reloads those whose file changed,
// and installs each new policy version in its target. It is safe for
// concurrent use.
type Manager struct {
	cfg    *config.Config
	target Target
	log    *slog.Logger

	// reloadMu serializes loads. mu guards the fields below it and is
	// held only briefly, never while a list is read.
	reloadMu   sync.Mutex
	mu         sync.Mutex
	generation uint32
	lists      map[string]*policy.List
	state      map[string]*ListState
	snapshot   *policy.Snapshot
	// proceed holds the proceed anyway settings by flavour name. It does
	// not change after NewManager, since they come from the config.
	proceed map[string]proceed.Rule

	// secondaries keep the zone copies of transferred lists, by list
	// name, and notify responds to their NOTIFY messages. NewManager sets
	// both once.
	secondaries map[string]*xfr.Secondary
	notify      *xfr.NotifyHandler
	// downloads is set by Download, for Reconfigure to restart them.
	downloads *downloads
	// memory holds the lists fed from memory; guarded by mu.
	memory memoryLists
}

// NewManager loads every list of cfg and installs the first version in
// target. A list that cannot be read at start is an error.
func NewManager(cfg *config.Config, target Target, log *slog.Logger) (*Manager, error) {
	m := &Manager{
		cfg: cfg, target: target, log: log.With("component", "policy"),
		lists: map[string]*policy.List{}, state: map[string]*ListState{},
		proceed:     ProceedRules(cfg),
		secondaries: map[string]*xfr.Secondary{},
	}
	for _, l := range cfg.Policy.Lists {
		if err := m.loadOne(l); err != nil {
			if !l.Remote() {
				return nil, err
			}
			// A list to download or transfer has no copy before its
			// first download or transfer: it starts empty, and the
			// download or transfer loads it.
			m.lists[l.Name] = emptyList(l)
		}
	}
	if err := m.newSecondaries(); err != nil {
		return nil, err
	}
	m.install()
	return m, nil
}

func emptyList(l config.PolicyList) *policy.List {
	action, _ := policy.ParseAction(l.Action)
	return &policy.List{Name: l.Name, Category: l.Category, Verdicts: []policy.Verdict{{Action: action}}, Set: policy.Compile(nil)}
}

// Download runs the downloads of every list with a URL until ctx ends;
// each new copy is loaded at once. client may be nil for a default one
// with a 2-minute timeout.
func (m *Manager) Download(ctx context.Context, client *http.Client) {
	if client == nil {
		client = &http.Client{Timeout: 2 * time.Minute}
	}
	run, cancel := context.WithCancel(ctx)
	m.mu.Lock()
	m.downloads = &downloads{ctx: ctx, client: client, cancel: cancel}
	lists := m.cfg.Policy.Lists
	m.mu.Unlock()
	ctx = run
	for _, l := range lists {
		if l.URL == "" {
			continue
		}
		f := &fetcher{list: l, client: client, log: m.log}
		go f.run(ctx, func() { m.Reload(false) })
	}
}

// loadOne reads list l and records its state. On failure the list keeps
// its previous version. The caller holds reloadMu but not mu: the list is
// read and compiled without mu, so that Check, Lists and the block page
// are not held up by a long load.
func (m *Manager) loadOne(l config.PolicyList) error {
	info, statErr := os.Stat(l.File)
	compiled, report, err := loadList(l, m.log)
	if err == nil && statErr != nil {
		err = statErr
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.state[l.Name]
	if st == nil {
		st = &ListState{Name: l.Name, File: l.File, Format: l.Format, Category: l.Category}
		m.state[l.Name] = st
	}
	if err == nil && m.lists[l.Name] != nil && m.lists[l.Name].Rules > 0 {
		// A list that had rules and now has none, or mostly malformed
		// lines, is more likely a truncated or broken file than a real
		// change: failing open would unblock the whole list.
		switch {
		case report.Rules == 0:
			err = fmt.Errorf("policy list %s: %s now contains no rule", l.Name, l.File)
		case report.Bad*2 > report.Entries:
			err = fmt.Errorf("policy list %s: %d of %d lines of %s are malformed", l.Name, report.Bad, report.Entries, l.File)
		}
	}
	if err != nil {
		st.Error = err.Error()
		if m.lists[l.Name] != nil {
			m.log.Error("cannot load list; keeping the previous version", "list", l.Name, "file", l.File, "error", err)
		} else {
			m.log.Error("cannot load list", "list", l.Name, "file", l.File, "error", err)
		}
		return err
	}
	m.lists[l.Name] = compiled
	st.Rules, st.Lines, st.Bad = report.Rules, report.Lines, report.Bad
	st.Duplicates, st.Conflicts = report.Duplicates, report.Conflicts
	st.Loaded, st.Modified, st.Error, st.file = compiled.Loaded, info.ModTime(), "", info
	return nil
}

// install builds the flavours from the current lists and hands the new
// version to the target. The caller holds reloadMu but not mu.
func (m *Manager) install() {
	m.mu.Lock()
	m.generation++
	m.snapshot = newSnapshot(m.cfg, m.generation, m.lists, m.memory)
	snapshot := m.snapshot
	m.mu.Unlock()
	m.target.SetPolicy(snapshot, blockConfig(m.cfg))
	// Return the memory of the replaced version and of parsing at once: a
	// list of millions of names would otherwise leave its garbage resident
	// until the runtime's background scavenger returns it.
	debug.FreeOSMemory()
}

// Reload reads again every list whose file changed since it was loaded,
// or every list when all is set, and installs a new version when any was
// read. Lists that fail keep their previous version; the error joins
// their failures.
func (m *Manager) Reload(all bool) error {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	var errs []error
	changed := false
	for _, l := range m.cfg.Policy.Lists {
		if !all && m.unchanged(l) {
			continue
		}
		if err := m.loadOne(l); err != nil {
			errs = append(errs, err)
			continue
		}
		changed = true
	}
	if changed {
		m.install()
		m.log.Info("policy reloaded", "generation", m.snapshotGeneration())
	}
	return errors.Join(errs...)
}

// unchanged reports whether the file of list l is the one its loaded
// version, which loaded without error, came from: the same inode,
// modification time and size. A file replaced by a rename, as downloads
// and zone transfers write them, is a new inode.
func (m *Manager) unchanged(l config.PolicyList) bool {
	info, err := os.Stat(l.File)
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.state[l.Name]
	return err == nil && st != nil && st.Error == "" && st.file != nil &&
		os.SameFile(info, st.file) && info.ModTime().Equal(st.Modified) && info.Size() == st.file.Size()
}

func (m *Manager) snapshotGeneration() uint32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.generation
}

// Watch checks the list files every interval and reloads those that
// changed, until ctx ends.
func (m *Manager) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.Reload(false)
		}
	}
}

// Lists returns the state of every list, in config order.
func (m *Manager) Lists() []ListState {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []ListState
	for _, l := range m.cfg.Policy.Lists {
		if st := m.state[l.Name]; st != nil {
			out = append(out, m.withTransfer(*st))
		}
	}
	return out
}

// Check reports what flavour does with name, a fully qualified name: ok is
// false for an unknown flavour.
func (m *Manager) Check(flavour, name string) (d policy.Decision, matched, ok bool) {
	m.mu.Lock()
	s := m.snapshot
	m.mu.Unlock()
	id, ok := s.ID(flavour)
	if !ok {
		return policy.Decision{}, false, false
	}
	d, matched = s.Flavour(id).CheckName(name)
	return d, matched, true
}

// CheckClient reports what the flavour of a client at addr does with name:
// the flavour of its subnet or tenant, else protective. The block page
// uses it, since it does not know the listener the client queried.
func (m *Manager) CheckClient(addr netip.Addr, name string) (policy.Decision, bool) {
	return m.clientFlavour(addr).CheckName(name)
}

// ProceedRule returns the proceed anyway setting of the flavour that
// CheckClient applies to a client at addr.
func (m *Manager) ProceedRule(addr netip.Addr) proceed.Rule {
	f := m.clientFlavour(addr)
	if f == nil {
		return proceed.Rule{}
	}
	return m.proceed[f.Name]
}

func (m *Manager) clientFlavour(addr netip.Addr) *policy.Flavour {
	m.mu.Lock()
	s := m.snapshot
	m.mu.Unlock()
	def, _ := s.ID("protective")
	return s.Flavour(s.ClientFlavour(addr, def))
}

// Flavours returns every flavour of the current policy version, in id
// order, tenants' flavours included.
func (m *Manager) Flavours() []*policy.Flavour {
	m.mu.Lock()
	s := m.snapshot
	m.mu.Unlock()
	var out []*policy.Flavour
	for id := 0; id <= 255; id++ {
		f := s.Flavour(uint8(id))
		if f == nil {
			break
		}
		out = append(out, f)
	}
	return out
}
