package main

import (
	"context"
	"math/rand/v2"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// loadSockets is how many UDP sockets the normal load spreads its queries
// over, so that they reach several of the resolver's SO_REUSEPORT sockets.
const loadSockets = 8

// pendingQuery is a normal query waiting for its response.
type pendingQuery struct {
	q    question
	sent time.Time
}

// loadSocket is one UDP socket of the normal load and its queries in
// flight, keyed by message ID.
type loadSocket struct {
	conn    *net.UDPConn
	mu      sync.Mutex
	pending map[uint16]pendingQuery
}

// loadResult counts the outcomes of the normal queries of one row.
type loadResult struct {
	Sent, Correct, Wrong, TimedOut int64
	// Abandoned counts queries in flight when the restart row killed the
	// resolver; they are left out of the share answered correctly.
	Abandoned int64
	// Affected counts the queries whose question the row's fault leaves
	// unresolvable from an empty cache; AffectedAnswered those of them
	// answered correctly or with SERVFAIL within the client timeout.
	// UnaffectedCorrect counts the correct answers to the other queries.
	Affected, AffectedAnswered, UnaffectedCorrect int64
	// Stale counts responses with Extended DNS Error 3 (Stale Answer) or
	// 19 (Stale NXDOMAIN Answer). StaleWithoutEDE counts responses without
	// either code whose records all have the stale answer TTL: stale data
	// sent unmarked.
	Stale, StaleWithoutEDE int64
	Duration               time.Duration
	Latencies              []time.Duration // of correct answers, sorted
}

// CorrectShare returns the share of the counted queries answered
// correctly, from 0 to 1.
func (r loadResult) CorrectShare() float64 {
	counted := r.Sent - r.Abandoned
	if counted <= 0 {
		return 0
	}
	return float64(r.Correct) / float64(counted)
}

// UnaffectedCorrectShare returns the share of the counted queries outside
// the affected set answered correctly, from 0 to 1.
func (r loadResult) UnaffectedCorrectShare() float64 {
	counted := r.Sent - r.Abandoned - r.Affected
	if counted <= 0 {
		return 0
	}
	return float64(r.UnaffectedCorrect) / float64(counted)
}

// AffectedAnsweredShare returns the share of affected queries answered
// in time, from 0 to 1, or 1 when no query was affected.
func (r loadResult) AffectedAnsweredShare() float64 {
	if r.Affected <= 0 {
		return 1
	}
	return float64(r.AffectedAnswered) / float64(r.Affected)
}

// LostShare returns the share of the counted queries that got no response
// within the client timeout, from 0 to 1.
func (r loadResult) LostShare() float64 {
	counted := r.Sent - r.Abandoned
	if counted <= 0 {
		return 0
	}
	return float64(r.TimedOut) / float64(counted)
}

// Rate returns the queries sent per second.
func (r loadResult) Rate() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Sent) / r.Duration.Seconds()
}

// Percentile returns the latency below which the fraction p of correct
// answers arrived, or 0 without answers.
func (r loadResult) Percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(p * float64(len(r.Latencies)))
	if i >= len(r.Latencies) {
		i = len(r.Latencies) - 1
	}
	return r.Latencies[i]
}

// normalLoad sends queries of queries.txt at a fixed rate and checks every
// response against expected.tsv.
type normalLoad struct {
	server  *net.UDPAddr
	qs      []question
	check   *checker
	rate    int
	timeout time.Duration
	// affected holds the questions the row's fault makes unresolvable
	// from an empty cache; nil when nothing is affected.
	affected map[question]bool
	// staleTTL is the TTL of every record of a stale response, set in the
	// stale rows to find stale data sent without its EDE code; 0 elsewhere.
	staleTTL uint32

	sockets []*loadSocket
	paused  atomic.Bool
	next    atomic.Int64
	retries sync.WaitGroup

	sent, correct, wrong, timedOut, abandoned atomic.Int64
	affectedSent, affectedAnswered            atomic.Int64
	unaffectedCorrect, stale, staleWithoutEDE atomic.Int64
	latMu                                     sync.Mutex
	latencies                                 []time.Duration
}

