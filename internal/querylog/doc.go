// Package querylog writes the optional query log of Bulwark: one JSON line
// per client query, and aggregate counts that leave out rare rows.
//
// A Logger is an observe.Observer. On the query path it only copies the
// query and response into a bounded queue, and drops and counts what does
// not fit. One writer goroutine parses the messages, anonymises the client
// address with a privacy.Anonymiser chosen by the client's flavour, and
// appends the line to the file of the current period, named after its
// start in UTC, such as queries-20260102T1300Z.jsonl. A line holds:
//
//	{"time":"2026-01-02T13:04:05.123456Z","flavour":"protective",
//	 "transport":"udp","client":"192.0.2.0/24","qname":"example.com.",
//	 "qtype":"A","rcode":"NXDOMAIN","duration_seconds":0.0012,
//	 "cached":false,"list":"urlhaus","category":"malware","action":"nxdomain"}
//
// client is absent in omit mode, and rcode when no response was sent. list,
// category and action are present only when a list blocked or rewrote the
// answer; the server reports them with the query (observe.Query), so they
// are there for clients without EDNS too.
//
// Aggregates count, per interval, the queries and the distinct clients of
// each (flavour, qname, qtype, rcode). Clients are told apart by their
// privacy pseudonym, whose key changes at each UTC midnight and is never
// written; intervals divide the day, so no interval spans two keys. Rows of
// fewer than MinClients distinct clients are not written, and the
// pseudonyms are dropped when the interval is written.
//
// Files whose period ended more than the retention ago are deleted when the
// Logger starts and then every minute. Other files in the directory are left
// alone.
package querylog
