package xfr

import "github.com/miekg/dns"

// Source produces the content of a zone that a Primary serves, such as an
// RPZ of threat indicators. Implementations are safe for concurrent use.
type Source interface {
	// Version returns a counter that changes whenever Records would
	// return other records. The Primary polls it, so it must be cheap.
	Version() uint64
	// Records returns the zone's records, without SOA and apex NS
	// records, with owner names inside the zone. The caller does not
	// modify them, and the source must not modify them later.
	Records() []dns.RR
}
