package policyload

import (
	"slices"
	"time"

	"bulwark/internal/policy"
)

// MemoryRule is one name of a list fed from memory: the name and every
// name below it get the list's action, with Reason in the block answer's
// EDE text and on the block page.
type MemoryRule struct {
	// Name is canonical: lower case and fully qualified.
	Name   string
	Reason string
}

// NewMemoryList compiles rules into a list named name of category, whose
// rules give action. Each rule has a verdict of its own, to carry its
// reason.
func NewMemoryList(name, category string, action policy.Action, rules []MemoryRule) *policy.List {
	l := &policy.List{Name: name, Category: category, Verdicts: make([]policy.Verdict, 1, len(rules)+1)}
	l.Verdicts[0] = policy.Verdict{Action: action}
	b := policy.NewBuilder()
	for _, r := range rules {
		if len(l.Verdicts) > policy.MaxVerdict {
			break
		}
		l.Verdicts = append(l.Verdicts, policy.Verdict{Action: action, Reason: r.Reason})
		b.Add(policy.Rule{Name: r.Name, Match: policy.Exact | policy.Below, Verdict: uint32(len(l.Verdicts) - 1)})
	}
	l.Set = b.Build()
	l.Loaded, l.Rules = time.Now(), len(l.Verdicts)-1
	return l
}

// memoryLists are the lists fed from memory and the flavours that may
// apply them.
type memoryLists struct {
	lists    []*policy.List
	flavours []string
}

// of returns the lists that the flavour name, which blocks categories,
// applies: those of its categories, when it is one of the flavours.
func (m memoryLists) of(name string, categories []string) []*policy.List {
	if !slices.Contains(m.flavours, name) {
		return nil
	}
	var out []*policy.List
	for _, l := range m.lists {
		if slices.Contains(categories, l.Category) {
			out = append(out, l)
		}
	}
	return out
}

// SetMemoryLists replaces the lists fed from memory and installs a new
// policy version at once. Each list applies in those of flavours whose
// categories include its own; tenants' flavours inherit them from the
// flavour they build on. Unlike a reload of files, it does not return
// memory to the system, so that frequent small changes stay cheap.
func (m *Manager) SetMemoryLists(lists []*policy.List, flavours []string) {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	m.mu.Lock()
	m.memory = memoryLists{lists: lists, flavours: flavours}
	m.generation++
	m.snapshot = newSnapshot(m.cfg, m.generation, m.lists, m.memory)
	snapshot := m.snapshot
	m.mu.Unlock()
	m.target.SetPolicy(snapshot, blockConfig(m.cfg))
}

// Allowlisted reports whether a configured allowlist, a list whose
// action is allow, lets name through.
func (m *Manager) Allowlisted(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, l := range m.lists {
		if len(l.Verdicts) == 0 || l.Verdicts[0].Action != policy.Allow || l.Set == nil {
			continue
		}
		if _, _, ok := l.Set.MatchName(name); ok {
			return true
		}
	}
	return false
}
