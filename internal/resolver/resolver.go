// Package resolver resolves names by iterating from the root (RFC 1034
// section 5.3.3). It follows referrals, looks up the addresses of name
// servers that came without glue, and chases CNAME and DNAME records across
// zones. It caches what it learns, keeping only records inside the bailiwick
// of the server that sent them. Queries are minimised (RFC 9156) unless
// disabled.
//
// Every client query carries a budget of upstream queries, referrals, CNAME
// steps and nested name server lookups, so no input costs unbounded work, and
// a stack of the lookups in progress stops delegation cycles.
//
// The resolver opens no sockets: it talks to servers through an
// exchange.Exchanger and leaves client handling to its caller.
package resolver

import (
	"context"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"bulwark/internal/cache"
	"bulwark/internal/config"
	"bulwark/internal/dnssec"
	"bulwark/internal/exchange"
	"bulwark/internal/trace"

	"github.com/miekg/dns"
)

// Config holds the resolver's settings and limits.
type Config struct {
	// Roots are the root servers from the hints.
	Roots []config.RootServer
	// Port is the port of every authoritative server.
	Port uint16
	// IPv4 and IPv6 enable queries to servers of each family.
	IPv4, IPv6 bool
	// QNAMEMinimisation enables RFC 9156.
	QNAMEMinimisation bool
	// QueryTimeout is the timeout of a query to a server with no RTT
	// estimate yet.
	QueryTimeout time.Duration
	// MaxUpstreamQueries caps upstream queries per client query.
	MaxUpstreamQueries int
	// MaxReferrals caps referrals followed per name.
	MaxReferrals int
	// MaxCNAMEChain caps CNAME and DNAME steps per client query.
	MaxCNAMEChain int
	// MaxNSNamesResolved caps glueless NS names looked up per delegation.
	MaxNSNamesResolved int
	// MaxDepth caps the nesting of name server address lookups.
	MaxDepth int
	// FailureTTL is how long a zone whose servers all failed is answered
	// with SERVFAIL without asking them again.
	FailureTTL time.Duration
	// ServerHoldDown is how long a server that keeps timing out, or is lame
	// for a zone, is avoided at most.
	ServerHoldDown time.Duration
	// ServerProbeInterval is the first hold of a server that keeps timing
	// out; each failed probe doubles it, up to ServerHoldDown.
	ServerProbeInterval time.Duration
	// ServerTries is how many queries each address of a zone gets for one
	// question when it times out.
	ServerTries int

	// Validation turns DNSSEC validation on.
	Validation bool
	// Anchors are the trust anchors, as DS and DNSKEY records.
	Anchors []dns.RR
	// NegativeTrustAnchors turn validation off below some domains.
	NegativeTrustAnchors []NegativeTrustAnchor
	// AggressiveNSEC answers from validated NSEC records (RFC 8198).
	AggressiveNSEC bool
	// BogusTTL caps how long bogus data is cached.
	BogusTTL time.Duration
	// Limits caps the validation work of one client query.
	Limits dnssec.Limits
	// ValidationTime returns the time signatures are checked against;
	// nil means the resolver's clock.
	ValidationTime func() time.Time
}

// ConfigFrom builds a Config from the loaded configuration.
func ConfigFrom(c *config.Config) (Config, error) {
	roots, err := config.ParseRootHints(c.Resolver.RootHintsText)
	if err != nil {
		return Config{}, err
	}
	r := c.Resolver
	d := c.DNSSEC
	var ntas []NegativeTrustAnchor
	for _, n := range d.NegativeTrustAnchors {
		ntas = append(ntas, NegativeTrustAnchor{Domain: n.Domain, Expires: n.Expires.Time})
	}
	return Config{
		Validation:           *d.Validation,
		AggressiveNSEC:       *d.AggressiveNSEC,
		Anchors:              d.Anchors,
		NegativeTrustAnchors: ntas,
		BogusTTL:             d.BogusTTL.D(),
		Limits: dnssec.Limits{
			MaxKeyTagCollisions:     d.MaxKeyTagCollisions,
			MaxSignatureValidations: d.MaxSignatureValidations,
			MaxNSEC3Hashes:          d.MaxNSEC3Hashes,
			MaxNSEC3Iterations:      d.MaxNSEC3Iterations,
		},
		Roots:              roots,
		Port:               uint16(r.UpstreamPort),
		IPv4:               *r.IPv4,
		IPv6:               *r.IPv6,
		QNAMEMinimisation:  *r.QNAMEMinimisation,
		QueryTimeout:       r.QueryTimeout.D(),
		MaxUpstreamQueries: r.MaxUpstreamQueries,
		MaxReferrals:       r.MaxReferrals,
		MaxCNAMEChain:      r.MaxCNAMEChain,
		MaxNSNamesResolved: r.MaxNSNamesResolved,
		MaxDepth:           r.MaxDepth,
		FailureTTL:         r.FailureTTL.D(),
		ServerHoldDown:     r.ServerHoldDown.D(),

		ServerProbeInterval: r.ServerProbeInterval.D(),
		ServerTries:         r.ServerTries,
	}, nil
}

