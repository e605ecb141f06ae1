package policy

import (
	"net/netip"
	"testing"
)

// rpzList returns a list whose verdicts are 0 NXDomain, 1 NoData, 2 Drop
// and 3 Allow, with client-IP and server triggers.
func rpzList(name string, main, clients, servers []Rule) *List {
	l := &List{Name: name, Category: CategoryMalware,
		Verdicts: []Verdict{{Action: NXDomain}, {Action: NoData}, {Action: Drop}, {Action: Allow}},
		Set:      Compile(main)}
	if clients != nil {
		l.Clients = Compile(clients)
	}
	if servers != nil {
		l.Servers = Compile(servers)
	}
	return l
}

func TestCheckQueryPrecedence(t *testing.T) {
	first := rpzList("first",
		[]Rule{{Name: "q.example.", Match: Exact, Verdict: 1}},
		[]Rule{{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Verdict: 2}}, nil)
	second := rpzList("second",
		[]Rule{{Name: "other.example.", Match: Exact}},
		[]Rule{{Prefix: netip.MustParsePrefix("198.51.100.7/32")}}, nil)
	f := NewFlavour("test", []*List{first, second})
	for _, tt := range []struct {
		client, name string
		list         string
		kind         Kind
		action       Action
	}{
		{"192.0.2.9", "q.example.", "first", KindClientIP, Drop}, // client-IP before QNAME
		{"203.0.113.1", "q.example.", "first", KindQName, NoData},
		{"198.51.100.7", "q.example.", "first", KindQName, NoData}, // the first list wins
		{"198.51.100.7", "fine.example.", "second", KindClientIP, NXDomain},
		{"", "other.example.", "second", KindQName, NXDomain},
	} {
		var client netip.Addr
		if tt.client != "" {
			client = netip.MustParseAddr(tt.client)
		}
		d, ok := f.CheckQuery(client, tt.name)
		if !ok {
			t.Errorf("CheckQuery(%s, %s) matched nothing, want list %s", tt.client, tt.name, tt.list)
			continue
		}
		if d.List.Name != tt.list || d.Kind != tt.kind || d.Verdict.Action != tt.action {
			t.Errorf("CheckQuery(%s, %s) = list %s, %s, %s; want %s, %s, %s", tt.client, tt.name,
				d.List.Name, d.Kind, d.Verdict.Action, tt.list, tt.kind, tt.action)
		}
	}
	if d, ok := f.CheckQuery(netip.MustParseAddr("203.0.113.1"), "fine.example."); ok {
		t.Errorf("clean query matched list %s", d.List.Name)
	}
}

func TestCheckResponsePrecedence(t *testing.T) {
	first := rpzList("first", []Rule{{Prefix: netip.MustParsePrefix("192.0.2.66/32"), Verdict: 1}}, nil,
		[]Rule{{Name: "ns.evil.example.", Match: Exact}, {Prefix: netip.MustParsePrefix("203.0.113.0/24"), Verdict: 2}})
	second := rpzList("second", []Rule{{Name: "target.example.", Match: Exact | Below}}, nil,
		[]Rule{{Name: "hoster.example.", Match: Below, Verdict: 1}})
	f := NewFlavour("test", []*List{first, second})
	servers := func(names []string, addrs ...string) func() ([]string, []netip.Addr) {
		return func() ([]string, []netip.Addr) {
			var a []netip.Addr
			for _, s := range addrs {
				a = append(a, netip.MustParseAddr(s))
			}
			return names, a
		}
	}
	for _, tt := range []struct {
		name   string
		resp   Response
		list   string
		kind   Kind
		action Action
	}{
		{"address", Response{Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.66")}}, "first", KindResponseIP, NoData},
		{"address before target of a later list", Response{Targets: []string{"x.target.example."},
			Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.66")}}, "first", KindResponseIP, NoData},
		{"server name", Response{Servers: servers([]string{"ns.evil.example."})}, "first", KindNSDName, NXDomain},
		{"server address", Response{Servers: servers([]string{"ns.fine.example."}, "203.0.113.5")}, "first", KindNSIP, Drop},
		{"server name before address", Response{Servers: servers([]string{"ns.evil.example."}, "203.0.113.5")}, "first", KindNSDName, NXDomain},
		{"wildcard server name", Response{Servers: servers([]string{"ns1.hoster.example."})}, "second", KindNSDName, NoData},
		{"target", Response{Targets: []string{"target.example."}}, "second", KindQName, NXDomain},
	} {
		d, ok := f.CheckResponse(tt.resp)
		if !ok {
			t.Errorf("%s: nothing matched, want list %s", tt.name, tt.list)
			continue
		}
		if d.List.Name != tt.list || d.Kind != tt.kind || d.Verdict.Action != tt.action {
			t.Errorf("%s: list %s, %s, %s; want %s, %s, %s", tt.name, d.List.Name, d.Kind, d.Verdict.Action, tt.list, tt.kind, tt.action)
		}
	}
	calls := 0
	clean := Response{Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}, Servers: func() ([]string, []netip.Addr) {
		calls++
		return []string{"ns.fine.example."}, nil
	}}
	if d, ok := f.CheckResponse(clean); ok {
		t.Errorf("clean response matched list %s", d.List.Name)
	}
	if calls != 1 {
		t.Errorf("Servers called %d times, want once", calls)
	}
}

func TestCheckResponseSkipsServersWithoutTriggers(t *testing.T) {
	f := NewFlavour("test", []*List{rpzList("plain", []Rule{{Name: "a.example.", Match: Exact}}, nil, nil)})
	called := false
	f.CheckResponse(Response{Servers: func() ([]string, []netip.Addr) { called = true; return nil, nil }})
	if called {
		t.Error("Servers was called for a flavour without NSDNAME or NSIP triggers")
	}
}

func TestImportantRules(t *testing.T) {
	l := &List{Name: "adguard", Category: CategoryAds, Verdicts: []Verdict{{Action: NXDomain}},
		Set: Compile([]Rule{
			{Name: "a.example.", Match: Exact | Below},
			{Name: "sub.a.example.", Match: Exact | Below},
			{Name: "b.example.", Match: Exact | Below},
		}),
		Important: Compile([]Rule{{Name: "a.example.", Match: Exact | Below}}),
		Exceptions: Compile([]Rule{
			{Name: "sub.a.example.", Match: Exact | Below},
			{Name: "b.example.", Match: Exact | Below},
			{Name: "vip.a.example.", Match: Exact | Below, Verdict: ImportantException},
		}),
	}
	f := NewFlavour("test", []*List{l})
	for _, tt := range []struct {
		name    string
		blocked bool
		trigger string
	}{
		{"x.sub.a.example.", true, "*.a.example."}, // the important rule beats the exception
		{"a.example.", true, "a.example."},
		{"vip.a.example.", false, ""}, // an important exception beats it
		{"x.b.example.", false, ""},   // an ordinary exception beats an ordinary rule
	} {
		d, ok := f.CheckName(tt.name)
		if ok != tt.blocked {
			t.Errorf("%s: matched %v, want %v", tt.name, ok, tt.blocked)
			continue
		}
		if ok && d.Trigger != tt.trigger {
			t.Errorf("%s: trigger %s, want %s", tt.name, d.Trigger, tt.trigger)
		}
	}
}
