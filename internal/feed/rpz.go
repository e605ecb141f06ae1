package feed

import (
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// maxRecordLines is the most lines one parenthesized record may span. A
// record still open after that many lines is taken to lack its ")", and the
// lines after its first are read again as records of their own.
const maxRecordLines = 100

// Owner labels, right below the zone name, that select a trigger other than
// QName.
const (
	labelResponseIP = "rpz-ip"
	labelClientIP   = "rpz-client-ip"
	labelNSIP       = "rpz-nsip"
	labelNSDName    = "rpz-nsdname"
)

// zoneLine is one line of an RPZ zone kept while a record is assembled.
type zoneLine struct {
	number int
	text   string
}

// rpzParser reads an RPZ zone one record at a time, so a malformed record
// costs only its own lines.
type rpzParser struct {
	b  *builder
	lr *lineReader
	// requeued holds lines to read again before the rest of the input.
	requeued []zoneLine

	// origin is the last $ORIGIN, "" before the first one.
	origin string
	// apex is the zone name in lower case, "" until known.
	apex string
	// recordSeen is set once a record has been parsed. A $ORIGIN before
	// the first record sets the zone name.
	recordSeen bool
	soaLine    int

	// ttl is the TTL of records that give none: the $TTL value, or else the
	// TTL of the previous record.
	ttl            uint32
	ttlKnown       bool
	ttlByDirective bool
	// prevOwner is the owner of the previous record, for records whose
	// line starts with a blank. After a record read by fastRecord it is
	// "" and fastOwner holds the owner as written, relative to the apex
	// unless it ends with a dot.
	prevOwner string
	fastOwner []byte

	// owners maps the lower-case owner name of every rule to the rule.
	// When the builder streams, it holds local data rules only.
	owners map[string]*Rule
	// name is the buffer fastRecord builds names in.
	name []byte
}

func parseRPZ(lr *lineReader, b *builder, opts Options) error {
	p := &rpzParser{b: b, lr: lr, owners: make(map[string]*Rule)}
	if opts.Origin != "" {
		origin := dns.CanonicalName(opts.Origin)
		if _, ok := dns.IsDomainName(origin); !ok {
			return fmt.Errorf("invalid RPZ origin %q: expected a domain name", opts.Origin)
		}
		p.apex = origin
	}
	if err := p.run(); err != nil {
		return err
	}
	if p.apex == "" {
		return errors.New("RPZ zone has no SOA record: add one, a $ORIGIN line, or set the zone name in the options")
	}
	return nil
}

// nextLine returns the next line to read: a requeued line, or else the next
// line of the input, valid until the following call.
func (p *rpzParser) nextLine() (number int, text []byte, tooLong, ok bool) {
	if len(p.requeued) > 0 {
		l := p.requeued[0]
		p.requeued = p.requeued[1:]
		return l.number, []byte(l.text), false, true
	}
	raw, tooLong, ok := p.lr.next()
	if !ok {
		return 0, nil, false, false
	}
	return p.lr.line, raw, tooLong, true
}

// run splits the zone into records, which may span lines inside
// parentheses, and parses each.
func (p *rpzParser) run() error {
	for {
		record, err := p.readRecords()
		if err != nil || len(record) == 0 {
			return err
		}
		p.abandon(record, "missing ')' before the end of the zone")
	}
}

// readRecords parses records until the input ends and returns the lines of
// a record still open at the end.
func (p *rpzParser) readRecords() ([]zoneLine, error) {
	var record []zoneLine
	depth := 0
	for {
		number, raw, tooLong, ok := p.nextLine()
		if !ok {
			return record, nil
		}
		if tooLong {
			if len(record) > 0 {
				p.b.bad(record[0].number, []byte(record[0].text), fmt.Sprintf("line %d of the record is longer than the maximum line length", number))
				record, depth = record[:0], 0
			}
			p.b.bad(number, raw, reasonLineTooLong)
			continue
		}
		if len(record) == 0 && p.fastRecord(raw, number) {
			continue
		}
		text := string(raw)
		newDepth, content := scanZoneLine(text, depth)
		if len(record) == 0 && !content && newDepth == 0 {
			p.b.res.Comments++
			continue
		}
		record = append(record, zoneLine{number, text})
		depth = newDepth
		switch {
		case depth < 0:
			p.b.bad(record[0].number, []byte(record[0].text), "unbalanced ')'")
			record, depth = record[:0], 0
		case depth == 0:
			if err := p.parseRecord(record); err != nil {
				return nil, err
			}
			record = record[:0]
		case len(record) >= maxRecordLines:
			p.abandon(record, fmt.Sprintf("missing ')': the record is still open after %d lines", maxRecordLines))
			record, depth = nil, 0
		}
	}
}

// abandon reports the first line of an unterminated record as malformed and
// queues the others to be read again.
func (p *rpzParser) abandon(record []zoneLine, reason string) {
	p.b.bad(record[0].number, []byte(record[0].text), reason)
	p.requeued = append(append([]zoneLine(nil), record[1:]...), p.requeued...)
}

// scanZoneLine returns the parenthesis depth after text, given the depth
// before it, and whether the line has anything besides blanks and a comment.
// It returns a negative depth for an unbalanced ")".
func scanZoneLine(text string, depth int) (int, bool) {
	content, quoted := false, false
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c == '\\':
			i++
			content = true
		case quoted:
			if c == '"' {
				quoted = false
			}
		case c == '"':
			quoted, content = true, true
		case c == ';':
			return depth, content
		case c == '(':
			depth++
			content = true
		case c == ')':
			depth--
			content = true
			if depth < 0 {
				return depth, content
			}
		case c == ' ' || c == '\t':
		default:
			content = true
		}
	}
	return depth, content
}

