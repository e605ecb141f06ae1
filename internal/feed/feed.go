// Package feed parses blocklists and threat feeds (hosts files, plain domain
// lists, AdGuard/ABP DNS filter lists, RPZ zones and CSV exports) into one
// rule model. Malformed lines never stop a parse: they are counted and the
// first of them are kept for reports.
package feed

import (
	"fmt"
	"hash/maphash"
	"io"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// Format is the syntax of a feed.
type Format uint8

// Feed formats.
const (
	// Hosts is the hosts file syntax: an address followed by host names.
	Hosts Format = iota + 1
	// Domains is one name, IP address or CIDR prefix per line.
	Domains
	// AdGuard is the DNS subset of the AdGuard and Adblock Plus filter syntax.
	AdGuard
	// RPZ is a DNS response policy zone in master-file form.
	RPZ
	// CSV is comma-separated values with the name in one column.
	CSV
)

var formatNames = [...]string{Hosts: "hosts", Domains: "domains", AdGuard: "adguard", RPZ: "rpz", CSV: "csv"}

// ParseFormat returns the format named s: "hosts", "domains", "adguard",
// "rpz" or "csv", in any case.
func ParseFormat(s string) (Format, error) {
	for f, name := range formatNames {
		if name != "" && strings.EqualFold(s, name) {
			return Format(f), nil
		}
	}
	return 0, fmt.Errorf("unknown feed format %q: use hosts, domains, adguard, rpz or csv", s)
}

func (f Format) String() string {
	if int(f) < len(formatNames) && formatNames[f] != "" {
		return formatNames[f]
	}
	return fmt.Sprintf("Format(%d)", uint8(f))
}

// Trigger is the part of a query or response that a rule matches.
type Trigger uint8

// Rule triggers, named after the RPZ trigger types.
const (
	// QName matches the query name.
	QName Trigger = iota + 1
	// ClientIP matches the address of the client.
	ClientIP
	// ResponseIP matches an address in an A or AAAA record of the response.
	ResponseIP
	// NSDName matches the name of an authoritative server of the query name.
	NSDName
	// NSIP matches an address of an authoritative server of the query name.
	NSIP
)

var triggerNames = [...]string{QName: "qname", ClientIP: "client-ip", ResponseIP: "response-ip", NSDName: "nsdname", NSIP: "nsip"}

func (t Trigger) String() string {
	if int(t) < len(triggerNames) && triggerNames[t] != "" {
		return triggerNames[t]
	}
	return fmt.Sprintf("Trigger(%d)", uint8(t))
}

// Action is the policy a rule applies when it matches.
type Action uint8

// Rule actions.
const (
	// Block applies the action configured for the list. Plain lists, hosts
	// files and AdGuard blocking rules give Block.
	Block Action = iota + 1
	// NXDomain returns an NXDOMAIN response (RPZ "CNAME .").
	NXDomain
	// NoData returns NOERROR with an empty answer section (RPZ "CNAME *.").
	NoData
	// Passthru allows the query and stops policy processing (RPZ "CNAME
	// rpz-passthru.", AdGuard "@@" exceptions).
	Passthru
	// Drop sends no response (RPZ "CNAME rpz-drop.").
	Drop
	// TCPOnly sends a truncated response to queries over UDP (RPZ "CNAME
	// rpz-tcp-only.").
	TCPOnly
	// LocalData returns the records in Rule.Data (RPZ local data, including
	// a CNAME to another name as a redirect).
	LocalData
)

var actionNames = [...]string{Block: "block", NXDomain: "nxdomain", NoData: "nodata", Passthru: "passthru", Drop: "drop", TCPOnly: "tcp-only", LocalData: "local-data"}

func (a Action) String() string {
	if int(a) < len(actionNames) && actionNames[a] != "" {
		return actionNames[a]
	}
	return fmt.Sprintf("Action(%d)", uint8(a))
}

// Rule is one policy rule read from a feed.
type Rule struct {
	// Name is the canonical name for QName and NSDName triggers: lower
	// case, fully qualified with the trailing dot, internationalized labels
	// converted to punycode. It is "" for address triggers, and "." only for
	// an RPZ wildcard owner directly below the zone apex.
	Name string
	// Prefix is the address or network for ClientIP, ResponseIP and NSIP
	// triggers. An address in a list becomes a /32 or /128 ResponseIP rule.
	Prefix netip.Prefix
	// Data holds the records of a LocalData rule, in file order. The owner
	// of each record is the trigger as written in the zone, without the
	// zone origin: Name, "*." followed by Name for a wildcard rule, or the
	// address labels such as "32.4.3.2.1.rpz-ip." for address triggers.
	Data []dns.RR
	// Category is the value of the CSV category column, if one is set.
	Category string
	// Line is the 1-based line of the source where the rule starts.
	Line int

	Trigger Trigger
	Action  Action
	// Subdomains makes the rule match every name below Name as well as Name.
	// Plain lists, hosts files and AdGuard rules set it.
	Subdomains bool
	// Wildcard makes the rule match only names strictly below Name (RPZ
	// owner "*.name", or "*.name" in a domain list). An RPZ owner without
	// "*." matches Name exactly.
	Wildcard bool
	// Important marks an AdGuard rule with the $important modifier: a
	// blocking rule that exceptions without $important do not override,
	// or an exception that overrides important blocking rules too.
	Important bool
}

// BadLine is a malformed line of a feed.
type BadLine struct {
	Line int
	// Text is the line as read, cut to at most 200 bytes.
	Text string
	// Reason describes what is wrong with the line.
	Reason string
}

// Result is the outcome of parsing one feed.
type Result struct {
	Rules []Rule
	// Lines is the number of lines read.
	Lines int
	// Comments counts comment and blank lines, headers, and hosts file
	// entries for local names such as localhost.
	Comments int
	// Duplicates counts rules dropped because an earlier rule has the same
	// trigger, name or prefix, flags and action.
	Duplicates int
	// Unsupported counts valid lines that do not apply to DNS, such as
	// AdGuard URL-path, cosmetic and regular-expression rules, or rules with
	// modifiers other than $important. They are skipped and are not errors.
	Unsupported int
	// BadCount counts malformed lines.
	BadCount int
	// Bad holds the first 100 malformed lines.
	Bad []BadLine
}

// Options tunes Parse. The zero value selects the defaults.
type Options struct {
	// Origin is the RPZ zone name, used when the file has no $ORIGIN before
	// its first record. Without either, the zone name is the owner of the
	// SOA record, which then has to be the first record.
	Origin string
	// MaxLineBytes is the longest line accepted, without its line ending.
	// Longer lines are malformed. Default 4096, at most 1 GiB.
	MaxLineBytes int
	// CSVColumn is the 0-based column holding the name or address in a CSV
	// feed. Default 0.
	CSVColumn int
	// CSVCategoryColumn is the 0-based column copied into Rule.Category. It
	// is ignored when negative or equal to CSVColumn, so the zero value sets
	// no category.
	CSVCategoryColumn int
}

const (
	defaultMaxLineBytes = 4096
	maxMaxLineBytes     = 1 << 30
	maxBadLines         = 100
	maxBadTextBytes     = 200
)

// Parse reads a feed in format f. Malformed lines are counted and reported in
// the Result and never stop the parse. The error reports a read failure, an
// invalid Options.Origin, or an RPZ zone without a name: one with no SOA
// record, no $ORIGIN and no Options.Origin. The Result is nil only when the
// format is unknown.
func Parse(r io.Reader, f Format, opts Options) (*Result, error) {
	return parse(r, f, opts, newBuilder(nil))
}

// Scan reads a feed like Parse but passes each rule to emit instead of
// storing it, so that a list of millions of names is never held as Rule
// values: Result.Rules stays empty. The Rule passed to emit is valid only
// during the call. Name rules are not checked for duplicates, which
// Result.Duplicates then does not count, and an RPZ owner with a policy
// record and local data is reported as conflicting only when the local data
// comes first. RPZ local data rules are passed at the end, once all their
// records are read.
func Scan(r io.Reader, f Format, opts Options, emit func(*Rule)) (*Result, error) {
	return parse(r, f, opts, newBuilder(emit))
}

func parse(r io.Reader, f Format, opts Options, b *builder) (*Result, error) {
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = defaultMaxLineBytes
	}
	opts.MaxLineBytes = min(opts.MaxLineBytes, maxMaxLineBytes)
	lr := newLineReader(r, opts.MaxLineBytes)
	var err error
	switch f {
	case Hosts:
		parseLines(lr, b, parseHostsLine)
	case Domains:
		parseLines(lr, b, parseDomainsLine)
	case AdGuard:
		parseLines(lr, b, parseAdGuardLine)
	case CSV:
		parseCSV(lr, b, opts)
	case RPZ:
		err = parseRPZ(lr, b, opts)
	default:
		return nil, fmt.Errorf("unknown feed format %d", uint8(f))
	}
	b.finish()
	b.res.Lines = lr.line
	if err == nil {
		err = lr.err
	}
	return &b.res, err
}

