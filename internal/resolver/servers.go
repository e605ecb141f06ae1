package resolver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"bulwark/internal/exchange"

	"github.com/miekg/dns"
)

// errNoServer is returned when no server of a zone gave a usable response.
var errNoServer = errors.New("no server responded")

// lateWindow is how long a query keeps listening for its response after its
// timeout, while other servers are asked: a reply that was merely slow is
// still used when it comes first (see askZone).
const lateWindow = maxQueryTimeout

// sent is one query in flight to a server of the zone being asked.
type sent struct {
	addr   netip.Addr
	server netip.AddrPort
	// seq numbers the query among those sent to addr (see
	// infra.sending); deadline is when it times out, by the wall clock
	// that timers use.
	seq      uint64
	deadline time.Time
	timeout  time.Duration
	noEDNS   bool
	// late is set once the timeout passed; the query still listens.
	late bool
}

// reply is the result of the exchange of one sent query.
type reply struct {
	q    *sent
	resp exchange.Response
	err  error
}

// ask is one askZone call: the queries it has in flight and the channel
// their replies come back on.
type ask struct {
	r        *Resolver
	req      *request
	zone     string
	qname    string
	qtype    uint16
	ctx      context.Context
	replies  chan reply
	inFlight int
	// timedOut holds the addresses whose last query timed out.
	timedOut map[netip.Addr]bool
}

