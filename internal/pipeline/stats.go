package pipeline

import (
	"sync"
	"sync/atomic"

	"bulwark/internal/dnssec"
	"bulwark/internal/policy"
)

// Stats counts the responses of a Pipeline, for metrics. Its counters only
// grow.
type Stats struct {
	// CacheHits counts responses from the answer cache on the fast path;
	// Resolved counts those built by HandleSlow.
	CacheHits, Resolved atomic.Uint64
	// Dropped counts queries that got no response: malformed packets too
	// short to answer, and queries a policy drops.
	Dropped atomic.Uint64
	// Busy counts the SERVFAIL responses sent because every resolution
	// slot was taken.
	Busy atomic.Uint64
	// Stale counts stale responses sent (RFC 8767), from the answer cache
	// or in place of a failed or slow resolution.
	Stale atomic.Uint64
	// NSECAnswers counts responses synthesised from cached, validated NSEC
	// or NSEC3 records (RFC 8198) without asking a server: NXDOMAIN on the
	// fast path, NXDOMAIN or NODATA when resolving.
	NSECAnswers atomic.Uint64
	// Prefetches counts background refreshes started for responses served
	// close to their expiry.
	Prefetches atomic.Uint64
	// Rcodes counts responses by the 4-bit RCODE of their header.
	Rcodes [16]atomic.Uint64
	// Validation counts resolutions by the DNSSEC state of the resolver's
	// result, indexed by dnssec.Security. Answers that a list decided
	// without resolving are not counted.
	Validation [dnssec.Secure + 1]atomic.Uint64

	actions policyActions
}

// Stats returns the counters of p.
func (p *Pipeline) Stats() *Stats { return &p.stats }

// count records a response; resp may be nil for no response.
func (s *Stats) count(resp []byte) {
	if len(resp) < 4 {
		s.Dropped.Add(1)
		return
	}
	s.Rcodes[resp[3]&0x0F].Add(1)
}

// countValidation records one resolution whose result has state sec.
func (s *Stats) countValidation(sec dnssec.Security) {
	if int(sec) < len(s.Validation) {
		s.Validation[sec].Add(1)
	}
}

// PolicyAction is the number of answers that one list gave with one action.
type PolicyAction struct {
	List, Category string
	// Action is the action's config name (policy.Action.String): allow
	// for allowlists and RPZ PASSTHRU, nxdomain, nodata, redirect, drop,
	// tcp-only or local-data.
	Action string
	Count  uint64
}

// PolicyActions returns the answers of each list and action since the
// start, including those served from the answer cache. Lists keep their
// counts across policy reloads, by name and category.
func (s *Stats) PolicyActions() []PolicyAction {
	counters := s.actions.byTag.Load()
	if counters == nil {
		return nil
	}
	out := make([]PolicyAction, 0, len(*counters))
	for _, c := range *counters {
		out = append(out, PolicyAction{
			List: c.key.list, Category: c.key.category, Action: c.key.action.String(), Count: c.n.Load(),
		})
	}
	return out
}

// PolicyOf returns the list, category and action that tag, from HandleFast
// or HandleSlow, stands for. ok is false for tag 0, which no list decided.
func (p *Pipeline) PolicyOf(tag uint32) (list, category, action string, ok bool) {
	counters := p.stats.actions.byTag.Load()
	if tag == 0 || counters == nil || int(tag) > len(*counters) {
		return "", "", "", false
	}
	k := (*counters)[tag-1].key
	return k.list, k.category, k.action.String(), true
}

// policyActions counts answers by list and action. An answer that a list
// decided carries a tag, the index of its counter plus one, in its packed
// form (cache.Packed.SetTag), so that serving it from the cache counts it
// with one atomic add and no lookup.
type policyActions struct {
	mu    sync.Mutex
	index map[actionKey]uint32
	// byTag holds the counters in tag order. It is replaced, never changed
	// in place, when a counter is added, so readers need no lock.
	byTag atomic.Pointer[[]*actionCounter]
}

type actionKey struct {
	list, category string
	action         policy.Action
}

type actionCounter struct {
	key actionKey
	n   atomic.Uint64
}

// tag returns the tag of the answers that d gives, adding a counter for
// its list and action the first time. It returns 0 for a decision without
// a list. It takes a lock, so it belongs on the slow path.
func (a *policyActions) tag(d policy.Decision) uint32 {
	if d.List == nil {
		return 0
	}
	k := actionKey{d.List.Name, d.List.Category, d.Verdict.Action}
	a.mu.Lock()
	defer a.mu.Unlock()
	if t, ok := a.index[k]; ok {
		return t
	}
	var counters []*actionCounter
	if old := a.byTag.Load(); old != nil {
		counters = append(counters, *old...)
	}
	counters = append(counters, &actionCounter{key: k})
	if a.index == nil {
		a.index = map[actionKey]uint32{}
	}
	t := uint32(len(counters))
	a.index[k] = t
	a.byTag.Store(&counters)
	return t
}

// count records one answer with tag; tag 0 (no list decided) is ignored.
// It neither allocates nor locks.
func (a *policyActions) count(tag uint32) {
	if tag == 0 {
		return
	}
	if counters := a.byTag.Load(); counters != nil && int(tag) <= len(*counters) {
		(*counters)[tag-1].n.Add(1)
	}
}
