package traffic

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"bulwark/internal/intel/detect"
	"bulwark/internal/intel/events"
)

// A host infected by a DGA queries many registered domains that do not
// exist, of one structure, until one of them resolves: the command
// server. The name model misses families that join dictionary words or
// syllables, but their hosts still show this behaviour. The client
// tracker keeps, per client pseudonym, the recent unseen NXDOMAIN
// registered domains and judges them as a cluster.

// DGAClientsConfig sets the tracker of clients that behave like hosts
// infected by a DGA.
type DGAClientsConfig struct {
	// Enabled turns the tracker on.
	Enabled bool
	// Window is how far back a client's NXDOMAIN domains count towards
	// its cluster.
	Window time.Duration
	// MinDomains is the distinct unseen NXDOMAIN registered domains a
	// client's cluster needs within Window to be judged.
	MinDomains int
	// MaxClients bounds the clients tracked, rounded up to a multiple of
	// 4. Past it the least recently active client of a table set is
	// evicted and counted.
	MaxClients int
	// Hold is how long a client stays DGA-like after its cluster last
	// passed.
	Hold time.Duration
}

// Cluster thresholds, set on benign data only.
// TestClusterThresholdsOnBenignData draws 100,000 clusters of 8 labels,
// the default MinDomains, from the test part of the popular names, which
// trained nothing. It draws as many from one-letter typos of them, and
// fails when more than 0.1% of either pass. In one run 0.05% of the
// popular and 0.02% of the typo clusters passed, all by length spread or
// mean length. No DGA family set a threshold, so each stays held out.
const (
	// clusterMinScore is the mean name-model score of a random-looking
	// cluster: typo clusters of 8 reach a mean of 0.38 in about one draw
	// in 10,000, and none of the draws reached 0.5.
	clusterMinScore = 0.5
	// clusterMaxLengthCV is the largest spread of label lengths, the
	// standard deviation over the mean, of a uniform cluster: 8 popular
	// labels are that uniform in about one draw in 2,000.
	clusterMaxLengthCV = 0.12
	// clusterMinMeanLength is the mean label length of a cluster of long
	// labels: 8 popular labels average 15 characters or more in about
	// two draws in 100,000.
	clusterMinMeanLength = 15
)

// Bounds of the tracker.
const (
	// clusterCap is the NXDOMAIN domains kept per client; a new one
	// replaces the oldest.
	clusterCap = 32
	// clientWays is the associativity of the client table: a client can
	// take one of clientWays slots picked by its pseudonym.
	clientWays = 4
	// maxDGAClusters bounds the DGA-like clients whose clusters the
	// answers of other DGA-like clients are matched against.
	maxDGAClusters = 64
)

// clusterDomain is one unseen NXDOMAIN registered domain of a client.
type clusterDomain struct {
	domain string
	// at is the Unix time of the last query, in seconds.
	at       int64
	suffixAt uint8 // start of the public suffix in domain
	length   uint8 // length of the registered-domain label
	score    float32
	reported bool
}

func (d *clusterDomain) suffix() string { return d.domain[d.suffixAt:] }

// clientEntry is the state of one client pseudonym.
type clientEntry struct {
	id uint64
	// last is the Unix time of the client's last NXDOMAIN domain.
	last    int64
	domains []clusterDomain // ring of up to clusterCap
	next    int
	// dgaUntil is the Unix time until which the client is DGA-like, and
	// cluster the cluster that made it so.
	dgaUntil int64
	cluster  cluster
}

func (c *clientEntry) reset(id uint64, now int64) {
	c.id, c.last, c.next, c.dgaUntil = id, now, 0, 0
	c.domains = c.domains[:0]
	c.cluster = cluster{}
}

func (c *clientEntry) dgaLike(now int64) bool { return now < c.dgaUntil }

// find returns the index of domain among the client's domains, or -1.
func (c *clientEntry) find(domain string) int {
	for i := range c.domains {
		if c.domains[i].domain == domain {
			return i
		}
	}
	return -1
}

func (c *clientEntry) add(d clusterDomain) {
	if len(c.domains) < clusterCap {
		c.domains = append(c.domains, d)
		return
	}
	c.domains[c.next] = d
	c.next = (c.next + 1) % clusterCap
}