func newNormalLoad(server *net.UDPAddr, qs []question, check *checker, rate int, timeout time.Duration) (*normalLoad, error) {
	l := &normalLoad{server: server, qs: qs, check: check, rate: rate, timeout: timeout}
	l.next.Store(rand.Int64N(int64(len(qs))))
	for range loadSockets {
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			l.close()
			return nil, err
		}
		l.sockets = append(l.sockets, &loadSocket{conn: conn, pending: map[uint16]pendingQuery{}})
	}
	return l, nil
}

func (l *normalLoad) close() {
	for _, s := range l.sockets {
		s.conn.Close()
	}
}

// run sends queries for d, then waits up to the client timeout for the
// last responses, and returns the counts. It closes the sockets.
func (l *normalLoad) run(ctx context.Context, d time.Duration) loadResult {
	var readers sync.WaitGroup
	for _, s := range l.sockets {
		readers.Add(1)
		go func() {
			defer readers.Done()
			l.read(s)
		}()
	}
	sweepDone := make(chan struct{})
	go l.sweep(sweepDone)

	start := time.Now()
	l.send(ctx, d)
	elapsed := time.Since(start)

	// Wait for the last responses or their timeouts.
	for deadline := time.Now().Add(l.timeout + time.Second); time.Now().Before(deadline) && l.inFlight() > 0; {
		time.Sleep(50 * time.Millisecond)
	}
	l.retries.Wait()
	close(sweepDone)
	l.close()
	readers.Wait()
	l.expireAll()
	return l.result(elapsed)
}

// send paces queries at l.rate until d has passed or ctx is done.
func (l *normalLoad) send(ctx context.Context, d time.Duration) {
	start := time.Now()
	var sent int64
	buf := make([]byte, 0, 512)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		elapsed := time.Since(start)
		if elapsed >= d {
			return
		}
		want := int64(elapsed.Seconds() * float64(l.rate))
		if l.paused.Load() {
			sent = want
			continue
		}
		for ; sent < want; sent++ {
			buf = l.sendOne(int(sent), buf)
		}
	}
}

func (l *normalLoad) sendOne(n int, buf []byte) []byte {
	q := l.qs[l.next.Add(1)%int64(len(l.qs))]
	s := l.sockets[n%len(l.sockets)]
	msg := new(dns.Msg)
	msg.SetQuestion(q.Name, q.Qtype)
	msg.SetEdns0(1232, false)

	s.mu.Lock()
	for {
		msg.Id = uint16(rand.UintN(1 << 16))
		if _, used := s.pending[msg.Id]; !used {
			break
		}
	}
	s.pending[msg.Id] = pendingQuery{q: q, sent: time.Now()}
	s.mu.Unlock()

	packed, err := msg.PackBuffer(buf)
	if err != nil {
		panic(err) // a question from queries.txt always packs
	}
	l.sent.Add(1)
	if l.affected[q] {
		l.affectedSent.Add(1)
	}
	s.conn.WriteToUDP(packed, l.server)
	return packed[:0]
}

// read receives responses on s until its socket is closed.
func (l *normalLoad) read(s *loadSocket) {
	buf := make([]byte, 65535)
	for {
		n, _, err := s.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		resp := new(dns.Msg)
		if resp.Unpack(buf[:n]) != nil {
			continue
		}
		s.mu.Lock()
		p, ok := s.pending[resp.Id]
		if ok {
			delete(s.pending, resp.Id)
		}
		s.mu.Unlock()
		if !ok {
			continue
		}
		if resp.Truncated {
			l.retries.Add(1)
			go l.retryTCP(p)
			continue
		}
		l.record(p, resp)
	}
}

// retryTCP repeats a truncated query over TCP, as a stub resolver does,
// within what is left of the client timeout.
func (l *normalLoad) retryTCP(p pendingQuery) {
	defer l.retries.Done()
	left := l.timeout - time.Since(p.sent)
	if left <= 0 {
		l.timedOut.Add(1)
		return
	}
	msg := new(dns.Msg)
	msg.SetQuestion(p.q.Name, p.q.Qtype)
	msg.SetEdns0(1232, false)
	client := &dns.Client{Net: "tcp", Timeout: left}
	resp, _, err := client.Exchange(msg, l.server.String())
	if err != nil {
		l.timedOut.Add(1)
		return
	}
	l.record(p, resp)
}

