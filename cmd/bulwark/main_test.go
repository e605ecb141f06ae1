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
