// Package policyload builds a policy snapshot from the configuration: it
// reads and parses every list file, compiles the lists and assembles the
// flavours. It runs off the query path; the result is swapped in whole.
package policyload

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"time"

	"bulwark/internal/config"
	"bulwark/internal/feed"
	"bulwark/internal/pipeline"
	"bulwark/internal/policy"
)

// loadGCPercent is the garbage collector's target while a list loads.
const loadGCPercent = 10

// maxBadLinesLogged caps the malformed lines logged per list; the count of
// all of them is logged too.
const maxBadLinesLogged = 5

// ListReport is the outcome of loading one list.
type ListReport struct {
	Name       string
	File       string
	Rules      int
	Lines      int
	Bad        int
	Duplicates int
	// Conflicts counts rules dropped because another rule of the list
	// gives the same trigger a different action.
	Conflicts   int
	Unsupported int
	Entries     int // rules, dropped rules and malformed lines
	Duration    time.Duration
}

// Load reads every list of cfg and returns the snapshot of all flavours,
// with generation, the block answer settings and a report per list. A list
// that cannot be read is an error; malformed lines are counted and logged,
// never fatal.
func Load(cfg *config.Config, generation uint32, log *slog.Logger) (*policy.Snapshot, pipeline.BlockConfig, []ListReport, error) {
	lists := map[string]*policy.List{}
	var reports []ListReport
	for _, l := range cfg.Policy.Lists {
		compiled, report, err := loadList(l, log)
		if err != nil && l.Remote() {
			if _, statErr := os.Stat(l.File); errors.Is(statErr, fs.ErrNotExist) {
				// Not downloaded or transferred yet: the list starts
				// empty.
				compiled, report, err = emptyList(l), ListReport{Name: l.Name, File: l.File}, nil
			}
		}
		if err != nil {
			return nil, pipeline.BlockConfig{}, nil, err
		}
		lists[l.Name] = compiled
		reports = append(reports, report)
	}
	return newSnapshot(cfg, generation, lists, memoryLists{}), blockConfig(cfg), reports, nil
}

// newSnapshot assembles the flavours and client rules of cfg over the
// compiled lists and the lists fed from memory.
func newSnapshot(cfg *config.Config, generation uint32, lists map[string]*policy.List, memory memoryLists) *policy.Snapshot {
	s := policy.NewSnapshot(generation, flavours(cfg, lists, memory))
	s.SetClients(clientRules(cfg))
	return s
}

// blockConfig returns what blocked answers carry, from cfg.
func blockConfig(cfg *config.Config) pipeline.BlockConfig {
	p := cfg.Policy
	return pipeline.BlockConfig{
		BlockPage4: p.BlockPage.Addr4, BlockPage6: p.BlockPage.Addr6,
		Contact: p.Contact, Organization: p.Organization,
	}
}

