package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/miekg/dns"

	"bulwark/test/labkit"
)

// question is one line of queries.txt.
type question struct {
	Name  string
	Qtype uint16
}

// readQueries parses queries.txt: one "name qtype" pair a line.
func readQueries(path string) ([]question, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read queries: %w", err)
	}
	defer f.Close()
	var out []question
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return nil, fmt.Errorf("%s:%d: got %d fields, want 2 (name qtype)", path, line, len(fields))
		}
		qtype, ok := dns.StringToType[fields[1]]
		if !ok || !dns.IsFqdn(fields[0]) {
			return nil, fmt.Errorf("%s:%d: invalid question %q", path, line, sc.Text())
		}
		out = append(out, question{Name: strings.ToLower(fields[0]), Qtype: qtype})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no queries", path)
	}
	return out, nil
}

// checker decides whether a response to a normal query is correct.
type checker struct {
	expected map[question]labkit.Row
}

func newChecker(rows []labkit.Row) *checker {
	c := &checker{expected: make(map[question]labkit.Row, len(rows))}
	for _, r := range rows {
		c.expected[question{Name: strings.ToLower(r.Name), Qtype: r.QType()}] = r
	}
	return c
}

// correct reports whether resp answers q correctly. A question listed in
// expected.tsv needs its rcode and, unless the value is "-", a record of
// the question's type whose short form is the value. Every other question
// of queries.txt resolves to NOERROR or NXDOMAIN by construction of the
// lab, so either rcode is correct for it. A truncated response is never
// correct: the caller retries it over TCP.
func (c *checker) correct(q question, resp *dns.Msg) bool {
	if resp == nil || resp.Truncated || !resp.Response {
		return false
	}
	if len(resp.Question) != 1 || !strings.EqualFold(resp.Question[0].Name, q.Name) || resp.Question[0].Qtype != q.Qtype {
		return false
	}
	row, listed := c.expected[q]
	if !listed {
		return resp.Rcode == dns.RcodeSuccess || resp.Rcode == dns.RcodeNameError
	}
	if resp.Rcode != row.RcodeValue() {
		return false
	}
	if row.Value == "-" {
		return true
	}
	for _, rr := range resp.Answer {
		if rr.Header().Rrtype == q.Qtype && labkit.ShortValue(rr) == row.Value {
			return true
		}
	}
	return false
}

// listed reports how many of qs have a row in expected.tsv.
func (c *checker) listed(qs []question) int {
	n := 0
	for _, q := range qs {
		if _, ok := c.expected[q]; ok {
			n++
		}
	}
	return n
}
