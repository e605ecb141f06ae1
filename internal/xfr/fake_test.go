package xfr

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

const testZone = "rpz.example."

// fakePrimary is a scripted primary server reached through net.Pipe, so
// that the tests open no socket. It serves versions of testZone: AXFR of
// the current version, and IXFR as the script says.
type fakePrimary struct {
	t *testing.T
	// key signs the responses and checks the queries when set.
	key *Key
	// wrongKey signs the responses with another secret.
	wrongKey *Key

	mu       sync.Mutex
	versions map[uint32][]dns.RR // the zone's records by serial, SOA first
	current  uint32
	// ixfr builds the IXFR response from serial; nil answers IXFR
	// condensed, one sequence from the client's serial.
	ixfr func(from uint32) [][]dns.RR
	// rcode answers every transfer with this rcode when not 0, and
	// ixfrRcode every IXFR.
	rcode, ixfrRcode int
	// queries are the qtypes received, in order.
	queries []uint16
}

func newFakePrimary(t *testing.T) *fakePrimary {
	return &fakePrimary{t: t, versions: map[uint32][]dns.RR{}}
}

// setVersion adds version serial of the zone, made of the records in
// text (one per line, relative to testZone), and makes it current.
func (f *fakePrimary) setVersion(serial uint32, text string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.versions[serial] = zoneRecords(f.t, serial, text)
	f.current = serial
}

// zoneRecords parses a version of testZone: its SOA record, then text.
func zoneRecords(t *testing.T, serial uint32, text string) []dns.RR {
	t.Helper()
	rrs := []dns.RR{soaRecord(serial)}
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		rr, err := dns.NewRR("$ORIGIN " + testZone + "\n$TTL 300\n" + line)
		if err != nil {
			t.Fatalf("zone record %q: %v", line, err)
		}
		rrs = append(rrs, rr)
	}
	return rrs
}

func soaRecord(serial uint32) *dns.SOA {
	return &dns.SOA{
		Hdr: dns.RR_Header{Name: testZone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 300},
		Ns:  "ns." + testZone, Mbox: "admin." + testZone, Serial: serial,
		Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 60,
	}
}

// DialContext implements Dialer.
func (f *fakePrimary) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	client, server := net.Pipe()
	go f.serve(server)
	return client, nil
}

// serve answers the queries of one connection. Both ends of net.Pipe are
// streams, so UDP queries are framed as over TCP too.
func (f *fakePrimary) serve(conn net.Conn) {
	defer conn.Close()
	for {
		var n uint16
		if err := binary.Read(conn, binary.BigEndian, &n); err != nil {
			return
		}
		wire := make([]byte, n)
		if _, err := io.ReadFull(conn, wire); err != nil {
			return
		}
		q := new(dns.Msg)
		if err := q.Unpack(wire); err != nil {
			f.t.Errorf("fake primary: malformed query: %v", err)
			return
		}
		for _, m := range f.respond(q, wire) {
			out := make([]byte, 2, 2+len(m))
			binary.BigEndian.PutUint16(out, uint16(len(m)))
			if _, err := conn.Write(append(out, m...)); err != nil {
				return
			}
		}
	}
}

// respond returns the packed response messages to q.
func (f *fakePrimary) respond(q *dns.Msg, wire []byte) [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	qtype := q.Question[0].Qtype
	f.queries = append(f.queries, qtype)
	var requestMAC string
	if f.key != nil {
		t := q.IsTsig()
		if t == nil || dns.TsigVerifyWithProvider(wire, f.key, "", false) != nil {
			return f.pack(q, []*dns.Msg{tsigFailure(q, f.key)}, "")
		}
		requestMAC = t.MAC
	}
	var bodies [][]dns.RR
	rcode := dns.RcodeSuccess
	switch {
	case qtype == dns.TypeSOA:
		bodies = [][]dns.RR{{f.versions[f.current][0]}}
	case f.rcode != 0:
		rcode = f.rcode
		bodies = [][]dns.RR{nil}
	case qtype == dns.TypeIXFR && f.ixfrRcode != 0:
		rcode = f.ixfrRcode
		bodies = [][]dns.RR{nil}
	case qtype == dns.TypeAXFR:
		bodies = f.axfr()
	case qtype == dns.TypeIXFR && f.ixfr != nil:
		bodies = f.ixfr(q.Ns[0].(*dns.SOA).Serial)
	case qtype == dns.TypeIXFR:
		bodies = [][]dns.RR{f.condensed(q.Ns[0].(*dns.SOA).Serial)}
	}
	var msgs []*dns.Msg
	for _, body := range bodies {
		m := new(dns.Msg)
		m.SetRcode(q, rcode)
		m.Authoritative = true
		m.Answer = body
		msgs = append(msgs, m)
	}
	return f.pack(q, msgs, requestMAC)
}

