package gen

import (
	"bufio"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"bulwark/lab/labspec"
)

// The real root zone of 2018-01-29, signed by the root KSK-2010 (key tag
// 19036), served as it is apart from its glue. See lab/data/SOURCES.md.
const (
	root2018ZoneFile   = "root.zone.2018012900.gz"
	root2018AnchorFile = "root-anchors-2010.xml"
	root2018Serial     = 2018012900
	// root2018Time lies inside the validity of every signature in the
	// zone. The RRSIG over the DNSKEY RRset runs from 2018-01-21 to
	// 2018-02-11, but every other RRSIG only from 2018-01-29T04:00:00Z to
	// 2018-02-11T05:00:00Z, so a time before January 29 fails them all.
	root2018Time = "2018-02-01T12:00:00Z"
)

// Instances that serve the 2018 root zone: an exact copy and a copy with
// one byte changed in the RRSIG over the root DNSKEY RRset.
const (
	knotRoot2018    = "knot-root2018"
	knotRoot2018Bad = "knot-root2018-bad"
)

// Base ports of the Bulwark configs for the 2018 root, shifted by the
// port offset.
const (
	root2018ResolverBasePort    = 5310
	root2018BadResolverBasePort = 5311
)

// extraZone is a zone file that an instance loads besides the lab zones.
type extraZone struct {
	Name string
	File string
}

// addRoot2018Instances adds the two Knot DNS processes of the 2018 root.
func (l *Lab) addRoot2018Instances() {
	for i, name := range []string{knotRoot2018, knotRoot2018Bad} {
		in := &instance{Name: name, Program: labspec.ProgramKnot, Role: labspec.RoleRoot2018,
			Addrs: []string{loopback(4, i+1)}}
		in.Extra = []extraZone{{Name: ".", File: l.path(zonesDir, name+".zone")}}
		l.instances = append(l.instances, in)
		l.byInst[name] = in
	}
}

// writeRoot2018 writes the two copies of the 2018 root zone, their root
// hints, the Bulwark configs that use them and the KSK-2010 trust anchor.
func (l *Lab) writeRoot2018() error {
	good, bad := l.byInst[knotRoot2018], l.byInst[knotRoot2018Bad]
	src := filepath.Join(l.opts.DataDir, root2018ZoneFile)
	if err := rewriteRoot2018(src, good.Extra[0].File, good.Addrs[0], false); err != nil {
		return err
	}
	if err := rewriteRoot2018(src, bad.Extra[0].File, bad.Addrs[0], true); err != nil {
		return err
	}

	anchor, err := os.ReadFile(filepath.Join(l.opts.DataDir, root2018AnchorFile))
	if err != nil {
		return fmt.Errorf("read 2018 root trust anchor: %w", err)
	}
	if err := os.WriteFile(l.path(root2018AnchorFile), anchor, 0o644); err != nil {
		return err
	}
	for _, c := range []struct {
		in   *instance
		port int
	}{{good, root2018ResolverBasePort}, {bad, root2018BadResolverBasePort}} {
		hints := l.path(c.in.Name + ".hints")
		if err := writeRoot2018Hints(hints, c.in.Addrs[0]); err != nil {
			return err
		}
		if err := l.writeRoot2018Config(l.path("bulwark-"+strings.TrimPrefix(c.in.Name, "knot-")+".yaml"),
			hints, c.port+l.opts.PortOffset); err != nil {
			return err
		}
	}
	return nil
}

// rewriteRoot2018 copies the gzipped zone at src to dst line by line.
// Every A and AAAA record is glue, which no RRSIG covers: A records get
// addr, so each referral points back at the same lab server, and AAAA
// records are dropped, because the lab has no IPv6 address for them. With
// corrupt set, one byte in the middle of the RRSIG over the root DNSKEY
// RRset is changed. No other line changes, so every signature still
// verifies.
func rewriteRoot2018(src, dst, addr string, corrupt bool) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("read 2018 root zone: %w", err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("read 2018 root zone %s: %w", src, err)
	}
	return writeFile(dst, func(w *bufio.Writer) error {
		fmt.Fprintf(w, "; Root zone %d with glue rewritten to %s by labgen", root2018Serial, addr)
		if corrupt {
			fmt.Fprintf(w, " and one byte changed in the RRSIG over the DNSKEY RRset")
		}
		fmt.Fprintln(w)
		return copyRoot2018(gz, w, addr, corrupt)
	})
}

