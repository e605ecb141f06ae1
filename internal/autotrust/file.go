package autotrust

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"bulwark/internal/atomicfile"

	"github.com/miekg/dns"
)

// fileHeader starts every state file that Save writes.
const fileHeader = `; RFC 5011 trust anchor state of Bulwark. Bulwark rewrites this file:
; edit it only while Bulwark is stopped. Each line is a DS or DNSKEY record
; followed by "; state=S first_seen=T last_seen=T last_change=T", where S is
; addpend, valid, missing, revoked or removed, and T is an RFC 3339 time or
; "-" when unknown.
`

// Load reads the state file at path. A missing file gives an empty state, to
// be filled with Seed. Any other read error is an error, and so is a file
// that does not follow the format: the error names the file and the line.
func Load(path string) (*State, error) {
	// A new version that a killed writer left half written is of no use:
	// the state file itself is complete.
	if _, err := atomicfile.CleanTemp(path); err != nil {
		return nil, fmt.Errorf("read trust anchor state: %w", err)
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return New(path), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read trust anchor state: %w", err)
	}
	keys, err := parseState(data, path)
	if err != nil {
		return nil, err
	}
	s := New(path)
	s.keys = keys
	return s, nil
}

// parseState parses the content of a state file.
func parseState(data []byte, path string) ([]*Key, error) {
	var keys []*Key
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == ';' {
			continue
		}
		k, err := parseLine(line)
		if err == nil {
			for _, other := range keys {
				if dns.IsDuplicate(other.Record, k.Record) || sameDNSKEY(other.Record, k.Record) {
					err = errors.New("the key is listed twice")
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("trust anchor state file %s line %d: %w: fix the line, or stop Bulwark and delete the file to start again from the configured trust anchors", path, i+1, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("trust anchor state file %s has no key: restore it, or delete it to start again from the configured trust anchors", path)
	}
	return keys, nil
}

// sameDNSKEY reports whether a and b are DNSKEYs of the same name that are the
// same key, ignoring the REVOKE bit.
func sameDNSKEY(a, b dns.RR) bool {
	ka, okA := a.(*dns.DNSKEY)
	kb, okB := b.(*dns.DNSKEY)
	return okA && okB && ka.Hdr.Name == kb.Hdr.Name && sameKey(ka, kb)
}

// parseLine parses one key line of a state file.
func parseLine(line string) (*Key, error) {
	record, comment, found := strings.Cut(line, ";")
	if !found {
		return nil, errors.New(`missing "; state=... first_seen=... last_seen=... last_change=..." after the record`)
	}
	rr, err := dns.NewRR(record)
	if err != nil {
		return nil, fmt.Errorf("invalid record: %w", err)
	}
	if rr == nil {
		return nil, errors.New("missing record before ';'")
	}
	rr.Header().Name = dns.CanonicalName(rr.Header().Name)
	k := &Key{Record: rr}
	if err := k.parseFields(comment); err != nil {
		return nil, err
	}
	switch rec := rr.(type) {
	case *dns.DNSKEY:
		if rec.Protocol != 3 || rec.Flags&dns.ZONE == 0 || rec.Flags&dns.SEP == 0 {
			return nil, fmt.Errorf("DNSKEY with flags %d and protocol %d is not a key signing key: want flags 257 or 385 and protocol 3", rec.Flags, rec.Protocol)
		}
		if key, err := base64.StdEncoding.DecodeString(rec.PublicKey); err != nil || len(key) == 0 {
			return nil, errors.New("invalid DNSKEY: the public key is missing or not base64")
		}
		revoked := rec.Flags&dns.REVOKE != 0
		if revoked != (k.State == Revoked || k.State == Removed) {
			return nil, fmt.Errorf("state %s does not match flags %d: keys in state revoked or removed have the REVOKE bit (128), others do not", k.State, rec.Flags)
		}
	case *dns.DS:
		if k.State != Valid && k.State != Missing {
			return nil, fmt.Errorf("DS record in state %s: a DS record is valid or missing until its key is seen", k.State)
		}
	default:
		return nil, fmt.Errorf("type %s is not DS or DNSKEY", dns.TypeToString[rr.Header().Rrtype])
	}
	return k, nil
}

// parseFields parses "state=... first_seen=... last_seen=... last_change=...".
func (k *Key) parseFields(comment string) error {
	got := map[string]bool{}
	for _, field := range strings.Fields(comment) {
		name, value, ok := strings.Cut(field, "=")
		if !ok {
			return fmt.Errorf("invalid field %q: want name=value", field)
		}
		if got[name] {
			return fmt.Errorf("field %s is given twice", name)
		}
		got[name] = true
		var err error
		switch name {
		case "state":
			k.State, err = parseKeyState(value)
		case "first_seen":
			k.FirstSeen, err = parseTime(name, value)
		case "last_seen":
			k.LastSeen, err = parseTime(name, value)
		case "last_change":
			k.LastChange, err = parseTime(name, value)
		default:
			err = fmt.Errorf("unknown field %q: want state, first_seen, last_seen and last_change", name)
		}
		if err != nil {
			return err
		}
	}
	for _, name := range []string{"state", "first_seen", "last_seen", "last_change"} {
		if !got[name] {
			return fmt.Errorf("missing field %s", name)
		}
	}
	if k.State == AddPend && (k.FirstSeen.IsZero() || k.LastSeen.IsZero()) {
		return errors.New("state addpend needs first_seen and last_seen times, because the add hold-down counts from first_seen")
	}
	if k.State == Revoked && k.LastSeen.IsZero() {
		return errors.New("state revoked needs a last_seen time, because the remove hold-down counts from it")
	}
	return nil
}

func parseKeyState(value string) (KeyState, error) {
	for i, name := range stateNames {
		if name == value && KeyState(i) != Start {
			return KeyState(i), nil
		}
	}
	return Start, fmt.Errorf("invalid state %q: want addpend, valid, missing, revoked or removed", value)
}

func parseTime(name, value string) (time.Time, error) {
	if value == "-" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, value)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid %s %q: want an RFC 3339 time or -", name, value)
	}
	return t, nil
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// Marshal returns the content of the state file.
func (s *State) Marshal() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b bytes.Buffer
	b.WriteString(fileHeader)
	for _, k := range s.keys {
		fmt.Fprintf(&b, "%s ; state=%s first_seen=%s last_seen=%s last_change=%s\n",
			strings.ReplaceAll(k.Record.String(), "\t", " "), k.State,
			formatTime(k.FirstSeen), formatTime(k.LastSeen), formatTime(k.LastChange))
	}
	return b.Bytes()
}

// Save writes the state file atomically and durably with atomicfile: a
// crash leaves either the old or the new file.
func (s *State) Save() error {
	if err := atomicfile.WriteFile(s.path, s.Marshal(), 0o644); err != nil {
		return fmt.Errorf("save trust anchor state: %w", err)
	}
	return nil
}
