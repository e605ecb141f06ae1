package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"bulwark/internal/cache"
	"bulwark/internal/dnssec"
	"bulwark/internal/policy"
	"bulwark/internal/resolver"
	"bulwark/internal/trace"

	"github.com/miekg/dns"
)

// BlockTTL is the TTL of blocked answers, in seconds, and so how long
// clients may keep one. A new policy version makes them unreachable in
// Bulwark's cache at once, whatever their TTL.
const BlockTTL = 60

// Extended DNS Error codes for blocked answers (RFC 8914 section 4).
const (
	edeBlocked  = 15 // by the operator, against threats
	edeCensored = 16 // by law
	edeFiltered = 17 // at the client's choice of flavour
)

// BlockConfig holds the data that blocked answers carry.
type BlockConfig struct {
	// BlockPage4 and BlockPage6 answer A and AAAA queries for names of
	// redirect lists; without them those answer NXDOMAIN.
	BlockPage4, BlockPage6 netip.Addr
	// Contact and Organization go into the EDE text.
	Contact, Organization string
}

// verdict is the outcome of the policy for one query.
type verdict uint8

const (
	verdictNone     verdict = iota // resolved normally
	verdictBlocked                 // a blocked answer, cached for BlockTTL
	verdictNoCache                 // an answer that must not be cached
	verdictTruncate                // TC over UDP (RPZ rpz-tcp-only), not cached
	verdictDrop                    // no response
)

// droppedAnswer returns the response of a query that a policy drops: an
// empty Packed, for which HandleSlow sends nothing. tag counts the list
// that dropped it.
func droppedAnswer(tag uint32) *cache.Packed {
	pk := &cache.Packed{}
	pk.SetTag(tag)
	return pk
}

// isDropped reports whether pk is the response of a dropped query. Every
// packed message has at least a header, so only droppedAnswer is empty.
func isDropped(pk *cache.Packed) bool { return pk.Len() == 0 }

// policyState is one policy version with the flavours that proceed anyway
// derives from it, swapped in whole.
type policyState struct {
	snapshot *policy.Snapshot
	// exempt[i] is flavour i as applied to clients with an exemption, or
	// nil when flavour i has proceed anyway off.
	exempt []*policy.Flavour
}

// SetPolicy installs a new policy version. Cached answers of the old one
// are no longer found, since answer keys hold the version.
func (p *Pipeline) SetPolicy(s *policy.Snapshot, b BlockConfig) {
	st := &policyState{snapshot: s}
	for id := 0; id <= 255; id++ {
		f := s.Flavour(uint8(id))
		if f == nil {
			break
		}
		st.exempt = append(st.exempt, p.cfg.Proceed[f.Name].Exempt(f))
	}
	p.blockCfg.Store(&b)
	p.policy.Store(st)
}

// snapshot returns the current policy version, or nil before SetPolicy.
func (p *Pipeline) snapshot() *policy.Snapshot {
	if st := p.policy.Load(); st != nil {
		return st.snapshot
	}
	return nil
}

// FlavourID returns the id of the flavour named name in the current policy.
// Unknown names, "" and a nil Pipeline get the first flavour.
func (p *Pipeline) FlavourID(name string) uint8 {
	if p == nil {
		return 0
	}
	if id, ok := p.snapshot().ID(name); ok {
		return id
	}
	return 0
}

// exempt reports whether client has a proceed anyway exemption for qname,
// a wire-format name, in a flavour that allows one. It checks the atomic
// expiry of the exemptions first, so other queries take no lock.
func (p *Pipeline) exempt(flavour uint8, client netip.Addr, qname []byte, now time.Time) bool {
	if !p.cfg.Exemptions.Active(now) {
		return false
	}
	st := p.policy.Load()
	if st == nil || int(flavour) >= len(st.exempt) || st.exempt[flavour] == nil {
		return false
	}
	return p.cfg.Exemptions.Holds(client, qname, now)
}

// Answer key suffixes: a key of an exempt answer has keyExempt after the
// policy bytes, so that it never matches the key of a blocked one, and the
// key of a client that a client-IP trigger matches has keyClient and the
// trigger's list and verdict.
const (
	keyExempt = 1
	keyClient = 2
)

