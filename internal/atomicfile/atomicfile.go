// Package atomicfile replaces files so that a crash at any moment leaves
// either the old or the new complete file, never a mix or a truncated one.
//
// A new version is written to a temporary file in the same directory,
// flushed to disk with fsync, renamed over the old file, and the directory
// is flushed so that the rename itself survives a power loss. Temporary
// files carry the writer's process ID in their name, so that CleanTemp can
// remove those of writers that died without touching those of another
// running process, such as the old Bulwark during a handover.
//
// The package knows nothing of file formats: callers parse what they read.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// tempInfix separates a file's name from the writer's process ID in the
// name of a temporary file: ".NAME.tmp-PID-RANDOM".
const tempInfix = ".tmp-"

// File is a new version of a file, written to a temporary file until
// Commit renames it into place. Writes go to the embedded *os.File.
type File struct {
	*os.File
	path string
	perm fs.FileMode
	done bool
}

// Create starts a new version of path with permissions perm. The caller
// must end it with Commit or Abort.
func Create(path string, perm fs.FileMode) (*File, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	pattern := "." + base + tempInfix + strconv.Itoa(os.Getpid()) + "-*"
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, fmt.Errorf("create a temporary file for %s: %w", path, err)
	}
	return &File{File: f, path: path, perm: perm}, nil
}

// Path returns the path that Commit replaces.
func (f *File) Path() string { return f.path }

// Commit sets the permissions, flushes the new version to disk, renames it
// over the path and flushes the directory. On error the temporary file is
// removed and the old version, if any, stays in place.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("commit %s: already committed or aborted", f.path)
	}
	f.done = true
	err := f.Chmod(f.perm)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), f.path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	if err := SyncDir(filepath.Dir(f.path)); err != nil {
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	return nil
}

// Abort closes and removes the temporary file; the old version stays. It
// does nothing after Commit, so that it can be deferred.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.Close()
	os.Remove(f.Name())
}

// WriteFile replaces path with data, atomically and durably.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Commit()
}

// SyncDir flushes a directory to disk, so that a rename or a removal in it
// survives a power loss.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("flush directory: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("flush directory %s: %w", dir, err)
	}
	return nil
}

// CleanTemp removes the temporary files of path left by writers that are
// no longer running, as after a crash or kill -9, and returns their paths.
// A temporary file of a running process other than this one is kept: it
// may be a new version that process is about to commit. Temporary files of
// this process's ID are removed too, since CleanTemp runs at start, before
// this process writes path, and a container may give every run the same
// ID.
func CleanTemp(path string) ([]string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("clean temporary files of %s: %w", path, err)
	}
	prefix := "." + base + tempInfix
	var removed []string
	for _, e := range entries {
		pid, ok := tempWriter(e.Name(), prefix)
		if !ok || (pid != os.Getpid() && running(pid)) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("clean temporary files of %s: %w", path, err)
		}
		removed = append(removed, p)
	}
	return removed, nil
}

// tempWriter returns the process ID in the name of a temporary file made
// by Create for the file whose temporary names start with prefix.
func tempWriter(name, prefix string) (int, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return 0, false
	}
	digits, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(digits)
	return pid, err == nil && pid > 0
}

// running reports whether a process with this ID exists. EPERM means it
// exists under another user.
func running(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}
