package atomicfile

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

func TestWriteFileReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	for _, content := range []string{"first\n", "second, longer\n", ""} {
		if err := WriteFile(path, []byte(content), 0o640); err != nil {
			t.Fatalf("WriteFile(%q) = %v, want nil", content, err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != content {
			t.Errorf("content after WriteFile(%q) = %q", content, got)
		}
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o640 {
		t.Errorf("permissions = %v, want 0640", info.Mode().Perm())
	}
	assertOnlyFiles(t, filepath.Dir(path), "state")
}

func TestAbortKeepsOldVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	if err := WriteFile(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Create(path, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("half of a new")
	f.Abort()
	got, _ := os.ReadFile(path)
	if string(got) != "old\n" {
		t.Errorf("content after Abort = %q, want %q", got, "old\n")
	}
	assertOnlyFiles(t, filepath.Dir(path), "state")
	if err := f.Commit(); err == nil {
		t.Error("Commit after Abort = nil error, want an error")
	}
}

func TestCommitIntoMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "state")
	if err := WriteFile(path, []byte("x"), 0o644); err == nil {
		t.Errorf("WriteFile(%s) = nil error, want an error for the missing directory", path)
	}
}

// TestCleanTempLeftovers leaves temporary files as a killed writer would,
// next to one of a running process and unrelated files, and checks that
// CleanTemp removes only the first kind.
func TestCleanTempLeftovers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	if err := WriteFile(path, []byte("good\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	// A process that has exited leaves a free process ID.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	deadPID := strconv.Itoa(dead.Process.Pid)
	live := exec.Command("sleep", "30")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Process.Kill(); live.Wait() })
	livePID := strconv.Itoa(live.Process.Pid)
	ownPID := strconv.Itoa(os.Getpid())

	files := map[string]bool{ // name: removed
		".state.tmp-" + deadPID + "-123": true,
		".state.tmp-" + ownPID + "-456":  true,
		".state.tmp-" + livePID + "-789": false,
		".other.tmp-" + deadPID + "-123": false,
		".state.tmp-notapid-1":           false,
		"state.tmp-" + deadPID + "-1":    false,
	}
	for name := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("part"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := CleanTemp(path)
	if err != nil {
		t.Fatalf("CleanTemp = %v, want nil", err)
	}
	for name, want := range files {
		_, statErr := os.Stat(filepath.Join(dir, name))
		gone := os.IsNotExist(statErr)
		if gone != want {
			t.Errorf("%s removed = %v, want %v", name, gone, want)
		}
		if listed := slices.Contains(removed, filepath.Join(dir, name)); listed != want {
			t.Errorf("%s in the returned list = %v, want %v", name, listed, want)
		}
	}
	got, _ := os.ReadFile(path)
	if string(got) != "good\n" {
		t.Errorf("state after CleanTemp = %q, want %q", got, "good\n")
	}
}

func TestCleanTempMissingDirectory(t *testing.T) {
	removed, err := CleanTemp(filepath.Join(t.TempDir(), "missing", "state"))
	if err != nil || len(removed) != 0 {
		t.Errorf("CleanTemp in a missing directory = %v, %v; want nothing and nil", removed, err)
	}
}

func assertOnlyFiles(t *testing.T, dir string, want ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, want) {
		t.Errorf("files in %s = %v, want %v", dir, got, want)
	}
}