// appendClientKey appends the client-IP trigger that matches client in
// flavour, if any: clients that one trigger matches share answers.
func (p *Pipeline) appendClientKey(key []byte, flavour uint8, client netip.Addr, exempt bool) []byte {
	f := p.flavour(flavour, exempt)
	if f == nil || !f.HasClientRules() {
		return key
	}
	list, verdict, ok := f.ClientRule(client)
	if !ok {
		return key
	}
	return append(key, keyClient, byte(list>>8), byte(list), byte(verdict>>24), byte(verdict>>16), byte(verdict>>8), byte(verdict))
}

// appendPolicyKey appends the flavour and the policy version to an answer
// key, and keyExempt for exempt clients. Flavours without lists and with
// validation share one key, so they share answers.
func (p *Pipeline) appendPolicyKey(key []byte, flavour uint8, exempt bool) []byte {
	s := p.snapshot()
	if s.Flavour(flavour).Plain() {
		return append(key, 0, 0, 0)
	}
	g := s.Generation
	key = append(key, flavour+1, byte(g>>8), byte(g))
	if exempt {
		key = append(key, keyExempt)
	}
	return key
}

// flavour returns the flavour with id in the current policy, or its exempt
// form when exempt is set and the flavour has one.
func (p *Pipeline) flavour(id uint8, exempt bool) *policy.Flavour {
	st := p.policy.Load()
	if st == nil {
		return nil
	}
	if exempt && int(id) < len(st.exempt) && st.exempt[id] != nil {
		return st.exempt[id]
	}
	return st.snapshot.Flavour(id)
}

// ServerFinder is implemented by a Resolver that can name the
// authoritative servers of a name from its cache, for NSDNAME and NSIP
// triggers. Without it those triggers never match.
type ServerFinder interface {
	Servers(name string) (zone string, names []string, addrs []netip.Addr)
}

// resolvePolicy resolves name and qtype and applies the flavour's lists:
// to the client and the name before resolution, then to every CNAME and
// DNAME target, every address of the answer and the servers of the zones
// involved. An allow match skips the later checks. With exempt set, the
// lists that proceed anyway skips are left out. It also returns the
// decision of the list that matched, with a nil List when none did.
func (p *Pipeline) resolvePolicy(ctx context.Context, name string, qtype uint16, flavour uint8, client netip.Addr, exempt, udp bool) (resolver.Result, verdict, policy.Decision) {
	f := p.flavour(flavour, exempt)
	rec := trace.FromContext(ctx)
	if f.Empty() {
		if rec != nil {
			rec.Add(trace.Step{Kind: trace.KindPolicy, Name: name, Result: "none", Detail: "the flavour has no lists"})
		}
		return p.res.Resolve(ctx, name, qtype), verdictNone, policy.Decision{}
	}
	d, ok := f.CheckQuery(client, name)
	tracePolicy(rec, name, "the query name and client address", d, ok)
	if ok {
		if !d.Blocked() {
			return p.res.Resolve(ctx, name, qtype), verdictNone, d
		}
		res, v := p.blocked(ctx, d, name, qtype, udp)
		return res, v, d
	}
	res := p.res.Resolve(ctx, name, qtype)
	pr := p.policyResponse(name, res)
	d, ok = f.CheckResponse(pr)
	tracePolicy(rec, name, responseChecked(pr), d, ok)
	if !ok {
		return res, verdictNone, policy.Decision{}
	}
	if d.Blocked() {
		res, v := p.blocked(ctx, d, name, qtype, udp)
		return res, v, d
	}
	return res, verdictNone, d
}

// tracePolicy records decision d, or that no list matched when ok is
// false, about what of name was checked.
func tracePolicy(rec *trace.Recorder, name, checked string, d policy.Decision, ok bool) {
	if rec == nil {
		return
	}
	s := trace.Step{Kind: trace.KindPolicy, Name: name, Result: "none", Detail: "checked " + checked}
	if ok {
		s.Result, s.List, s.Category = "matched", d.List.Name, d.List.Category
		s.Trigger, s.Match, s.Action = d.Trigger, d.Kind.String(), d.Verdict.Action.String()
	}
	rec.Add(s)
}

