package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestLoadResultFigures(t *testing.T) {
	r := loadResult{
		Sent: 110, Correct: 99, Wrong: 1, Abandoned: 10, Duration: 2 * time.Second,
		Latencies: []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
	}
	if got := r.CorrectShare(); got != 0.99 {
		t.Errorf("CorrectShare() = %v, want 0.99 (abandoned queries left out)", got)
	}
	if got := r.Rate(); got != 55 {
		t.Errorf("Rate() = %v, want 55", got)
	}
	if got := r.Percentile(0.5); got != 6 {
		t.Errorf("Percentile(0.5) = %v, want 6", got)
	}
	if got := r.Percentile(0.99); got != 10 {
		t.Errorf("Percentile(0.99) = %v, want 10", got)
	}
	if got := (loadResult{}).CorrectShare(); got != 0 {
		t.Errorf("CorrectShare() of nothing sent = %v, want 0", got)
	}
}

func TestRowResultPassed(t *testing.T) {
	good := loadResult{Sent: 1000, Correct: 990}
	tests := []struct {
		name    string
		row     rowResult
		failure string // empty when the row passes
	}{
		{"meets goals", rowResult{Load: good}, ""},
		{"too few correct", rowResult{Load: loadResult{Sent: 1000, Correct: 989}}, "98.90% correct"},
		{"crash", rowResult{Load: good, Crashes: 1}, "1 crashes"},
		{"bad file", rowResult{Load: good, BadFiles: 2}, "2 bad state files"},
		{"error", rowResult{Load: good, Err: errors.New("nft failed")}, "error: nft failed"},
		{"nothing sent", rowResult{}, "0.00% correct"},
		{"attack ignores lost", rowResult{Load: loadResult{Sent: 1000, Correct: 990, TimedOut: 10}}, ""},

		// 400 affected queries get SERVFAIL, the others are correct.
		{"fault affected fail", rowResult{Goal: goalFault, Load: loadResult{
			Sent: 1000, Correct: 594, Affected: 400, AffectedAnswered: 400, UnaffectedCorrect: 594}}, ""},
		{"fault unaffected wrong", rowResult{Goal: goalFault, Load: loadResult{
			Sent: 1000, Correct: 593, Affected: 400, AffectedAnswered: 400, UnaffectedCorrect: 593}},
			"98.83% of unaffected queries correct"},
		{"fault lost", rowResult{Goal: goalFault, Load: loadResult{
			Sent: 1000, Correct: 600, Affected: 400, AffectedAnswered: 389, UnaffectedCorrect: 600, TimedOut: 11}},
			"11 lost (1.10%), want at most 1%"},
		{"fault lost at limit", rowResult{Goal: goalFault, Load: loadResult{
			Sent: 1000, Correct: 600, Affected: 400, AffectedAnswered: 390, UnaffectedCorrect: 600, TimedOut: 10}}, ""},

		{"stale", rowResult{Goal: goalStale, Load: loadResult{
			Sent: 1000, Correct: 995, Affected: 400, AffectedAnswered: 400, UnaffectedCorrect: 595, Stale: 400}}, ""},
		{"stale too few correct", rowResult{Goal: goalStale, Load: loadResult{
			Sent: 1000, Correct: 600, Affected: 400, AffectedAnswered: 400, UnaffectedCorrect: 600}},
			"60.00% correct, want at least 99%"},
		{"stale without EDE", rowResult{Goal: goalStale, Load: loadResult{
			Sent: 1000, Correct: 1000, Affected: 400, AffectedAnswered: 400, UnaffectedCorrect: 600,
			Stale: 398, StaleWithoutEDE: 2}}, "2 stale answers without EDE 3 or 19"},
		{"stale lost", rowResult{Goal: goalStale, Load: loadResult{
			Sent: 1000, Correct: 990, Affected: 400, AffectedAnswered: 390, UnaffectedCorrect: 600, TimedOut: 11}},
			"11 lost (1.10%)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			failures := strings.Join(tt.row.Failures(), "; ")
			if tt.failure == "" && failures != "" {
				t.Fatalf("Failures() = %q, want none", failures)
			}
			if !strings.Contains(failures, tt.failure) {
				t.Errorf("Failures() = %q, want one containing %q", failures, tt.failure)
			}
			if got := tt.row.Passed(); got != (tt.failure == "") {
				t.Errorf("Passed() = %v, want %v", got, tt.failure == "")
			}
		})
	}
}

