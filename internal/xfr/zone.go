package xfr

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// SOA timers of a published zone, in seconds. Secondaries refresh on
// NOTIFY; refresh is their fallback when a NOTIFY is lost.
const (
	soaRefresh = 300
	soaRetry   = 60
	soaExpire  = 1209600
	soaMinimum = 60
)

// servedZone is one zone of a Primary: its current records, serial and
// journal of diffs.
type servedZone struct {
	name string
	src  Source
	ttl  uint32

	mu      sync.RWMutex
	version uint64
	serial  uint32
	// records maps the text of each record to the record, for diffs.
	records map[string]dns.RR
	// sorted is records in canonical order, for AXFR.
	sorted  []dns.RR
	journal journal
	loaded  bool
}

// soa returns the SOA record of serial.
func (z *servedZone) soa(serial uint32) *dns.SOA {
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: z.name, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: z.ttl},
		Ns:      "localhost.",
		Mbox:    "hostmaster." + z.name,
		Serial:  serial,
		Refresh: soaRefresh, Retry: soaRetry, Expire: soaExpire, Minttl: soaMinimum,
	}
}

// apexNS is the NS record every published zone has: a zone needs one at
// its apex, and RPZ consumers ignore it.
func (z *servedZone) apexNS() *dns.NS {
	return &dns.NS{Hdr: dns.RR_Header{Name: z.name, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: z.ttl}, Ns: "localhost."}
}

// refresh reads the source when its version changed, and on a change of
// records makes a new serial with its diff. It returns the new serial and
// true when the zone changed. now gives the floor of the first serial.
func (z *servedZone) refresh(now time.Time) (uint32, bool) {
	v := z.src.Version()
	z.mu.RLock()
	same := z.loaded && v == z.version
	z.mu.RUnlock()
	if same {
		return 0, false
	}
	next := map[string]dns.RR{}
	for _, rr := range z.src.Records() {
		if !dns.IsSubDomain(z.name, rr.Header().Name) || rr.Header().Rrtype == dns.TypeSOA {
			continue
		}
		next[rrKey(rr)] = rr
	}

	z.mu.Lock()
	defer z.mu.Unlock()
	z.version = v
	if !z.loaded {
		z.loaded = true
		z.serial = uint32(now.Unix())
		z.setRecords(next)
		return z.serial, true
	}
	d := journalEntry{From: z.serial}
	for k, rr := range z.records {
		if _, ok := next[k]; !ok {
			d.Deleted = append(d.Deleted, rr)
		}
	}
	for k, rr := range next {
		if _, ok := z.records[k]; !ok {
			d.Added = append(d.Added, rr)
		}
	}
	if len(d.Deleted) == 0 && len(d.Added) == 0 {
		return 0, false
	}
	sortRRs(d.Deleted)
	sortRRs(d.Added)
	z.serial = nextSerial(z.serial, now)
	d.To = z.serial
	z.journal.add(d)
	z.setRecords(next)
	return z.serial, true
}

func (z *servedZone) setRecords(next map[string]dns.RR) {
	z.records = next
	z.sorted = make([]dns.RR, 0, len(next))
	for _, rr := range next {
		z.sorted = append(z.sorted, rr)
	}
	sortRRs(z.sorted)
}

// nextSerial returns the serial after old: the current Unix time when that
// is newer, so that a restarted primary keeps counting up, else old+1
// (RFC 1982 arithmetic).
func nextSerial(old uint32, now time.Time) uint32 {
	if t := uint32(now.Unix()); SerialLess(old, t) {
		return t
	}
	return old + 1
}

// rrKey identifies a record by its owner, type, TTL and data.
func rrKey(rr dns.RR) string {
	return strings.ToLower(rr.String())
}

func sortRRs(rrs []dns.RR) {
	slices.SortFunc(rrs, func(a, b dns.RR) int { return strings.Compare(rrKey(a), rrKey(b)) })
}

// snapshot returns the serial, the records and, when the journal reaches
// back to from, the diffs since from. fromOK is false when it does not.
func (z *servedZone) snapshot(from uint32) (serial uint32, records []dns.RR, diffs []journalEntry, fromOK bool) {
	z.mu.RLock()
	defer z.mu.RUnlock()
	diffs, fromOK = z.journal.since(from)
	return z.serial, z.sorted, diffs, fromOK
}

// currentSerial returns the zone's current serial.
func (z *servedZone) currentSerial() uint32 {
	z.mu.RLock()
	defer z.mu.RUnlock()
	return z.serial
}
