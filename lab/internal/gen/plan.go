package gen

import (
	"fmt"

	"bulwark/lab/internal/stub"
	"bulwark/lab/labspec"
)

// Instance names. Each instance is one knotd or nsd process; no instance
// loads both a zone and one of its ancestors (root-servers.net on the root
// instances is the one exception, as on the real root servers), so every
// zone cut in the lab is a real referral between processes.
const (
	knotRoot = "knot-root"
	nsdRoot  = "nsd-root"
	knotTLD  = "knot-tld"
	nsdTLD   = "nsd-tld"
	knotSLD  = "knot-sld"
	nsdSLD   = "nsd-sld"
	knotDeep = "knot-deep"
	nsdDeep  = "nsd-deep"
	knotBack = "knot-back"
	nsdBack  = "nsd-back"
)

// instance is one authoritative server process.
type instance struct {
	Name    string
	Program string
	Role    string
	Addrs   []string
	// Backend marks instances reached only through labstub proxies.
	Backend bool
	// Cookies turns on DNS cookies (RFC 7873): Knot DNS mod-cookies or NSD
	// answer-cookie. The other instances ignore the COOKIE option, so the
	// resolver meets servers of both kinds.
	Cookies bool
	Zones   []*Zone
	// Extra are zone files loaded besides the lab zones, which the lab's
	// checks and expected answers do not cover.
	Extra []extraZone
}

// stubListener is one labstub address with its behaviour.
type stubListener struct {
	Name    string
	Addr    string
	Mode    string
	Backend string // instance name for proxy mode
	Faults  []string
	// Fields copied into the labstub config.
	TruncateUDP bool
	NXDOMAINFor []string
	DelayMS     int
	LogName     string // key in lab.json query_logs, "" for none
}

// Stub listener names, also used as host labels in lab-infra.net.
const (
	stubRefuser    = "refuser"
	stubSilent     = "silent"
	stubTC         = "tc"
	stubENTFail    = "entfail"
	stubQmin1      = "qmin1"
	stubQmin2      = "qmin2"
	stubNXNSVictim = "nxns-victim"
	stubSlow       = "slow"
)

// slowDelayMS is the reply delay of the slow stub listener.
const slowDelayMS = 300

func loopback(net, host int) string { return fmt.Sprintf("127.53.%d.%d", net, host) }

func hostRange(net, from, to int) []string {
	var out []string
	for h := from; h <= to; h++ {
		out = append(out, loopback(net, h))
	}
	return out
}

// newInstances returns the server processes of the lab. Knot DNS uses
// 127.53.1.0/24 and NSD 127.53.2.0/24; host .200 of each is a backend
// address that no NS record names. One root, one TLD and both SLD
// instances answer DNS cookies, so every resolution meets servers with and
// without them.
func newInstances() []*instance {
	return []*instance{
		{Name: knotRoot, Program: labspec.ProgramKnot, Role: "root", Addrs: hostRange(1, 1, 2)},
		{Name: nsdRoot, Program: labspec.ProgramNSD, Role: "root", Addrs: hostRange(2, 1, 2), Cookies: true},
		{Name: knotTLD, Program: labspec.ProgramKnot, Role: "tld", Addrs: hostRange(1, 3, 4), Cookies: true},
		{Name: nsdTLD, Program: labspec.ProgramNSD, Role: "tld", Addrs: hostRange(2, 3, 4)},
		{Name: knotSLD, Program: labspec.ProgramKnot, Role: "sld", Addrs: hostRange(1, 5, 10), Cookies: true},
		{Name: nsdSLD, Program: labspec.ProgramNSD, Role: "sld", Addrs: append(hostRange(2, 5, 10), "::1"), Cookies: true},
		{Name: knotDeep, Program: labspec.ProgramKnot, Role: "deep", Addrs: hostRange(1, 11, 12)},
		{Name: nsdDeep, Program: labspec.ProgramNSD, Role: "deep", Addrs: hostRange(2, 11, 12)},
		{Name: knotBack, Program: labspec.ProgramKnot, Role: "backend", Addrs: []string{loopback(1, 200)}, Backend: true},
		{Name: nsdBack, Program: labspec.ProgramNSD, Role: "backend", Addrs: []string{loopback(2, 200)}, Backend: true},
	}
}

// newStubListeners returns the labstub listeners on 127.53.3.0/24.
func newStubListeners(entName, qminLog string) []*stubListener {
	return []*stubListener{
		{Name: stubRefuser, Addr: loopback(3, 1), Mode: stub.ModeRefuse},
		{Name: stubSilent, Addr: loopback(3, 2), Mode: stub.ModeSilent},
		{Name: stubTC, Addr: loopback(3, 3), Mode: stub.ModeProxy, Backend: knotBack,
			TruncateUDP: true, Faults: []string{"truncate_udp"}},
		{Name: stubENTFail, Addr: loopback(3, 4), Mode: stub.ModeProxy, Backend: nsdBack,
			NXDOMAINFor: []string{entName}, Faults: []string{"nxdomain_for"}},
		{Name: stubQmin1, Addr: loopback(3, 5), Mode: stub.ModeProxy, Backend: knotBack, LogName: qminLog},
		{Name: stubQmin2, Addr: loopback(3, 6), Mode: stub.ModeProxy, Backend: knotBack, LogName: qminLog},
		{Name: stubNXNSVictim, Addr: loopback(3, 7), Mode: stub.ModeProxy, Backend: nsdBack, LogName: "nxns_victim"},
		{Name: stubSlow, Addr: loopback(3, 8), Mode: stub.ModeProxy, Backend: nsdBack,
			DelayMS: slowDelayMS, Faults: []string{"delay_ms"}},
	}
}

// provider is a DNS hosting company: its own zone, with name servers
// ns1 to ns4 on two addresses of one instance.
type provider struct {
	Zone     string
	Instance string
	Addrs    [2]string
	// AAAA adds ::1 to ns2, for providers on the NSD instance that
	// listens there.
	AAAA bool
}

// NSNames returns ns1 to ns<count> of the provider.
func (p provider) NSNames(count int) []string {
	var out []string
	for i := 1; i <= count; i++ {
		out = append(out, fmt.Sprintf("ns%d.%s", i, p.Zone))
	}
	return out
}

func newProviders() []provider {
	return []provider{
		{Zone: "alphadns-lab.net.", Instance: knotSLD, Addrs: [2]string{loopback(1, 5), loopback(1, 6)}},
		{Zone: "bravodns-lab.net.", Instance: nsdSLD, Addrs: [2]string{loopback(2, 5), loopback(2, 6)}, AAAA: true},
		{Zone: "charliedns-lab.com.", Instance: knotSLD, Addrs: [2]string{loopback(1, 7), loopback(1, 8)}},
		{Zone: "deltadns-lab.org.", Instance: nsdSLD, Addrs: [2]string{loopback(2, 7), loopback(2, 8)}},
		{Zone: "echohost-lab.net.", Instance: knotSLD, Addrs: [2]string{loopback(1, 9), loopback(1, 10)}},
		{Zone: "foxtrothost-lab.com.", Instance: nsdSLD, Addrs: [2]string{loopback(2, 9), loopback(2, 10)}},
	}
}
