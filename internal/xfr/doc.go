// Package xfr keeps local copies of RPZ zones as a secondary server: it
// checks a zone's SOA serial on the primaries, transfers the zone by AXFR
// (RFC 5936) or IXFR (RFC 1995), signs and checks those exchanges with TSIG
// (RFC 8945), and answers NOTIFY messages (RFC 1996).
//
// The copy of a zone is a master file with one record per line, written
// atomically. An IXFR is applied by streaming the old file into a new one,
// so only the changes are held in memory, never the whole zone. Compiling
// the copy into a policy list is left to the caller, which a Secondary
// calls after each new copy.
package xfr
