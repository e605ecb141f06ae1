package gen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"bulwark/lab/labspec"
)

// Signature validity windows, relative to the time Sign runs.
const (
	signBefore     = 24 * time.Hour      // inception of normal signatures lies this far back
	signLifetime   = 40 * 24 * time.Hour // expiration of normal signatures lies this far ahead
	brokenValidity = 30 * 24 * time.Hour // length of the expired and not-yet-valid windows
	brokenShift    = 10 * 24 * time.Hour // how far those windows end before or start after now
)

// dnskeyTTL is the TTL of every DNSKEY and DS record of the lab.
const dnskeyTTL = 3600

// signWorkers is how many zones are keyed or signed at once; the work is
// mostly short signer processes.
const signWorkers = 4

// signTimeout bounds one signer or keymgr process.
const signTimeout = 60 * time.Second

// Sign carries out dnssec/plan.json of the generated lab in dir at time
// now: it makes keys, puts DS records into parent zones, signs every
// signed zone or imports its keys for Knot DNS, breaks the broken cases
// and writes the root trust anchor files and the dnssec section of
// bulwark.yaml. It must run after Generate and before the servers start.
func Sign(dir string, now time.Time, logger *slog.Logger) error {
	var plan SignPlan
	data, err := os.ReadFile(filepath.Join(dir, labspec.SignPlanFile))
	if err != nil {
		return fmt.Errorf("read sign plan: %w", err)
	}
	if err := json.Unmarshal(data, &plan); err != nil {
		return fmt.Errorf("parse sign plan of lab %s: %w", dir, err)
	}
	for _, sub := range []string{keysDir, workDir} {
		if err := os.RemoveAll(filepath.Join(dir, sub)); err != nil {
			return fmt.Errorf("empty %s: %w", sub, err)
		}
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return fmt.Errorf("create %s: %w", sub, err)
		}
	}
	// Keys of an earlier lab-up stay in Knot DNS's database otherwise.
	for _, db := range plan.KnotDBs {
		if err := os.RemoveAll(db); err != nil {
			return fmt.Errorf("empty Knot DNS database %s: %w", db, err)
		}
		if err := os.MkdirAll(db, 0o755); err != nil {
			return fmt.Errorf("create Knot DNS database %s: %w", db, err)
		}
	}

	s := &signer{dir: dir, now: now.UTC().Truncate(time.Second), keys: map[string][]*zoneKey{}}
	start := time.Now()
	if err := s.forEachZone(plan.Zones, s.makeKeys); err != nil {
		return err
	}
	keyed := time.Since(start)
	ds, err := s.delegationSigners(plan.Zones)
	if err != nil {
		return err
	}
	s.ds = ds
	if err := s.forEachZone(plan.Zones, s.signZone); err != nil {
		return err
	}
	if err := s.writeAnchors(plan); err != nil {
		return err
	}
	logger.Info("lab signed", "dir", dir, "zones", len(plan.Zones),
		"key_seconds", keyed.Seconds(), "total_seconds", time.Since(start).Seconds())
	return nil
}

// signer holds the state of one Sign run.
type signer struct {
	dir string
	now time.Time

	mu   sync.Mutex
	keys map[string][]*zoneKey // by zone name, in KeySpec order
	ds   map[string][]dns.RR   // DS records to add, by parent zone name
}

// forEachZone runs fn for every zone on signWorkers goroutines and
// returns the first error.
func (s *signer) forEachZone(zones []SignZone, fn func(*SignZone) error) error {
	jobs := make(chan *SignZone)
	errs := make(chan error, len(zones))
	var wg sync.WaitGroup
	for range signWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for z := range jobs {
				if err := fn(z); err != nil {
					errs <- fmt.Errorf("zone %s: %w", z.Name, err)
				}
			}
		}()
	}
	for i := range zones {
		jobs <- &zones[i]
	}
	close(jobs)
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if len(all) > 3 {
		all = append(all[:3], fmt.Errorf("and %d more", len(all)-3))
	}
	return errors.Join(all...)
}

