// Package labkit starts and stops the lab internet for tests and reads the
// files it generates: lab.json (Info) and expected.tsv (Row). It runs
// `make lab-up` and `make lab-down` from the repository root; the lab
// itself is described in lab/README.md.
package labkit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"

	"bulwark/lab/labspec"
)

// Info is the content of lab.json.
type Info = labspec.Info

// Lab is a lab started by Up, or opened by Open.
type Lab struct {
	Dir  string
	Info *Info
	root string   // repository root, where make runs
	lock *os.File // port offset lock held from Up to Down
}

// Up runs `make lab-up LAB=dir LAB_PORT_OFFSET=offset` from the repository
// root and returns the started lab. The make output is included in the
// error when lab-up fails.
//
// Labs with the same port offset bind the same addresses and ports, so Up
// first takes an exclusive lock for the offset and holds it until Down.
// Test packages that each start a lab, which go test runs in parallel,
// therefore take turns instead of failing to bind.
func Up(dir string, offset int) (*Lab, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("resolve lab directory %q: %w", dir, err)
	}

	lock, err := lockOffset(offset)
	if err != nil {
		return nil, err
	}
	if err := runMake(root, "lab-up", "LAB="+abs, "LAB_PORT_OFFSET="+strconv.Itoa(offset)); err != nil {
		lock.Close()
		return nil, err
	}
	l, err := Open(abs)
	if err != nil {
		lock.Close()
		return nil, err
	}
	l.root = root
	l.lock = lock
	return l, nil
}

// lockOffset takes an exclusive flock on a file named after the port
// offset in the temporary directory, waiting while another process holds
// it. Closing the file, or the process exiting, releases the lock.
func lockOffset(offset int) (*os.File, error) {
	path := filepath.Join(os.TempDir(), fmt.Sprintf("bulwark-lab-offset-%d.lock", offset))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lab lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		return f, nil
	}

	fmt.Fprintf(os.Stderr, "labkit: waiting for another lab with port offset %d to stop (lock %s)\n", offset, path)
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// Open reads lab.json of an existing lab directory without starting
// anything.
func Open(dir string) (*Lab, error) {
	info, err := ReadInfo(filepath.Join(dir, labspec.InfoFile))
	if err != nil {
		return nil, err
	}
	return &Lab{Dir: info.Dir, Info: info}, nil
}

// Down runs `make lab-down` for the lab, which stops every process lab-up
// started and waits for them to exit, then releases the port offset lock
// that Up took.
func (l *Lab) Down() error {
	root := l.root
	if root == "" {
		var err error
		if root, err = RepoRoot(); err != nil {
			return err
		}
	}
	err := runMake(root, "lab-down", "LAB="+l.Dir)
	if l.lock != nil {
		l.lock.Close()
		l.lock = nil
	}
	return err
}

// ReadInfo parses a lab.json file.
func ReadInfo(path string) (*Info, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read lab info: %w", err)
	}
	var info Info
	if err := json.Unmarshal(data, &info); err != nil {
		return nil, fmt.Errorf("parse lab info %s: %w", path, err)
	}
	return &info, nil
}

// RepoRoot returns the nearest directory at or above the working
// directory that contains go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find repository root: no go.mod at or above the working directory")
		}
		dir = parent
	}
}

// runMake runs a lab target. Without a top-level Makefile it uses
// lab/lab.mk directly, which defines the same targets.
func runMake(root string, args ...string) error {
	if _, err := os.Stat(filepath.Join(root, "Makefile")); err != nil {
		args = append([]string{"-f", "lab/lab.mk"}, args...)
	}
	cmd := exec.Command("make", append([]string{"--no-print-directory"}, args...)...)
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("make %v in %s: %w\n%s", args, root, err, out.String())
	}
	return nil
}
