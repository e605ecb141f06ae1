package resolver

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"

	"bulwark/internal/exchange"

	"github.com/miekg/dns"
)

// errNoServer is returned when no server of a zone gave a usable response.
var errNoServer = errors.New("no server responded")

// askZone sends qname and qtype to the servers of zone, whose NS RRset is
// nsset, and returns the first usable response. It tries each address once,
// then once more those that timed out, and looks up the addresses of NS names
// that came without glue when the known addresses run out.
func (r *Resolver) askZone(req *request, zone string, nsset []dns.RR, qname string, qtype uint16) (*dns.Msg, error) {
	addrs, pending := r.nsAddrs(zone, nsset)
	lookups := 0
	var lastErr error = errNoServer
	timedOut := map[netip.Addr]bool{}
	for round := 0; round < 2; round++ {
		tried := map[netip.Addr]bool{}
		if round == 1 {
			// The second round retries only servers that timed out.
			for _, a := range addrs {
				tried[a] = !timedOut[a]
			}
		}
		for {
			a, ok := r.infra.pick(zone, addrs, tried)
			if !ok && round == 0 && len(pending) > 0 && lookups < r.cfg.MaxNSNamesResolved {
				var found []netip.Addr
				found, pending = r.lookupNS(req, pending)
				lookups++
				addrs = append(addrs, found...)
				continue
			}
			if !ok {
				break
			}
			tried[a] = true
			resp, err := r.query(req, zone, a, qname, qtype)
			if errors.Is(err, errBudget) || req.ctx.Err() != nil {
				return nil, err
			}
			if errors.Is(err, exchange.ErrTimeout) {
				timedOut[a] = true
			}
			if err != nil {
				lastErr = err
				continue
			}
			return resp, nil
		}
	}
	if len(addrs) == 0 && len(pending) == 0 {
		lastErr = fmt.Errorf("no usable address for the name servers of %s", zone)
	}
	r.infra.setFailed(zone, r.cfg.FailureTTL)
	return nil, fmt.Errorf("servers of %s: %w", zone, lastErr)
}

// query sends one query to a server of zone and checks the response: a
// server that refuses, fails or answers lame is marked and an error returned.
func (r *Resolver) query(req *request, zone string, a netip.Addr, qname string, qtype uint16) (*dns.Msg, error) {
	noEDNS := false
	for attempt := 0; attempt < 2; attempt++ {
		if err := req.spend(); err != nil {
			return nil, err
		}
		timeout := r.infra.queryTimeout(a, r.cfg.QueryTimeout)
		sent := r.now()
		server := r.serverAddr(a)
		req.traceQuery(zone, server, qname, qtype, noEDNS)
		resp, err := r.ex.Exchange(req.ctx, exchange.Query{
			Name: qname, Type: qtype, Server: server, Zone: zone, Timeout: timeout, NoEDNS: noEDNS,
		})
		if err != nil {
			req.traceQueryError(zone, server, timeout, err)
		} else {
			req.traceResponse(zone, server, qname, qtype, resp)
		}
		if errors.Is(err, exchange.ErrTimeout) {
			if r.infra.timeout(a, timeout, sent) {
				r.log.Warn("server on hold after repeated timeouts", "upstream", a.String(),
					"zone", zone, "hold_seconds", r.cfg.ServerHoldDown.Seconds())
			}
			return nil, err
		}
		if err != nil {
			return nil, err
		}
		r.infra.rtt(a, resp.RTT)
		m := resp.Msg
		switch m.Rcode {
		case dns.RcodeSuccess, dns.RcodeNameError:
		case dns.RcodeFormatError, dns.RcodeNotImplemented:
			if !noEDNS {
				// The server may not know EDNS (RFC 6891 section 7).
				noEDNS = true
				continue
			}
			r.infra.setLame(zone, a)
			return nil, fmt.Errorf("%s responded %s for %s", a, dns.RcodeToString[m.Rcode], qname)
		case dns.RcodeRefused:
			// The server does not serve the zone.
			r.infra.setLame(zone, a)
			return nil, fmt.Errorf("%s responded REFUSED for %s", a, qname)
		default:
			// SERVFAIL and others may concern this name only: try
			// another server without marking this one.
			return nil, fmt.Errorf("%s responded %s for %s", a, dns.RcodeToString[m.Rcode], qname)
		}
		if classify(m, zone, qname, qtype).kind == kindLame {
			r.infra.setLame(zone, a)
			return nil, fmt.Errorf("%s is lame for %s", a, zone)
		}
		return m, nil
	}
	return nil, errNoServer
}

