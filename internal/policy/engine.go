package policy

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Action is the response a matching rule gives a query.
type Action uint8

const (
	// Allow lets the query through: allowlists and RPZ PASSTHRU.
	Allow Action = iota + 1
	// NXDomain answers that the name does not exist.
	NXDomain
	// NoData answers that the name has no records of the type asked.
	NoData
	// Redirect answers with the block page's addresses.
	Redirect
	// Drop sends no response.
	Drop
	// TCPOnly answers UDP queries with TC set, so that clients retry over
	// TCP (RPZ rpz-tcp-only).
	TCPOnly
	// LocalData answers with the rule's own records (RPZ local data).
	LocalData
)

var actionNames = map[Action]string{
	Allow: "allow", NXDomain: "nxdomain", NoData: "nodata", Redirect: "redirect",
	Drop: "drop", TCPOnly: "tcp-only", LocalData: "local-data",
}

func (a Action) String() string { return actionNames[a] }

// ParseAction returns the action named s, as written in configs.
func ParseAction(s string) (Action, bool) {
	for a, name := range actionNames {
		if name == s {
			return a, true
		}
	}
	return 0, false
}

// Categories of lists. Lawful lists hold names blocked by law, such as
// court orders; the others are threats or content that clients choose to
// filter.
const (
	CategoryMalware  = "malware"
	CategoryPhishing = "phishing"
	CategoryBotnet   = "botnet"
	CategoryAdult    = "adult"
	CategoryAds      = "ads"
	CategoryTracking = "tracking"
	CategoryLawful   = "lawful"
)

// Categories lists every category.
var Categories = []string{
	CategoryMalware, CategoryPhishing, CategoryBotnet, CategoryAdult,
	CategoryAds, CategoryTracking, CategoryLawful,
}

// Verdict is the action of one rule, with its records for LocalData.
type Verdict struct {
	Action Action
	Data   []dns.RR
	// Reason says why the rule blocks, for lists that explain each rule,
	// such as the intel store's; block answers and the block page show
	// it. Empty for other lists.
	Reason string
}

// List is one compiled list with its verdicts and origin.
type List struct {
	Name     string
	Category string
	// Verdicts is indexed by the verdicts of the rules in Set; verdict 0
	// is the list's own action.
	Verdicts []Verdict
	// Set holds the QNAME and response-IP triggers.
	Set *Set
	// Clients holds the client-IP triggers and Servers the NSDNAME (names)
	// and NSIP (addresses) triggers, or are nil when the list has none.
	Clients, Servers *Set
	// Exceptions contains names the list itself does not block, despite
	// its other rules (AdGuard @@ rules), or is nil. Unlike an
	// RPZ PASSTHRU, an exception does not stop the other lists. An
	// exception whose verdict is ImportantException also overrides the
	// rules in Important.
	Exceptions *Set
	// Important holds the blocking rules that ordinary exceptions do not
	// override (AdGuard $important), which are in Set as well, or is nil.
	Important *Set
	// Loaded is when the list was compiled; Rules counts its rules.
	Loaded time.Time
	Rules  int
}

// Flavour is a named policy: the lists it applies, allowlists first.
type Flavour struct {
	Name string
	// NoValidation serves answers without DNSSEC validation: bogus data
	// is returned as to a client that sets CD, and AD is never set.
	NoValidation bool
	lists        []*List
	// clientRules is set when a list has client-IP triggers.
	clientRules bool
}

// NewFlavour returns a flavour that applies lists: lawful lists first,
// which no allowlist overrides, then every list whose verdict 0 is Allow,
// then the others, each group in order. The first list that matches
// decides (the order of RPZ zones), and an allow match stops the search.
func NewFlavour(name string, lists []*List) *Flavour {
	f := &Flavour{Name: name}
	groups := []func(*List) bool{
		func(l *List) bool { return l.Category == CategoryLawful && !l.isAllowlist() },
		func(l *List) bool { return l.isAllowlist() },
		func(l *List) bool { return l.Category != CategoryLawful && !l.isAllowlist() },
	}
	for _, in := range groups {
		for _, l := range lists {
			if in(l) {
				f.lists = append(f.lists, l)
				f.clientRules = f.clientRules || l.Clients != nil
			}
		}
	}
	return f
}

func (l *List) isAllowlist() bool {
	return len(l.Verdicts) > 0 && l.Verdicts[0].Action == Allow
}

// Lists returns the flavour's lists in the order they are checked.
func (f *Flavour) Lists() []*List { return slices.Clone(f.lists) }

// Empty reports whether the flavour applies no list, so that queries can
// skip the checks.
func (f *Flavour) Empty() bool { return f == nil || len(f.lists) == 0 }

// Plain reports whether answers under the flavour are those of a client
// without any policy: no lists and validation on.
func (f *Flavour) Plain() bool { return f.Empty() && (f == nil || !f.NoValidation) }

// Decision is the outcome of a check that matched.
type Decision struct {
	List    *List
	Verdict Verdict
	// Trigger is the name or address that matched.
	Trigger string
	// Kind is the type of the trigger that matched.
	Kind Kind
}

// Blocked reports whether the decision blocks the query.
func (d Decision) Blocked() bool { return d.List != nil && d.Verdict.Action != Allow }

