package labkit

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"bulwark/lab/labspec"
)

// Row is one check of expected.tsv: the answer a correct resolver gives
// for (Name, Type).
type Row struct {
	Name  string // FQDN with the trailing dot
	Type  string // qtype mnemonic, such as A, AAAA, MX, TXT
	Rcode string // rcode as dig prints it: NOERROR, NXDOMAIN, SERVFAIL, REFUSED
	AD    bool
	EDE   int    // expected Extended DNS Error code, -1 for none
	Value string // one value of the final answer RRset as dig +short prints it, "-" for none
}

// QType returns the numeric qtype of the row.
func (r Row) QType() uint16 { return dns.StringToType[r.Type] }

// RcodeValue returns the numeric rcode of the row.
func (r Row) RcodeValue() int { return dns.StringToRcode[r.Rcode] }

// ShortValue formats an answer record as expected.tsv does.
func ShortValue(rr dns.RR) string { return labspec.ShortValue(rr) }

// ReadExpected parses an expected.tsv file. The first line must be the
// header; every other line has six tab-separated fields. Errors name the
// file and the line.
func ReadExpected(path string) ([]Row, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read expected answers: %w", err)
	}
	defer f.Close()

	var rows []Row
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if line == 1 {
			if !strings.HasPrefix(text, labspec.ExpectedHeader) {
				return nil, fmt.Errorf("%s:1: invalid header %q, want %q", path, text, labspec.ExpectedHeader)
			}
			continue
		}
		row, err := ParseRow(text)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if line == 0 {
		return nil, fmt.Errorf("%s: empty file, want a header line", path)
	}
	return rows, nil
}

// ParseRow parses one data line of expected.tsv.
func ParseRow(text string) (Row, error) {
	fields := strings.Split(text, "\t")
	if len(fields) != 6 {
		return Row{}, fmt.Errorf("got %d tab-separated fields, want 6 (name type rcode ad ede value)", len(fields))
	}
	row := Row{Name: fields[0], Type: fields[1], Rcode: fields[2], Value: fields[5]}

	if !dns.IsFqdn(row.Name) {
		return Row{}, fmt.Errorf("invalid name %q: want a fully qualified name with the trailing dot", row.Name)
	}
	if _, ok := dns.IsDomainName(row.Name); !ok {
		return Row{}, fmt.Errorf("invalid name %q", row.Name)
	}
	if _, ok := dns.StringToType[row.Type]; !ok {
		return Row{}, fmt.Errorf("unknown type %q", row.Type)
	}
	if _, ok := dns.StringToRcode[row.Rcode]; !ok {
		return Row{}, fmt.Errorf("unknown rcode %q", row.Rcode)
	}

	var err error
	if row.AD, err = parseAD(fields[3]); err != nil {
		return Row{}, err
	}
	if row.EDE, err = parseEDE(fields[4]); err != nil {
		return Row{}, err
	}
	if row.Value == "" {
		return Row{}, fmt.Errorf("empty value: want a value or \"-\"")
	}
	return row, nil
}

func parseAD(s string) (bool, error) {
	switch s {
	case "0":
		return false, nil
	case "1":
		return true, nil
	}
	return false, fmt.Errorf("invalid ad %q: want 0 or 1", s)
}

func parseEDE(s string) (int, error) {
	if s == "-" {
		return -1, nil
	}
	code, err := strconv.Atoi(s)
	if err != nil || code < 0 || code > 65535 {
		return 0, fmt.Errorf("invalid ede %q: want \"-\" or a code from 0 to 65535", s)
	}
	return code, nil
}
