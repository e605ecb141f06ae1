package indicator

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// csvColumns are the columns ReadCSV knows, in the order WriteCSV writes.
var csvColumns = []string{"domain", "category", "score", "confidence", "reason", "first_seen", "last_seen", "valid_until"}

// ReadCSV reads indicators from CSV: a header row naming the columns
// (domain is required; category, score, confidence, reason, first_seen,
// last_seen and valid_until are optional, times in RFC 3339), or no header
// and the domain in the first column. Lines starting with # are comments.
// Each indicator gets source as its Source and provenance. Rows with an
// invalid value are skipped and reported in the returned errors, each
// naming the line.
func ReadCSV(r io.Reader, source string) ([]Indicator, []error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	var (
		out  []Indicator
		errs []error
		cols map[string]int
	)
	for {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, errs
		}
		if err != nil {
			// A syntax error, such as an unterminated quote, leaves the
			// reader unable to find the next row.
			return out, append(errs, fmt.Errorf("CSV %s: %w", source, err))
		}
		line, _ := cr.FieldPos(0)
		if cols == nil {
			cols = csvHeader(row)
			if _, header := cols["domain"]; header {
				continue
			}
		}
		in, err := csvRow(row, cols, source)
		if err != nil {
			errs = append(errs, fmt.Errorf("CSV %s: line %d: %w", source, line, err))
			continue
		}
		out = append(out, in)
	}
}

// csvHeader maps column names to indexes, or the domain to column 0 when
// row is not a header.
func csvHeader(row []string) map[string]int {
	cols := map[string]int{}
	for i, name := range row {
		cols[strings.ToLower(strings.TrimSpace(name))] = i
	}
	if _, ok := cols["domain"]; ok {
		return cols
	}
	return map[string]int{"": 0}
}

func csvRow(row []string, cols map[string]int, source string) (Indicator, error) {
	get := func(col string) string {
		if i, ok := cols[col]; ok && i < len(row) {
			return strings.TrimSpace(row[i])
		}
		return ""
	}
	domain := get("domain")
	if _, ok := cols[""]; ok {
		domain = strings.TrimSpace(row[0])
	}
	name, err := Canonical(domain)
	if err != nil {
		return Indicator{}, err
	}
	in := Indicator{Name: name, Source: source, Category: get("category"), Reason: get("reason")}
	if v := get("score"); v != "" {
		// The negated range check also rejects NaN.
		if in.Score, err = strconv.ParseFloat(v, 64); err != nil || !(in.Score >= 0 && in.Score <= 1) {
			return in, fmt.Errorf("invalid score %q: use a number from 0 to 1", v)
		}
	}
	if v := get("confidence"); v != "" {
		if in.Confidence, err = strconv.Atoi(v); err != nil || in.Confidence < 0 || in.Confidence > 100 {
			return in, fmt.Errorf("invalid confidence %q: use a whole number from 0 to 100", v)
		}
	}
	for col, dst := range map[string]*time.Time{"first_seen": &in.FirstSeen, "last_seen": &in.LastSeen, "valid_until": &in.ValidUntil} {
		if v := get(col); v != "" {
			if *dst, err = time.Parse(time.RFC3339, v); err != nil {
				return in, fmt.Errorf("invalid %s %q: use an RFC 3339 time such as 2025-01-02T15:04:05Z", col, v)
			}
		}
	}
	in.Provenance = []Provenance{{Source: source, Seen: in.LastSeen}}
	return in, nil
}

// WriteCSV writes ins with a header row, in the columns ReadCSV reads.
func WriteCSV(w io.Writer, ins []Indicator) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvColumns); err != nil {
		return err
	}
	for _, in := range ins {
		row := []string{
			in.Domain(), in.Category, strconv.FormatFloat(in.Score, 'f', -1, 64),
			strconv.Itoa(in.Confidence), in.Reason,
			formatTime(in.FirstSeen), formatTime(in.LastSeen), formatTime(in.ValidUntil),
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