// askZone sends qname and qtype to the servers of zone, whose NS RRset is
// nsset, and returns the first usable response. It tries each address once,
// then, up to resolver.server_tries in all, those that timed out, and looks
// up the addresses of NS names that came without glue when the known
// addresses run out. A query that timed out keeps listening while the next
// server is asked, and its reply is used if it comes first: a slow server
// costs its timeout, not a failure.
//
// The zone is remembered as failed for resolver.failure_ttl only when every
// server failed for good (on hold, lame or answering with an error) and no
// question to the zone got a usable response within the failure TTL. Lost
// packets do not fail the zone for everyone: under loss, its servers keep
// answering other questions.
func (r *Resolver) askZone(req *request, zone string, nsset []dns.RR, qname string, qtype uint16) (*dns.Msg, error) {
	ctx, cancel := context.WithCancel(req.ctx)
	defer cancel()
	k := &ask{
		r: r, req: req, zone: zone, qname: qname, qtype: qtype, ctx: ctx,
		replies: make(chan reply), timedOut: map[netip.Addr]bool{},
	}
	addrs, pending := r.nsAddrs(zone, nsset)
	lookups := 0
	var lastErr error = errNoServer
	tries := max(r.cfg.ServerTries, 1)
	var budgetErr error
rounds:
	for round := 0; round < tries; round++ {
		tried := map[netip.Addr]bool{}
		if round > 0 {
			// Later rounds retry only servers that timed out.
			for _, a := range addrs {
				tried[a] = !k.timedOut[a]
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
			m, err := k.query(a, false)
			if m != nil {
				r.infra.setAnswered(zone)
				return m, nil
			}
			if err := req.ctx.Err(); err != nil {
				return nil, err
			}
			if errors.Is(err, errBudget) {
				budgetErr = err
				break rounds
			}
			lastErr = err
		}
	}
	// Every server was asked, or the budget is spent: wait for the late
	// replies still to come.
	for k.inFlight > 0 {
		m, _, _ := k.wait(nil)
		if m != nil {
			r.infra.setAnswered(zone)
			return m, nil
		}
		if err := req.ctx.Err(); err != nil {
			return nil, err
		}
	}
	if budgetErr != nil {
		return nil, budgetErr
	}
	if len(addrs) == 0 && len(pending) == 0 {
		lastErr = fmt.Errorf("no usable address for the name servers of %s", zone)
	}
	if k.allFailed(addrs) && !r.infra.answeredWithin(zone, r.cfg.FailureTTL) {
		r.infra.setFailed(zone, r.cfg.FailureTTL)
	}
	return nil, fmt.Errorf("servers of %s: %w", zone, lastErr)
}

// allFailed reports whether no server of addrs is worth asking again soon:
// none timed out without being put on hold.
func (k *ask) allFailed(addrs []netip.Addr) bool {
	for _, a := range addrs {
		if k.timedOut[a] && !k.r.infra.held(a) {
			return false
		}
	}
	return true
}

// query sends one query to a, then waits for its reply until its timeout,
// taking meanwhile any late reply of an earlier query. It returns the first
// usable response, or the error of the query to a. A server that refuses,
// fails or answers lame is marked.
func (k *ask) query(a netip.Addr, noEDNS bool) (*dns.Msg, error) {
	q, err := k.send(a, noEDNS)
	if err != nil {
		return nil, err
	}
	for {
		m, retry, err := k.wait(q)
		if m != nil || err != nil {
			return m, err
		}
		if err := k.ctx.Err(); err != nil {
			return nil, err
		}
		if retry != nil {
			q = retry
			continue
		}
		if q.late {
			return nil, fmt.Errorf("query %s to %s: %w", k.qname, q.server, exchange.ErrTimeout)
		}
	}
}

// send starts the exchange of one query to a.
func (k *ask) send(a netip.Addr, noEDNS bool) (*sent, error) {
	if err := k.req.spend(); err != nil {
		return nil, err
	}
	r := k.r
	q := &sent{addr: a, server: r.serverAddr(a), seq: r.infra.sending(a), timeout: r.infra.queryTimeout(a), noEDNS: noEDNS}
	q.deadline = time.Now().Add(q.timeout)
	k.req.traceQuery(k.zone, q.server, k.qname, k.qtype, noEDNS)
	k.inFlight++
	eq := exchange.Query{
		Name: k.qname, Type: k.qtype, Server: q.server, Zone: k.zone,
		Timeout: max(q.timeout, lateWindow), NoEDNS: noEDNS,
	}
	go func() {
		resp, err := r.ex.Exchange(k.ctx, eq)
		select {
		case k.replies <- reply{q: q, resp: resp, err: err}:
		case <-k.ctx.Done():
		}
	}()
	return q, nil
}

// wait waits for one reply, or until the timeout of cur when cur is not
// nil, and handles it. It returns a usable response, or the error of cur's
// query when that query failed before its timeout, or the query that
// replaces cur after a retry without EDNS. When cur times out, wait marks
// it late and returns nothing. Errors of other queries are dropped: their
// own wait reported them, or counted their timeout.
func (k *ask) wait(cur *sent) (*dns.Msg, *sent, error) {
	var timer <-chan time.Time
	if cur != nil {
		t := time.NewTimer(time.Until(cur.deadline))
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-k.ctx.Done():
		return nil, nil, k.ctx.Err()
	case <-timer:
		k.timeout(cur, exchange.ErrTimeout)
		cur.late = true
		return nil, nil, nil
	case rep := <-k.replies:
		k.inFlight--
		m, retry, err := k.handle(rep)
		if rep.q == cur || m != nil {
			return m, retry, err
		}
		return nil, nil, nil
	}
}

// timeout records that q got no response in time.
func (k *ask) timeout(q *sent, err error) {
	k.req.traceQueryError(k.zone, q.server, q.timeout, err)
	k.timedOut[q.addr] = true
	if k.r.infra.timeout(q.addr, q.seq) {
		k.r.log.Warn("server on hold after repeated timeouts", "upstream", q.addr.String(),
			"zone", k.zone, "first_hold_seconds", k.r.infra.probe.Seconds())
	}
}

// unanswered reports whether err means that the server's response never
// came: a timeout, or a network error such as a datagram dropped by a local
// firewall (EPERM) or a port unreachable. Those count as timeouts, and
// the server is asked again. A forbidden address, a response that does not
// parse over TCP and a cancelled query do not.
func unanswered(err error) bool {
	if err == nil || errors.Is(err, exchange.ErrForbidden) || errors.Is(err, exchange.ErrMalformed) ||
		errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, exchange.ErrTimeout) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// handle checks the reply to q: it returns the response when usable,
// retries without EDNS after FORMERR or NOTIMP, and marks servers that
// refuse or answer lame.
func (k *ask) handle(rep reply) (*dns.Msg, *sent, error) {
	q, resp, err := rep.q, rep.resp, rep.err
	r, zone, qname := k.r, k.zone, k.qname
	if unanswered(err) {
		if !q.late {
			// The exchange gave up before the timer: count it now.
			k.timeout(q, err)
		}
		return nil, nil, err
	}
	if err != nil {
		if !q.late {
			k.req.traceQueryError(zone, q.server, q.timeout, err)
		}
		return nil, nil, err
	}
	k.req.traceResponse(zone, q.server, qname, k.qtype, resp)
	r.infra.rtt(q.addr, resp.RTT)
	k.timedOut[q.addr] = false
	m := resp.Msg
	switch m.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
	case dns.RcodeFormatError, dns.RcodeNotImplemented:
		if !q.noEDNS {
			// The server may not know EDNS (RFC 6891 section 7).
			retry, err := k.send(q.addr, true)
			return nil, retry, err
		}
		r.infra.setLame(zone, q.addr)
		return nil, nil, fmt.Errorf("%s responded %s for %s", q.addr, dns.RcodeToString[m.Rcode], qname)
	case dns.RcodeRefused:
		// The server does not serve the zone.
		r.infra.setLame(zone, q.addr)
		return nil, nil, fmt.Errorf("%s responded REFUSED for %s", q.addr, qname)
	default:
		// SERVFAIL and others may concern this name only: try
		// another server without marking this one.
		return nil, nil, fmt.Errorf("%s responded %s for %s", q.addr, dns.RcodeToString[m.Rcode], qname)
	}
	if classify(m, zone, qname, k.qtype).kind == kindLame {
		r.infra.setLame(zone, q.addr)
		return nil, nil, fmt.Errorf("%s is lame for %s", q.addr, zone)
	}
	return m, nil, nil
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