// responseChecked describes the parts of r that lists check.
func responseChecked(r policy.Response) string {
	parts := []string{}
	if len(r.Targets) > 0 {
		parts = append(parts, "CNAME and DNAME targets "+strings.Join(r.Targets, ", "))
	}
	if len(r.Addrs) > 0 {
		addrs := make([]string, len(r.Addrs))
		for i, a := range r.Addrs {
			addrs[i] = a.String()
		}
		parts = append(parts, "answer addresses "+strings.Join(addrs, ", "))
	}
	parts = append(parts, "the servers of the zones, where a list has NSDNAME or NSIP triggers")
	return strings.Join(parts, "; ")
}

// Trace resolves name and qtype for a client of the flavour named flavour
// ("" for the first), recording every step in a new trace. It applies the
// flavour's lists as HandleSlow does, for a client with no address, but
// neither reads nor fills the answer cache and shares no resolution, so
// that the trace shows the whole path. It returns an error only for an
// unknown flavour.
func (p *Pipeline) Trace(ctx context.Context, name string, qtype uint16, flavour string) (*trace.Report, error) {
	id := uint8(0)
	if flavour != "" {
		var ok bool
		if id, ok = p.snapshot().ID(flavour); !ok {
			return nil, fmt.Errorf("unknown flavour %q", flavour)
		}
	}
	flavour = p.FlavourName(id)
	name = dns.CanonicalName(name)

	rec := trace.New()
	ctx, cancel := context.WithTimeout(trace.NewContext(ctx, rec), p.cfg.ClientTimeout)
	defer cancel()
	res, v, _ := p.resolvePolicy(ctx, name, qtype, id, netip.Addr{}, false, false)
	if ctx.Err() != nil && res.Rcode == dns.RcodeServerFailure {
		res.EDE = &resolver.EDE{Code: resolver.EDENoReachableAuthority, Text: "resolution timed out"}
	}
	if p.validationOff(id) {
		res.Security = dnssec.Indeterminate
	}
	withheld := res.Security == dnssec.Bogus
	if withheld {
		// Clients that do not set CD get SERVFAIL (RFC 4035 section 3.2.2).
		res = resolver.Result{Rcode: dns.RcodeServerFailure, EDE: res.EDE, Security: dnssec.Bogus}
	}

	steps, dropped := rec.Steps()
	rep := &trace.Report{
		Name: name, Type: dns.Type(qtype).String(), Flavour: flavour,
		DurationMS: trace.Millis(rec.Elapsed()), Steps: steps, StepsDropped: dropped,
		Answer: traceAnswer(res, v),
	}
	return rep, nil
}

// traceAnswer returns res as the answer of a trace report.
func traceAnswer(res resolver.Result, v verdict) trace.Answer {
	a := trace.Answer{
		Rcode: dns.RcodeToString[res.Rcode], Security: res.Security.String(),
		Blocked: v == verdictBlocked || v == verdictDrop || v == verdictTruncate,
		Answer:  []string{},
	}
	switch v {
	case verdictDrop:
		a.Rcode = "no response (dropped)"
	case verdictTruncate:
		a.Rcode += ", truncated: retry over TCP"
	}
	if res.EDE != nil {
		a.EDE = &trace.EDE{Code: res.EDE.Code, Text: res.EDE.Text}
	}
	for _, rr := range res.Answer {
		a.Answer = append(a.Answer, rr.String())
	}
	for _, rr := range res.Authority {
		a.Authority = append(a.Authority, rr.String())
	}
	return a
}

// policyResponse collects the parts of res that lists check.
func (p *Pipeline) policyResponse(name string, res resolver.Result) policy.Response {
	var r policy.Response
	for _, rr := range res.Answer {
		switch rr := rr.(type) {
		case *dns.CNAME:
			r.Targets = append(r.Targets, rr.Target)
		case *dns.DNAME:
			r.Targets = append(r.Targets, rr.Target)
		case *dns.A:
			if a, valid := netip.AddrFromSlice(rr.A.To4()); valid {
				r.Addrs = append(r.Addrs, a)
			}
		case *dns.AAAA:
			if a, valid := netip.AddrFromSlice(rr.AAAA); valid {
				r.Addrs = append(r.Addrs, a)
			}
		}
	}
	finder, ok := p.res.(ServerFinder)
	if !ok {
		return r
	}
	r.Servers = func() (names []string, addrs []netip.Addr) {
		zones := map[string]bool{}
		for _, n := range append([]string{name}, r.Targets...) {
			zone, ns, a := finder.Servers(n)
			if zone == "" || zones[zone] {
				continue
			}
			zones[zone] = true
			names, addrs = append(names, ns...), append(addrs, a...)
		}
		return names, addrs
	}
	return r
}