// tsigFailure is the unsigned NOTAUTH response with the TSIG error BADSIG
// that a primary sends for a query it cannot verify.
func tsigFailure(q *dns.Msg, key *Key) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(q, dns.RcodeNotAuth)
	m.SetTsig(key.Name, key.Algorithm, fudge, 0)
	m.Extra[0].(*dns.TSIG).Error = dns.RcodeBadSig
	return m
}

// pack signs the messages of one response as a chain (RFC 8945 section
// 5.3.1) with the fake's key, or its wrong key.
func (f *fakePrimary) pack(q *dns.Msg, msgs []*dns.Msg, requestMAC string) [][]byte {
	key := f.key
	if f.wrongKey != nil {
		key = f.wrongKey
	}
	var out [][]byte
	mac := requestMAC
	for i, m := range msgs {
		if key == nil || (m.IsTsig() != nil && m.IsTsig().Error != 0) {
			wire, err := m.Pack()
			if err != nil {
				f.t.Errorf("fake primary: pack: %v", err)
			}
			out = append(out, wire)
			continue
		}
		m.SetTsig(key.Name, key.Algorithm, fudge, timeNow().Unix())
		wire, next, err := dns.TsigGenerateWithProvider(m, key, mac, i > 0)
		if err != nil {
			f.t.Errorf("fake primary: sign: %v", err)
		}
		mac = next
		out = append(out, wire)
	}
	return out
}

// axfr returns the current version in messages of three records, closed
// by the SOA record.
func (f *fakePrimary) axfr() [][]dns.RR {
	rrs := append(append([]dns.RR(nil), f.versions[f.current]...), f.versions[f.current][0])
	var msgs [][]dns.RR
	for len(rrs) > 0 {
		n := min(3, len(rrs))
		msgs = append(msgs, rrs[:n])
		rrs = rrs[n:]
	}
	return msgs
}

// condensed returns an IXFR response with one sequence from version from
// to the current one.
func (f *fakePrimary) condensed(from uint32) []dns.RR {
	return f.sequences(from, f.current)
}

// sequences returns an IXFR response with one sequence per step of path,
// a list of serials starting at the client's.
func (f *fakePrimary) sequences(path ...uint32) []dns.RR {
	cur := f.versions[path[len(path)-1]][0]
	rrs := []dns.RR{cur}
	for i := 0; i+1 < len(path); i++ {
		oldV, newV := f.versions[path[i]], f.versions[path[i+1]]
		rrs = append(rrs, oldV[0])
		rrs = append(rrs, difference(oldV[1:], newV[1:])...)
		rrs = append(rrs, newV[0])
		rrs = append(rrs, difference(newV[1:], oldV[1:])...)
	}
	return append(rrs, cur)
}

// difference returns the records of a that b lacks, TTL included.
func difference(a, b []dns.RR) []dns.RR {
	in := map[string]bool{}
	for _, rr := range b {
		in[rr.String()] = true
	}
	var out []dns.RR
	for _, rr := range a {
		if !in[rr.String()] {
			out = append(out, rr)
		}
	}
	return out
}

// qtypes returns the transfer queries received, such as "SOA IXFR".
func (f *fakePrimary) qtypes() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var names []string
	for _, t := range f.queries {
		names = append(names, dns.TypeToString[t])
	}
	f.queries = nil
	return strings.Join(names, " ")
}

// wantVersion checks that the copy in path holds exactly version serial of
// the fake's zone.
func (f *fakePrimary) wantVersion(t *testing.T, path string, serial uint32) {
	t.Helper()
	f.mu.Lock()
	want := recordLines(f.versions[serial])
	f.mu.Unlock()
	cp, err := ReadCopy(path, testZone)
	if err != nil {
		t.Fatalf("ReadCopy: %v", err)
	}
	if cp.SOA.Serial != serial {
		t.Errorf("copy has serial %d, want %d", cp.SOA.Serial, serial)
	}
	got := fileRecords(t, path)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("copy holds\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func recordLines(rrs []dns.RR) []string {
	var lines []string
	for _, rr := range rrs {
		lines = append(lines, rr.String())
	}
	sort.Strings(lines)
	return lines
}

// fileRecords returns the sorted record lines of a copy, parsed again to
// check that the file is a valid master file.
func fileRecords(t *testing.T, path string) []string {
	t.Helper()
	data := readFile(t, path)
	zp := dns.NewZoneParser(strings.NewReader(data), testZone, path)
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("copy %s is not a valid master file: %v", path, err)
	}
	return recordLines(rrs)
}

// dialerFunc turns a function into a Dialer.
type dialerFunc func(ctx context.Context, network, address string) (net.Conn, error)

func (d dialerFunc) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return d(ctx, network, address)
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
