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
// records takes a new serial from serials with its diff. force takes a new
// serial even without a change, so that secondaries holding a serial of
// another process transfer this one's records. It returns the new serial
// and true when the zone has one. When serials holds the change back or
// fails, the zone keeps its serial and the next call tries again. Only
// one goroutine may call refresh at a time.
func (z *servedZone) refresh(now time.Time, serials serialAllocator, force bool) (uint32, bool, error) {
	v := z.src.Version()
	z.mu.RLock()
	loaded, version, prev := z.loaded, z.version, z.serial
	z.mu.RUnlock()
	if loaded && v == version && !force {
		return 0, false, nil
	}

	// z.records changes only in refresh, so it is read here unlocked.
	next := z.records
	if !loaded || v != version {
		next = z.readSource()
	}
	var d journalEntry
	if loaded {
		d = diffRecords(z.records, next)
		if len(d.Deleted) == 0 && len(d.Added) == 0 && !force {
			z.mu.Lock()
			z.version = v
			z.mu.Unlock()
			return 0, false, nil
		}
	}
	serial, ok, err := serials.next(z.name, prev, loaded, now)
	if err != nil || !ok {
		return 0, false, err
	}

	z.mu.Lock()
	defer z.mu.Unlock()
	z.version, z.serial = v, serial
	if loaded {
		d.From, d.To = prev, serial
		z.journal.add(d)
	}
	z.loaded = true
	z.setRecords(next)
	return serial, true, nil
}

// readSource returns the source's records inside the zone, without SOA
// records, by their text.
func (z *servedZone) readSource() map[string]dns.RR {
	next := map[string]dns.RR{}
	for _, rr := range z.src.Records() {
		if !dns.IsSubDomain(z.name, rr.Header().Name) || rr.Header().Rrtype == dns.TypeSOA {
			continue
		}
		next[rrKey(rr)] = rr
	}
	return next
}

// diffRecords returns the records of old missing in next as deleted and those of
// next missing in old as added, each sorted.
func diffRecords(old, next map[string]dns.RR) journalEntry {
	var d journalEntry
	for k, rr := range old {
		if _, ok := next[k]; !ok {
			d.Deleted = append(d.Deleted, rr)
		}
	}
	for k, rr := range next {
		if _, ok := old[k]; !ok {
			d.Added = append(d.Added, rr)
		}
	}
	sortRRs(d.Deleted)
	sortRRs(d.Added)
	return d
}

func (z *servedZone) setRecords(next map[string]dns.RR) {
	z.records = next
	z.sorted = make([]dns.RR, 0, len(next))
	for _, rr := range next {
		z.sorted = append(z.sorted, rr)
	}
	sortRRs(z.sorted)
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

// recordCount returns the number of the zone's records, without the SOA
// and NS.
func (z *servedZone) recordCount() int {
	z.mu.RLock()
	defer z.mu.RUnlock()
	return len(z.sorted)
}

// isLoaded reports whether the zone has its first serial.
func (z *servedZone) isLoaded() bool {
	z.mu.RLock()
	defer z.mu.RUnlock()
	return z.loaded
}

// currentSerial returns the zone's current serial.
func (z *servedZone) currentSerial() uint32 {
	z.mu.RLock()
	defer z.mu.RUnlock()
	return z.serial
}
