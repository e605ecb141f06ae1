package gen

import (
	"fmt"
	"net"

	"github.com/miekg/dns"

	"bulwark/lab/internal/stub"
	"bulwark/lab/labspec"
)

func (l *Lab) stubConfigPath() string { return l.path(stubDir, "stub.json") }

func (l *Lab) queryLogPath(name string) string { return l.path(queryLogDir, name+".log") }

func (l *Lab) backendAddr(instanceName string) string {
	in := l.byInst[instanceName]
	return net.JoinHostPort(in.Addrs[0], fmt.Sprint(l.authPort()))
}

// writeStubConfig writes the labstub config.
func (l *Lab) writeStubConfig() error {
	cfg := stub.Config{PIDFile: l.path(stubDir, "labstub.pid")}
	for _, s := range l.stubs {
		ls := stub.Listener{
			Name:        s.Name,
			Address:     s.Addr,
			Port:        l.authPort(),
			Mode:        s.Mode,
			TruncateUDP: s.TruncateUDP,
			NXDOMAINFor: s.NXDOMAINFor,
			DelayMS:     s.DelayMS,
		}
		if s.Backend != "" {
			ls.Backend = l.backendAddr(s.Backend)
		}
		if s.LogName != "" {
			ls.Log = l.queryLogPath(s.LogName)
		}
		cfg.Listeners = append(cfg.Listeners, ls)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("generated stub config: %w", err)
	}
	return writeJSON(l.stubConfigPath(), cfg)
}

// writeInfo writes lab.json.
func (l *Lab) writeInfo() error {
	info := labspec.Info{
		Dir:             l.opts.OutDir,
		PortOffset:      l.opts.PortOffset,
		AuthPort:        l.authPort(),
		ResolverPort:    l.resolverPort(),
		ResolverAddress: net.JoinHostPort("127.0.0.1", fmt.Sprint(l.resolverPort())),
		DoTAddress:      net.JoinHostPort("127.0.0.1", fmt.Sprint(l.resolverPort()+1)),
		DoHAddress:      net.JoinHostPort("127.0.0.1", fmt.Sprint(l.resolverPort()+2)),
		DoQAddress:      net.JoinHostPort("127.0.0.1", fmt.Sprint(l.resolverPort()+3)),
		MetricsAddress:  net.JoinHostPort("127.0.0.1", fmt.Sprint(l.metricsPort())),
		BulwarkConfig:   l.path(labspec.ConfigFile),
		RootHints:       l.path(labspec.HintsFile),
		Queries:         l.path(labspec.QueriesFile),
		Expected:        l.path(labspec.ExpectedFile),
		Policy:          l.policy,
		ZoneDir:         l.path(zonesDir),
		ZoneCount:       len(l.zones),
		PopularZones:    len(l.popular),
		TLDCount:        len(l.tlds),
		Servers:         l.serverInfo(),
		Instances:       l.instanceInfo(),
		QueryLogs:       map[string]string{},
	}
	for _, s := range l.stubs {
		if s.LogName != "" {
			info.QueryLogs[s.LogName] = l.queryLogPath(s.LogName)
		}
	}
	l.specialInfo(&info)
	l.dnssecInfo(&info)
	return writeJSON(l.path(labspec.InfoFile), info)
}

func (l *Lab) specialInfo(info *labspec.Info) {
	info.QminTLD = qminTLD
	info.QminDeepName = l.special.QminDeepName
	info.QminLog = l.queryLogPath("qmin")
	info.DeepChainCuts = l.special.DeepChainCuts

	info.NXNSAttackName = l.special.NXNSAttack[0]
	info.NXNSAttackNames = l.special.NXNSAttack
	info.NXNSNSCount = nxnsNSPerChild
	info.NXNSVictimZone = nxnsVictimZone
	info.NXNSVictimLog = l.queryLogPath("nxns_victim")

	info.NegativeTTLName = "nonexistent." + negTTLZone
	info.NegativeTTL = negativeTTL
	info.NegativeTTLZone = negTTLZone

	info.BigTXTName = "big." + bigTXTZone
	info.BigTXTStrings = bigTXTStrings
	info.BigTXTBytes = bigTXTStrings * bigTXTLength

	info.DNAMEName = "www.old." + dnameZone
	info.DNAMEOwner = "old." + dnameZone
	info.DNAMETarget = "new." + dnameZone

	info.CycleName = l.special.Cycle[0]
	info.CycleNames = l.special.Cycle
	info.LameName = "www." + lameZone
	info.PartlyLameName = "www." + partLameZone
	info.SilentName = "www." + silentZone
	info.TruncateUDPName = "www." + tcZone
	info.ENTNXDOMAINName = "www." + entNXDOMAINENT
	info.ENTNXDOMAINENT = entNXDOMAINENT
	info.NoGlueName = "www.sub." + noGlueZone
	info.PartlyBrokenNSName = "www." + manyNSZone
	info.IPv6OnlyName = "www." + v6OnlyZone
	info.SlowName = "www." + slowZone
	info.SlowDelayMS = slowDelayMS
	info.WildcardName = "anything." + wildZone
	info.ENTName = "static." + wildZone
	info.CNAMEChainName = l.chainExample()
	info.SubDelegationName = l.subDelegationExample()
	info.PublicSuffixENT = l.publicSuffixENT()
}