// base returns the name that relative names in the zone are relative to.
func (p *rpzParser) base() string {
	switch {
	case p.origin != "":
		return p.origin
	case p.apex != "":
		return p.apex
	}
	return "."
}

func (p *rpzParser) parseRecord(record []zoneLine) error {
	first := record[0]
	text := first.text
	if len(record) > 1 {
		lines := make([]string, len(record))
		for i, l := range record {
			lines[i] = l.text
		}
		text = strings.Join(lines, "\n")
	}

	trimmed := strings.TrimLeft(text, " \t")
	if strings.HasPrefix(trimmed, "$") {
		p.directive(first, trimmed)
		return nil
	}
	if len(trimmed) < len(text) {
		// A record that starts with a blank belongs to the previous owner.
		if p.prevOwner == "" && p.fastOwner != nil {
			p.prevOwner = p.fastOwnerName()
		}
		if p.prevOwner == "" {
			p.b.bad(first.number, []byte(first.text), "record without an owner name follows no other record")
			return nil
		}
		text = p.prevOwner + text
	}

	rr := p.parseActionCNAME(text)
	var reason string
	if rr == nil {
		rr, reason = p.parseRR(text)
	}
	if reason != "" {
		p.b.bad(first.number, []byte(first.text), reason)
		return nil
	}
	p.recordSeen = true
	p.prevOwner, p.fastOwner = rr.Header().Name, nil
	p.updateTTL(rr)

	if rr.Header().Rrtype == dns.TypeSOA {
		p.soa(first, rr)
		return nil
	}
	if p.apex == "" {
		return fmt.Errorf("line %d: RPZ zone has a record before its SOA record and no $ORIGIN: move the SOA record first or set the zone name in the options", first.number)
	}
	p.policyRecord(first, rr)
	return nil
}

// policyTargets are the CNAME targets that select an action other than
// LocalData, in canonical form.
var policyTargets = map[string]string{
	".":             ".",
	"*.":            "*.",
	"rpz-passthru.": "rpz-passthru.",
	"rpz-drop.":     "rpz-drop.",
	"rpz-tcp-only.": "rpz-tcp-only.",
}

// disableActionCNAME turns parseActionCNAME off, for tests that compare it
// with the zone parser.
var disableActionCNAME = false