// Resolver resolves names iteratively. It is safe for concurrent use.
type Resolver struct {
	cfg   Config
	cache *cache.Cache
	ex    exchange.Exchanger
	infra *infra
	log   *slog.Logger
	now   func() time.Time

	anchors atomic.Pointer[anchorSet]
	ntas    negativeAnchors
	nsec    nsecIndex
	// insecureDelegations are children proven unsigned by referrals.
	insecureDelegations delegationSet
	// bogusLog limits the lines logged for bogus answers.
	bogusLog logLimiter
	// gate admits or sheds each query to a zone's servers; nil admits
	// all.
	gate Gate
}

// Gate decides, zone by zone, whether a query may go to the zone's
// servers. Acquire gets the zone and the name sent, after QNAME
// minimisation. It must not block: it returns false, with the reason for
// the client's EDE, to shed the query. Every admitted query is followed by
// one Release for the same zone.
type Gate interface {
	Acquire(zone, qname string) (ok bool, reason string)
	Release(zone string)
}

// SetGate makes g admit or shed the queries to authoritative servers. Call
// it before the first Resolve.
func (r *Resolver) SetGate(g Gate) { r.gate = g }

// bogusLogLimit is the most "validation failed" lines logged per second.
const bogusLogLimit = 20

// New returns a Resolver that stores into c and queries through ex. now may
// be nil for time.Now.
func New(cfg Config, c *cache.Cache, ex exchange.Exchanger, log *slog.Logger, now func() time.Time) *Resolver {
	if now == nil {
		now = time.Now
	}
	r := &Resolver{
		cfg: cfg, cache: c, ex: ex, now: now,
		log:      log.With("component", "resolver"),
		infra:    newInfra(cfg.QueryTimeout, cfg.ServerProbeInterval, cfg.ServerHoldDown, now),
		bogusLog: logLimiter{limit: bogusLogLimit},
	}
	r.SetTrustAnchors(cfg.Anchors)
	for _, n := range cfg.NegativeTrustAnchors {
		r.AddNegativeTrustAnchor(n.Domain, n.Expires)
	}
	return r
}

// EDE is an Extended DNS Error (RFC 8914) explaining a response.
type EDE struct {
	Code uint16
	Text string
}

// Extended DNS Error codes used by the resolver (RFC 8914 section 4).
const (
	EDEOther                = 0
	EDENoReachableAuthority = 22
)

// Result is the outcome of resolving one question. A failure to resolve is a
// Result with rcode SERVFAIL, never a Go error.
type Result struct {
	Rcode int
	// Answer holds the CNAME and DNAME records followed, then the RRset
	// asked for.
	Answer []dns.RR
	// Authority holds the SOA record of a negative answer.
	Authority []dns.RR
	// EDE explains a failure or a bogus or insecure answer; nil when
	// there is nothing to add.
	EDE *EDE
	// Security is the DNSSEC validation state of the whole answer. When
	// it is Bogus, Rcode and the records are what the servers sent, for
	// clients that set CD.
	Security dnssec.Security
	// Zone is the zone cut whose servers, or whose validated NSEC and
	// NSEC3 records, gave the final step of the resolution. It is "" when
	// the answer came from cached RRsets or negative entries alone.
	Zone string
	// Synthesised is set when the answer came from the cached NSEC or
	// NSEC3 records of Zone (RFC 8198), which cost its servers nothing.
	Synthesised bool
	// Limited is set when the Gate shed the query to Zone's servers, so
	// the SERVFAIL says nothing about the zone.
	Limited bool

	reason *dnssec.Error
}

// Resolve resolves name and qtype. It returns when the answer is known, the
// budget is spent or ctx is done.
func (r *Resolver) Resolve(ctx context.Context, name string, qtype uint16) Result {
	req := r.newRequest(ctx)
	req.refresh = refreshing(ctx)
	return r.resolve(req, dns.CanonicalName(name), qtype)
}

// Prime queries the root servers for the root NS RRset and caches it with the
// root servers' addresses (RFC 8109).
func (r *Resolver) Prime(ctx context.Context) error {
	req := r.newRequest(ctx)
	_, err := r.prime(req)
	return err
}

func (r *Resolver) newRequest(ctx context.Context) *request {
	return &request{
		ctx: ctx, cfg: &r.cfg, stack: map[string]bool{}, budget: dnssec.NewBudget(r.cfg.Limits),
		trace: trace.FromContext(ctx),
	}
}

// serverAddr is the address and port of one authoritative server.
func (r *Resolver) serverAddr(a netip.Addr) netip.AddrPort {
	return netip.AddrPortFrom(a, r.cfg.Port)
}
