package proceed

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"bulwark/internal/policy"

	"github.com/miekg/dns"
)

var (
	start  = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	client = netip.MustParseAddr("192.0.2.10")
	other  = netip.MustParseAddr("192.0.2.11")
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// wire packs name for Holds.
func wire(t *testing.T, name string) []byte {
	t.Helper()
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(dns.Fqdn(name), buf, 0, nil, false)
	if err != nil {
		t.Fatalf("pack %q: %v", name, err)
	}
	return buf[:n]
}

func TestHoldsNameAndBelow(t *testing.T) {
	x := NewExemptions(0, quiet())
	if err := x.Add(client, "Bad.Example.", 10*time.Minute, start); err != nil {
		t.Fatal(err)
	}
	now := start.Add(time.Minute)
	for _, tt := range []struct {
		client netip.Addr
		name   string
		want   bool
	}{
		{client, "bad.example.", true},
		{client, "BAD.EXAMPLE.", true},
		{client, "www.bad.example.", true},
		{client, "a.b.bad.example.", true},
		{client, "example.", false},
		{client, "notbad.example.", false},
		{client, "bad.example.net.", false},
		{other, "bad.example.", false},
		{netip.MustParseAddr("::ffff:192.0.2.10"), "bad.example.", true},
	} {
		if got := x.Holds(tt.client, wire(t, tt.name), now); got != tt.want {
			t.Errorf("Holds(%s, %s) = %v, want %v", tt.client, tt.name, got, tt.want)
		}
	}
}

func TestExemptionExpires(t *testing.T) {
	x := NewExemptions(0, quiet())
	if err := x.Add(client, "bad.example", 10*time.Minute, start); err != nil {
		t.Fatal(err)
	}
	name := wire(t, "bad.example")
	if !x.Holds(client, name, start.Add(10*time.Minute-time.Second)) {
		t.Error("Holds one second before expiry = false, want true")
	}
	if x.Holds(client, name, start.Add(10*time.Minute)) {
		t.Error("Holds at expiry = true, want false")
	}
	if x.Active(start.Add(10 * time.Minute)) {
		t.Error("Active after the only exemption expired = true, want false")
	}

	// A later Add sweeps the expired entry away.
	if err := x.Add(other, "b.example", time.Minute, start.Add(11*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n := x.Len(); n != 1 {
		t.Errorf("Len after the sweep = %d, want 1", n)
	}
}

func TestAddExtendsExemption(t *testing.T) {
	x := NewExemptions(0, quiet())
	x.Add(client, "bad.example", 10*time.Minute, start)
	x.Add(client, "bad.example", 10*time.Minute, start.Add(5*time.Minute))
	if n := x.Len(); n != 1 {
		t.Errorf("Len after adding the same exemption twice = %d, want 1", n)
	}
	if !x.Holds(client, wire(t, "bad.example"), start.Add(12*time.Minute)) {
		t.Error("extended exemption does not hold 12 minutes after the first Add")
	}
}

func TestBoundDropsOldest(t *testing.T) {
	var logs bytes.Buffer
	x := NewExemptions(3, slog.New(slog.NewTextHandler(&logs, nil)))
	clients := []netip.Addr{
		netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"),
		netip.MustParseAddr("192.0.2.3"), netip.MustParseAddr("192.0.2.4"),
		netip.MustParseAddr("192.0.2.5"),
	}
	for i, c := range clients {
		if err := x.Add(c, "bad.example", time.Hour, start.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if n := x.Len(); n != 3 {
		t.Errorf("Len = %d, want the bound 3", n)
	}
	now := start.Add(time.Minute)
	for i, c := range clients {
		want := i >= 2
		if got := x.Holds(c, wire(t, "bad.example"), now); got != want {
			t.Errorf("client %d: Holds = %v, want %v (the two oldest dropped)", i, got, want)
		}
	}
	if got := strings.Count(logs.String(), "dropped at the limit"); got != 1 {
		t.Errorf("%d warnings about dropped exemptions, want 1 (rate-limited):\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), "dropped=1") {
		t.Errorf("first warning does not count one drop:\n%s", logs.String())
	}
	for _, c := range clients {
		if strings.Contains(logs.String(), c.String()) {
			t.Errorf("log contains client address %s:\n%s", c, logs.String())
		}
	}
}

func TestBoundPerClient(t *testing.T) {
	x := NewExemptions(0, quiet())
	for i := range MaxPerClient + 1 {
		if err := x.Add(client, fmt.Sprintf("n%d.example.", i), time.Hour, start); err != nil {
			t.Fatal(err)
		}
	}
	if n := x.Len(); n != MaxPerClient {
		t.Errorf("Len after %d exemptions of one client = %d, want %d", MaxPerClient+1, n, MaxPerClient)
	}
	if x.Holds(client, wire(t, "n0.example."), start) {
		t.Error("the client's oldest exemption still holds past MaxPerClient")
	}
	last := fmt.Sprintf("n%d.example.", MaxPerClient)
	if !x.Holds(client, wire(t, last), start) {
		t.Errorf("the client's newest exemption %s does not hold", last)
	}
}

func TestAddRejectsInvalid(t *testing.T) {
	x := NewExemptions(0, quiet())
	for _, tt := range []struct {
		desc   string
		client netip.Addr
		name   string
		d      time.Duration
	}{
		{"no client", netip.Addr{}, "bad.example", time.Minute},
		{"bad name", client, "a..b", time.Minute},
		{"empty name", client, "", time.Minute},
		{"zero duration", client, "bad.example", 0},
		{"too long", client, "bad.example", MaxDuration + time.Second},
	} {
		if err := x.Add(tt.client, tt.name, tt.d, start); err == nil {
			t.Errorf("%s: Add = nil error, want ErrInvalid", tt.desc)
		}
	}
	if n := x.Len(); n != 0 {
		t.Errorf("Len after invalid adds = %d, want 0", n)
	}
}

func TestHoldsDoesNotAllocate(t *testing.T) {
	x := NewExemptions(0, quiet())
	x.Add(client, "bad.example", time.Hour, start)
	name := wire(t, "www.other.example")
	allocs := testing.AllocsPerRun(100, func() {
		x.Holds(other, name, start)
		x.Holds(client, name, start)
	})
	if allocs != 0 {
		t.Errorf("Holds made %.1f allocations, want 0", allocs)
	}
}

func TestRuleSkipsLists(t *testing.T) {
	list := func(name, category string, action policy.Action) *policy.List {
		return &policy.List{Name: name, Category: category, Verdicts: []policy.Verdict{{Action: action}}}
	}
	malware := list("urlhaus", policy.CategoryMalware, policy.NXDomain)
	court := list("court", policy.CategoryLawful, policy.NXDomain)
	allow := list("allow", policy.CategoryMalware, policy.Allow)
	deny := list("tenant-deny", policy.CategoryAds, policy.NXDomain)
	on := Rule{Duration: time.Minute, Enforced: []string{"tenant-deny"}}
	for _, tt := range []struct {
		rule Rule
		list *policy.List
		want bool
	}{
		{on, malware, true},
		{on, court, false},
		{on, allow, false},
		{on, deny, false},
		{Rule{Duration: time.Minute}, deny, true},
		{Rule{}, malware, false},
	} {
		if got := tt.rule.Skips(tt.list); got != tt.want {
			t.Errorf("%+v.Skips(%s) = %v, want %v", tt.rule, tt.list.Name, got, tt.want)
		}
	}
	if on.Allows(policy.Decision{List: court, Verdict: court.Verdicts[0]}) {
		t.Error("Allows a lawful block, want never")
	}
	if !on.Allows(policy.Decision{List: malware, Verdict: malware.Verdicts[0]}) {
		t.Error("does not allow a malware block with proceed on")
	}
	if on.Allows(policy.Decision{List: allow, Verdict: allow.Verdicts[0]}) {
		t.Error("Allows an allowlist match, which blocks nothing")
	}
}

func TestRuleExemptFlavour(t *testing.T) {
	compile := func(name string) *policy.Set {
		return policy.Compile([]policy.Rule{{Name: name, Match: policy.Exact | policy.Below}})
	}
	malware := &policy.List{Name: "urlhaus", Category: policy.CategoryMalware,
		Verdicts: []policy.Verdict{{Action: policy.NXDomain}}, Set: compile("bad.example.")}
	court := &policy.List{Name: "court", Category: policy.CategoryLawful,
		Verdicts: []policy.Verdict{{Action: policy.NXDomain}}, Set: compile("bad.example.")}
	f := policy.NewFlavour("protective", []*policy.List{malware})
	f.NoValidation = true
	exempt := Rule{Duration: time.Minute}.Exempt(f)
	if _, matched := exempt.CheckName("bad.example."); matched {
		t.Error("exempt flavour still matches the malware list")
	}
	if !exempt.NoValidation || exempt.Name != "protective" {
		t.Errorf("exempt flavour %q NoValidation %v, want protective with validation off", exempt.Name, exempt.NoValidation)
	}
	withCourt := policy.NewFlavour("protective", []*policy.List{malware, court})
	d, matched := Rule{Duration: time.Minute}.Exempt(withCourt).CheckName("www.bad.example.")
	if !matched || d.List != court {
		t.Errorf("exempt flavour with a lawful list: matched %v list %v, want the lawful list", matched, d.List)
	}
	if (Rule{}).Exempt(f) != nil {
		t.Error("Exempt with proceed off returned a flavour, want nil")
	}
}
