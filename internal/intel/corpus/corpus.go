// Package corpus reads the labelled name lists under lab/data that train
// and evaluate the detectors of internal/intel: popular names, DGA samples
// by family and tunnelling queries. Only the training command and tests
// import it; the resolver never reads these files.
package corpus

import (
	"bufio"
	"compress/gzip"
	"encoding/csv"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"strings"
)

// Part is one of the three disjoint parts of the popular names.
type Part int

// The popular names are split by a hash of their registered-domain label,
// so that google.com and google.de fall in the same part.
const (
	// PartTrain (60%) trains the character model.
	PartTrain Part = iota
	// PartFit (20%) fits the feature weights and chooses the threshold.
	PartFit
	// PartTest (20%) is used only to measure false positives.
	PartTest
)

// PartOf returns the part of the popular names that label belongs to. It
// hashes the lowercased label with 32-bit FNV-1a: buckets 0-5 of 10 train,
// 6-7 fit and 8-9 test.
func PartOf(label string) Part {
	h := fnv.New32a()
	io.WriteString(h, strings.ToLower(label))
	switch b := h.Sum32() % 10; {
	case b < 6:
		return PartTrain
	case b < 8:
		return PartFit
	}
	return PartTest
}

// Popular reads lab/data/popular.csv (rank,domain with a header) and
// returns the domains in rank order.
func Popular(path string) ([]string, error) {
	rows, err := readCSV(path, false)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(rows))
	for i, r := range rows {
		if len(r) != 2 {
			return nil, fmt.Errorf("read %s: line %d: %d fields, want 2 (rank,domain)", path, i+2, len(r))
		}
		names = append(names, r[1])
	}
	return names, nil
}

// Sample is one labelled name.
type Sample struct {
	Name string
	// Class is the DGA family or tunnelling tool, or "plain".
	Class string
}

// DGA reads a domain,family CSV with a header, as
// lab/data/intel/andrewaeva-dga-8families.csv.
func DGA(path string) ([]Sample, error) {
	rows, err := readCSV(path, false)
	if err != nil {
		return nil, err
	}
	out := make([]Sample, 0, len(rows))
	for i, r := range rows {
		if len(r) != 2 {
			return nil, fmt.Errorf("read %s: line %d: %d fields, want 2 (domain,family)", path, i+2, len(r))
		}
		out = append(out, Sample{Name: r[0], Class: r[1]})
	}
	return out, nil
}

// Lines reads one name per line, labelling each with class.
func Lines(path, class string) ([]Sample, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Sample
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name := strings.TrimSpace(sc.Text()); name != "" {
			out = append(out, Sample{Name: name, Class: class})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return out, nil
}

// Tunnelling reads the gzip-compressed input,class,label CSV of
// lab/data/intel/dns-tunneling-queries-dev.csv.gz. Class is the tunnelling
// tool (tuns, iodine, dnscapy, dns2tcp) or "plain".
func Tunnelling(path string) ([]Sample, error) {
	rows, err := readCSV(path, true)
	if err != nil {
		return nil, err
	}
	out := make([]Sample, 0, len(rows))
	for i, r := range rows {
		if len(r) != 3 {
			return nil, fmt.Errorf("read %s: line %d: %d fields, want 3 (input,class,label)", path, i+2, len(r))
		}
		out = append(out, Sample{Name: r[0], Class: r[1]})
	}
	return out, nil
}

// readCSV returns the records of a CSV file after its header line.
func readCSV(path string, gzipped bool) ([][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if gzipped {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	rows, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("read %s: %w", path, errors.New("empty file, want a header line"))
	}
	return rows[1:], nil
}