// flavours returns every flavour: "unfiltered" first, so that it has id 0,
// then the other built-in ones and the configured ones by name. A
// configured flavour replaces a built-in one of the same name. Each applies
// the lists of its categories, then its named lists, in config order.
func flavours(cfg *config.Config, lists map[string]*policy.List, memory memoryLists) []*policy.Flavour {
	type def struct {
		categories   []string
		lists        []string
		noValidation bool
	}
	defs := map[string]def{}
	for name, cats := range policy.Builtin {
		defs[name] = def{categories: cats}
	}
	for _, f := range cfg.Policy.Flavours {
		defs[f.Name] = def{categories: f.Categories, lists: f.Lists, noValidation: f.Validation != nil && !*f.Validation}
	}
	var names []string
	for name := range defs {
		if name != "unfiltered" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	names = append([]string{"unfiltered"}, names...)

	var out []*policy.Flavour
	for _, name := range names {
		d := defs[name]
		var applied []*policy.List
		for _, l := range cfg.Policy.Lists {
			// Lawful lists bind every flavour, configured ones too.
			if l.Category == policy.CategoryLawful || slices.Contains(d.categories, l.Category) || slices.Contains(d.lists, l.Name) {
				applied = append(applied, lists[l.Name])
			}
		}
		applied = append(applied, memory.of(name, d.categories)...)
		f := policy.NewFlavour(name, applied)
		f.NoValidation = d.noValidation
		out = append(out, f)
	}
	// A tenant's flavour checks its allowlists first, then the lists of
	// the flavour it builds on, then its own deny lists.
	byName := map[string]*policy.Flavour{}
	for _, f := range out {
		byName[f.Name] = f
	}
	for _, tn := range cfg.Policy.Tenants {
		base := byName[tn.Flavour]
		var applied []*policy.List
		for _, l := range tn.Allow {
			allow := *lists[l]
			allow.Verdicts = []policy.Verdict{{Action: policy.Allow}}
			applied = append(applied, &allow)
		}
		if base != nil {
			applied = append(applied, base.Lists()...)
		}
		for _, l := range tn.Deny {
			applied = append(applied, lists[l])
		}
		f := policy.NewFlavour(TenantFlavour(tn.Name), applied)
		f.NoValidation = base != nil && base.NoValidation
		out = append(out, f)
	}
	return out
}

// TenantFlavour returns the name of a tenant's flavour.
func TenantFlavour(tenant string) string { return "tenant:" + tenant }

// clientRules returns the client subnet rules of cfg, tenants' subnets
// included.
func clientRules(cfg *config.Config) []policy.ClientRule {
	var rules []policy.ClientRule
	for _, tn := range cfg.Policy.Tenants {
		for _, p := range tn.Prefixes {
			rules = append(rules, policy.ClientRule{Prefix: p, Flavour: TenantFlavour(tn.Name)})
		}
	}
	for _, c := range cfg.Policy.Clients {
		rules = append(rules, policy.ClientRule{Prefix: c.Prefix, Flavour: c.Flavour})
	}
	return rules
}

// loadList reads, parses and compiles one list.
func loadList(l config.PolicyList, log *slog.Logger) (*policy.List, ListReport, error) {
	start := time.Now()
	report := ListReport{Name: l.Name, File: l.File}
	format, err := feed.ParseFormat(l.Format)
	if err != nil {
		return nil, report, fmt.Errorf("policy list %s: %w", l.Name, err)
	}
	f, err := os.Open(l.File)
	if err != nil {
		return nil, report, fmt.Errorf("policy list %s: %w", l.Name, err)
	}
	defer f.Close()
	// While a list loads, the previous version of every list stays in
	// memory, and the parser makes short-lived garbage at every line. A
	// low GC target keeps that garbage from doubling the peak: the sets
	// hold no pointers, so each collection costs little.
	defer debug.SetGCPercent(debug.SetGCPercent(loadGCPercent))
	action, _ := policy.ParseAction(l.Action)
	list := &policy.List{Name: l.Name, Category: l.Category, Verdicts: []policy.Verdict{{Action: action}}}
	verdictOf := map[policy.Action]uint32{}
	var b builders
	// Rules go straight from the parser to the builders, so a list is never
	// held as parsed rules: ten million names cost only their hashes.
	res, err := feed.Scan(f, format, feed.Options{}, func(r *feed.Rule) {
		report.Rules++
		pr := toPolicyRule(r)
		if r.Action == feed.Passthru && format != feed.RPZ && action != policy.Allow {
			// An exception of a blocklist, such as an AdGuard @@ rule,
			// only keeps this list from blocking.
			if r.Important {
				pr.Verdict = policy.ImportantException
			}
			b.get(&b.exceptions).Add(pr)
			return
		}
		pr.Verdict = verdictIndex(list, r, verdictOf)
		if r.Important && r.Name != "" {
			b.get(&b.important).Add(pr)
		}
		switch r.Trigger {
		case feed.ClientIP:
			b.get(&b.clients).Add(pr)
		case feed.NSDName, feed.NSIP:
			b.get(&b.servers).Add(pr)
		default:
			b.get(&b.main).Add(pr)
		}
	})
	if err != nil {
		if format == feed.RPZ {
			return nil, report, fmt.Errorf("policy list %s: %s: %w: an RPZ file needs a $ORIGIN line or its SOA record first", l.Name, l.File, err)
		}
		return nil, report, fmt.Errorf("policy list %s: read %s: %w", l.Name, l.File, err)
	}
	list.Set = b.get(&b.main).Build()
	list.Exceptions = b.build(b.exceptions)
	list.Important = b.build(b.important)
	list.Clients = b.build(b.clients)
	list.Servers = b.build(b.servers)
	report.Duplicates = res.Duplicates
	for _, set := range []*policy.Set{list.Set, list.Exceptions, list.Clients, list.Servers} {
		if set != nil {
			report.Duplicates += set.Duplicates()
			report.Conflicts += set.Conflicts()
		}
	}
	report.Rules -= report.Duplicates + report.Conflicts
	list.Loaded, list.Rules = time.Now(), report.Rules

	report.Lines, report.Bad = res.Lines, res.BadCount
	report.Entries = report.Rules + report.Duplicates + report.Conflicts + res.BadCount
	report.Unsupported = res.Unsupported
	report.Duration = time.Since(start)
	for i, bad := range res.Bad {
		if i >= maxBadLinesLogged {
			break
		}
		log.Warn("malformed line in list", "list", l.Name, "file", l.File, "line", bad.Line, "reason", bad.Reason)
	}
	log.Info("list loaded", "list", l.Name, "file", l.File, "rules", report.Rules, "lines", report.Lines,
		"malformed", report.Bad, "duplicates", report.Duplicates, "conflicts", report.Conflicts, "unsupported", report.Unsupported,
		"seconds", report.Duration.Seconds())
	return list, report, nil
}

// builders collect the sets of one list, each made when first needed.
type builders struct {
	main, exceptions, important, clients, servers *policy.Builder
}

func (b *builders) get(p **policy.Builder) *policy.Builder {
	if *p == nil {
		*p = policy.NewBuilder()
	}
	return *p
}

// build returns the set of bld, or nil when it was never made.
func (*builders) build(bld *policy.Builder) *policy.Set {
	if bld == nil {
		return nil
	}
	return bld.Build()
}

// toPolicyRule converts a parsed rule: a name for QNAME and NSDNAME
// triggers, a prefix for the address triggers.
func toPolicyRule(r *feed.Rule) policy.Rule {
	if r.Name == "" {
		return policy.Rule{Prefix: r.Prefix}
	}
	m := policy.Exact
	switch {
	case r.Subdomains:
		m = policy.Exact | policy.Below
	case r.Wildcard:
		m = policy.Below
	}
	return policy.Rule{Name: r.Name, Match: m}
}

// verdictIndex returns the index in list.Verdicts of r's verdict, adding
// it when new. Rules without an action of their own take the list's, at 0.
func verdictIndex(list *policy.List, r *feed.Rule, seen map[policy.Action]uint32) uint32 {
	var a policy.Action
	switch r.Action {
	case feed.NXDomain:
		a = policy.NXDomain
	case feed.NoData:
		a = policy.NoData
	case feed.Passthru:
		a = policy.Allow
	case feed.Drop:
		a = policy.Drop
	case feed.TCPOnly:
		a = policy.TCPOnly
	case feed.LocalData:
		list.Verdicts = append(list.Verdicts, policy.Verdict{Action: policy.LocalData, Data: r.Data})
		return uint32(len(list.Verdicts) - 1)
	default:
		return 0
	}
	if i, ok := seen[a]; ok {
		return i
	}
	list.Verdicts = append(list.Verdicts, policy.Verdict{Action: a})
	seen[a] = uint32(len(list.Verdicts) - 1)
	return seen[a]
}