// parseActionCNAME parses the most common policy record, "owner [IN] CNAME
// target" with one of the policyTargets, without the zone parser of
// miekg/dns: that saves about 1 us per record in BenchmarkParseRPZ. It
// returns nil for any other text, which parseRR then reads.
func (p *rpzParser) parseActionCNAME(text string) dns.RR {
	if disableActionCNAME || strings.ContainsAny(text, "\\\"();@$\n") {
		return nil
	}
	// The zone parser splits fields on spaces and tabs only: other
	// control bytes, such as a form feed, and non-ASCII text take the
	// slow path so that both read the line alike.
	for i := 0; i < len(text); i++ {
		if c := text[i]; c < ' ' && c != '\t' || c >= 0x7f {
			return nil
		}
	}
	var fields [5]string
	n := 0
	for field := range strings.FieldsSeq(text) {
		if n == len(fields) {
			return nil
		}
		fields[n] = field
		n++
	}
	switch {
	case n == 4 && strings.EqualFold(fields[1], "IN"):
	case n != 3:
		return nil
	}
	target, ok := policyTargets[strings.ToLower(fields[n-1])]
	if !ok || !strings.EqualFold(fields[n-2], "CNAME") {
		return nil
	}
	owner := fields[0]
	if !dns.IsFqdn(owner) {
		owner = owner + "." + strings.TrimPrefix(p.base(), ".")
	}
	if _, ok := dns.IsDomainName(owner); !ok {
		return nil
	}
	return &dns.CNAME{
		Hdr:    dns.RR_Header{Name: owner, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: p.ttl},
		Target: target,
	}
}

// parseRR parses one record with the zone parser of miekg/dns.
func (p *rpzParser) parseRR(text string) (dns.RR, string) {
	zp := dns.NewZoneParser(strings.NewReader(text), p.base(), "")
	// A zero default marks a record without a TTL when there is no $TTL
	// and no previous record: updateTTL then takes the SOA minimum.
	zp.SetDefaultTTL(p.ttl)
	rr, ok := zp.Next()
	if !ok {
		if err := zp.Err(); err != nil {
			return nil, zoneErrorReason(err)
		}
		return nil, "no record on the line"
	}
	if _, more := zp.Next(); more {
		return nil, "more than one record"
	}
	if c := rr.Header().Class; c != dns.ClassINET {
		return nil, fmt.Sprintf("class %s: policy zones hold class IN records only", dns.Class(c))
	}
	return rr, ""
}

// zoneErrorReason returns the message of a miekg/dns parse error without the
// "dns: " prefix and the position, which is that of the one-record input.
func zoneErrorReason(err error) string {
	msg := strings.TrimPrefix(err.Error(), "dns: ")
	if i := strings.LastIndex(msg, " at line: "); i >= 0 {
		msg = msg[:i]
	}
	return msg
}

// updateTTL keeps the default TTL for records that give none. In a zone
// with no $TTL and no TTL on the SOA record, the SOA minimum field is the
// default.
func (p *rpzParser) updateTTL(rr dns.RR) {
	h := rr.Header()
	if soa, ok := rr.(*dns.SOA); ok && !p.ttlKnown && h.Ttl == 0 {
		h.Ttl = soa.Minttl
	}
	if !p.ttlByDirective {
		p.ttl, p.ttlKnown = h.Ttl, true
	}
}

func (p *rpzParser) directive(first zoneLine, text string) {
	if i := strings.IndexByte(text, ';'); i >= 0 {
		text = text[:i]
	}
	fields := strings.Fields(text)
	bad := func(reason string) { p.b.bad(first.number, []byte(first.text), reason) }
	switch name := strings.ToUpper(fields[0]); name {
	case "$ORIGIN":
		if len(fields) != 2 {
			bad("$ORIGIN takes one domain name")
			return
		}
		origin := fields[1]
		if !dns.IsFqdn(origin) {
			origin = dns.Fqdn(origin) + strings.TrimPrefix(p.base(), ".")
		}
		if _, ok := dns.IsDomainName(origin); !ok {
			bad("invalid $ORIGIN name")
			return
		}
		p.origin = origin
		if !p.recordSeen {
			p.apex = dns.CanonicalName(origin)
		}
	case "$TTL":
		if len(fields) != 2 {
			bad("$TTL takes one TTL value")
			return
		}
		ttl, ok := parseTTL(fields[1])
		if !ok {
			bad("invalid $TTL value " + quoteField([]byte(fields[1])))
			return
		}
		p.ttl, p.ttlKnown, p.ttlByDirective = ttl, true, true
	case "$INCLUDE":
		bad("$INCLUDE is not allowed: a policy zone must be a single file")
	case "$GENERATE":
		bad("$GENERATE is not supported")
	default:
		bad("unknown directive " + quoteField([]byte(fields[0])))
	}
}