// clientRef names a DGA-like client. The entry may have been reused for
// another client since, so it is valid only while its id equals id.
type clientRef struct {
	id    uint64
	entry *clientEntry
}

// clientTracker keeps the recent unseen NXDOMAIN domains of each client
// in a fixed-size table: sets of clientWays slots, the set picked by the
// pseudonym. Entries are allocated on first use. Only the engine's
// goroutine calls its methods; the counters are atomic for Stats.
type clientTracker struct {
	cfg     DGAClientsConfig
	sets    [][clientWays]*clientEntry
	dgaLike []clientRef

	tracked atomic.Int64
	evicted atomic.Uint64
}

func newClientTracker(cfg DGAClientsConfig) *clientTracker {
	sets := max(1, (cfg.MaxClients+clientWays-1)/clientWays)
	return &clientTracker{cfg: cfg, sets: make([][clientWays]*clientEntry, sets)}
}

func (t *clientTracker) set(id uint64) *[clientWays]*clientEntry {
	return &t.sets[mix(id)%uint64(len(t.sets))]
}

// lookup returns the entry of client id, or nil.
func (t *clientTracker) lookup(id uint64) *clientEntry {
	for _, c := range t.set(id) {
		if c != nil && c.id == id {
			return c
		}
	}
	return nil
}

// insert returns a fresh entry for client id: a free slot of its set, or
// else the slot of the least recently active client, DGA-like clients
// last, which is counted as evicted.
func (t *clientTracker) insert(id uint64, now int64) *clientEntry {
	set := t.set(id)
	victim := -1
	for i, c := range set {
		if c == nil {
			c = &clientEntry{}
			set[i] = c
			t.tracked.Add(1)
			c.reset(id, now)
			return c
		}
		if victim < 0 || evictBefore(c, set[victim], now) {
			victim = i
		}
	}
	t.evicted.Add(1)
	set[victim].reset(id, now)
	return set[victim]
}

// evictBefore reports whether a should be evicted before b.
func evictBefore(a, b *clientEntry, now int64) bool {
	if a.dgaLike(now) != b.dgaLike(now) {
		return !a.dgaLike(now)
	}
	return a.last < b.last
}

// remember adds c to the DGA-like clients, replacing the oldest when
// maxDGAClusters are kept, and drops those no longer DGA-like.
func (t *clientTracker) remember(c *clientEntry, now int64) {
	kept := t.dgaLike[:0]
	for _, r := range t.dgaLike {
		if r.entry.id == r.id && r.entry.dgaLike(now) && r.entry != c {
			kept = append(kept, r)
		}
	}
	if len(kept) >= maxDGAClusters {
		kept = append(kept[:0], kept[1:]...)
	}
	t.dgaLike = append(kept, clientRef{id: c.id, entry: c})
}

// matchResolved returns the cluster of c, or of another DGA-like client,
// that a resolved registered domain matches.
func (t *clientTracker) matchResolved(c *clientEntry, suffix string, length int, score float64, now int64) (*cluster, bool) {
	if c.cluster.matches(suffix, length, score) {
		return &c.cluster, true
	}
	for _, r := range t.dgaLike {
		if r.entry.id == r.id && r.entry.dgaLike(now) && r.entry.cluster.matches(suffix, length, score) {
			return &r.entry.cluster, true
		}
	}
	return nil, false
}

// isReverse reports whether suffix is under arpa: PTR lookups of unknown
// addresses, as mail and log servers make, give many NXDOMAIN names of
// uniform length under in-addr.arpa and ip6.arpa.
func isReverse(suffix string) bool {
	return suffix == "arpa" || strings.HasSuffix(suffix, ".arpa")
}

// observeClient feeds the client tracker with an answered query that no
// policy list decided. It runs before the NOD seen-set learns the
// query's domain, so that a first resolution is still unseen.
func (e *Engine) observeClient(ev *events.Event, parts detect.Parts) {
	if ev.Client == 0 || !ev.Answered || ev.Blocked {
		return
	}
	switch ev.Rcode {
	case rcodeNXDomain:
		e.clientNXDomain(ev.Client, parts, ev.Time.Unix())
	case 0:
		e.clientResolved(ev.Client, parts, ev.Time)
	}
}

