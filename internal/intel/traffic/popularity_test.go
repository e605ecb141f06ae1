package traffic

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func popConfig(path string) PopularityConfig {
	return PopularityConfig{Path: path, Days: 28, SteadyDays: 14, MinDailyQueries: 10, MaxDomains: 3}
}

func TestSteadilyPopular(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		name  string
		days  int // days of traffic, ending yesterday
		daily int // queries a day
		gap   int // a day without queries, counted back from yesterday; 0 for none
		now   int // days after the last day of traffic
		want  bool
	}{
		{"fourteen days", 14, 10, 0, 1, true},
		{"thirteen days", 13, 10, 0, 1, false},
		{"too few queries", 20, 9, 0, 1, false},
		{"one day missing", 20, 50, 5, 1, false},
		{"gone for two days", 20, 50, 0, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPopularity(popConfig(""))
			last := t0.Add(-time.Duration(tt.now) * day)
			for i := range tt.days {
				if tt.gap > 0 && i == tt.gap-1 {
					continue
				}
				p.Add("popular.example", tt.daily, last.Add(-time.Duration(i)*day))
			}
			if got := p.SteadilyPopular("popular.example", t0); got != tt.want {
				t.Errorf("SteadilyPopular = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPopularityKeepsTopDomains(t *testing.T) {
	p := NewPopularity(popConfig(""))
	for i := range 6 {
		p.Add(fmt.Sprintf("d%d.example", i), 100*(i+1), t0)
	}
	p.Add("d0.example", 1, t0.Add(24*time.Hour)) // a new day trims
	for _, d := range []string{"d3.example", "d4.example", "d5.example"} {
		if p.DaysSeen(d, t0) != 1 {
			t.Errorf("DaysSeen(%s) = 0 after the trim, want it kept among the top 3", d)
		}
	}
	if p.Len() > 4 {
		t.Errorf("Len() = %d after the trim, want at most 4", p.Len())
	}
}

func TestPopularitySaveLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "popularity.json")
	p := NewPopularity(popConfig(path))
	for i := range 15 {
		p.Add("steady.example", 20, t0.Add(-time.Duration(i+1)*24*time.Hour))
	}
	if err := p.Save(); err != nil {
		t.Fatal(err)
	}
	loaded := NewPopularity(popConfig(path))
	if err := loaded.Load(); err != nil {
		t.Fatal(err)
	}
	if !loaded.SteadilyPopular("steady.example", t0) {
		t.Error("SteadilyPopular after Load = false, want true")
	}
	cfg := popConfig(path)
	cfg.Days = 30
	if err := NewPopularity(cfg).Load(); err == nil {
		t.Error("Load with another history length = nil error, want one")
	}
	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := NewPopularity(popConfig(path)).Load(); err == nil {
		t.Error("Load of a corrupt file = nil error, want one")
	}
}
