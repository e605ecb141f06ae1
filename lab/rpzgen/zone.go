package rpzgen

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// Config describes one zone.
type Config struct {
	// Names is the number of QNAME triggers, wildcards included.
	Names int
	Seed  uint64
	// Origin is the zone apex, such as "rpz.bench.".
	Origin string
	// LocalNames is the number of names with local data: each has an A
	// record, every second one an AAAA record and every fifth a TXT record.
	LocalNames int
	// Passthru is the number of rpz-passthru records, each for a name below
	// a wildcard trigger, so that it is an exception to that trigger.
	Passthru int
	// Sample is the number of listed names kept for queries: four in five
	// exact triggers, one in five names below wildcard triggers.
	Sample int
	// Unlisted is the number of names kept that no trigger covers.
	Unlisted int
}

// LocalRecord is one local-data record.
type LocalRecord struct {
	// Name is relative to the apex.
	Name  string
	Type  string
	Value string
}

// Summary describes a written zone. Names are relative to the apex.
type Summary struct {
	Exact, Wildcard int
	Local           []LocalRecord
	Passthru        []string
	// Bytes is the size of the zone file.
	Bytes int64
	// Listed are names the zone blocks: exact triggers and names below
	// wildcard triggers, spread over the whole zone.
	Listed []string
	// LastExact and LastWildcard are the last triggers of each kind in the
	// file, so that a server that blocks them has read the whole zone.
	LastExact, LastWildcard string
	// BelowLastWildcard is a name below LastWildcard.
	BelowLastWildcard string
	// Unlisted are names that no rule of the zone covers.
	Unlisted []string
}

// WriteZone writes the zone of cfg to w: $ORIGIN and $TTL lines, SOA and
// NS records, the triggers as "name CNAME ." and "*.name CNAME .", then the
// local data and the passthru records.
func WriteZone(w io.Writer, cfg Config) (*Summary, error) {
	if cfg.Names < 1 {
		return nil, fmt.Errorf("invalid name count %d: want at least 1", cfg.Names)
	}
	if !strings.HasSuffix(cfg.Origin, ".") || len(cfg.Origin) > 50 {
		return nil, fmt.Errorf("invalid origin %q: want a fully qualified name of at most 50 bytes", cfg.Origin)
	}
	cw := &countingWriter{w: w}
	bw := bufio.NewWriterSize(cw, 1<<20)
	fmt.Fprintf(bw, "$ORIGIN %s\n$TTL 300\n", cfg.Origin)
	fmt.Fprintf(bw, "@ SOA localhost. hostmaster.localhost. 1 3600 600 86400 300\n")
	fmt.Fprintf(bw, "@ NS localhost.\n")

	sum := &Summary{}
	g := NewNames(cfg.Names, cfg.Seed)
	s := newSampler(cfg.Names, cfg.Sample, cfg.Passthru)
	for {
		t, ok := g.Next()
		if !ok {
			break
		}
		if t.Wildcard {
			sum.Wildcard++
			sum.LastWildcard = t.Name
			bw.WriteString("*.")
		} else {
			sum.Exact++
			sum.LastExact = t.Name
		}
		bw.WriteString(t.Name)
		bw.WriteString(" CNAME .\n")
		s.add(t)
	}

	sum.Listed = s.listed(g)
	if sum.LastWildcard != "" {
		sum.BelowLastWildcard = g.Below("www", sum.LastWildcard)
	}
	sum.Local = localRecords(cfg.LocalNames)
	for _, r := range sum.Local {
		fmt.Fprintf(bw, "%s %s %s\n", r.Name, r.Type, r.Value)
	}
	for i, base := range s.passthruBases {
		name := g.Below("allowed"+strconv.Itoa(i), base)
		sum.Passthru = append(sum.Passthru, name)
		fmt.Fprintf(bw, "%s CNAME rpz-passthru.\n", name)
	}
	sum.Unlisted = g.Unlisted(cfg.Unlisted)
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	sum.Bytes = cw.n
	return sum, nil
}

// sampler keeps triggers at a fixed stride while the zone is written, so
// that the sample spreads over the file without holding every name.
type sampler struct {
	exactStride, wildStride, passStride int
	exactWant, wildWant, passWant       int
	exact, wild, passthruBases          []string
	seenExact, seenWild                 int
}

func newSampler(names, sample, passthru int) *sampler {
	wildcards := (names + WildcardEvery - 1) / WildcardEvery
	exact := names - wildcards
	s := &sampler{wildWant: sample / 5, passWant: passthru}
	s.exactWant = sample - s.wildWant
	s.exactStride = max(1, exact/max(1, s.exactWant))
	s.wildStride = max(1, wildcards/max(1, s.wildWant))
	// Passthru bases are taken from the wildcards at their own stride.
	s.passStride = max(1, wildcards/max(1, passthru))
	return s
}

func (s *sampler) add(t Trigger) {
	if !t.Wildcard {
		if s.seenExact%s.exactStride == 0 && len(s.exact) < s.exactWant {
			s.exact = append(s.exact, t.Name)
		}
		s.seenExact++
		return
	}
	if s.seenWild%s.wildStride == 0 && len(s.wild) < s.wildWant {
		s.wild = append(s.wild, t.Name)
	}
	if s.seenWild%s.passStride == s.passStride/2 && len(s.passthruBases) < s.passWant {
		s.passthruBases = append(s.passthruBases, t.Name)
	}
	s.seenWild++
}

// listed interleaves the sampled exact names with names below the sampled
// wildcards, one in five.
func (s *sampler) listed(g *Names) []string {
	out := make([]string, 0, len(s.exact)+len(s.wild))
	e, w := 0, 0
	for e < len(s.exact) || w < len(s.wild) {
		if (len(out)%5 == 4 || e == len(s.exact)) && w < len(s.wild) {
			out = append(out, g.Below("x"+strconv.Itoa(w), s.wild[w]))
			w++
			continue
		}
		out = append(out, s.exact[e])
		e++
	}
	return out
}

// localRecords returns the local data of n names below "internal.", a
// suffix that no trigger uses. Addresses come from the documentation
// ranges of RFC 5737 and RFC 3849.
func localRecords(n int) []LocalRecord {
	var out []LocalRecord
	v4 := netip.MustParseAddr("192.0.2.0")
	v6 := netip.MustParseAddr("2001:db8::")
	for i := range n {
		name := fmt.Sprintf("%s-%d.%s.internal", subLabels[i%len(subLabels)], i, words[i%len(words)])
		v4, v6 = nextAddr(v4), v6.Next()
		out = append(out, LocalRecord{name, "A", v4.String()})
		if i%2 == 0 {
			out = append(out, LocalRecord{name, "AAAA", v6.String()})
		}
		if i%5 == 0 {
			out = append(out, LocalRecord{name, "TXT", fmt.Sprintf("%q", "local data "+name)})
		}
	}
	return out
}

// nextAddr steps through 192.0.2.1 to 192.0.2.254, then 198.51.100.1 to
// 198.51.100.254, then 203.0.113.1 to 203.0.113.254, and starts again.
func nextAddr(a netip.Addr) netip.Addr {
	b := a.As4()
	if b[3] < 254 {
		b[3]++
		return netip.AddrFrom4(b)
	}
	switch b[0] {
	case 192:
		return netip.MustParseAddr("198.51.100.1")
	case 198:
		return netip.MustParseAddr("203.0.113.1")
	}
	return netip.MustParseAddr("192.0.2.1")
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
