package xfr

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"bulwark/internal/atomicfile"

	"github.com/miekg/dns"
)

// headerPrefix starts the first line of a copy written by Bulwark. The
// line is a master-file comment, so other readers skip it.
const headerPrefix = "; bulwark zone copy"

// maxLineBytes is the maximum length of one line of a copy. The longest
// record, 65535 bytes of RDATA written as \DDD escapes, takes 4 bytes of
// text per byte.
const maxLineBytes = 300 << 10

// Copy describes the copy of a zone kept in a master file.
type Copy struct {
	// Zone is the zone name, fully qualified, in lower case.
	Zone string
	// SOA is the zone's SOA record, whose serial and timers the copy has.
	SOA *dns.SOA
	// Transfer is the type of the last transfer: "AXFR", "IXFR" or
	// "AXFR-style IXFR".
	Transfer string
	// Time is when the copy was last received.
	Time time.Time
	// Primary is the address the copy was last received from.
	Primary string
	// Records counts the records of the copy, the SOA record included;
	// 0 when the copy was read from its file.
	Records int
}

// Transfer types of Copy.Transfer.
const (
	TypeAXFR      = "AXFR"
	TypeIXFR      = "IXFR"
	TypeIXFRAsAll = "AXFR-style IXFR"
)

// header returns the first line of the copy's file.
func (c *Copy) header() string {
	return fmt.Sprintf("%s zone=%s serial=%d transfer=%s time=%s primary=%s\n",
		headerPrefix, c.Zone, c.SOA.Serial, strings.ReplaceAll(c.Transfer, " ", "_"),
		c.Time.UTC().Format(time.RFC3339), c.Primary)
}

// ReadCopy reads the header and the SOA record of the copy of zone in
// path. A file that Bulwark did not write, or that holds another zone, is
// an error: its records cannot be matched against an IXFR.
func ReadCopy(path, zone string) (*Copy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), maxLineBytes)
	if !sc.Scan() {
		return nil, fmt.Errorf("%s is empty", path)
	}
	c, err := parseHeader(sc.Text())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if c.Zone != zone {
		return nil, fmt.Errorf("%s contains zone %s, not %s", path, c.Zone, zone)
	}

	for sc.Scan() {
		line := sc.Text()
		if skippedLine(line) {
			continue
		}
		rr, err := dns.NewRR(line)
		soa, ok := rr.(*dns.SOA)
		if err != nil || !ok || !strings.EqualFold(soa.Hdr.Name, zone) {
			return nil, fmt.Errorf("%s: the first record is not the SOA record of %s", path, zone)
		}
		c.SOA = soa
		return c, nil
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return nil, fmt.Errorf("%s has no SOA record", path)
}

// parseHeader parses the header line written by Copy.header.
func parseHeader(line string) (*Copy, error) {
	rest, ok := strings.CutPrefix(line, headerPrefix+" ")
	if !ok {
		return nil, errors.New("not a zone copy written by Bulwark (no header line)")
	}
	c := &Copy{}
	for _, field := range strings.Fields(rest) {
		k, v, _ := strings.Cut(field, "=")
		var err error
		switch k {
		case "zone":
			c.Zone = v
		case "transfer":
			c.Transfer = strings.ReplaceAll(v, "_", " ")
		case "time":
			c.Time, err = time.Parse(time.RFC3339, v)
		case "primary":
			c.Primary = v
		}
		if err != nil {
			return nil, fmt.Errorf("invalid %s in the header line: %w", k, err)
		}
	}
	if c.Zone == "" {
		return nil, errors.New("the header line has no zone")
	}
	return c, nil
}

// skippedLine reports whether a line of a copy holds no record: blank
// lines, comments and directives.
func skippedLine(line string) bool {
	return line == "" || line[0] == ';' || line[0] == '$'
}

// copyWriter writes a new copy next to the old one. Its commit renames the
// new copy into place with atomicfile, so that readers, and a start after a
// crash, see the old or the new file, never a part.
type copyWriter struct {
	path string
	f    *atomicfile.File
	w    *bufio.Writer
	// records counts the records written, SOA included.
	records int
}

func newCopyWriter(path string) (*copyWriter, error) {
	f, err := atomicfile.Create(path, 0o600)
	if err != nil {
		return nil, err
	}
	return &copyWriter{path: path, f: f, w: bufio.NewWriterSize(f, 256<<10)}, nil
}