// blocked returns the answer that decision d gives for name and qtype.
func (p *Pipeline) blocked(ctx context.Context, d policy.Decision, name string, qtype uint16, udp bool) (resolver.Result, verdict) {
	p.log.Debug("blocked", "qname", name, "list", d.List.Name, "category", d.List.Category,
		"action", d.Verdict.Action.String(), "trigger", d.Trigger)
	ede := p.blockEDE(d)
	res := resolver.Result{Rcode: dns.RcodeSuccess, EDE: ede, Authority: []dns.RR{blockSOA(d, name)}}
	switch d.Verdict.Action {
	case policy.NXDomain:
		res.Rcode = dns.RcodeNameError
	case policy.NoData:
	case policy.Redirect:
		b := p.blockCfg.Load()
		switch {
		case qtype == dns.TypeA && b.BlockPage4.IsValid():
			res.Answer, res.Authority = []dns.RR{&dns.A{Hdr: header(name, dns.TypeA), A: b.BlockPage4.AsSlice()}}, nil
		case qtype == dns.TypeAAAA && b.BlockPage6.IsValid():
			res.Answer, res.Authority = []dns.RR{&dns.AAAA{Hdr: header(name, dns.TypeAAAA), AAAA: b.BlockPage6.AsSlice()}}, nil
		case !b.BlockPage4.IsValid() && !b.BlockPage6.IsValid():
			res.Rcode = dns.RcodeNameError
		}
	case policy.Drop:
		return res, verdictDrop
	case policy.TCPOnly:
		if udp {
			return resolver.Result{Rcode: dns.RcodeSuccess}, verdictTruncate
		}
		return p.res.Resolve(ctx, name, qtype), verdictNoCache
	case policy.LocalData:
		return p.localData(ctx, d, name, qtype, ede)
	}
	return res, verdictBlocked
}

// localData answers from the records of an RPZ rule: a CNAME is followed,
// other records of the type asked are returned with the query name.
func (p *Pipeline) localData(ctx context.Context, d policy.Decision, name string, qtype uint16, ede *resolver.EDE) (resolver.Result, verdict) {
	res := resolver.Result{Rcode: dns.RcodeSuccess, EDE: ede}
	for _, rr := range d.Verdict.Data {
		h := rr.Header()
		if c, ok := rr.(*dns.CNAME); ok && qtype != dns.TypeCNAME {
			cname := &dns.CNAME{Hdr: header(name, dns.TypeCNAME), Target: dns.CanonicalName(c.Target)}
			target := p.res.Resolve(ctx, cname.Target, qtype)
			target.Answer = append([]dns.RR{cname}, target.Answer...)
			target.EDE, target.Security = ede, 0
			return target, verdictBlocked
		}
		if h.Rrtype == qtype || qtype == dns.TypeANY {
			rr = dns.Copy(rr)
			rr.Header().Name = name
			rr.Header().Ttl = BlockTTL
			res.Answer = append(res.Answer, rr)
		}
	}
	return res, verdictBlocked
}

// blockSOA returns the SOA record of a blocked negative answer, so that
// downstream caches keep it for BlockTTL (RFC 2308). Its owner is the
// blocked name the rule covers, an ancestor of the query name or the name
// itself, as the apex of the zone that answered would be.
func blockSOA(d policy.Decision, qname string) *dns.SOA {
	owner := strings.TrimPrefix(d.Trigger, "*.")
	if _, ok := dns.IsDomainName(owner); !ok || !dns.IsFqdn(owner) || !dns.IsSubDomain(owner, qname) {
		owner = qname // an address trigger
	}
	return &dns.SOA{
		Hdr: header(owner, dns.TypeSOA),
		Ns:  "blocked.invalid.", Mbox: "hostmaster.blocked.invalid.",
		Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: BlockTTL,
	}
}

