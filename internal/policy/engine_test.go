package policy

import (
	"net/netip"
	"testing"
)

func list(name, category string, action Action, rules ...Rule) *List {
	return &List{Name: name, Category: category, Verdicts: []Verdict{{Action: action}, {Action: NoData}}, Set: Compile(rules)}
}

func TestFlavourPrecedence(t *testing.T) {
	malware := list("malware", CategoryMalware, NXDomain,
		Rule{Name: "bad.example.", Match: Exact | Below},
		Rule{Name: "nodata.example.", Match: Exact, Verdict: 1},
		Rule{Prefix: netip.MustParsePrefix("192.0.2.66/32")})
	ads := list("ads", CategoryAds, Redirect, Rule{Name: "ads.example.", Match: Exact | Below},
		Rule{Name: "bad.example.", Match: Exact | Below})
	allow := list("allow", CategoryMalware, Allow, Rule{Name: "good.bad.example.", Match: Exact | Below})
	f := NewFlavour("test", []*List{malware, ads, allow})

	for _, tt := range []struct {
		name    string
		list    string
		action  Action
		trigger string
		ok      bool
	}{
		{"www.bad.example.", "malware", NXDomain, "*.bad.example.", true}, // first list wins
		{"good.bad.example.", "allow", Allow, "good.bad.example.", true},  // allowlists first
		{"x.good.bad.example.", "allow", Allow, "*.good.bad.example.", true},
		{"nodata.example.", "malware", NoData, "nodata.example.", true},
		{"t.ads.example.", "ads", Redirect, "*.ads.example.", true},
		{"fine.example.", "", 0, "", false},
	} {
		d, ok := f.CheckName(tt.name)
		if ok != tt.ok {
			t.Errorf("CheckName(%q) ok %v, want %v", tt.name, ok, tt.ok)
			continue
		}
		if !ok {
			continue
		}
		if d.List.Name != tt.list || d.Verdict.Action != tt.action || d.Trigger != tt.trigger {
			t.Errorf("CheckName(%q) = list %s, %s, trigger %s; want %s, %s, %s", tt.name, d.List.Name, d.Verdict.Action, d.Trigger, tt.list, tt.action, tt.trigger)
		}
		if d.Blocked() != (tt.action != Allow) {
			t.Errorf("CheckName(%q).Blocked() = %v", tt.name, d.Blocked())
		}
	}
	if d, ok := f.CheckAddr(netip.MustParseAddr("192.0.2.66")); !ok || d.List.Name != "malware" || d.Trigger != "192.0.2.66/32" {
		t.Errorf("CheckAddr = %+v %v, want malware's 192.0.2.66/32", d, ok)
	}
	if _, ok := f.CheckAddr(netip.MustParseAddr("192.0.2.67")); ok {
		t.Error("CheckAddr matched an unlisted address")
	}
}

func TestEmptyFlavour(t *testing.T) {
	var f *Flavour
	if _, ok := f.CheckName("bad.example."); ok || !f.Empty() {
		t.Error("nil flavour matched or is not empty")
	}
	if !NewFlavour("unfiltered", nil).Empty() {
		t.Error("flavour without lists is not empty")
	}
}

func TestSnapshotIDs(t *testing.T) {
	s := NewSnapshot(3, []*Flavour{NewFlavour("unfiltered", nil), NewFlavour("protective", nil)})
	if id, ok := s.ID("protective"); !ok || s.Flavour(id).Name != "protective" {
		t.Errorf("ID(protective) = %d %v", id, ok)
	}
	if _, ok := s.ID("nope"); ok {
		t.Error("unknown flavour has an id")
	}
	if s.Flavour(9) != nil {
		t.Error("out-of-range id gave a flavour")
	}
}

func TestParseAction(t *testing.T) {
	for a, name := range actionNames {
		if got, ok := ParseAction(name); !ok || got != a {
			t.Errorf("ParseAction(%q) = %v %v", name, got, ok)
		}
	}
	if _, ok := ParseAction("block"); ok {
		t.Error("ParseAction accepted an unknown action")
	}
}

func TestClientFlavour(t *testing.T) {
	s := NewSnapshot(1, []*Flavour{NewFlavour("unfiltered", nil), NewFlavour("protective", nil), NewFlavour("child", nil)})
	s.SetClients([]ClientRule{
		{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Flavour: "protective"},
		{Prefix: netip.MustParsePrefix("10.1.0.0/16"), Flavour: "child"},
		{Prefix: netip.MustParsePrefix("2001:db8::/32"), Flavour: "child"},
		{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Flavour: "missing"},
	})
	for _, tt := range []struct {
		addr string
		want uint8
	}{
		{"10.2.3.4", 1},
		{"10.1.3.4", 2},
		{"2001:db8::5", 2},
		{"192.0.2.1", 0}, // the rule names no known flavour
		{"172.16.0.1", 0},
		{"::ffff:10.1.0.1", 2},
	} {
		if got := s.ClientFlavour(netip.MustParseAddr(tt.addr), 0); got != tt.want {
			t.Errorf("ClientFlavour(%s) = %d, want %d", tt.addr, got, tt.want)
		}
	}
	var none *Snapshot
	if got := none.ClientFlavour(netip.MustParseAddr("10.1.0.1"), 3); got != 3 {
		t.Errorf("nil snapshot: %d, want the listener's 3", got)
	}
}

func TestLawfulBeforeAllowlists(t *testing.T) {
	court := list("court", CategoryLawful, NXDomain, Rule{Name: "casino.example.", Match: Exact | Below})
	allow := list("allow", CategoryMalware, Allow, Rule{Name: "casino.example.", Match: Exact})
	f := NewFlavour("f", []*List{allow, court})
	if d, ok := f.CheckName("casino.example."); !ok || d.List.Name != "court" || !d.Blocked() {
		t.Errorf("lawful name on an allowlist: %+v %v, want blocked by court", d, ok)
	}
}

func TestExceptionsStayInTheirList(t *testing.T) {
	agh := list("agh", CategoryMalware, NXDomain,
		Rule{Name: "exc.example.", Match: Exact | Below},
		Rule{Name: "sub.exc.example.", Match: Exact})
	agh.Exceptions = Compile([]Rule{{Name: "exc.example.", Match: Exact | Below}})
	other := list("other", CategoryMalware, NXDomain, Rule{Name: "sub.exc.example.", Match: Exact})
	f := NewFlavour("f", []*List{agh, other})
	// The exception beats the list's more specific block, but not the
	// other list's.
	if d, ok := f.CheckName("sub.exc.example."); !ok || d.List.Name != "other" {
		t.Errorf("excepted name: %+v %v, want blocked by the other list", d, ok)
	}
	if _, ok := f.CheckName("x.exc.example."); ok {
		t.Error("excepted subdomain blocked")
	}
}

func TestMappedPrefix(t *testing.T) {
	s := Compile([]Rule{{Prefix: netip.MustParsePrefix("::ffff:198.19.92.99/128")}})
	if _, _, ok := s.MatchAddr(netip.MustParseAddr("198.19.92.99")); !ok {
		t.Error("IPv4-mapped rule does not match the IPv4 address")
	}
}