// CheckName checks name against the flavour's lists. ok is false when no
// list matches.
func (f *Flavour) CheckName(name string) (d Decision, ok bool) {
	if f.Empty() {
		return Decision{}, false
	}
	for _, l := range f.lists {
		if d, ok := l.checkName(name); ok {
			return d, true
		}
	}
	return Decision{}, false
}

// ImportantException is the verdict of an exception with the AdGuard
// $important modifier in List.Exceptions; other exceptions have verdict 0.
const ImportantException = 1

// checkName checks name against the QNAME triggers of l.
func (l *List) checkName(name string) (Decision, bool) {
	v, matched, hit := l.Set.MatchName(name)
	if !hit {
		return Decision{}, false
	}
	verdict := l.verdict(v)
	if verdict.Action != Allow && l.Exceptions != nil {
		if e, _, excepted := l.Exceptions.MatchName(name); excepted {
			// The list's own exception: the next lists decide, unless an
			// important rule blocks the name and the exception is not
			// important itself.
			if e == ImportantException || l.Important == nil {
				return Decision{}, false
			}
			if v, matched, hit = l.Important.MatchName(name); !hit {
				return Decision{}, false
			}
			verdict = l.verdict(v)
		}
	}
	trigger := matched
	if !strings.EqualFold(matched, name) {
		trigger = "*." + matched // a rule for the names below matched
	}
	return Decision{List: l, Verdict: verdict, Trigger: trigger, Kind: KindQName}, true
}

// CheckAddr checks an answer address against the flavour's lists.
func (f *Flavour) CheckAddr(addr netip.Addr) (d Decision, ok bool) {
	if f.Empty() {
		return Decision{}, false
	}
	for _, l := range f.lists {
		if v, matched, hit := l.Set.MatchAddr(addr); hit {
			return Decision{List: l, Verdict: l.verdict(v), Trigger: matched.String(), Kind: KindResponseIP}, true
		}
	}
	return Decision{}, false
}

func (l *List) verdict(i uint32) Verdict {
	if int(i) < len(l.Verdicts) {
		return l.Verdicts[i]
	}
	return l.Verdicts[0]
}

// Builtin flavours and the categories they block. Lawful lists apply to
// every flavour, unfiltered included, since the law binds the operator
// whatever the client chose.
var Builtin = map[string][]string{
	"unfiltered":           {CategoryLawful},
	"protective":           {CategoryLawful, CategoryMalware, CategoryPhishing, CategoryBotnet},
	"protective-child":     {CategoryLawful, CategoryMalware, CategoryPhishing, CategoryBotnet, CategoryAdult},
	"protective-ads":       {CategoryLawful, CategoryMalware, CategoryPhishing, CategoryBotnet, CategoryAds, CategoryTracking},
	"protective-child-ads": {CategoryLawful, CategoryMalware, CategoryPhishing, CategoryBotnet, CategoryAdult, CategoryAds, CategoryTracking},
}

// Snapshot is one immutable version of every flavour. A new version is
// built off the query path and swapped in whole.
type Snapshot struct {
	// Generation increases with every new snapshot; caches of answers
	// made under a policy key on it.
	Generation uint32
	flavours   []*Flavour
	index      map[string]uint8
	// clients maps client prefixes to flavour ids; nil when none.
	clients *Set
}

// ClientRule gives the clients in Prefix the flavour named Flavour.
type ClientRule struct {
	Prefix  netip.Prefix
	Flavour string
}

// SetClients makes the clients of each rule get its flavour, whatever the
// listener; the most specific prefix wins. Rules that name unknown
// flavours are ignored. It must be called before the snapshot is used.
func (s *Snapshot) SetClients(rules []ClientRule) {
	if len(rules) == 0 {
		return
	}
	b := NewBuilder()
	for _, r := range rules {
		if id, ok := s.index[r.Flavour]; ok {
			b.Add(Rule{Prefix: r.Prefix, Verdict: uint32(id)})
		}
	}
	s.clients = b.Build()
}

// ClientFlavour returns the flavour id for a client at addr on a listener
// whose flavour is listener.
func (s *Snapshot) ClientFlavour(addr netip.Addr, listener uint8) uint8 {
	if s == nil || s.clients == nil {
		return listener
	}
	if v, _, ok := s.clients.MatchAddr(addr); ok {
		return uint8(v)
	}
	return listener
}

// NewSnapshot returns a snapshot of flavours; at most 255 fit.
func NewSnapshot(generation uint32, flavours []*Flavour) *Snapshot {
	s := &Snapshot{Generation: generation, flavours: flavours, index: map[string]uint8{}}
	for i, f := range flavours {
		s.index[f.Name] = uint8(i)
	}
	return s
}

// Flavour returns the flavour with id i, or nil.
func (s *Snapshot) Flavour(i uint8) *Flavour {
	if s == nil || int(i) >= len(s.flavours) {
		return nil
	}
	return s.flavours[i]
}

// ID returns the id of the flavour named name.
func (s *Snapshot) ID(name string) (uint8, bool) {
	if s == nil {
		return 0, false
	}
	i, ok := s.index[name]
	return i, ok
}
