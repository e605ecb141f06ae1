package policy

import (
	"net/netip"
	"strings"
)

// Kind is the type of a trigger, named as in RPZ.
type Kind uint8

// Trigger kinds, in the order RPZ gives them precedence within one list.
const (
	KindClientIP Kind = iota + 1
	KindQName
	KindResponseIP
	KindNSDName
	KindNSIP
)

var kindNames = [...]string{KindClientIP: "client-ip", KindQName: "qname", KindResponseIP: "response-ip", KindNSDName: "nsdname", KindNSIP: "nsip"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "unknown"
}

// HasClientRules reports whether a list of the flavour has client-IP
// triggers.
func (f *Flavour) HasClientRules() bool { return f != nil && f.clientRules }

// HasServerRules reports whether a list of the flavour has NSDNAME or NSIP
// triggers, which need the servers of the zones of an answer.
func (f *Flavour) HasServerRules() bool {
	if f == nil {
		return false
	}
	for _, l := range f.lists {
		if l.Servers != nil {
			return true
		}
	}
	return false
}

// ClientRule returns the first list of the flavour with a client-IP trigger
// that matches client, by its index in Lists, and the trigger's verdict.
func (f *Flavour) ClientRule(client netip.Addr) (list int, verdict uint32, ok bool) {
	if !f.HasClientRules() || !client.IsValid() {
		return 0, 0, false
	}
	for i, l := range f.lists {
		if l.Clients == nil {
			continue
		}
		if v, _, hit := l.Clients.MatchAddr(client); hit {
			return i, v, true
		}
	}
	return 0, 0, false
}

// Response holds the parts of a resolved response that lists check.
type Response struct {
	// Targets are the CNAME and DNAME targets of the answer.
	Targets []string
	// Addrs are the addresses of the A and AAAA records of the answer.
	Addrs []netip.Addr
	// Servers returns the names and addresses of the authoritative servers
	// of the query name and of each target. It is called at most once, and
	// only when a list of the flavour has NSDNAME or NSIP triggers.
	Servers func() (names []string, addrs []netip.Addr)
}

// CheckQuery checks what is known before resolution, the client's address
// and the query name, against the flavour's lists. The first list that
// matches decides; within a list a client-IP trigger comes before a QNAME
// trigger. client may be the zero Addr, which matches no client-IP
// trigger.
//
// A QNAME match in a later list is applied without resolving the name
// first, even when an earlier list has response-IP or server triggers that
// the answer might match: the query then never reaches the listed name's
// servers. This is BIND's qname-wait-recurse no.
func (f *Flavour) CheckQuery(client netip.Addr, name string) (Decision, bool) {
	if f.Empty() {
		return Decision{}, false
	}
	for _, l := range f.lists {
		if l.Clients != nil && client.IsValid() {
			if v, matched, hit := l.Clients.MatchAddr(client); hit {
				return Decision{List: l, Verdict: l.verdict(v), Trigger: matched.String(), Kind: KindClientIP}, true
			}
		}
		if d, ok := l.checkName(name); ok {
			return d, true
		}
	}
	return Decision{}, false
}

// CheckResponse checks a resolved response against the flavour's lists.
// The first list that matches decides; within a list the order is QNAME
// triggers on the targets, response-IP, NSDNAME, then NSIP.
func (f *Flavour) CheckResponse(r Response) (Decision, bool) {
	if f.Empty() {
		return Decision{}, false
	}
	var serverNames []string
	var serverAddrs []netip.Addr
	fetched := false
	for _, l := range f.lists {
		for _, t := range r.Targets {
			if d, ok := l.checkName(t); ok {
				return d, true
			}
		}
		for _, a := range r.Addrs {
			if v, matched, hit := l.Set.MatchAddr(a); hit {
				return Decision{List: l, Verdict: l.verdict(v), Trigger: matched.String(), Kind: KindResponseIP}, true
			}
		}
		if l.Servers == nil || r.Servers == nil {
			continue
		}
		if !fetched {
			serverNames, serverAddrs = r.Servers()
			fetched = true
		}
		for _, n := range serverNames {
			if v, matched, hit := l.Servers.MatchName(n); hit {
				trigger := matched
				if !strings.EqualFold(matched, n) {
					trigger = "*." + matched
				}
				return Decision{List: l, Verdict: l.verdict(v), Trigger: trigger, Kind: KindNSDName}, true
			}
		}
		for _, a := range serverAddrs {
			if v, matched, hit := l.Servers.MatchAddr(a); hit {
				return Decision{List: l, Verdict: l.verdict(v), Trigger: matched.String(), Kind: KindNSIP}, true
			}
		}
	}
	return Decision{}, false
}
