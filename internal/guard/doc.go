// Package guard protects the resolver and the zones it queries from
// random-subdomain and NXDOMAIN floods: a client population, often a
// botnet spread over many addresses, queries random names under one zone,
// so every query misses the cache and goes to that zone's servers.
//
// The guard keys everything by zone cut, the zone whose servers a
// resolution asked last. For each zone it counts cache misses over a short
// sliding window, and how many of those that reached the zone's servers
// ended NXDOMAIN or SERVFAIL (timeouts included). The counts live in a
// table of fixed size, so a flood of random zones evicts the quietest
// entries instead of growing memory.
//
// A zone that crosses both a miss rate and a failure ratio is protected
// for a hold time. While it is, queries to its servers are shed except for
// a few probes a second, and the resolver answers its names from the cache
// and from validated NSEC and NSEC3 records (RFC 8198), or with SERVFAIL
// and an Extended DNS Error. The probes keep measuring the zone, so
// protection ends when the flood does. A zone protected again soon after
// its last protection ended is held twice as long, up to a maximum.
//
// Separately, the guard caps the queries in flight to the servers of each
// zone, so one slow zone cannot hold every resolution slot.
//
// The guard sends no query itself: the resolver asks it before each query
// to a zone's servers (Acquire and Release), and the pipeline reports how
// each resolution ended (Observe).
package guard
