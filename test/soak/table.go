package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Goals of every row.
const (
	goalCorrectShare = 0.99
	goalCrashes      = 0
	goalBadFiles     = 0
)

// rowResult is one line of the summary table.
type rowResult struct {
	Name        string
	Description string // the attack or fault
	Attack      attackResult
	Load        loadResult
	Crashes     int
	BadFiles    int
	// Err is set when the row could not run as designed, such as a fault
	// that failed to install; the row then fails.
	Err error
}

// Failures returns why the row misses its goals, empty when it passes.
func (r rowResult) Failures() []string {
	var out []string
	if r.Err != nil {
		out = append(out, "error: "+r.Err.Error())
	}
	if share := r.Load.CorrectShare(); share < goalCorrectShare {
		out = append(out, fmt.Sprintf("%.2f%% correct, want at least %.0f%%", 100*share, 100*goalCorrectShare))
	}
	if r.Crashes > goalCrashes {
		out = append(out, fmt.Sprintf("%d crashes, want %d", r.Crashes, goalCrashes))
	}
	if r.BadFiles > goalBadFiles {
		out = append(out, fmt.Sprintf("%d bad state files, want %d", r.BadFiles, goalBadFiles))
	}
	return out
}

// Passed reports whether the row meets every goal.
func (r rowResult) Passed() bool { return len(r.Failures()) == 0 }

// writeTable prints the summary table, a line per row, then the reasons of
// the rows that failed and the peak RSS.
func writeTable(w io.Writer, rows []rowResult, peakRSS int64) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "row\tattack or fault\tattack QPS\tnormal QPS\tcorrect %\tp50 ms\tp99 ms\tcrashes\tbad files\tresult")
	for _, r := range rows {
		result := "PASS"
		if !r.Passed() {
			result = "FAIL"
		}
		attack := "-"
		if r.Attack.Sent > 0 {
			attack = fmt.Sprintf("%.0f", r.Attack.Rate())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f\t%.2f\t%s\t%s\t%d\t%d\t%s\n",
			r.Name, r.Description, attack, r.Load.Rate(), 100*r.Load.CorrectShare(),
			milliseconds(r.Load.Percentile(0.50)), milliseconds(r.Load.Percentile(0.99)),
			r.Crashes, r.BadFiles, result)
	}
	tw.Flush()

	for _, r := range rows {
		if f := r.Failures(); len(f) > 0 {
			fmt.Fprintf(w, "FAIL %s: %s\n", r.Name, strings.Join(f, "; "))
		}
	}
	fmt.Fprintf(w, "peak resolver RSS: %.1f MiB\n", float64(peakRSS)/(1<<20))
}

// milliseconds formats d in milliseconds with one decimal.
func milliseconds(d time.Duration) string {
	return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond))
}
