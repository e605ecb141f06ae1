package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Goals of the rows.
const (
	goalCorrectShare = 0.99
	goalLostShare    = 0.01
	goalCrashes      = 0
	goalBadFiles     = 0
)

// goalKind selects which share of the normal queries a row is judged by.
type goalKind int

const (
	// goalCorrect, for attack rows and the restart row: at least 99% of
	// all normal queries answered correctly.
	goalCorrect goalKind = iota
	// goalFault, for fault rows that start from an empty cache: at least
	// 99% of the queries the fault does not affect answered correctly, and
	// at most 1% of all queries lost. Affected queries may get SERVFAIL.
	goalFault
	// goalStale, for fault rows that start from an expired warm cache: at
	// least 99% of all queries answered correctly, stale answers included,
	// at most 1% lost, and every stale answer marked with its EDE code.
	goalStale
)

// rowResult is one line of the summary table.
type rowResult struct {
	Name        string
	Description string // the attack or fault
	Goal        goalKind
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
	out = append(out, r.loadFailures()...)
	if r.Crashes > goalCrashes {
		out = append(out, fmt.Sprintf("%d crashes, want %d", r.Crashes, goalCrashes))
	}
	if r.BadFiles > goalBadFiles {
		out = append(out, fmt.Sprintf("%d bad state files, want %d", r.BadFiles, goalBadFiles))
	}
	return out
}

// loadFailures checks the normal load against the row's goal.
func (r rowResult) loadFailures() []string {
	var out []string
	if r.Goal == goalFault {
		if share := r.Load.UnaffectedCorrectShare(); share < goalCorrectShare {
			out = append(out, fmt.Sprintf("%.2f%% of unaffected queries correct, want at least %.0f%%",
				100*share, 100*goalCorrectShare))
		}
	} else if share := r.Load.CorrectShare(); share < goalCorrectShare {
		out = append(out, fmt.Sprintf("%.2f%% correct, want at least %.0f%%", 100*share, 100*goalCorrectShare))
	}
	if r.Goal == goalCorrect {
		return out
	}
	if share := r.Load.LostShare(); share > goalLostShare {
		out = append(out, fmt.Sprintf("%d lost (%.2f%%), want at most %.0f%%",
			r.Load.TimedOut, 100*share, 100*goalLostShare))
	}
	if r.Goal == goalStale && r.Load.StaleWithoutEDE > 0 {
		out = append(out, fmt.Sprintf("%d stale answers without EDE 3 or 19", r.Load.StaleWithoutEDE))
	}
	return out
}

// Passed reports whether the row meets every goal.
func (r rowResult) Passed() bool { return len(r.Failures()) == 0 }

// writeTable prints the summary table, a line per row, then the reasons of
// the rows that failed and the peak RSS.
func writeTable(w io.Writer, rows []rowResult, peakRSS int64) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "row\tattack or fault\tattack QPS\tnormal QPS\tcorrect %\tunaffected %\taffected in time %\tstale\tlost\tp50 ms\tp99 ms\tcrashes\tbad files\tresult")
	for _, r := range rows {
		result := "PASS"
		if !r.Passed() {
			result = "FAIL"
		}
		attack := "-"
		if r.Attack.Sent > 0 {
			attack = fmt.Sprintf("%.0f", r.Attack.Rate())
		}
		unaffected, affected, stale := "-", "-", "-"
		if r.Goal != goalCorrect {
			unaffected = fmt.Sprintf("%.2f", 100*r.Load.UnaffectedCorrectShare())
			stale = fmt.Sprint(r.Load.Stale)
		}
		if r.Load.Affected > 0 {
			affected = fmt.Sprintf("%.2f", 100*r.Load.AffectedAnsweredShare())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f\t%.2f\t%s\t%s\t%s\t%d\t%s\t%s\t%d\t%d\t%s\n",
			r.Name, r.Description, attack, r.Load.Rate(), 100*r.Load.CorrectShare(),
			unaffected, affected, stale, r.Load.TimedOut,
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