func (s *signer) zoneKeys(zone string) []*zoneKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[zone]
}

// makeKeys generates the keys of one zone.
func (s *signer) makeKeys(z *SignZone) error {
	dir := keyDirOf(s.dir, z.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var keys []*zoneKey
	for _, spec := range z.Keys {
		k, err := newZoneKey(z.Name, spec, dir, s.now.Add(-signBefore))
		if err != nil {
			return err
		}
		keys = append(keys, k)
	}
	s.mu.Lock()
	s.keys[z.Name] = keys
	s.mu.Unlock()
	return nil
}

// delegationSigners makes the DS records of every zone, grouped by the
// parent zone that publishes them.
func (s *signer) delegationSigners(zones []SignZone) (map[string][]dns.RR, error) {
	out := map[string][]dns.RR{}
	for _, z := range zones {
		if z.Parent == "" {
			continue
		}
		keys := s.keys[z.Name]
		for _, spec := range z.DS {
			if spec.Key < 0 || spec.Key >= len(keys) {
				return nil, fmt.Errorf("zone %s: DS names key %d of %d", z.Name, spec.Key, len(keys))
			}
			ds, err := makeDS(keys[spec.Key].published(), spec.Digest)
			if err != nil {
				return nil, fmt.Errorf("zone %s: %w", z.Name, err)
			}
			out[z.Parent] = append(out[z.Parent], ds)
		}
	}
	return out, nil
}

// makeDS returns the DS record of key with the given digest type. GOST R
// 34.11-94 (type 3) has no implementation here, so its digest is 32 bytes
// derived from the key tag: no validator can check it anyway.
func makeDS(key *dns.DNSKEY, digest uint8) (*dns.DS, error) {
	if digest == dns.GOST94 {
		r := rng("gost", fmt.Sprintf("%s|%d", key.Header().Name, key.KeyTag()))
		var hex strings.Builder
		for range 32 {
			fmt.Fprintf(&hex, "%02X", r.IntN(256))
		}
		return &dns.DS{Hdr: dns.RR_Header{Name: key.Header().Name, Rrtype: dns.TypeDS, Class: dns.ClassINET, Ttl: dnskeyTTL},
			KeyTag: key.KeyTag(), Algorithm: key.Algorithm, DigestType: dns.GOST94, Digest: hex.String()}, nil
	}
	ds := key.ToDS(digest)
	if ds == nil {
		return nil, fmt.Errorf("DS digest type %d of key %d is not supported", digest, key.KeyTag())
	}
	ds.Hdr.Ttl = dnskeyTTL
	return ds, nil
}

// validity returns the inception and expiration of the zone's signatures.
func (s *signer) validity(z *SignZone) (time.Time, time.Time) {
	switch z.Validity {
	case validityExpired:
		end := s.now.Add(-brokenShift)
		return end.Add(-brokenValidity), end
	case validityNotYet:
		start := s.now.Add(brokenShift)
		return start, start.Add(brokenValidity)
	}
	return s.now.Add(-signBefore), s.now.Add(signLifetime)
}

// signZone writes every output of one zone.
func (s *signer) signZone(z *SignZone) error {
	unsigned, err := os.ReadFile(z.Input)
	if err != nil {
		return err
	}
	var ds bytes.Buffer
	for _, r := range s.ds[z.Name] {
		fmt.Fprintln(&ds, r.String())
	}
	withDS := append(append([]byte{}, unsigned...), ds.Bytes()...)

	for _, out := range z.Outputs {
		var err error
		switch out.Signer {
		case signerKnot:
			err = s.prepareKnot(z, out, withDS)
		case signerBind:
			err = s.runBind(z, out, withDS)
		case signerLDNS:
			err = s.runLDNS(z, out, withDS)
		default:
			err = fmt.Errorf("unknown signer %q", out.Signer)
		}
		if err != nil {
			return err
		}
		if out.Signer != signerKnot && (len(z.Faults) > 0 || z.KeyTrap != nil) {
			if err := s.applyFaults(z, out.Path); err != nil {
				return fmt.Errorf("break %s: %w", out.Path, err)
			}
		}
	}
	return nil
}

// prepareKnot writes the zone with its DS records for knotd and imports
// the zone's keys into the Knot DNS key database.
func (s *signer) prepareKnot(z *SignZone, out SignOutput, data []byte) error {
	if err := os.WriteFile(out.Path, data, 0o644); err != nil {
		return err
	}
	for _, k := range s.zoneKeys(z.Name) {
		if k.Spec.Unpublished {
			continue
		}
		if _, err := run("keymgr", "-c", out.KnotConfig, z.Name, "import-bind", k.Base); err != nil {
			return err
		}
	}
	return nil
}

// runBind signs the zone with dnssec-signzone.
func (s *signer) runBind(z *SignZone, out SignOutput, data []byte) error {
	input := filepath.Join(s.dir, workDir, fileBase(z.Name)+".bind")
	var buf bytes.Buffer
	buf.Write(data)
	keys := s.zoneKeys(z.Name)
	for _, k := range keys {
		if !k.Spec.Unpublished {
			fmt.Fprintln(&buf, k.DNSKEY.String())
		}
	}
	if err := os.WriteFile(input, buf.Bytes(), 0o644); err != nil {
		return err
	}

	from, until := s.validity(z)
	// -d keeps the dsset- files that dnssec-signzone writes out of the
	// current directory.
	args := []string{"-q", "-O", "full", "-d", filepath.Join(s.dir, workDir), "-o", z.Name, "-f", out.Path,
		"-s", bindTime(from), "-e", bindTime(until)}
	if z.NSEC3 {
		args = append(args, "-3", "-", "-H", fmt.Sprint(z.Iterations))
		if z.OptOut {
			args = append(args, "-A")
		}
	}
	if z.Validity != validityNormal {
		args = append(args, "-P") // the signer's own check would reject these signatures
	}
	var zsks []string
	for _, k := range keys {
		switch {
		case k.Spec.Unpublished:
		case k.Spec.KSK:
			args = append(args, "-k", k.Base)
		default:
			zsks = append(zsks, k.Base)
		}
	}
	args = append(args, input)
	args = append(args, zsks...)
	_, err := run("dnssec-signzone", args...)
	return err
}

// runLDNS signs the zone with ldns-signzone, which adds the DNSKEY
// records from the key files itself.
func (s *signer) runLDNS(z *SignZone, out SignOutput, data []byte) error {
	input := filepath.Join(s.dir, workDir, fileBase(z.Name)+".ldns")
	if err := os.WriteFile(input, data, 0o644); err != nil {
		return err
	}
	from, until := s.validity(z)
	args := []string{"-i", fmt.Sprint(from.Unix()), "-e", fmt.Sprint(until.Unix()), "-o", z.Name, "-f", out.Path}
	if z.NSEC3 {
		args = append(args, "-n", "-t", fmt.Sprint(z.Iterations), "-s", "")
	}
	args = append(args, input)
	for _, k := range s.zoneKeys(z.Name) {
		if !k.Spec.Unpublished {
			args = append(args, k.Base)
		}
	}
	_, err := run("ldns-signzone", args...)
	return err
}

// bindTime formats t as dnssec-signzone's YYYYMMDDHHMMSS.
func bindTime(t time.Time) string { return t.UTC().Format("20060102150405") }

func fileBase(zone string) string {
	if zone == "." {
		return "root"
	}
	return strings.TrimSuffix(zone, ".")
}

// run starts a program, waits for it and returns its output. The error
// names the command and contains its output.
func run(program string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), signTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, program, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", program, strings.Join(args, " "), err,
			strings.TrimSpace(stderr.String()+" "+stdout.String()))
	}
	return stdout.Bytes(), nil
}
