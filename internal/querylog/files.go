package querylog

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// File name prefixes, followed by the UTC start of the period in
// fileTimeLayout and ".jsonl".
const (
	queriesPrefix    = "queries-"
	aggregatesPrefix = "aggregates-"
	fileTimeLayout   = "20060102T1504Z"
	fileSuffix       = ".jsonl"
)

// fileName returns the name of the file of the period starting at start.
func fileName(prefix string, start time.Time) string {
	return prefix + start.UTC().Format(fileTimeLayout) + fileSuffix
}

// periodFile is the open file of the current period of one kind.
type periodFile struct {
	dir, prefix string
	period      time.Duration

	start time.Time // of the period of f
	f     *os.File
	bw    *bufio.Writer
}

// periodStart returns the start of the period holding t. Periods divide
// the day, so they start at the same UTC times every day.
func (p *periodFile) periodStart(t time.Time) time.Time {
	return t.UTC().Truncate(p.period)
}

// writer returns the buffered writer of the file of the period holding t,
// closing the file of an earlier period and opening, or appending to, the
// one of t. Files are readable by their owner only.
func (p *periodFile) writer(t time.Time) (*bufio.Writer, error) {
	start := p.periodStart(t)
	if p.f != nil && start.Equal(p.start) {
		return p.bw, nil
	}
	if err := p.close(); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(p.dir, fileName(p.prefix, start)), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	p.f, p.bw, p.start = f, bufio.NewWriterSize(f, 64<<10), start
	return p.bw, nil
}

// path returns the path of the open file, or "" when none is open.
func (p *periodFile) path() string {
	if p.f == nil {
		return ""
	}
	return p.f.Name()
}

// flush writes the buffered lines to the file, and closes it when its
// period is over at now.
func (p *periodFile) flush(now time.Time) error {
	if p.f == nil {
		return nil
	}
	if !p.periodStart(now).Equal(p.start) {
		return p.close()
	}
	return p.bw.Flush()
}

func (p *periodFile) close() error {
	if p.f == nil {
		return nil
	}
	err := errors.Join(p.bw.Flush(), p.f.Close())
	p.f, p.bw = nil, nil
	return err
}

// retentionRule is the retention of the files of one prefix.
type retentionRule struct {
	prefix            string
	period, retention time.Duration
}

// deleteExpired removes the files of dir whose period ended more than
// their retention before now, and returns the names removed. Files that
// do not carry one of the rules' prefixes and a period start are kept.
func deleteExpired(dir string, rules []retentionRule, now time.Time) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if expired(e.Name(), rules, now) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				errs = append(errs, err)
				continue
			}
			removed = append(removed, e.Name())
		}
	}
	return removed, errors.Join(errs...)
}

func expired(name string, rules []retentionRule, now time.Time) bool {
	for _, r := range rules {
		stamp, ok := strings.CutPrefix(name, r.prefix)
		if !ok {
			continue
		}
		stamp, ok = strings.CutSuffix(stamp, fileSuffix)
		if !ok {
			return false
		}
		start, err := time.Parse(fileTimeLayout, stamp)
		if err != nil {
			return false
		}
		return !now.Before(start.Add(r.period + r.retention))
	}
	return false
}
