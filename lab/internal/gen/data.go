package gen

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/miekg/dns"
	"golang.org/x/net/publicsuffix"
)

// popularName is one row of popular.csv.
type popularName struct {
	Rank int
	Name string // FQDN, lowercase
}

// readPopular reads lab/data/popular.csv: a "rank,domain" header, then rows
// in rank order.
func readPopular(dataDir string) ([]popularName, error) {
	path := filepath.Join(dataDir, "popular.csv")
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open popular names: %w", err)
	}
	defer f.Close()

	r := csv.NewReader(f)
	r.FieldsPerRecord = 2
	var out []popularName
	for line := 1; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		if line == 1 {
			continue
		}
		p, err := parsePopular(rec)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no rows", path)
	}
	return out, nil
}

func parsePopular(rec []string) (popularName, error) {
	rank, err := strconv.Atoi(rec[0])
	if err != nil || rank < 1 {
		return popularName{}, fmt.Errorf("invalid rank %q", rec[0])
	}
	name := dns.Fqdn(strings.ToLower(rec[1]))
	if _, ok := dns.IsDomainName(name); !ok || dns.CountLabel(name) < 2 {
		return popularName{}, fmt.Errorf("invalid domain %q", rec[1])
	}
	return popularName{Rank: rank, Name: name}, nil
}

// readTLDs reads lab/data/tlds.txt, one TLD per line without the dot.
func readTLDs(dataDir string) (map[string]bool, []string, error) {
	path := filepath.Join(dataDir, "tlds.txt")
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open TLD list: %w", err)
	}
	defer f.Close()

	set := map[string]bool{}
	var list []string
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		label := strings.TrimSpace(sc.Text())
		if label == "" || strings.HasPrefix(label, "#") {
			continue
		}
		name := dns.Fqdn(strings.ToLower(label))
		if _, ok := dns.IsDomainName(name); !ok || dns.CountLabel(name) != 1 {
			return nil, nil, fmt.Errorf("%s:%d: invalid TLD %q", path, line, label)
		}
		if !set[name] {
			set[name] = true
			list = append(list, name)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	return set, list, nil
}

// registeredDomain returns the name one label below the ICANN public suffix
// of name, for example "bbc.co.uk." for "news.bbc.co.uk.". Suffixes from
// the private section of the Public Suffix List (github.io, blogspot.com)
// count as registered domains, because one operator runs each of them as
// one zone; EffectiveTLDPlusOne would split them into a zone per customer.
func registeredDomain(name string) (string, error) {
	host := strings.TrimSuffix(name, ".")
	suffix := icannSuffix(host)
	if host == suffix {
		return "", fmt.Errorf("domain %q is a public suffix", name)
	}

	rest := strings.TrimSuffix(host, "."+suffix)
	labels := strings.Split(rest, ".")
	return labels[len(labels)-1] + "." + suffix + ".", nil
}

// icannSuffix returns the longest public suffix of host that comes from
// the ICANN section of the Public Suffix List.
func icannSuffix(host string) string {
	for s := host; ; {
		suffix, icann := publicsuffix.PublicSuffix(s)
		if icann {
			return suffix
		}
		i := strings.IndexByte(suffix, '.')
		if i < 0 {
			return suffix
		}
		s = suffix[i+1:]
	}
}
