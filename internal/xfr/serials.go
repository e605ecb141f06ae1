package xfr

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"

	"bulwark/internal/atomicfile"
)

// serialAllocator chooses the serials of the zones of a Primary so that
// no serial repeats with other contents, across restarts and handovers
// too: a secondary that holds a serial never transfers it again.
type serialAllocator interface {
	// next returns the serial after prev for zone at now, loaded being
	// false for the zone's first serial in this process. ok false means
	// the change must wait for a later call.
	next(zone string, prev uint32, loaded bool, now time.Time) (serial uint32, ok bool, err error)
	// overtaken reports whether an earlier process published a serial of
	// zone newer than own, as it can while a handover overlaps both.
	overtaken(zone string, own uint32) (bool, error)
}

// maxClockWait bounds, in seconds, how far a clock serial may be ahead of
// the clock and still hold a change back until the clock passes it.
const maxClockWait = 2

// clockSerials takes serials from the clock when nothing persists them:
// each serial is at most the current Unix time, so that the next process
// can start above every serial this one served. The first serial is the
// Unix time plus one, above any serial an earlier process took in the
// same second. A change that comes before the clock passes the last
// serial waits for the next call, at most maxClockWait seconds.
//
// NOTE: without a state file, a later process can repeat a serial after
// a clock that moved backwards or after a process that lived less than a
// second. During a handover the old process can also serve serials above
// the new one's until it stops. SerialFile covers all three cases.
type clockSerials struct{}

func (clockSerials) next(_ string, prev uint32, loaded bool, now time.Time) (uint32, bool, error) {
	clock := uint32(now.Unix())
	switch {
	case !loaded:
		return clock + 1, true, nil
	case SerialLess(prev, clock):
		return clock, true, nil
	case prev-clock < maxClockWait:
		return 0, false, nil
	default:
		// The clock moved backwards: keep counting up from prev.
		return prev + 1, true, nil
	}
}

func (clockSerials) overtaken(string, uint32) (bool, error) { return false, nil }

// SerialFile keeps the last serial of each published zone in a file that
// the processes serving the zones one after another share. Each new
// serial is thus newer (RFC 1982) than every serial served before,
// whatever the clock did. Each process that opens the file gets a
// generation one above the last, and a zone's serial records the
// generation that took it. A file lock next to the file (PATH.lock)
// orders the processes of a handover, which run at the same time for a
// while.
type SerialFile struct {
	path       string
	generation uint64
}

// serialFileData is the JSON content of a SerialFile.
type serialFileData struct {
	// Generation is the generation of the last process that opened the
	// file.
	Generation uint64 `json:"generation"`
	// Zones maps each zone, fully qualified in lower case, to its last
	// serial.
	Zones map[string]zoneSerial `json:"zones"`
}

// zoneSerial is the last serial of a zone and the generation of the
// process that took it.
type zoneSerial struct {
	Serial     uint32 `json:"serial"`
	Generation uint64 `json:"generation"`
}

// OpenSerialFile opens the serial file at path, creating it when missing,
// and takes the next generation. The file's directory must exist. An
// unreadable or invalid file is an error, because starting again from the
// clock could repeat a serial. Removing the file starts from the clock.
func OpenSerialFile(path string) (*SerialFile, error) {
	if _, err := atomicfile.CleanTemp(path); err != nil {
		return nil, fmt.Errorf("serial file %s: %w", path, err)
	}
	f := &SerialFile{path: path}
	err := f.update(func(d *serialFileData) bool {
		d.Generation++
		f.generation = d.Generation
		return true
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Path returns the path of the file.
func (f *SerialFile) Path() string { return f.path }

// update runs change on the file's content under the lock and writes the
// content back when change returns true.
func (f *SerialFile) update(change func(*serialFileData) bool) error {
	lock, err := os.OpenFile(f.path+".lock", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("serial file: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("serial file: lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	d, err := f.read()
	if err != nil {
		return err
	}
	if !change(&d) {
		return nil
	}
	data, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("serial file %s: %w", f.path, err)
	}
	if err := atomicfile.WriteFile(f.path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("serial file: %w", err)
	}
	return nil
}

func (f *SerialFile) read() (serialFileData, error) {
	d := serialFileData{Zones: map[string]zoneSerial{}}
	data, err := os.ReadFile(f.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return d, nil
	case err != nil:
		return d, fmt.Errorf("serial file: %w", err)
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return d, fmt.Errorf("serial file %s: invalid content: %w; remove the file to start the serials from the clock", f.path, err)
	}
	if d.Zones == nil {
		d.Zones = map[string]zoneSerial{}
	}
	return d, nil
}

// next returns the newest of the Unix time, prev+1 and the file's serial
// of zone plus one, and records it in the file before it is served.
func (f *SerialFile) next(zone string, prev uint32, loaded bool, now time.Time) (uint32, bool, error) {
	var serial uint32
	err := f.update(func(d *serialFileData) bool {
		serial = uint32(now.Unix())
		if loaded && SerialLess(serial, prev+1) {
			serial = prev + 1
		}
		if last, ok := d.Zones[zone]; ok && SerialLess(serial, last.Serial+1) {
			serial = last.Serial + 1
		}
		d.Zones[zone] = zoneSerial{Serial: serial, Generation: f.generation}
		return true
	})
	if err != nil {
		return 0, false, err
	}
	return serial, true, nil
}

// overtaken reports whether a process of an earlier generation recorded
// a serial of zone newer than own. A later generation's serial is not
// reported: that process replaces this one.
func (f *SerialFile) overtaken(zone string, own uint32) (bool, error) {
	d, err := f.read()
	if err != nil {
		return false, err
	}
	last, ok := d.Zones[zone]
	return ok && last.Generation < f.generation && SerialLess(own, last.Serial), nil
}