// chainExample returns the first sampled www name with two CNAME hops.
func (l *Lab) chainExample() string {
	for _, pz := range l.popular {
		www := "www." + pz.Zone.Name
		c := pz.Zone.RRs(www, dns.TypeCNAME)
		if len(c) > 0 && c[0].(*dns.CNAME).Target == cdnLabel(pz.Zone.Name)+"."+cdnFrontZone {
			if o := l.resolve(www, dns.TypeA); !o.ViaStub && len(o.Answer) > 0 {
				return www
			}
		}
	}
	return ""
}

func (l *Lab) subDelegationExample() string {
	for _, z := range l.sortedZones() {
		if z.Role == "sub" {
			return "www." + z.Name
		}
	}
	return ""
}

func (l *Lab) serverInfo() []labspec.Server {
	inNS := map[string]bool{}
	for _, addrs := range l.hosts {
		for _, a := range addrs {
			inNS[a] = true
		}
	}

	var out []labspec.Server
	for _, in := range l.instances {
		for _, a := range in.Addrs {
			out = append(out, labspec.Server{Address: a, Port: l.authPort(), Program: in.Program,
				Instance: in.Name, Role: in.Role, InNSSet: inNS[a]})
		}
	}
	for _, s := range l.stubs {
		srv := labspec.Server{Address: s.Addr, Port: l.authPort(), Program: labspec.ProgramStub,
			Instance: stubDir, Role: "stub", InNSSet: inNS[s.Addr], Mode: s.Mode, Faults: s.Faults}
		if s.Backend != "" {
			srv.Backend = l.backendAddr(s.Backend)
		}
		if s.LogName != "" {
			srv.Log = l.queryLogPath(s.LogName)
		}
		out = append(out, srv)
	}
	return out
}

func (l *Lab) instanceInfo() []labspec.Instance {
	var out []labspec.Instance
	for _, in := range l.instances {
		out = append(out, labspec.Instance{Name: in.Name, Program: in.Program, Role: in.Role,
			Addresses: in.Addrs, Config: l.configPath(in), Log: l.logPath(in.Name),
			PIDFile: l.path(labspec.PIDDir, in.Name+".pid"), Zones: len(in.Zones) + len(in.Extra),
			Cookies: in.Cookies})
	}
	out = append(out, labspec.Instance{Name: stubDir, Program: labspec.ProgramStub, Role: "stub",
		Addresses: l.stubAddrs(), Config: l.stubConfigPath(), Log: l.logPath(stubDir),
		PIDFile: l.path(labspec.PIDDir, stubDir+".pid")})
	return out
}

func (l *Lab) stubAddrs() []string {
	var out []string
	for _, s := range l.stubs {
		out = append(out, s.Addr)
	}
	return out
}

func (l *Lab) dnssecInfo(info *labspec.Info) {
	info.TrustAnchorXML = l.path(labspec.RootAnchorsFile)
	info.TrustAnchorDS = l.path(labspec.RootDSFile)
	info.SignPlan = l.path(labspec.SignPlanFile)
	info.SignedZoneCount, info.SignedPopular = l.signedZones()
	info.DNSSECZone = secZone
	info.DNSSECCases = l.secCaseInfo()
	info.KeyTrapKeys = keyTrapKeys
	info.KeyTrapSignatures = keyTrapSigs
	info.Root2018 = l.root2018Info()
}
