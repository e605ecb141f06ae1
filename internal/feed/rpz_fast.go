package feed

import "bytes"

// fastBytes are the bytes fastRecord accepts on a line: letters, digits,
// hyphen, underscore, dot, asterisk, space and tab. A line with any other
// byte, such as a comment, a quote, an escape or a parenthesis, takes the
// general path.
var fastBytes = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-_.* \t" {
		t[c] = true
	}
	return t
}()

// fastTargets are the CNAME targets that select an action other than
// LocalData, as in policyTargets.
var fastTargets = [...]struct {
	target []byte
	action Action
}{
	{[]byte("."), NXDomain},
	{[]byte("*."), NoData},
	{[]byte("rpz-passthru."), Passthru},
	{[]byte("rpz-drop."), Drop},
	{[]byte("rpz-tcp-only."), TCPOnly},
}

// maxFastTTLDigits keeps TTLs that fastRecord reads below 2^31, where the
// zone parser of miekg/dns and parseTTL agree.
const maxFastTTLDigits = 9

// fastRecord reads the line that makes up nearly all of a large policy
// zone, "owner [ttl] [class] CNAME action" with a QNAME trigger, without
// building a dns.RR or any string but the rule's name. It reports false,
// having changed nothing, for every other line, which the general path then
// reads. For a line it accepts, the result is the one the general path
// gives: compareActionCNAME, run by FuzzParseRPZ, checks that.
func (p *rpzParser) fastRecord(text []byte, number int) bool {
	if disableActionCNAME || p.apex == "" || p.apex == "." || len(text) == 0 {
		return false
	}
	if text[0] == ' ' || text[0] == '\t' || !bytes.EqualFold([]byte(p.base()), []byte(p.apex)) {
		return false
	}
	for _, c := range text {
		if !fastBytes[c] {
			return false
		}
	}
	var fields [5][]byte
	n := 0
	for rest := text; ; {
		rest = bytes.TrimLeft(rest, " \t")
		if len(rest) == 0 {
			break
		}
		if n == len(fields) {
			return false
		}
		end := bytes.IndexAny(rest, " \t")
		if end < 0 {
			end = len(rest)
		}
		fields[n], rest = rest[:end], rest[end:]
		n++
	}
	if n < 3 || !bytes.EqualFold(fields[n-2], []byte("CNAME")) {
		return false
	}
	action := Action(0)
	for _, t := range fastTargets {
		if bytes.EqualFold(fields[n-1], t.target) {
			action = t.action
		}
	}
	if action == 0 {
		return false
	}
	ttl, hasTTL, ok := fastTTLAndClass(fields[1 : n-2])
	if !ok {
		return false
	}
	rule, ok := p.fastTrigger(fields[0])
	if !ok {
		return false
	}

	p.recordSeen = true
	p.prevOwner, p.fastOwner = "", append(p.fastOwner[:0], fields[0]...)
	if !p.ttlByDirective {
		if hasTTL {
			p.ttl = ttl
		}
		p.ttlKnown = true
	}
	rule.Action, rule.Line = action, number
	owner := ""
	if !p.b.streaming() || len(p.owners) > 0 {
		owner = rule.Name + p.apex
		if rule.Wildcard {
			owner = "*." + owner
		}
	}
	p.addRule(rule, owner, nil, func(reason string) { p.b.bad(number, text, reason) })
	return true
}

// fastTTLAndClass reads the fields between the owner and the type: at most
// one TTL in seconds and one class IN, in either order.
func fastTTLAndClass(fields [][]byte) (ttl uint32, hasTTL, ok bool) {
	hasClass := false
	for _, f := range fields {
		switch {
		case bytes.EqualFold(f, []byte("IN")) && !hasClass:
			hasClass = true
		case f[0] >= '0' && f[0] <= '9' && !hasTTL && len(f) <= maxFastTTLDigits:
			for _, c := range f {
				if c < '0' || c > '9' {
					return 0, false, false
				}
				ttl = ttl*10 + uint32(c-'0')
			}
			hasTTL = true
		default:
			return 0, false, false
		}
	}
	return ttl, hasTTL, true
}

// fastTrigger reads a QNAME trigger owner, relative to the apex or ending
// with it.
func (p *rpzParser) fastTrigger(owner []byte) (Rule, bool) {
	trigger := owner
	if owner[len(owner)-1] == '.' {
		// An absolute owner: strip ".apex.".
		suffix := len(owner) - len(p.apex)
		if suffix < 2 || owner[suffix-1] != '.' || !bytes.EqualFold(owner[suffix:], []byte(p.apex)) {
			return Rule{}, false
		}
		trigger = owner[:suffix-1]
	}
	// The owner in wire form, trigger plus apex, must fit in 255 bytes.
	if len(trigger)+1+len(p.apex) > 254 {
		return Rule{}, false
	}
	// Address and server-name triggers end in rpz- labels.
	if containsFold(trigger, "rpz-") {
		return Rule{}, false
	}
	var r Rule
	if trigger[0] == '*' {
		if len(trigger) < 3 || trigger[1] != '.' {
			return Rule{}, false
		}
		r.Wildcard = true
		trigger = trigger[2:]
	}
	if bytes.IndexByte(trigger, '*') >= 0 || checkASCIIName(trigger) != "" {
		return Rule{}, false
	}
	p.name = append(p.name[:0], trigger...)
	for i, c := range p.name {
		if 'A' <= c && c <= 'Z' {
			p.name[i] = c + 'a' - 'A'
		}
	}
	p.name = append(p.name, '.')
	r.Trigger, r.Name = QName, string(p.name)
	return r, true
}

// containsFold reports whether s contains the lower-case ASCII text sub in
// any letter case.
func containsFold(s []byte, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if bytes.EqualFold(s[i:i+len(sub)], []byte(sub)) {
			return true
		}
	}
	return false
}

// fastOwnerName returns the absolute owner of the last record that
// fastRecord read.
func (p *rpzParser) fastOwnerName() string {
	if n := len(p.fastOwner); n > 0 && p.fastOwner[n-1] == '.' {
		return string(p.fastOwner)
	}
	return string(p.fastOwner) + "." + p.apex
}
