// Package trace records the steps of one resolution, for operators who want
// to know why a name resolves as it does. The steps are cache hits, zone
// cuts, each query to an authoritative server and its response, the DNSSEC
// chain of trust and the policy decisions. A Recorder travels in the
// context of the resolution. Without one, the resolver and the pipeline
// record nothing and pay only a context lookup per client query.
//
// The package holds the record and its text form. What to record is left
// to the resolver and the pipeline, and serving traces to the command line
// and the administration API.
package trace

import (
	"context"
	"sync"
	"time"
)

// Kind is the type of a step.
type Kind string

// Step kinds, in the words an operator reads in the trace.
const (
	// KindCache is data answered from the cache: an RRset, a negative
	// answer, or a negative answer synthesised from cached NSEC or NSEC3
	// records (RFC 8198).
	KindCache Kind = "cache"
	// KindZoneCut is the zone whose servers are asked next, and why.
	KindZoneCut Kind = "zone_cut"
	// KindQuery is a query sent to one server of a zone.
	KindQuery Kind = "query"
	// KindResponse is a server's response, with its rcode, what it was
	// and its RTT.
	KindResponse Kind = "response"
	// KindTimeout is a query that got no response in time.
	KindTimeout Kind = "timeout"
	// KindError is a query that failed, or a zone none of whose servers
	// gave a usable response.
	KindError Kind = "error"
	// KindLookup starts a nested lookup: the address of a name server,
	// or a DS or DNSKEY RRset for the chain of trust.
	KindLookup Kind = "lookup"
	// KindCNAME and KindDNAME are steps of an alias chain.
	KindCNAME Kind = "cname"
	KindDNAME Kind = "dname"
	// KindDS is the DS RRset, or trust anchor, that authenticates a
	// zone's DNSKEY RRset.
	KindDS Kind = "ds"
	// KindDNSKEY is a zone's DNSKEY RRset.
	KindDNSKEY Kind = "dnskey"
	// KindRRSIG is one signature check over an RRset.
	KindRRSIG Kind = "rrsig"
	// KindDenial is an NSEC or NSEC3 proof of non-existence.
	KindDenial Kind = "denial"
	// KindSecurity is the validation state of a response.
	KindSecurity Kind = "security"
	// KindPolicy is a policy decision: the list that matched, or none.
	KindPolicy Kind = "policy"
)

// Key is a DNSKEY, a DS record or an RRSIG as named by its key tag and
// algorithm.
type Key struct {
	Tag       uint16 `json:"key_tag"`
	Algorithm uint8  `json:"algorithm"`
	// Flags is the DNSKEY flags field (257 for a KSK, 256 for a ZSK); 0
	// for DS records.
	Flags uint16 `json:"flags,omitempty"`
	// DigestType is the digest type of a DS record; 0 for DNSKEYs.
	DigestType uint8 `json:"digest_type,omitempty"`
}

// EDE is an Extended DNS Error (RFC 8914).
type EDE struct {
	Code uint16 `json:"code"`
	Text string `json:"text,omitempty"`
}

