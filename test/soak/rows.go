package main

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// rowSpec is one row of the suite: an attack beside the normal load, or a
// fault installed for the row's duration, or both.
type rowSpec struct {
	name, description string
	attack            func(ctx context.Context, d time.Duration) (attackResult, error)
	// fault installs the fault and returns the function that removes it.
	fault func() (func(), error)
	// down names the zones that the fault leaves without a server that
	// answers, for the rows where some names cannot be resolved at all
	// while the fault lasts; nil for the others.
	down serverDown
	// stale starts the row from a warm cache whose entries have all
	// expired, instead of an empty cache.
	stale bool
}

// Lab addresses the fault rows act on: one address of each TLD process
// and of the two processes that host most popular zones. The sibling
// addresses of the same processes stay healthy.
var faultTargets = []string{"127.53.1.3", "127.53.2.3", "127.53.1.5", "127.53.2.5"}

// lossTargets are the addresses of the 30% loss row: both addresses of
// each TLD process and one of each hosting process.
var lossTargets = []string{"127.53.1.3", "127.53.1.4", "127.53.2.3", "127.53.2.4", "127.53.1.5", "127.53.2.5"}

// Choices of the rows.
const (
	nxdomainTLD  = "net."
	blackHoleTLD = "org."
	stopInstance = "knot-tld"
	faultDelay   = 1500 * time.Millisecond
)

func (s *suite) rows() []rowSpec {
	signed, unsigned := s.zones()
	udp := func(p payloadFunc, sources []net.IP) func(context.Context, time.Duration) (attackResult, error) {
		return func(ctx context.Context, d time.Duration) (attackResult, error) {
			a := &udpAttack{server: s.server, payload: p, rate: attackQPS, sources: sources}
			return a.run(ctx, d)
		}
	}
	large := []largeAnswer{
		{signed, dns.TypeANY}, {signed, dns.TypeDNSKEY}, {".", dns.TypeDNSKEY},
		{s.lab.BigTXTName, dns.TypeTXT},
	}
	return []rowSpec{
		{name: "rand-signed", description: "random subdomains of " + signed,
			attack: udp(randomSubdomains(signed), nil)},
		{name: "rand-unsigned", description: "random subdomains of " + unsigned,
			attack: udp(randomSubdomains(unsigned), nil)},
		{name: "nxdomain", description: "random names in " + nxdomainTLD,
			attack: udp(randomSubdomains(nxdomainTLD), nil)},
		{name: "amplification", description: "ANY, DNSKEY, TXT from 1000 sources",
			attack: udp(amplification(large), manySources(1000))},
		{name: "malformed", description: "malformed packets",
			attack: udp(malformed, nil)},
		{name: "tcp-flood", description: "TCP connections, slow clients",
			attack: func(ctx context.Context, d time.Duration) (attackResult, error) {
				f := &tcpFlood{server: s.lab.ResolverAddress, rate: 2000, hold: 10 * time.Second, maxOpen: 5000}
				return f.run(ctx, d), nil
			}},
		{name: "loss-30", description: "30% loss to 6 lab servers",
			fault: func() (func(), error) {
				return clearRules, nft(dropRules(lossTargets, s.lab.AuthPort, 30))
			}},
		{name: "delay", description: fmt.Sprintf("replies delayed %v", faultDelay),
			fault: s.proxyFault("-mode", "delay", "-delay", faultDelay.String())},
		{name: "truncate", description: "UDP replies truncated",
			fault: s.proxyFault("-mode", "truncate")},
		{name: "garbage", description: "garbage replies",
			fault: s.proxyFault("-mode", "garbage"), down: addressesDown(faultTargets)},
		{name: "wrong-id", description: "replies with wrong IDs",
			fault: s.proxyFault("-mode", "wrong-id"), down: addressesDown(faultTargets)},
		{name: "sigstop", description: "SIGSTOP " + stopInstance,
			fault: s.stopFault(stopInstance), down: instanceDown(stopInstance)},
		{name: "tld-down", description: "every query under " + blackHoleTLD + " dropped",
			fault: s.blackHoleFault(blackHoleTLD), down: s.zoneDown(blackHoleTLD, lossTargets[:4])},
		{name: "sigstop-stale", description: "SIGSTOP " + stopInstance + ", expired cache",
			fault: s.stopFault(stopInstance), down: instanceDown(stopInstance), stale: true},
		{name: "tld-down-stale", description: "every query under " + blackHoleTLD + " dropped, expired cache",
			fault: s.blackHoleFault(blackHoleTLD), down: s.zoneDown(blackHoleTLD, lossTargets[:4]), stale: true},
	}
}

// instanceDown describes a stopped lab process: none of its zones has an
// answer from it.
func instanceDown(instance string) serverDown {
	return func(in, _, _ string) bool { return in == instance }
}

// addressesDown describes servers whose every reply at the addresses
// targets is spoiled: the other addresses of the same processes still
// answer.
func addressesDown(targets []string) serverDown {
	return func(_, addr, _ string) bool { return slices.Contains(targets, addr) }
}

// zoneDown describes the black-holing of every query at or under zone
// sent to the lab processes that own the addresses targets.
func (s *suite) zoneDown(zone string, targets []string) serverDown {
	hit := map[string]bool{}
	for _, srv := range s.lab.Servers {
		if slices.Contains(targets, srv.Address) {
			hit[srv.Instance] = true
		}
	}
	return func(in, _, z string) bool { return hit[in] && dns.IsSubDomain(zone, z) }
}

