package traffic

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sync"
	"time"

	"bulwark/internal/atomicfile"
)

// Popularity is the history of daily queries per registered domain, for
// false-positive control: a domain queried every day for weeks is not
// blocked automatically. Days are UTC days. It is safe for concurrent use.
type Popularity struct {
	mu      sync.Mutex
	cfg     PopularityConfig
	domains map[string]*dailyCounts
	today   int64 // UTC day number of the newest count
}

// dailyCounts are a domain's queries per day, in a ring indexed by the day
// number modulo the history length.
type dailyCounts struct {
	Counts []uint32 `json:"counts"`
	// Last is the UTC day number of the newest slot written: slots of
	// days after it and more than Days before it are zero.
	Last int64 `json:"last"`
}

// NewPopularity returns an empty history.
func NewPopularity(cfg PopularityConfig) *Popularity {
	return &Popularity{cfg: cfg, domains: make(map[string]*dailyCounts)}
}

func dayOf(t time.Time) int64 { return t.UTC().Unix() / 86400 }

// Add counts queries to domain at t. A new day trims the history to the
// MaxDomains domains with the most queries, and so does a table twice
// that size.
func (p *Popularity) Add(domain string, queries int, t time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	day := dayOf(t)
	if day > p.today {
		p.today = day
		p.trim()
	}
	c := p.domains[domain]
	if c == nil {
		if len(p.domains) >= 2*p.cfg.MaxDomains {
			p.trim()
		}
		c = &dailyCounts{Counts: make([]uint32, p.cfg.Days), Last: day}
		p.domains[domain] = c
	}
	c.advance(day)
	slot := &c.Counts[day%int64(len(c.Counts))]
	*slot = uint32(min(uint64(*slot)+uint64(queries), 1<<32-1))
}

// advance zeroes the slots of the days between c.Last and day.
func (c *dailyCounts) advance(day int64) {
	if day <= c.Last {
		return
	}
	n := int64(len(c.Counts))
	for d := c.Last + 1; d <= day && d <= c.Last+n; d++ {
		c.Counts[d%n] = 0
	}
	c.Last = day
}

// count returns the queries of day, 0 outside the history.
func (c *dailyCounts) count(day int64) uint32 {
	n := int64(len(c.Counts))
	if day > c.Last || day <= c.Last-n {
		return 0
	}
	return c.Counts[day%n]
}

func (c *dailyCounts) total(today int64) uint64 {
	var sum uint64
	for d := today - int64(len(c.Counts)) + 1; d <= today; d++ {
		sum += uint64(c.count(d))
	}
	return sum
}

// trim keeps the MaxDomains domains with the most queries over the
// history.
func (p *Popularity) trim() {
	if len(p.domains) <= p.cfg.MaxDomains {
		return
	}
	type ranked struct {
		domain string
		total  uint64
	}
	all := make([]ranked, 0, len(p.domains))
	for d, c := range p.domains {
		all = append(all, ranked{d, c.total(p.today)})
	}
	slices.SortFunc(all, func(a, b ranked) int { return cmp.Compare(b.total, a.total) })
	for _, r := range all[p.cfg.MaxDomains:] {
		delete(p.domains, r.domain)
	}
}

// SteadilyPopular reports whether domain reached MinDailyQueries on each
// of the SteadyDays complete UTC days before now's.
func (p *Popularity) SteadilyPopular(domain string, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.domains[domain]
	if c == nil {
		return false
	}
	today := dayOf(now)
	for d := today - int64(p.cfg.SteadyDays); d < today; d++ {
		if c.count(d) < uint32(p.cfg.MinDailyQueries) {
			return false
		}
	}
	return true
}

// DaysSeen returns the days of the history up to now's on which domain
// had queries.
func (p *Popularity) DaysSeen(domain string, now time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.domains[domain]
	if c == nil {
		return 0
	}
	days, today := 0, dayOf(now)
	for d := today - int64(p.cfg.Days) + 1; d <= today; d++ {
		if c.count(d) > 0 {
			days++
		}
	}
	return days
}

// Len returns the number of domains kept.
func (p *Popularity) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.domains)
}

// popularityFile is the JSON form of the state file.
type popularityFile struct {
	Version int                     `json:"version"`
	Days    int                     `json:"days"`
	Today   int64                   `json:"today"`
	Domains map[string]*dailyCounts `json:"domains"`
}

const popularityVersion = 1

// Save writes the history to its state file, replacing the old one
// atomically. It does nothing without a file.
func (p *Popularity) Save() error {
	if p.cfg.Path == "" {
		return nil
	}
	p.mu.Lock()
	data, err := json.Marshal(popularityFile{Version: popularityVersion, Days: p.cfg.Days, Today: p.today, Domains: p.domains})
	p.mu.Unlock()
	if err != nil {
		return fmt.Errorf("save popularity history: %w", err)
	}
	if err := atomicfile.WriteFile(p.cfg.Path, data, 0o600); err != nil {
		return fmt.Errorf("save popularity history: %w", err)
	}
	return nil
}

// Load reads the state file into p, replacing its history. A missing
// file leaves p empty; a file of another version or history length, or an
// unreadable one, is an error and leaves p empty.
func (p *Popularity) Load() error {
	if p.cfg.Path == "" {
		return nil
	}
	data, err := os.ReadFile(p.cfg.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read popularity history: %w", err)
	}
	var f popularityFile
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("read popularity history %s: %w", p.cfg.Path, err)
	}
	if f.Version != popularityVersion || f.Days != p.cfg.Days {
		return fmt.Errorf("read popularity history %s: version %d of %d days, but this build keeps version %d of %d days (intel.popularity.days)",
			p.cfg.Path, f.Version, f.Days, popularityVersion, p.cfg.Days)
	}
	for d, c := range f.Domains {
		if len(c.Counts) != p.cfg.Days {
			return fmt.Errorf("read popularity history %s: domain %q has %d days, want %d", p.cfg.Path, d, len(c.Counts), p.cfg.Days)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.domains, p.today = f.Domains, f.Today
	if p.domains == nil {
		p.domains = make(map[string]*dailyCounts)
	}
	p.trim()
	return nil
}