// nameKey identifies a name rule for duplicate detection.
type nameKey struct {
	name    string
	trigger Trigger
	flags   uint8
	action  Action
}

func ruleNameKey(r *Rule) nameKey {
	var flags uint8
	if r.Subdomains {
		flags |= flagSubdomains
	}
	if r.Wildcard {
		flags |= flagWildcard
	}
	if r.Important {
		flags |= flagImportant
	}
	return nameKey{name: r.Name, trigger: r.Trigger, flags: flags, action: r.Action}
}

// prefixKey identifies an address rule for duplicate detection.
type prefixKey struct {
	prefix    netip.Prefix
	trigger   Trigger
	action    Action
	important bool
}

const (
	flagSubdomains = 1 << iota
	flagWildcard
	flagImportant
)

// Sizes of the blocks that builder stores rules in, in rules.
const (
	firstBlockRules = 16
	maxBlockRules   = 1 << 16
)

// builder collects the rules of one parse and drops duplicates.
type builder struct {
	res Result
	// blocks hold the rules until finish copies them into res.Rules, so
	// each rule is copied once. A single growing slice would copy a long
	// list several times over as it grows.
	blocks [][]Rule
	count  int

	// names maps a hash of the nameKey of each name rule to the rule. A map
	// keyed by nameKey hashes every name again each time it grows, which
	// was the largest cost in BenchmarkParseDomains. A rule whose hash
	// equals that of a different rule goes to collided, keyed exactly.
	seed     maphash.Seed
	names    map[uint64]*Rule
	collided map[nameKey]struct{}
	prefixes map[prefixKey]struct{}

	// emit, when set, receives each rule in place of res.Rules, and name
	// rules are not checked for duplicates. Only the rules that
	// appendRule stores, RPZ local data, are kept until finish.
	emit func(*Rule)
}

