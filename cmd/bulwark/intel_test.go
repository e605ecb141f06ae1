package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIntelScoreFile(t *testing.T) {
	dir := t.TempDir()
	names := filepath.Join(dir, "names.txt")
	os.WriteFile(names, []byte("# popular and generated names\n\ngoogle.com\n  xjo4vk9bk1f19hxz.net  \nbad name.example\nbücher.de\n"), 0o644)

	var out, errOut bytes.Buffer
	code := run([]string{"intel", "score", "-detector", "dga", names}, &out, &errOut)
	if code != 1 {
		t.Errorf("intel score with one invalid name = %d, want 1; stderr %q", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	want := []struct{ name, verdict string }{
		{"google.com", "benign"},
		{"xjo4vk9bk1f19hxz.net", "malicious"},
		{"bücher.de", "benign"},
	}
	if len(lines) != len(want) {
		t.Fatalf("intel score printed %d lines, want %d:\n%s", len(lines), len(want), out.String())
	}
	for i, w := range want {
		fields := strings.Split(lines[i], "\t")
		if len(fields) != 3 || fields[0] != w.name || fields[2] != w.verdict {
			t.Errorf("line %d = %q, want %s<TAB>score<TAB>%s", i+1, lines[i], w.name, w.verdict)
		}
	}
	if !strings.Contains(errOut.String(), names+`:5: invalid name "bad name.example"`) {
		t.Errorf("stderr %q, want the invalid name with its line number 5", errOut.String())
	}
}

func TestIntelScoreStdinAndReason(t *testing.T) {
	stdin, err := os.CreateTemp(t.TempDir(), "stdin")
	if err != nil {
		t.Fatal(err)
	}
	stdin.WriteString("q+aHTYdlBA.t.example\nwww.example.com\n")
	stdin.Seek(0, 0)
	saved := os.Stdin
	os.Stdin = stdin
	defer func() { os.Stdin = saved }()

	var out, errOut bytes.Buffer
	if code := run([]string{"intel", "score", "-detector", "tunnel", "-reason", "-"}, &out, &errOut); code != 0 {
		t.Fatalf("intel score from stdin = %d, want 0; stderr %q", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("intel score printed %q, want two lines", out.String())
	}
	if f := strings.Split(lines[0], "\t"); len(f) != 4 || f[2] != "malicious" || !strings.Contains(f[3], "base64") {
		t.Errorf("line 1 = %q, want malicious with a reason naming base64", lines[0])
	}
	if f := strings.Split(lines[1], "\t"); len(f) != 4 || f[2] != "benign" {
		t.Errorf("line 2 = %q, want benign", lines[1])
	}
}

func TestIntelScoreArguments(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"unknown detector", []string{"intel", "score", "-detector", "bayes", "-"}, 2, `unknown detector "bayes": use one of dga, tunnel`},
		{"no file", []string{"intel", "score"}, 2, "give one file of names"},
		{"missing file", []string{"intel", "score", "/nonexistent/names.txt"}, 1, "no such file"},
		{"unknown subcommand", []string{"intel", "rank"}, 2, `unknown subcommand "rank"`},
		{"help", []string{"intel", "score", "-h"}, 0, "-detector name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(tt.args, &out, &errOut); code != tt.wantCode {
				t.Errorf("run(%q) = %d, want %d; stderr %q", tt.args, code, tt.wantCode, errOut.String())
			}
			if !strings.Contains(errOut.String(), tt.wantErr) {
				t.Errorf("run(%q) stderr %q, want it to contain %q", tt.args, errOut.String(), tt.wantErr)
			}
		})
	}
}