// start writes the header line, which c.Records is not known for yet, and
// the SOA record.
func (cw *copyWriter) start(c *Copy) error {
	if _, err := io.WriteString(cw.w, c.header()); err != nil {
		return err
	}
	return cw.record(c.SOA)
}

func (cw *copyWriter) record(rr dns.RR) error {
	return cw.line(rr.String())
}

func (cw *copyWriter) line(s string) error {
	cw.records++
	if _, err := cw.w.WriteString(s); err != nil {
		return err
	}
	return cw.w.WriteByte('\n')
}

// commit flushes the new copy to disk and renames it over the old one.
func (cw *copyWriter) commit() error {
	if err := cw.w.Flush(); err != nil {
		cw.f.Abort()
		return fmt.Errorf("write %s: %w", cw.path, err)
	}
	return cw.f.Commit()
}

// abort removes the new copy; the old one stays.
func (cw *copyWriter) abort() {
	cw.f.Abort()
}

// recordKey returns what identifies a record in a zone, its owner in
// lower case, class, type and RDATA without the TTL, from the text of
// dns.RR.String: the fields are separated by tabs. IXFR deletes records
// by their data (RFC 1995 section 4), and a change of TTL is a deletion
// and an addition.
//
// NOTE: names inside RDATA are compared as written, with their case. When
// a primary changes the case of a target between two transfers, the IXFR
// deletion does not match the copy's record, so the IXFR fails the
// deletion check and an AXFR replaces the copy.
func recordKey(line string) (string, bool) {
	owner, rest, ok := strings.Cut(line, "\t")
	if !ok {
		return "", false
	}
	_, rest, ok = strings.Cut(rest, "\t") // the TTL
	if !ok {
		return "", false
	}
	return strings.ToLower(owner) + "\t" + rest, true
}

// diff is the net change of an IXFR, from the copy's serial to the new
// one, over every difference sequence of the response.
type diff struct {
	// deleted holds the keys of records to drop from the copy, and
	// whether the copy was found to have each.
	deleted map[string]bool
	// added holds the records to add, as lines, by key.
	added map[string]string
}

func newDiff() *diff {
	return &diff{deleted: map[string]bool{}, added: map[string]string{}}
}

// remove records a deletion. A record added by an earlier sequence of the
// same response was never in the copy, so its addition is dropped instead.
func (d *diff) remove(rr dns.RR) {
	line := rr.String()
	key, ok := recordKey(line)
	if !ok {
		return
	}
	if _, ok := d.added[key]; ok {
		delete(d.added, key)
		return
	}
	d.deleted[key] = false
}

// add records an addition; it replaces a copy's record of the same key,
// so that a new TTL takes effect.
func (d *diff) add(rr dns.RR) {
	line := rr.String()
	if key, ok := recordKey(line); ok {
		d.added[key] = line
	}
}

// errDiverged means the copy lacks records that an IXFR deletes, so it is
// not the version the primary diffed against.
var errDiverged = errors.New("the copy lacks records that the IXFR deletes")

// apply writes to cw the copy in oldPath changed by d, with soa as the
// new SOA record. It reads the old copy line by line and keeps only the
// diff in memory.
func (d *diff) apply(oldPath string, c *Copy, cw *copyWriter) error {
	f, err := os.Open(oldPath)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := cw.start(c); err != nil {
		return err
	}

	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), maxLineBytes)
	for sc.Scan() {
		line := sc.Text()
		if skippedLine(line) {
			continue
		}
		key, ok := recordKey(line)
		if !ok || isSOALine(line) {
			continue
		}
		if _, gone := d.deleted[key]; gone {
			d.deleted[key] = true
			continue
		}
		if _, replaced := d.added[key]; replaced {
			continue
		}
		if err := cw.line(line); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", oldPath, err)
	}

	for _, found := range d.deleted {
		if !found {
			return errDiverged
		}
	}
	// Sorted, so that the same diff always writes the same file.
	for _, key := range slices.Sorted(maps.Keys(d.added)) {
		if err := cw.line(d.added[key]); err != nil {
			return err
		}
	}
	return nil
}

// isSOALine reports whether a record line of a copy is an SOA record.
func isSOALine(line string) bool {
	fields := strings.SplitN(line, "\t", 5)
	return len(fields) == 5 && fields[3] == "SOA"
}
