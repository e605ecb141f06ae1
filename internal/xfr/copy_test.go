package xfr

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// writeTestCopy writes version 1 of text as a copy and returns its path.
func writeTestCopy(t *testing.T, text string) (string, *Copy) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "zone.rpz")
	rrs := zoneRecords(t, 1, text)
	cp := &Copy{Zone: testZone, SOA: rrs[0].(*dns.SOA), Transfer: TypeAXFR, Time: time.Unix(0, 0)}
	cw, err := newCopyWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := cw.start(cp); err != nil {
		t.Fatal(err)
	}
	for _, rr := range rrs[1:] {
		cw.record(rr)
	}
	if err := cw.commit(); err != nil {
		t.Fatal(err)
	}
	return path, cp
}

func mustRR(t *testing.T, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR("$ORIGIN " + testZone + "\n" + s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

func TestDiffApply(t *testing.T) {
	tests := []struct {
		name    string
		deletes []string
		adds    []string
		want    string // the records after the SOA, relative names
		wantErr error
	}{
		{"delete", []string{"a 300 CNAME ."}, nil, "b 300 CNAME *.", nil},
		{"add", nil, []string{"c 300 CNAME rpz-drop."}, "a 300 CNAME .\nb 300 CNAME *.\nc 300 CNAME rpz-drop.", nil},
		{"change action", []string{"a 300 CNAME ."}, []string{"a 300 CNAME rpz-passthru."}, "a 300 CNAME rpz-passthru.\nb 300 CNAME *.", nil},
		{"change TTL", []string{"b 300 CNAME *."}, []string{"b 60 CNAME *."}, "a 300 CNAME .\nb 60 CNAME *.", nil},
		{"owner in upper case", []string{"A.RPZ.EXAMPLE. 300 CNAME ."}, nil, "b 300 CNAME *.", nil},
		{"add a record the copy has", nil, []string{"a 300 CNAME ."}, "a 300 CNAME .\nb 300 CNAME *.", nil},
		{"add then delete", nil, []string{"c 300 A 192.0.2.1"}, "a 300 CNAME .\nb 300 CNAME *.", nil},
		{"delete a record the copy lacks", []string{"z 300 CNAME ."}, nil, "", errDiverged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, old := writeTestCopy(t, "a CNAME .\nb CNAME *.")
			d := newDiff()
			for _, s := range tt.deletes {
				d.remove(mustRR(t, s))
			}
			for _, s := range tt.adds {
				d.add(mustRR(t, s))
			}
			if tt.name == "add then delete" {
				d.remove(mustRR(t, "c 300 A 192.0.2.1"))
			}
			next := &Copy{Zone: testZone, SOA: soaRecord(2), Transfer: TypeIXFR, Time: old.Time}
			cw, err := newCopyWriter(path)
			if err != nil {
				t.Fatal(err)
			}
			err = d.apply(path, next, cw)
			if !errors.Is(err, tt.wantErr) {
				cw.abort()
				t.Fatalf("apply = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				cw.abort()
				return
			}
			if err := cw.commit(); err != nil {
				t.Fatal(err)
			}
			want := recordLines(zoneRecords(t, 2, tt.want))
			if got := fileRecords(t, path); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("copy holds\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

func TestReadCopy(t *testing.T) {
	path, _ := writeTestCopy(t, "a CNAME .")
	cp, err := ReadCopy(path, testZone)
	if err != nil {
		t.Fatal(err)
	}
	if cp.SOA.Serial != 1 || cp.Transfer != TypeAXFR || !cp.Time.Equal(time.Unix(0, 0)) {
		t.Errorf("ReadCopy = serial %d, %q at %v; want serial 1, AXFR at the epoch", cp.SOA.Serial, cp.Transfer, cp.Time)
	}
	if _, err := ReadCopy(path, "other.example."); err == nil || !strings.Contains(err.Error(), "contains zone rpz.example., not other.example.") {
		t.Errorf("ReadCopy for another zone = %v, want an error naming both zones", err)
	}
}