// parseTTL reads a TTL in seconds or in the BIND form with units, such as
// "1h30m" or "2D".
func parseTTL(s string) (uint32, bool) {
	var total, value uint64
	digits := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if '0' <= c && c <= '9' {
			value = value*10 + uint64(c-'0')
			digits = true
			if value > 1<<32 {
				return 0, false
			}
			continue
		}
		if !digits {
			return 0, false
		}
		var unit uint64
		switch c | 0x20 {
		case 's':
			unit = 1
		case 'm':
			unit = 60
		case 'h':
			unit = 3600
		case 'd':
			unit = 86400
		case 'w':
			unit = 604800
		default:
			return 0, false
		}
		total += value * unit
		value, digits = 0, false
		if total >= 1<<32 {
			return 0, false
		}
	}
	total += value
	if s == "" || total >= 1<<32 {
		return 0, false
	}
	return uint32(total), true
}

func (p *rpzParser) soa(first zoneLine, rr dns.RR) {
	owner := dns.CanonicalName(rr.Header().Name)
	switch {
	case p.soaLine != 0:
		p.b.bad(first.number, []byte(first.text), fmt.Sprintf("second SOA record: the first is on line %d", p.soaLine))
		return
	case p.apex == "":
		p.apex = owner
	case owner != p.apex:
		p.b.bad(first.number, []byte(first.text), fmt.Sprintf("SOA record owner %s is not the zone name %s", owner, p.apex))
		return
	}
	p.soaLine = first.number
}

// isDNSSECType reports whether t is a DNSSEC record type, found in signed
// policy zones but never a policy.
func isDNSSECType(t uint16) bool {
	switch t {
	case dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3, dns.TypeNSEC3PARAM,
		dns.TypeDNSKEY, dns.TypeCDS, dns.TypeCDNSKEY, dns.TypeZONEMD:
		return true
	}
	return false
}

// policyRecord turns a record other than the SOA into a rule, or adds it to
// the rule of its owner.
func (p *rpzParser) policyRecord(first zoneLine, rr dns.RR) {
	bad := func(reason string) { p.b.bad(first.number, []byte(first.text), reason) }
	h := rr.Header()
	owner := dns.CanonicalName(h.Name)
	if !dns.IsSubDomain(p.apex, owner) {
		bad(fmt.Sprintf("owner %s is outside the zone %s", owner, p.apex))
		return
	}
	below := dns.CountLabel(owner) - dns.CountLabel(p.apex)
	if below == 0 || isDNSSECType(h.Rrtype) {
		// The apex NS records belong to the zone itself, and no other apex
		// record or DNSSEC record is a policy.
		if below != 0 || h.Rrtype != dns.TypeNS {
			p.b.res.Unsupported++
		}
		return
	}
	// trigger is the owner without the zone name, such as "bad.example." or
	// "32.4.3.2.1.rpz-ip.".
	trigger := owner
	if offsets := dns.Split(owner); below < len(offsets) {
		trigger = owner[:offsets[below]]
	}
	rule, reason := parseTriggerOwner(trigger)
	if reason != "" {
		bad(reason)
		return
	}
	rule.Line = first.number

	rule.Action = LocalData
	if cname, ok := rr.(*dns.CNAME); ok {
		target := dns.CanonicalName(cname.Target)
		switch target {
		case ".":
			rule.Action = NXDomain
		case "*.":
			rule.Action = NoData
		case "rpz-passthru.":
			rule.Action = Passthru
		case "rpz-drop.":
			rule.Action = Drop
		case "rpz-tcp-only.":
			rule.Action = TCPOnly
		case trigger:
			// The older PASSTHRU encoding that the BIND 9 manual gave in
			// 2011: a CNAME to the owner name without the zone name.
			rule.Action = Passthru
		default:
			if dns.CountLabel(target) == 1 && strings.HasPrefix(target, "rpz-") {
				// Another policy name, such as BIND's rpz-skipzone., which
				// has no Action here.
				p.b.res.Unsupported++
				return
			}
		}
	}
	if rule.Action == LocalData {
		h.Name = dataOwner(rule, trigger)
	}

	p.addRule(rule, owner, rr, func(reason string) { p.b.bad(first.number, []byte(first.text), reason) })
}

