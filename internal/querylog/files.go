package querylog

import (
	"bufio"
	"errors"
	"fmt"
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
	info  os.FileInfo // of f when opened, to notice a file removed meanwhile
	bw    *bufio.Writer
	// pending counts the lines in bw since the last flush that succeeded.
	pending int
}

// periodStart returns the start of the period holding t. Periods divide
// the day, so they start at the same UTC times every day.
func (p *periodFile) periodStart(t time.Time) time.Time {
	return t.UTC().Truncate(p.period)
}

// writer returns the buffered writer of the file of the period holding t,
// closing the file of an earlier period and opening, or appending to, the
// one of t. The directory is made again if it was removed. Files are
// readable by their owner only.
func (p *periodFile) writer(t time.Time) (*bufio.Writer, error) {
	start := p.periodStart(t)
	if p.f != nil && start.Equal(p.start) {
		return p.bw, nil
	}
	if err := p.close(); err != nil {
		return nil, err
	}
	p.start = start
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p.path(), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err == nil {
		err = endLine(f, info.Size())
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	p.f, p.info, p.bw = f, info, bufio.NewWriterSize(f, 64<<10)
	return p.bw, nil
}

// endLine ends a line that a failed write left cut short at the end of f,
// of size bytes, so that the next line starts on a line of its own.
func endLine(f *os.File, size int64) error {
	if size == 0 {
		return nil
	}
	var last [1]byte
	if _, err := f.ReadAt(last[:], size-1); err != nil {
		return err
	}
	if last[0] == '\n' {
		return nil
	}
	_, err := f.Write([]byte{'\n'})
	return err
}

// path returns the path of the file of the current period, or the
// directory before the first period.
func (p *periodFile) path() string {
	if p.start.IsZero() {
		return p.dir
	}
	return filepath.Join(p.dir, fileName(p.prefix, p.start))
}

// flush writes the buffered lines to the file, and closes it when its
// period is over at now. It returns the lines that reached the file. A
// file removed since it was opened, as by removing the directory, is
// closed with an error, and the next line opens it again.
func (p *periodFile) flush(now time.Time) (int, error) {
	if p.f == nil {
		return 0, nil
	}
	if !p.periodStart(now).Equal(p.start) {
		return p.closeCounted()
	}
	if info, err := os.Stat(p.path()); err != nil || !os.SameFile(info, p.info) {
		if err == nil {
			err = errors.New("file replaced")
		}
		return 0, fmt.Errorf("%s was removed while open; it is made again with the next line: %w", p.path(), err)
	}
	if err := p.bw.Flush(); err != nil {
		return 0, err
	}
	n := p.pending
	p.pending = 0
	return n, nil
}

// closeCounted flushes and closes the file and returns the lines that
// reached it.
func (p *periodFile) closeCounted() (int, error) {
	if p.f == nil {
		return 0, nil
	}
	n := p.pending
	if err := p.close(); err != nil {
		return 0, err
	}
	return n, nil
}

func (p *periodFile) close() error {
	if p.f == nil {
		return nil
	}
	err := errors.Join(p.bw.Flush(), p.f.Close())
	p.f, p.bw, p.info = nil, nil, nil
	if err == nil {
		p.pending = 0
	}
	return err
}

// discard closes the file after a failed write, dropping what is still
// buffered, and returns the lines lost: those buffered since the last
// flush that succeeded. A buffered writer keeps its first error, so only a
// new file lets later lines through.
func (p *periodFile) discard() int {
	if p.f != nil {
		p.f.Close()
	}
	lost := p.pending
	p.f, p.bw, p.info, p.pending = nil, nil, nil, 0
	return lost
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