func newBuilder(emit func(*Rule)) *builder {
	b := &builder{emit: emit, prefixes: make(map[prefixKey]struct{})}
	if emit == nil {
		b.seed = maphash.MakeSeed()
		b.names = make(map[uint64]*Rule)
	}
	return b
}

// streaming reports whether rules go to an emit function.
func (b *builder) streaming() bool { return b.emit != nil }

// send passes r to the emit function.
func (b *builder) send(r *Rule) { b.emit(r) }

// add appends r unless an equal rule was added before, and reports whether
// it did. LocalData rules are never compared: the RPZ parser groups them.
func (b *builder) add(r Rule) bool {
	switch {
	case r.Action == LocalData:
	case r.Name != "" && b.streaming():
		b.send(&r)
		return true
	case r.Name != "":
		return b.addName(r)
	default:
		// Comparing the length saves the second hash of a lookup before
		// the insert.
		n := len(b.prefixes)
		b.prefixes[prefixKey{prefix: r.Prefix, trigger: r.Trigger, action: r.Action, important: r.Important}] = struct{}{}
		if len(b.prefixes) == n {
			b.res.Duplicates++
			return false
		}
		if b.streaming() {
			b.send(&r)
			return true
		}
	}
	b.appendRule(r)
	return true
}

func (b *builder) nameHash(key nameKey) uint64 {
	// Multiplying by an odd constant maps distinct fields to distinct
	// values, so rules for one name never share a hash.
	fields := uint64(key.trigger) | uint64(key.flags)<<8 | uint64(key.action)<<16
	return maphash.String(b.seed, key.name) ^ fields*0x9E3779B97F4A7C15
}

func (b *builder) addName(r Rule) bool {
	key := ruleNameKey(&r)
	h := b.nameHash(key)
	prev, found := b.names[h]
	if !found {
		b.names[h] = b.appendRule(r)
		return true
	}
	if ruleNameKey(prev) == key {
		b.res.Duplicates++
		return false
	}
	if b.collided == nil {
		b.collided = make(map[nameKey]struct{})
	}
	n := len(b.collided)
	b.collided[key] = struct{}{}
	if len(b.collided) == n {
		b.res.Duplicates++
		return false
	}
	b.appendRule(r)
	return true
}

// appendRule stores r without looking for duplicates and returns a pointer
// to it, valid until finish.
func (b *builder) appendRule(r Rule) *Rule {
	n := len(b.blocks)
	if n == 0 || len(b.blocks[n-1]) == cap(b.blocks[n-1]) {
		size := firstBlockRules
		if n > 0 {
			size = min(2*cap(b.blocks[n-1]), maxBlockRules)
		}
		b.blocks = append(b.blocks, make([]Rule, 0, size))
		n++
	}
	b.blocks[n-1] = append(b.blocks[n-1], r)
	b.count++
	return &b.blocks[n-1][len(b.blocks[n-1])-1]
}

// finish moves the rules into the result, or passes them to the emit
// function.
func (b *builder) finish() {
	if b.streaming() {
		for _, block := range b.blocks {
			for i := range block {
				b.send(&block[i])
			}
		}
		b.blocks = nil
		return
	}
	if b.count == 0 {
		return
	}
	b.res.Rules = make([]Rule, 0, b.count)
	for _, block := range b.blocks {
		b.res.Rules = append(b.res.Rules, block...)
	}
	b.blocks = nil
}

// bad records a malformed line.
func (b *builder) bad(line int, text []byte, reason string) {
	b.res.BadCount++
	if len(b.res.Bad) < maxBadLines {
		b.res.Bad = append(b.res.Bad, BadLine{Line: line, Text: cutText(text), Reason: reason})
	}
}

// cutText returns text cut to maxBadTextBytes, without splitting a UTF-8
// sequence.
func cutText(text []byte) string {
	if len(text) <= maxBadTextBytes {
		return string(text)
	}
	n := maxBadTextBytes
	// Back up over continuation bytes (10xxxxxx) to the start of a rune.
	for n > maxBadTextBytes-3 && text[n]&0xC0 == 0x80 {
		n--
	}
	return string(text[:n])
}