// addRule stores the rule read from rr, or adds rr to the rule of its
// owner. rr is nil for a rule from fastRecord. bad reports the line as
// malformed.
func (p *rpzParser) addRule(rule Rule, owner string, rr dns.RR, bad func(reason string)) {
	prev, seen := p.owners[owner]
	if !seen {
		switch {
		case rule.Action != LocalData && p.b.streaming():
			p.b.send(&rule)
		case rule.Action == LocalData:
			rule.Data = []dns.RR{rr}
			fallthrough
		default:
			p.owners[owner] = p.b.appendRule(rule)
		}
		return
	}
	switch {
	case rule.Action != LocalData && rule.Action == prev.Action:
		p.b.res.Duplicates++
	case rule.Action != LocalData || prev.Action != LocalData:
		bad(fmt.Sprintf("conflicting policy for %s: line %d sets %s", owner, prev.Line, prev.Action))
	case containsDuplicate(prev.Data, rr):
		p.b.res.Duplicates++
	case rr.Header().Rrtype == dns.TypeCNAME || prev.Data[0].Header().Rrtype == dns.TypeCNAME:
		bad(fmt.Sprintf("CNAME and other records at %s, which line %d starts", owner, prev.Line))
	default:
		prev.Data = append(prev.Data, rr)
	}
}

func containsDuplicate(rrs []dns.RR, rr dns.RR) bool {
	for _, r := range rrs {
		if dns.IsDuplicate(r, rr) {
			return true
		}
	}
	return false
}

// dataOwner returns the owner given to the local data records of rule.
func dataOwner(rule Rule, trigger string) string {
	switch {
	case rule.Name == "":
		return trigger
	case !rule.Wildcard:
		return rule.Name
	case rule.Name == ".":
		return "*."
	}
	return "*." + rule.Name
}

// parseTriggerOwner reads the trigger, name or prefix, and flags from an
// owner name without the zone name.
func parseTriggerOwner(trigger string) (Rule, string) {
	labels := dns.SplitDomainName(trigger)
	last := labels[len(labels)-1]
	var r Rule
	switch last {
	case labelResponseIP, labelClientIP, labelNSIP:
		switch last {
		case labelResponseIP:
			r.Trigger = ResponseIP
		case labelClientIP:
			r.Trigger = ClientIP
		default:
			r.Trigger = NSIP
		}
		prefix, reason := parseRPZAddress(labels[:len(labels)-1])
		if reason != "" {
			return r, reason + " in " + last + " owner"
		}
		r.Prefix = prefix
		return r, ""
	case labelNSDName:
		r.Trigger = NSDName
		labels = labels[:len(labels)-1]
		if len(labels) == 0 {
			return r, "missing server name before rpz-nsdname"
		}
	default:
		r.Trigger = QName
	}
	if labels[0] == "*" {
		r.Wildcard = true
		labels = labels[1:]
		if len(labels) == 0 {
			r.Name = "."
			return r, ""
		}
	}
	name, reason := canonicalName([]byte(strings.Join(labels, ".")))
	if reason != "" {
		return r, reason
	}
	r.Name = name
	return r, ""
}