// zones picks a signed and an unsigned popular zone: the apex names of
// the MX questions of queries.txt.
func (s *suite) zones() (signed, unsigned string) {
	isSigned := map[string]bool{}
	for _, z := range s.lab.SignedPopular {
		isSigned[strings.ToLower(z)] = true
	}
	for _, q := range s.queries {
		if q.Qtype != dns.TypeMX {
			continue
		}
		if isSigned[q.Name] && signed == "" {
			signed = q.Name
		}
		if !isSigned[q.Name] && unsigned == "" {
			unsigned = q.Name
		}
	}
	if signed == "" && len(s.lab.SignedPopular) > 0 {
		signed = s.lab.SignedPopular[0]
	}
	return signed, unsigned
}

// manySources returns n addresses of 127.77.0.0/16, all local to the
// namespace's loopback interface.
func manySources(n int) []net.IP {
	out := make([]net.IP, n)
	for i := range out {
		out[i] = net.IPv4(127, 77, byte(i/250), byte(1+i%250))
	}
	return out
}

// proxyRoutes sends each fault target to its own proxy address.
func (s *suite) proxyRoutes(targets []string) []proxyRoute {
	routes := make([]proxyRoute, len(targets))
	for i, t := range targets {
		listen := net.JoinHostPort(fmt.Sprintf("127.53.9.%d", i+1), strconv.Itoa(s.port+140))
		routes[i] = proxyRoute{target: t, listen: listen}
	}
	return routes
}

func (s *suite) proxyFault(args ...string) func() (func(), error) {
	return func() (func(), error) {
		p, err := startProxy(s.proxyBin, args, s.proxyRoutes(faultTargets), s.lab.AuthPort, s.workDir+"/faultproxy.log")
		if err != nil {
			return nil, err
		}
		return p.stop, nil
	}
}

// blackHoleFault drops every query under zone at every address of the TLD
// processes, so that the TLD has no server that answers.
func (s *suite) blackHoleFault(zone string) func() (func(), error) {
	return s.proxyFaultOn(lossTargets[:4], "-mode", "black-hole", "-zone", zone)
}

func (s *suite) proxyFaultOn(targets []string, args ...string) func() (func(), error) {
	return func() (func(), error) {
		p, err := startProxy(s.proxyBin, args, s.proxyRoutes(targets), s.lab.AuthPort, s.workDir+"/faultproxy.log")
		if err != nil {
			return nil, err
		}
		return p.stop, nil
	}
}

// stopFault stops a lab process with SIGSTOP; the undo sends SIGCONT.
func (s *suite) stopFault(instance string) func() (func(), error) {
	return func() (func(), error) {
		for _, in := range s.lab.Instances {
			if in.Name != instance {
				continue
			}
			pid, err := readPID(in.PIDFile)
			if err != nil {
				return nil, err
			}
			if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
				return nil, fmt.Errorf("SIGSTOP %s pid %d: %w", instance, pid, err)
			}
			return func() { syscall.Kill(pid, syscall.SIGCONT) }, nil
		}
		return nil, fmt.Errorf("no lab instance %q in lab.json", instance)
	}
}

// runRow runs the normal load for the row's duration beside its attack or
// fault, and counts resolver crashes. Attack rows run on the cache of the
// warm-up. Fault rows restart the resolver first, and stale rows then warm
// it again and move its clock past every TTL.
func (s *suite) runRow(ctx context.Context, spec rowSpec) rowResult {
	row := rowResult{Name: spec.name, Description: spec.description}
	switch {
	case spec.stale:
		row.Goal = goalStale
	case spec.fault != nil:
		row.Goal = goalFault
	}
	crashesBefore := s.resolver.crashCount()
	// A fault row starts from an empty cache, so that the normal load
	// resolves through the fault instead of answering from the warm-up.
	if spec.fault != nil && s.resolver.alive() {
		s.resolver.stop(syscall.SIGTERM)
	}
	if spec.stale {
		// Back to the lab config and the system clock for the next row.
		defer func() {
			s.resolver.stop(syscall.SIGTERM)
			s.resolver.config = s.lab.BulwarkConfig
		}()
		if err := s.expireWarmCache(ctx); err != nil {
			row.Err = err
			return row
		}
	}
	if !s.resolver.alive() {
		if err := s.resolver.start(); err != nil {
			row.Err = err
			return row
		}
	}
	affected, err := s.affected(spec)
	if err != nil {
		row.Err = err
		return row
	}
	if spec.fault != nil {
		undo, err := spec.fault()
		if err != nil {
			row.Err = err
			return row
		}
		defer undo()
	}
	load, err := s.newLoad()
	if err != nil {
		row.Err = err
		return row
	}
	load.affected = affected
	if spec.stale {
		load.staleTTL = staleAnswerTTL
	}
	var wg sync.WaitGroup
	if spec.attack != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			row.Attack, row.Err = spec.attack(ctx, s.rowLength)
		}()
	}
	row.Load = load.run(ctx, s.rowLength)
	wg.Wait()
	row.Crashes = s.resolver.crashCount() - crashesBefore
	return row
}