func header(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: BlockTTL}
}

// blockEDE returns the Extended DNS Error of a block: Censored for lawful
// lists, Filtered for content the client's flavour filters, Blocked for
// threats. Its text is JSON in the shape of the IETF draft on structured
// DNS errors: a justification, the operator's contact and name, and the
// list, category and trigger. A rule with a reason of its own gives the
// justification.
func (p *Pipeline) blockEDE(d policy.Decision) *resolver.EDE {
	code := BlockEDECode(d.List.Category)
	b := p.blockCfg.Load()
	text := struct {
		Justification string   `json:"j"`
		Contact       []string `json:"c,omitempty"`
		Organization  string   `json:"o,omitempty"`
		List          string   `json:"list"`
		Category      string   `json:"category"`
		Trigger       string   `json:"trigger"`
	}{
		Justification: d.List.Category + " listed in " + d.List.Name,
		Organization:  b.Organization,
		List:          d.List.Name,
		Category:      d.List.Category,
		Trigger:       d.Trigger,
	}
	if d.Verdict.Reason != "" {
		text.Justification = d.Verdict.Reason
	}
	if b.Contact != "" {
		text.Contact = []string{b.Contact}
	}
	data, _ := json.Marshal(text)
	return &resolver.EDE{Code: code, Text: string(data)}
}

// BlockEDECode returns the Extended DNS Error code of answers blocked by a
// list of category: Censored for lawful lists, Filtered for content the
// client's flavour filters, Blocked for threats.
func BlockEDECode(category string) uint16 {
	switch category {
	case policy.CategoryLawful:
		return edeCensored
	case policy.CategoryAdult, policy.CategoryAds, policy.CategoryTracking:
		return edeFiltered
	}
	return edeBlocked
}

// validationOff reports whether flavour serves answers without validation.
func (p *Pipeline) validationOff(flavour uint8) bool {
	f := p.snapshot().Flavour(flavour)
	return f != nil && f.NoValidation
}

// ClientFlavour returns the flavour id for a client at addr on a listener
// whose flavour is listener: a client subnet rule wins over the listener.
func (p *Pipeline) ClientFlavour(addr netip.Addr, listener uint8) uint8 {
	if p == nil {
		return listener
	}
	return p.snapshot().ClientFlavour(addr, listener)
}

// FlavourName returns the name of the flavour with id, or "" when there is
// none.
func (p *Pipeline) FlavourName(id uint8) string {
	if f := p.snapshot().Flavour(id); f != nil {
		return f.Name
	}
	return ""
}

// AnswerVariant is what the part of an answer cache key after the type
// says about the clients the answer is for.
type AnswerVariant struct {
	// DO and CD are the bits of the query.
	DO bool `json:"do"`
	CD bool `json:"cd"`
	// Flavour is the flavour, or "" for an answer that the flavours
	// without lists share; PolicyVersion is the policy generation.
	Flavour       string `json:"flavour,omitempty"`
	PolicyVersion uint16 `json:"policy_version,omitempty"`
	// Exempt marks an answer for clients with a proceed anyway
	// exemption, ClientRule one for clients that a client-IP trigger
	// matches.
	Exempt     bool `json:"exempt,omitempty"`
	ClientRule bool `json:"client_rule,omitempty"`
}

// DescribeAnswerKey decodes flags and variant, the parts of an answer
// cache key after the type (see cache.AnswerEntry).
func (p *Pipeline) DescribeAnswerKey(flags byte, variant []byte) AnswerVariant {
	v := AnswerVariant{DO: flags&keyDO != 0, CD: flags&keyCD != 0}
	if len(variant) < 3 || variant[0] == 0 {
		return v
	}
	v.Flavour = p.FlavourName(variant[0] - 1)
	v.PolicyVersion = uint16(variant[1])<<8 | uint16(variant[2])
	rest := variant[3:]
	if len(rest) > 0 && rest[0] == keyExempt {
		v.Exempt, rest = true, rest[1:]
	}
	v.ClientRule = len(rest) > 0 && rest[0] == keyClient
	return v
}