func (l *normalLoad) record(p pendingQuery, resp *dns.Msg) {
	affected := l.affected[p.q]
	stale := hasStaleEDE(resp)
	if stale {
		l.stale.Add(1)
	}
	if !l.check.correct(p.q, resp) {
		l.wrong.Add(1)
		if affected && resp.Rcode == dns.RcodeServerFailure {
			l.affectedAnswered.Add(1)
		}
		return
	}
	l.correct.Add(1)
	if affected {
		l.affectedAnswered.Add(1)
	} else {
		l.unaffectedCorrect.Add(1)
	}
	if !stale && l.staleTTL > 0 && allTTLs(resp, l.staleTTL) {
		l.staleWithoutEDE.Add(1)
	}
	latency := time.Since(p.sent)
	l.latMu.Lock()
	l.latencies = append(l.latencies, latency)
	l.latMu.Unlock()
}

// sweep counts queries older than the client timeout as timed out.
func (l *normalLoad) sweep(done <-chan struct{}) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		cutoff := time.Now().Add(-l.timeout)
		for _, s := range l.sockets {
			s.mu.Lock()
			for id, p := range s.pending {
				if p.sent.Before(cutoff) {
					delete(s.pending, id)
					l.timedOut.Add(1)
				}
			}
			s.mu.Unlock()
		}
	}
}

// abandon drops every query in flight from the count, for the moment the
// restart row kills the resolver.
func (l *normalLoad) abandon() {
	for _, s := range l.sockets {
		s.mu.Lock()
		l.abandoned.Add(int64(len(s.pending)))
		clear(s.pending)
		s.mu.Unlock()
	}
}

func (l *normalLoad) expireAll() {
	for _, s := range l.sockets {
		s.mu.Lock()
		l.timedOut.Add(int64(len(s.pending)))
		clear(s.pending)
		s.mu.Unlock()
	}
}

func (l *normalLoad) inFlight() int {
	n := 0
	for _, s := range l.sockets {
		s.mu.Lock()
		n += len(s.pending)
		s.mu.Unlock()
	}
	return n
}

func (l *normalLoad) result(elapsed time.Duration) loadResult {
	l.latMu.Lock()
	lat := append([]time.Duration(nil), l.latencies...)
	l.latMu.Unlock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return loadResult{
		Sent: l.sent.Load(), Correct: l.correct.Load(), Wrong: l.wrong.Load(),
		TimedOut: l.timedOut.Load(), Abandoned: l.abandoned.Load(),
		Affected: l.affectedSent.Load(), AffectedAnswered: l.affectedAnswered.Load(),
		UnaffectedCorrect: l.unaffectedCorrect.Load(),
		Stale:             l.stale.Load(), StaleWithoutEDE: l.staleWithoutEDE.Load(),
		Duration: elapsed, Latencies: lat,
	}
}

// allTTLs reports whether resp has records in its answer or authority
// section and all of them have the TTL ttl.
//
// NOTE: a fresh answer cached long enough for its TTL to run down to ttl
// looks the same; the stale rows choose a ttl below every TTL of the lab
// zones, so that only rows longer than the TTLs of the lab can see one.
func allTTLs(resp *dns.Msg, ttl uint32) bool {
	n := 0
	for _, section := range [][]dns.RR{resp.Answer, resp.Ns} {
		for _, rr := range section {
			if rr.Header().Ttl != ttl {
				return false
			}
			n++
		}
	}
	return n > 0
}

// hasStaleEDE reports whether resp carries Extended DNS Error 3 (Stale
// Answer) or 19 (Stale NXDOMAIN Answer), RFC 8914 sections 4.4 and 4.20.
func hasStaleEDE(resp *dns.Msg) bool {
	opt := resp.IsEdns0()
	if opt == nil {
		return false
	}
	for _, o := range opt.Option {
		if ede, ok := o.(*dns.EDNS0_EDE); ok {
			switch ede.InfoCode {
			case dns.ExtendedErrorCodeStaleAnswer, dns.ExtendedErrorCodeStaleNXDOMAINAnswer:
				return true
			}
		}
	}
	return false
}
