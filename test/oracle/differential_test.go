package oracle

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"bulwark/test/labkit"
)

// differentialTypes are the query types compared. ANY is left out: the
// lab's servers answer it with one RRset of their choice (RFC 8482), which
// differs from query to query.
var differentialTypes = []uint16{
	dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypeTXT, dns.TypeNS,
	dns.TypeSOA, dns.TypeDS, dns.TypeCNAME, dns.TypePTR, dns.TypeSRV,
}

// TestBulwarkMatchesUnbound sends the same questions to Bulwark and Unbound
// on one lab and compares the rcodes, AD bits and answer sections, TTLs
// aside. Both validate with the lab's trust anchor. The
// questions are a fixed sample of the lab's popular names, names below them
// that do not exist and their parents, each with several types.
func TestBulwarkMatchesUnbound(t *testing.T) {
	lab := openLab(t)
	startUnbound(t, lab)
	bulwarkAddr := startBulwark(t, lab)
	questions, err := differentialQuestions(lab.Info.Queries)
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	diffs, secure := 0, 0
	var wg sync.WaitGroup
	jobs := make(chan dns.Question)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for q := range jobs {
				got, want := summary(q, bulwarkAddr), summary(q, unboundAddr)
				if strings.Contains(got, " ad ") {
					mu.Lock()
					secure++
					mu.Unlock()
				}
				if got != want {
					mu.Lock()
					diffs++
					t.Errorf("%s %s:\nBulwark: %s\nUnbound: %s", q.Name, dns.TypeToString[q.Qtype], got, want)
					mu.Unlock()
				}
			}
		}()
	}
	for _, q := range questions {
		jobs <- q
	}
	close(jobs)
	wg.Wait()
	t.Logf("compared %d questions, %d differences, %d secure answers", len(questions), diffs, secure)
	if secure == 0 {
		t.Error("no answer had the AD bit: the comparison says nothing about validation")
	}
}

// differentialQuestions picks the questions from the lab's query list with a
// fixed seed.
func differentialQuestions(path string) ([]dns.Question, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	seen := map[string]bool{}
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 0 && !seen[fields[0]] {
			seen[fields[0]] = true
			names = append(names, dns.Fqdn(fields[0]))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}

	slices.Sort(names)
	rng := rand.New(rand.NewPCG(7, 7))
	rng.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	names = names[:min(300, len(names))]
	for i, n := range names[:min(60, len(names))] {
		names = append(names, fmt.Sprintf("nx-%d.%s", i, n))
		if labels := dns.SplitDomainName(n); len(labels) > 2 {
			names = append(names, strings.Join(labels[1:], ".")+".")
		}
	}

	var qs []dns.Question
	for _, n := range names {
		for _, k := range rng.Perm(len(differentialTypes))[:3] {
			qs = append(qs, dns.Question{Name: n, Qtype: differentialTypes[k], Qclass: dns.ClassINET})
		}
	}
	return qs, nil
}

// summary asks server q with the AD bit set and returns the rcode, the AD
// bit and the sorted answer section without TTLs, in lower case, or the
// error.
func summary(q dns.Question, server string) string {
	msg := new(dns.Msg)
	msg.Question = []dns.Question{q}
	msg.RecursionDesired = true
	msg.AuthenticatedData = true
	msg.SetEdns0(4096, false)
	client := &dns.Client{Net: "udp", Timeout: queryTimeout}
	resp, _, err := client.Exchange(msg, server)
	if err == nil && resp.Truncated {
		client.Net = "tcp"
		resp, _, err = client.Exchange(msg, server)
	}
	if err != nil {
		return "error: " + err.Error()
	}
	var records []string
	for _, rr := range resp.Answer {
		rr = dns.Copy(rr)
		rr.Header().Ttl = 0
		records = append(records, strings.ToLower(rr.String()))
	}
	slices.Sort(records)
	ad := ""
	if resp.AuthenticatedData {
		ad = " ad"
	}
	return dns.RcodeToString[resp.Rcode] + ad + " [" + strings.Join(records, "; ") + "]"
}

// startBulwark builds Bulwark, runs it on the lab config and stops it when
// the test ends. It returns the address it listens on.
func startBulwark(t *testing.T, lab *labkit.Lab) string {
	t.Helper()
	dir := t.TempDir()
	bin, err := labkit.BuildBulwark(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	addr := lab.Info.ResolverAddress
	cmd, err := labkit.StartBulwark(bin, lab.Info.BulwarkConfig, addr, filepath.Join(dir, "bulwark.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := labkit.StopProcess(cmd); err != nil {
			t.Errorf("bulwark did not stop cleanly: %v", err)
		}
	})
	return addr
}
