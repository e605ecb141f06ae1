package pipeline

import "sync/atomic"

// Stats counts the responses of a Pipeline, for metrics. Its counters only
// grow.
type Stats struct {
	// CacheHits counts responses from the answer cache on the fast path;
	// Resolved counts those built by HandleSlow.
	CacheHits, Resolved atomic.Uint64
	// Dropped counts queries that got no response: malformed packets too
	// short to answer, and queries a policy drops.
	Dropped atomic.Uint64
	// Busy counts the SERVFAIL responses sent because every resolution
	// slot was taken.
	Busy atomic.Uint64
	// Rcodes counts responses by the 4-bit RCODE of their header.
	Rcodes [16]atomic.Uint64
}

// Stats returns the counters of p.
func (p *Pipeline) Stats() *Stats { return &p.stats }

// count records a response; resp may be nil for no response.
func (s *Stats) count(resp []byte) {
	if len(resp) < 4 {
		s.Dropped.Add(1)
		return
	}
	s.Rcodes[resp[3]&0x0F].Add(1)
}