// nsAddrs returns the cached addresses of the names in nsset, and the NS
// names whose addresses are unknown, in random order. Names inside zone
// without addresses are left out: finding them would need the zone's own
// servers (RFC 1034 section 4.2.1 requires glue for them).
func (r *Resolver) nsAddrs(zone string, nsset []dns.RR) (addrs []netip.Addr, pending []string) {
	for _, rr := range nsset {
		name := dns.CanonicalName(rr.(*dns.NS).Ns)
		found, known := r.cachedAddrs(name)
		addrs = append(addrs, found...)
		if !known && !under(name, zone) {
			pending = append(pending, name)
		}
	}
	rand.Shuffle(len(pending), func(i, j int) { pending[i], pending[j] = pending[j], pending[i] })
	return addrs, pending
}

// cachedAddrs returns the usable cached addresses of name. known is true when
// the cache holds, for every enabled address family, either addresses or a
// negative answer.
func (r *Resolver) cachedAddrs(name string) (addrs []netip.Addr, known bool) {
	known = true
	for _, t := range r.families() {
		rrs, _, ok := r.cache.RRset(name, t)
		if !ok {
			if _, neg := r.cache.Negative(name, t); !neg {
				known = false
			}
			continue
		}
		for _, rr := range rrs {
			if a, ok := addrOf(rr); ok && r.usable(a) {
				addrs = append(addrs, a)
			}
		}
	}
	return addrs, known
}

// lookupNS resolves the addresses of the first name in pending and returns
// them with the rest of pending. A name already being looked up higher in the
// same client query is skipped, which breaks delegation cycles.
func (r *Resolver) lookupNS(req *request, pending []string) ([]netip.Addr, []string) {
	name, rest := pending[0], pending[1:]
	if req.depth >= r.cfg.MaxDepth {
		return nil, rest
	}
	var addrs []netip.Addr
	for _, t := range r.families() {
		key := fmt.Sprintf("%s/%d", name, t)
		if req.stack[key] {
			continue
		}
		req.stack[key] = true
		req.depth++
		req.enter(name, t, "address of a name server without glue")
		res := r.resolve(req, name, t)
		req.leave()
		req.depth--
		delete(req.stack, key)
		if res.Rcode == dns.RcodeNameError {
			break // no other type exists either
		}
		for _, rr := range res.Answer {
			if a, ok := addrOf(rr); ok && r.usable(a) {
				addrs = append(addrs, a)
			}
		}
	}
	return addrs, rest
}

// families returns the address types queried: A, AAAA or both.
func (r *Resolver) families() []uint16 {
	switch {
	case r.cfg.IPv4 && r.cfg.IPv6:
		return []uint16{dns.TypeA, dns.TypeAAAA}
	case r.cfg.IPv6:
		return []uint16{dns.TypeAAAA}
	default:
		return []uint16{dns.TypeA}
	}
}

// usable reports whether a belongs to an enabled address family.
func (r *Resolver) usable(a netip.Addr) bool {
	if a.Is4() {
		return r.cfg.IPv4
	}
	return r.cfg.IPv6
}

func addrOf(rr dns.RR) (netip.Addr, bool) {
	switch rr := rr.(type) {
	case *dns.A:
		a, ok := netip.AddrFromSlice(rr.A.To4())
		return a, ok
	case *dns.AAAA:
		a, ok := netip.AddrFromSlice(rr.AAAA.To16())
		return a.Unmap(), ok && !a.Is4In6()
	}
	return netip.Addr{}, false
}

// Servers returns the names of the authoritative servers of the zone that
// contains name, from the deepest NS RRset cached at or above it, and the
// cached addresses of those servers, for policy triggers on servers (RPZ
// NSDNAME and NSIP). It sends no query.
//
// NOTE: server addresses that are not cached, such as those of out-of-zone
// servers never looked up, are missing, so an NSIP trigger may miss them.
func (r *Resolver) Servers(name string) (zone string, names []string, addrs []netip.Addr) {
	for n := dns.CanonicalName(name); ; n = parent(n) {
		if nsset, _, ok := r.cache.RRset(n, dns.TypeNS); ok {
			for _, rr := range nsset {
				ns := dns.CanonicalName(rr.(*dns.NS).Ns)
				names = append(names, ns)
				found, _ := r.cachedAddrs(ns)
				addrs = append(addrs, found...)
			}
			return n, names, addrs
		}
		if n == "." {
			return "", nil, nil
		}
	}
}