func copyRoot2018(r io.Reader, w *bufio.Writer, addr string, corrupt bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	corrupted := false
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) < 5 || strings.HasPrefix(line, ";") {
			fmt.Fprintln(w, line)
			continue
		}
		switch {
		case fields[3] == "A":
			fmt.Fprintf(w, "%s\t%s\tIN\tA\t%s\n", fields[0], fields[1], addr)
			continue
		case fields[3] == "AAAA":
			continue
		case corrupt && fields[0] == "." && fields[3] == "RRSIG" && fields[4] == "DNSKEY":
			rec, err := dns.NewRR(line)
			if err != nil {
				return fmt.Errorf("parse root DNSKEY RRSIG: %w", err)
			}
			sig := rec.(*dns.RRSIG)
			raw, err := base64.StdEncoding.DecodeString(sig.Signature)
			if err != nil {
				return err
			}
			raw[len(raw)/2] ^= 0xff
			sig.Signature = base64.StdEncoding.EncodeToString(raw)
			fmt.Fprintln(w, sig.String())
			corrupted = true
			continue
		}
		fmt.Fprintln(w, line)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if corrupt && !corrupted {
		return fmt.Errorf("2018 root zone has no RRSIG over the DNSKEY RRset")
	}
	return nil
}

// writeRoot2018Hints writes root hints naming one root server at addr.
func writeRoot2018Hints(path, addr string) error {
	return writeFile(path, func(w *bufio.Writer) error {
		fmt.Fprintf(w, "; Root hints for the 2018 root zone of the Bulwark lab, generated by labgen.\n")
		fmt.Fprintf(w, ".\t3600000\tIN\tNS\ta.root-servers.net.\n")
		fmt.Fprintf(w, "a.root-servers.net.\t3600000\tIN\tA\t%s\n", addr)
		return nil
	})
}

// writeRoot2018Config writes a Bulwark config that resolves against one
// copy of the 2018 root and validates at a fixed time inside the zone's
// signature validity. The dnssec.trust_anchor_files and testing keys
// need a Bulwark version that supports them.
func (l *Lab) writeRoot2018Config(path, hints string, port int) error {
	return writeFile(path, func(w *bufio.Writer) error {
		fmt.Fprintf(w, `server:
  listen:
    - address: 127.0.0.1:%d
      transports: [udp, tcp]
resolver:
  root_hints: %s
  upstream_port: %d
  allowed_upstream_networks: [127.0.0.0/8, ::1/128]
cache:
  max_bytes: 64MiB
log:
  level: info
  format: text
dnssec:
  trust_anchor_files: [%s]
testing:
  enabled: true
  fixed_validation_time: %q
`, port, hints, l.authPort(), l.path(root2018AnchorFile), root2018Time)
		return nil
	})
}

// root2018Queries returns the questions checked against one copy of the
// 2018 root: all secure on the exact copy, all SERVFAIL with EDE 6 (DNSSEC
// Bogus) on the corrupted one, whose DNSKEY RRset fails to verify.
func root2018Queries(bad bool) []labspec.DNSSECQuery {
	questions := []struct {
		name, qtype, rcode string
	}{
		{".", "DNSKEY", "NOERROR"},
		{".", "SOA", "NOERROR"},
		{".", "NS", "NOERROR"},
		{"com.", "DS", "NOERROR"},
		{"nonexistent-tld-xyz.", "A", "NXDOMAIN"},
	}
	var out []labspec.DNSSECQuery
	for _, q := range questions {
		if bad {
			out = append(out, labspec.DNSSECQuery{Name: q.name, Type: q.qtype, Rcode: "SERVFAIL", EDE: edeBogus})
		} else {
			out = append(out, labspec.DNSSECQuery{Name: q.name, Type: q.qtype, Rcode: q.rcode, AD: true, EDE: -1})
		}
	}
	return out
}

func (l *Lab) root2018Info() *labspec.Root2018 {
	good, bad := l.byInst[knotRoot2018], l.byInst[knotRoot2018Bad]
	return &labspec.Root2018{
		Zone:            good.Extra[0].File,
		Serial:          root2018Serial,
		Address:         net.JoinHostPort(good.Addrs[0], strconv.Itoa(l.authPort())),
		BadAddress:      net.JoinHostPort(bad.Addrs[0], strconv.Itoa(l.authPort())),
		TrustAnchorXML:  l.path(root2018AnchorFile),
		ValidationTime:  root2018Time,
		Config:          l.path("bulwark-root2018.yaml"),
		BadConfig:       l.path("bulwark-root2018-bad.yaml"),
		ResolverPort:    root2018ResolverBasePort + l.opts.PortOffset,
		BadResolverPort: root2018BadResolverBasePort + l.opts.PortOffset,
		Hints:           l.path(knotRoot2018 + ".hints"),
		BadHints:        l.path(knotRoot2018Bad + ".hints"),
		Queries:         root2018Queries(false),
		BadQueries:      root2018Queries(true),
	}
}
