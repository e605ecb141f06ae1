package nod

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"time"

	"bulwark/internal/atomicfile"
)

// stateMagic starts a state file; its last byte is the format version.
var stateMagic = []byte("BWNOD\x01")

// The state file is, in big-endian order: stateMagic; the creation time
// of the filter in Unix nanoseconds (int64); the filter's bits m (uint64)
// and hash count k (uint32); the domains added (uint64); the m/64 words
// of the filter (uint64); the number of recent entries (uint32) and each
// entry as its first-seen time (int64 Unix nanoseconds), a name length
// (uint8) and the name; and the CRC-32 (IEEE) of all that (uint32).

// Save writes s to its state file, replacing the old one atomically. It
// does nothing when the Set has no file.
func (s *Set) Save() error {
	if s.cfg.Path == "" {
		return nil
	}
	s.mu.Lock()
	data := s.encode()
	s.mu.Unlock()
	if err := atomicfile.WriteFile(s.cfg.Path, data, 0o600); err != nil {
		return fmt.Errorf("save NOD state: %w", err)
	}
	return nil
}

func (s *Set) encode() []byte {
	var buf bytes.Buffer
	buf.Grow(len(s.bloom.bits)*8 + 64 + len(s.recent)*32)
	buf.Write(stateMagic)
	put := func(v any) { binary.Write(&buf, binary.BigEndian, v) }
	put(s.created.UnixNano())
	put(s.bloom.m)
	put(uint32(s.bloom.k))
	put(s.added)
	put(s.bloom.bits)
	put(uint32(len(s.recent)))
	for _, e := range s.recent {
		put(e.FirstSeen.UnixNano())
		buf.WriteByte(byte(len(e.Domain)))
		buf.WriteString(e.Domain)
	}
	put(crc32.ChecksumIEEE(buf.Bytes()))
	return buf.Bytes()
}

// load reads the state file into s. A missing file leaves s as it is.
func (s *Set) load() error {
	data, err := os.ReadFile(s.cfg.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := s.decode(data); err != nil {
		return fmt.Errorf("read NOD state %s: %w", s.cfg.Path, err)
	}
	return nil
}

func (s *Set) decode(data []byte) error {
	if len(data) < len(stateMagic)+4 || !bytes.Equal(data[:len(stateMagic)], stateMagic) {
		return errors.New("not a NOD state file of this version")
	}
	body, sum := data[:len(data)-4], binary.BigEndian.Uint32(data[len(data)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return errors.New("checksum mismatch: the file is corrupt")
	}
	r := bytes.NewReader(body[len(stateMagic):])
	var created int64
	var m, added uint64
	var k uint32
	if err := readAll(r, &created, &m, &k, &added); err != nil {
		return err
	}
	if m != s.bloom.m || int(k) != s.bloom.k {
		return fmt.Errorf("filter of %d bits and %d hashes, but the config makes %d bits and %d hashes: "+
			"intel.nod.expected_domains or intel.nod.false_positive_rate changed", m, k, s.bloom.m, s.bloom.k)
	}
	if err := binary.Read(r, binary.BigEndian, s.bloom.bits); err != nil {
		return fmt.Errorf("filter: %w", err)
	}
	recent, err := readRecent(r)
	if err != nil {
		return err
	}
	s.created, s.added, s.recent = time.Unix(0, created), added, recent
	return nil
}

func readAll(r *bytes.Reader, values ...any) error {
	for _, v := range values {
		if err := binary.Read(r, binary.BigEndian, v); err != nil {
			return fmt.Errorf("header: %w", err)
		}
	}
	return nil
}

func readRecent(r *bytes.Reader) ([]Entry, error) {
	var n uint32
	if err := binary.Read(r, binary.BigEndian, &n); err != nil {
		return nil, fmt.Errorf("recent entries: %w", err)
	}
	if int64(n) > int64(r.Len())/9 {
		return nil, fmt.Errorf("recent entries: count %d is past the end of the file", n)
	}
	recent := make([]Entry, 0, n)
	for range n {
		var at int64
		if err := binary.Read(r, binary.BigEndian, &at); err != nil {
			return nil, fmt.Errorf("recent entry: %w", err)
		}
		l, err := r.ReadByte()
		if err != nil {
			return nil, fmt.Errorf("recent entry: %w", err)
		}
		name := make([]byte, l)
		if _, err := io.ReadFull(r, name); err != nil {
			return nil, fmt.Errorf("recent entry: %w", err)
		}
		recent = append(recent, Entry{Domain: string(name), FirstSeen: time.Unix(0, at)})
	}
	return recent, nil
}