func TestLoadResultShares(t *testing.T) {
	r := loadResult{Sent: 1000, Abandoned: 100, Affected: 400, AffectedAnswered: 300,
		UnaffectedCorrect: 495, TimedOut: 9}
	if got := r.UnaffectedCorrectShare(); got != 0.99 {
		t.Errorf("UnaffectedCorrectShare() = %v, want 0.99 (495 of 500)", got)
	}
	if got := r.AffectedAnsweredShare(); got != 0.75 {
		t.Errorf("AffectedAnsweredShare() = %v, want 0.75", got)
	}
	if got := r.LostShare(); got != 0.01 {
		t.Errorf("LostShare() = %v, want 0.01 (9 of 900 counted)", got)
	}
	if got := (loadResult{Sent: 10}).AffectedAnsweredShare(); got != 1 {
		t.Errorf("AffectedAnsweredShare() without affected queries = %v, want 1", got)
	}
	if got := (loadResult{Sent: 10, Affected: 10}).UnaffectedCorrectShare(); got != 0 {
		t.Errorf("UnaffectedCorrectShare() with every query affected = %v, want 0", got)
	}
}

func TestWriteTable(t *testing.T) {
	rows := []rowResult{
		{Name: "malformed", Description: "malformed packets",
			Attack: attackResult{Sent: 40000, Duration: 2 * time.Second},
			Load: loadResult{Sent: 4000, Correct: 4000, Duration: 2 * time.Second,
				Latencies: []time.Duration{time.Millisecond, 3 * time.Millisecond}}},
		{Name: "sigstop", Description: "SIGSTOP knot-tld",
			Load: loadResult{Sent: 100, Correct: 50, Duration: time.Second}, Crashes: 1},
		{Name: "tld-down", Description: "org. dropped", Goal: goalFault,
			Load: loadResult{Sent: 1000, Correct: 880, Affected: 120, AffectedAnswered: 117,
				UnaffectedCorrect: 880, TimedOut: 3, Stale: 0, Duration: time.Second}},
	}
	var b strings.Builder
	writeTable(&b, rows, 150<<20)
	out := b.String()
	lines := strings.Split(out, "\n")
	for _, want := range []string{"row", "attack QPS", "correct %", "unaffected %", "affected in time %",
		"stale", "lost", "p99 ms", "crashes", "bad files", "result"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("header %q lacks column %q", lines[0], want)
		}
	}
	if fields := strings.Fields(lines[1]); fields[0] != "malformed" || fields[len(fields)-1] != "PASS" ||
		!strings.Contains(lines[1], "20000") || !strings.Contains(lines[1], "100.00") || !strings.Contains(lines[1], "3.0") {
		t.Errorf("row line = %q, want malformed, 20000 attack QPS, 100.00%%, p99 3.0 and PASS", lines[1])
	}
	if !strings.Contains(lines[2], "sigstop") || !strings.HasSuffix(strings.TrimSpace(lines[2]), "FAIL") {
		t.Errorf("row line = %q, want sigstop ... FAIL", lines[2])
	}
	if !strings.Contains(lines[2], " - ") {
		t.Errorf("row line = %q, want - for a row without attack", lines[2])
	}
	// tld-down: 88.00 correct, 100.00 unaffected, 97.50 affected in time,
	// 0 stale, 3 lost, and PASS.
	fault := strings.Fields(lines[3])
	if len(fault) < 12 || fault[5] != "88.00" || fault[6] != "100.00" || fault[7] != "97.50" ||
		fault[8] != "0" || fault[9] != "3" || fault[len(fault)-1] != "PASS" {
		t.Errorf("fault row line = %q, want 88.00 correct, 100.00 unaffected, 97.50 affected, 0 stale, 3 lost, PASS", lines[3])
	}
	if attack := strings.Fields(lines[1]); attack[6] != "-" || attack[7] != "-" || attack[8] != "-" {
		t.Errorf("attack row line = %q, want - for the fault columns", lines[1])
	}
	if !strings.Contains(out, "FAIL sigstop: 50.00% correct, want at least 99%; 1 crashes, want 0") {
		t.Errorf("output lacks the reasons of the failed row:\n%s", out)
	}
	if !strings.Contains(out, "peak resolver RSS: 150.0 MiB") {
		t.Errorf("output lacks the peak RSS:\n%s", out)
	}
}
