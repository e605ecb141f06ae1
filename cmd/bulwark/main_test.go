package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"version"}, &out, &errOut); code != 0 {
		t.Fatalf("run(version) = %d, want 0; stderr %q", code, errOut.String())
	}
	if !strings.HasPrefix(out.String(), "bulwark ") {
		t.Errorf("version output %q, want it to start with \"bulwark \"", out.String())
	}
}

func TestConfigFlagDashes(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("cache:\n  max_bytes: 16MiB\n"), 0o644)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("cache:\n  max_bytez: 16MiB\n"), 0o644)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"single dash", []string{"check-config", "-config", good}, 0, "is valid"},
		{"double dash", []string{"check-config", "--config", good}, 0, "is valid"},
		{"equals form", []string{"check-config", "--config=" + good}, 0, "is valid"},
		{"embedded default", []string{"check-config"}, 0, "embedded default is valid"},
		{"unknown key", []string{"check-config", "-config", bad}, 1, `bad.yaml:2: unknown field "max_bytez"`},
		{"missing file", []string{"check-config", "-config", filepath.Join(dir, "none.yaml")}, 1, "no such file"},
		{"unknown flag", []string{"check-config", "-cfg", good}, 2, "flag provided but not defined"},
		{"unknown command", []string{"resolve"}, 2, `unknown command "resolve"`},
		{"help flag", []string{"check-config", "-h"}, 0, "-config file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(tt.args, &out, &errOut)
			if code != tt.wantCode {
				t.Errorf("run(%v) = %d, want %d; stderr %q", tt.args, code, tt.wantCode, errOut.String())
			}
			if all := out.String() + errOut.String(); !strings.Contains(all, tt.wantOut) {
				t.Errorf("run(%v) printed %q, want it to contain %q", tt.args, all, tt.wantOut)
			}
		})
	}
}

func TestCheckConfigParsesLists(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "list.txt"), []byte("bad.example\nbad..name\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "zone.rpz"), []byte("a.example CNAME .\n"), 0o644)
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("policy:\n  lists:\n    - name: l1\n      file: list.txt\n      format: domains\n      category: malware\n"), 0o644)
	var out, errOut bytes.Buffer
	if code := run([]string{"check-config", "-config", good}, &out, &errOut); code != 0 {
		t.Fatalf("check-config = %d, stderr %q", code, errOut.String())
	}
	if !strings.Contains(out.String(), "list l1: 1 rules, 1 malformed lines") {
		t.Errorf("output %q, want the list's rule and malformed line counts", out.String())
	}

	// An RPZ file without SOA or $ORIGIN would stop serve: check-config
	// says so.
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("policy:\n  lists:\n    - name: z\n      file: zone.rpz\n      format: rpz\n      category: malware\n"), 0o644)
	out.Reset()
	errOut.Reset()
	if code := run([]string{"check-config", "-config", bad}, &out, &errOut); code != 1 {
		t.Errorf("check-config of an RPZ without origin = %d, want 1", code)
	}
	if !strings.Contains(errOut.String(), "$ORIGIN") {
		t.Errorf("stderr %q, want the fix naming $ORIGIN", errOut.String())
	}
}