// clientNXDomain adds an unseen NXDOMAIN registered domain to the client's
// cluster and reports the cluster's domains when it passes, or the domain
// alone when the client is already DGA-like and the domain matches.
func (e *Engine) clientNXDomain(id uint64, parts detect.Parts, now int64) {
	if isReverse(parts.Suffix) || e.nod.Seen(parts.Registered) {
		return
	}
	t := e.clients
	c := t.lookup(id)
	if c == nil {
		c = t.insert(id, now)
	}
	c.last = now
	if i := c.find(parts.Registered); i >= 0 {
		c.domains[i].at = now
		return
	}
	score := e.dga.ScoreLabel(parts.Label)
	c.add(clusterDomain{
		domain: strings.Clone(parts.Registered), at: now, score: float32(score),
		suffixAt: uint8(len(parts.Registered) - len(parts.Suffix)), length: uint8(min(len(parts.Label), 255)),
	})
	cl := measureCluster(c, now-int64(t.cfg.Window/time.Second), t.cfg.Window, t.cfg.MinDomains)
	switch {
	case cl.passes(t.cfg.MinDomains):
		c.cluster, c.dgaUntil = cl, now+int64(t.cfg.Hold/time.Second)
		t.remember(c, now)
		e.reportCluster(c, now)
	case c.dgaLike(now):
		e.reportCluster(c, now)
	}
}

// reportCluster reports the client's domains of the window that match
// its cluster and were not reported yet.
func (e *Engine) reportCluster(c *clientEntry, now int64) {
	since := now - int64(e.clients.cfg.Window/time.Second)
	at := time.Unix(now, 0)
	for i := range c.domains {
		d := &c.domains[i]
		if d.reported || d.at < since || !c.cluster.matchesOwn(d.suffix(), int(d.length), float64(d.score)) {
			continue
		}
		d.reported = true
		if e.nod.Seen(d.domain) || e.pop.SteadilyPopular(d.domain, at) {
			continue
		}
		e.emit(clientFinding(&c.cluster, d.domain, at, false, e.clients.cfg.MinDomains))
	}
}

// clientResolved reports a registered domain that resolved for the first
// time to a DGA-like client and matches its cluster or another DGA-like
// client's: the command server a DGA was searching for.
func (e *Engine) clientResolved(id uint64, parts detect.Parts, at time.Time) {
	now := at.Unix()
	c := e.clients.lookup(id)
	if c == nil || !c.dgaLike(now) || isReverse(parts.Suffix) {
		return
	}
	if e.nod.Seen(parts.Registered) || e.pop.SteadilyPopular(parts.Registered, at) {
		return
	}
	score := e.dga.ScoreLabel(parts.Label)
	cl, ok := e.clients.matchResolved(c, parts.Suffix, len(parts.Label), score, now)
	if !ok {
		return
	}
	e.emit(clientFinding(cl, parts.Registered, at, true, e.clients.cfg.MinDomains))
}

// clientFinding is the dga finding about domain, a member of cluster cl
// or, when resolved is set, a domain that resolved and matches it. The
// score rises with the cluster's size from MinDomains to four times it.
func clientFinding(cl *cluster, domain string, at time.Time, resolved bool, minDomains int) Finding {
	strength := ramp(float64(cl.n), float64(minDomains), 4*float64(minDomains))
	f := Finding{Time: at, Detector: DetectorDGA, Domain: domain, Malicious: true,
		Score: verdictScore + 0.4*strength}
	tail := "this name is one of them"
	if resolved {
		f.Score = 0.95 + 0.04*strength
		tail = "this name resolved, so it may be the command server"
	}
	f.Reason = fmt.Sprintf("DGA-like client: cluster of %d unseen NXDOMAIN domains in %s under %s, "+
		"label length %d to %d, mean name score %.2f, uniform by %s; %s",
		cl.n, cl.window, cl.suffixText(), cl.minLen, cl.maxLen, cl.meanScore, cl.uniformText(), tail)
	return f
}