// Step is one event of a resolution. Only the fields that its Kind uses
// are set.
type Step struct {
	Kind Kind `json:"kind"`
	// AtMS is the time since the trace started, in milliseconds.
	AtMS float64 `json:"at_ms"`
	// Depth is the nesting of lookups: 0 for the client's question, 1
	// for a lookup that it needs, and so on.
	Depth int `json:"depth"`

	// Zone is the zone asked, or whose keys or proof the step concerns.
	Zone string `json:"zone,omitempty"`
	// Server is the address and port of the server asked.
	Server string `json:"server,omitempty"`
	// Name and Type are the qname and qtype sent, or the owner and type
	// of the RRset the step concerns.
	Name string `json:"name,omitempty"`
	Type string `json:"type,omitempty"`
	// Protocol is "udp" or "tcp".
	Protocol string `json:"protocol,omitempty"`
	Rcode    string `json:"rcode,omitempty"`
	// Result is the outcome: for a response referral, answer, cname,
	// nodata, nxdomain or lame; for a signature valid or failed; for a
	// policy step matched or none.
	Result string `json:"result,omitempty"`
	// RTTMS is the round-trip time of a response, or the timeout that
	// expired, in milliseconds.
	RTTMS float64 `json:"rtt_ms,omitempty"`
	// Target is the target of a CNAME or DNAME, or the child zone of a
	// referral.
	Target string `json:"target,omitempty"`
	// TTL is the seconds left of cached data.
	TTL *uint32 `json:"ttl,omitempty"`
	// Keys are the DS records or DNSKEYs of a chain-of-trust step, or
	// the signature checked.
	Keys []Key `json:"keys,omitempty"`
	// Signer is the signer name of an RRSIG.
	Signer string `json:"signer,omitempty"`
	// Security is a DNSSEC validation state: secure, insecure, bogus or
	// indeterminate.
	Security string `json:"security,omitempty"`
	EDE      *EDE   `json:"ede,omitempty"`

	// List, Category, Trigger and Action describe the list of a policy
	// decision; Trigger is the rule that matched and Match its kind
	// (client-ip, qname, response-ip, nsdname, nsip).
	List     string `json:"list,omitempty"`
	Category string `json:"category,omitempty"`
	Trigger  string `json:"trigger,omitempty"`
	Match    string `json:"match,omitempty"`
	Action   string `json:"action,omitempty"`

	// Records are records of the step in presentation format, such as
	// the NSEC records of a proof or a cached RRset.
	Records []string `json:"records,omitempty"`
	// Detail is a sentence that explains the step, such as an error.
	Detail string `json:"detail,omitempty"`
}

// MaxSteps bounds the steps kept per trace, so that a resolution that
// spends its whole budget keeps a bounded record.
const MaxSteps = 5000

// Recorder collects the steps of one resolution. A nil *Recorder records
// nothing. It is safe for concurrent use.
type Recorder struct {
	mu      sync.Mutex
	start   time.Time
	steps   []Step
	depth   int
	dropped int
}

// New returns an empty Recorder whose clock starts now.
func New() *Recorder {
	return &Recorder{start: time.Now()}
}

// Add appends s, stamped with the time and the current depth. Past
// MaxSteps, steps are counted and dropped.
func (r *Recorder) Add(s Step) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.steps) >= MaxSteps {
		r.dropped++
		return
	}
	s.AtMS = Millis(time.Since(r.start))
	s.Depth = r.depth
	r.steps = append(r.steps, s)
}

// Enter starts a nested lookup: the steps added until Leave are one level
// deeper.
func (r *Recorder) Enter() {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.depth++
	r.mu.Unlock()
}

// Leave ends the nested lookup that the last Enter started.
func (r *Recorder) Leave() {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.depth = max(0, r.depth-1)
	r.mu.Unlock()
}

// Steps returns a copy of the steps so far and how many were dropped past
// MaxSteps.
func (r *Recorder) Steps() (steps []Step, dropped int) {
	if r == nil {
		return nil, 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Step(nil), r.steps...), r.dropped
}

// Elapsed returns the time since the Recorder was made.
func (r *Recorder) Elapsed() time.Duration {
	return time.Since(r.start)
}

// Millis returns d in milliseconds, rounded to microseconds.
func Millis(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

type contextKey struct{}

// NewContext returns a copy of ctx that carries r.
func NewContext(ctx context.Context, r *Recorder) context.Context {
	return context.WithValue(ctx, contextKey{}, r)
}

// FromContext returns the Recorder that ctx carries, or nil.
func FromContext(ctx context.Context) *Recorder {
	r, _ := ctx.Value(contextKey{}).(*Recorder)
	return r
}

// Answer is the outcome of a traced resolution, as the client gets it.
type Answer struct {
	Rcode string `json:"rcode"`
	// Security is the validation state; AD is set on the response when
	// it is secure.
	Security string `json:"security"`
	EDE      *EDE   `json:"ede,omitempty"`
	// Blocked is set when a policy list decided the answer.
	Blocked bool `json:"blocked,omitempty"`
	// Answer and Authority are the sections in presentation format.
	Answer    []string `json:"answer"`
	Authority []string `json:"authority,omitempty"`
}

// Report is a whole trace: the question, the steps and the answer.
type Report struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Flavour string `json:"flavour"`
	// DurationMS is the time the resolution took, in milliseconds.
	DurationMS float64 `json:"duration_ms"`
	Steps      []Step  `json:"steps"`
	// StepsDropped counts the steps past MaxSteps that were not kept.
	StepsDropped int    `json:"steps_dropped,omitempty"`
	Answer       Answer `json:"answer"`
}
