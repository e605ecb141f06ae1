package integration

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// kdigResult is what kdig printed for one query.
type kdigResult struct {
	Status    string // rcode word, such as NOERROR
	Flags     []string
	EDE       int // -1 when absent
	Answer    []dns.RR
	Authority []dns.RR
	Elapsed   time.Duration
	Output    string
}

func (r *kdigResult) flag(f string) bool {
	for _, x := range r.Flags {
		if x == f {
			return true
		}
	}
	return false
}

var (
	statusRe = regexp.MustCompile(`status: ([A-Z]+)`)
	flagsRe  = regexp.MustCompile(`;; Flags: ([a-z ]*);`)
	edeRe    = regexp.MustCompile(`;; EDE: (\d+)`)
)

// kdig queries the resolver under test with kdig and parses the output.
// Extra arguments come before the name, such as +tcp or +edns.
func kdig(addr string, port int, name, qtype string, extra ...string) (*kdigResult, error) {
	args := []string{"@" + addr, "-p", strconv.Itoa(port), "+retry=0", "+timeout=5"}
	args = append(args, extra...)
	args = append(args, name, qtype)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, "kdig", args...).CombinedOutput()
	elapsed := time.Since(start)
	if err != nil {
		return nil, fmt.Errorf("kdig %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	r, err := parseKdig(string(out))
	if err != nil {
		return nil, fmt.Errorf("kdig %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	r.Elapsed = elapsed
	return r, nil
}

func parseKdig(out string) (*kdigResult, error) {
	r := &kdigResult{EDE: -1, Output: out}
	m := statusRe.FindStringSubmatch(out)
	if m == nil {
		return nil, fmt.Errorf("no response status in the output")
	}
	r.Status = m[1]
	if m := flagsRe.FindStringSubmatch(out); m != nil {
		r.Flags = strings.Fields(m[1])
	}
	if m := edeRe.FindStringSubmatch(out); m != nil {
		r.EDE, _ = strconv.Atoi(m[1])
	}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, ";; ANSWER SECTION:"):
			section = "answer"
		case strings.HasPrefix(line, ";; AUTHORITY SECTION:"):
			section = "authority"
		case strings.HasPrefix(line, ";;") || strings.TrimSpace(line) == "":
			section = ""
		case section != "":
			rr, err := dns.NewRR(line)
			if err != nil {
				return nil, fmt.Errorf("parse record %q: %w", line, err)
			}
			if section == "answer" {
				r.Answer = append(r.Answer, rr)
			} else {
				r.Authority = append(r.Authority, rr)
			}
		}
	}
	return r, nil
}
