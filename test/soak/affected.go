package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/miekg/dns"

	"bulwark/lab/labspec"
)

// maxLookupDepth bounds how deeply the classifier follows name server
// names and CNAME or DNAME targets, like a resolver's own depth limit.
const maxLookupDepth = 8

// serverDown reports whether a fault leaves the lab process instance,
// asked at address addr, unable to answer queries for zone.
type serverDown func(instance, addr, zone string) bool

// labZones is the lab's DNS data as the classifier sees it: the zone file
// of every zone that a lab process loads, and which process owns each
// server address. Zone files are parsed on first use.
type labZones struct {
	files     map[string]string // zone apex -> zone file
	instances map[string]string // server address -> instance name
	parsed    map[string]*zoneData
}

// zoneData holds the records of one zone file that decide where a
// resolver goes next.
type zoneData struct {
	apex   string
	ns     map[string][]string // owner -> NS targets, at the apex and at cuts
	addrs  map[string][]string // owner -> A and AAAA addresses
	cname  map[string]string
	dname  map[string]string
	exists map[string]bool // every owner and every name between it and the apex
}

// readLabZones reads the zone lists from the config file of every lab
// process (Knot DNS and NSD) and the server addresses from lab.json. The
// servers of the real 2018 root stand outside the lab's hierarchy and are
// left out.
func readLabZones(info *labspec.Info) (*labZones, error) {
	z := &labZones{files: map[string]string{}, instances: map[string]string{}, parsed: map[string]*zoneData{}}
	for _, s := range info.Servers {
		z.instances[s.Address] = s.Instance
	}
	for _, in := range info.Instances {
		if in.Role == labspec.RoleRoot2018 {
			continue
		}
		var key, fileKey string
		switch in.Program {
		case labspec.ProgramKnot:
			key, fileKey = "domain", "file"
		case labspec.ProgramNSD:
			key, fileKey = "name", "zonefile"
		default:
			continue
		}
		if err := z.readConfig(in.Config, key, fileKey); err != nil {
			return nil, err
		}
	}
	if _, ok := z.files["."]; !ok {
		return nil, fmt.Errorf("no lab process loads the root zone: check the instances in lab.json")
	}
	return z, nil
}

// readConfig collects the zone and file pairs of one server config, where
// each zone entry has a line "key: name" followed by "fileKey: path".
func (z *labZones) readConfig(path, key, fileKey string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read lab server config: %w", err)
	}
	defer f.Close()
	zone := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "- "), ":")
		if !ok {
			continue
		}
		v = strings.Trim(strings.TrimSpace(v), `"`)
		switch {
		case k == key:
			zone = strings.ToLower(dns.Fqdn(v))
		case k == fileKey && zone != "":
			if _, seen := z.files[zone]; !seen {
				z.files[zone] = v
			}
			zone = ""
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

// zone returns the parsed data of the zone at apex, or nil when no lab
// process loads it.
func (z *labZones) zone(apex string) (*zoneData, error) {
	if d, ok := z.parsed[apex]; ok {
		return d, nil
	}
	path, ok := z.files[apex]
	if !ok {
		return nil, nil
	}
	d, err := parseZoneFile(path, apex)
	if err != nil {
		return nil, err
	}
	z.parsed[apex] = d
	return d, nil
}

func parseZoneFile(path, apex string) (*zoneData, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read zone %s: %w", apex, err)
	}
	defer f.Close()
	d := &zoneData{
		apex: apex, ns: map[string][]string{}, addrs: map[string][]string{},
		cname: map[string]string{}, dname: map[string]string{}, exists: map[string]bool{apex: true},
	}
	zp := dns.NewZoneParser(f, apex, path)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		owner := strings.ToLower(rr.Header().Name)
		d.addOwner(owner)
		switch rr := rr.(type) {
		case *dns.NS:
			d.ns[owner] = append(d.ns[owner], strings.ToLower(rr.Ns))
		case *dns.A:
			d.addrs[owner] = append(d.addrs[owner], rr.A.String())
		case *dns.AAAA:
			d.addrs[owner] = append(d.addrs[owner], rr.AAAA.String())
		case *dns.CNAME:
			d.cname[owner] = strings.ToLower(rr.Target)
		case *dns.DNAME:
			d.dname[owner] = strings.ToLower(rr.Target)
		}
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("parse zone %s: %w", apex, err)
	}
	return d, nil
}

// addOwner marks owner and the empty non-terminals above it as existing.
func (d *zoneData) addOwner(owner string) {
	for name := owner; !d.exists[name] && dns.IsSubDomain(d.apex, name); name = parentName(name) {
		d.exists[name] = true
	}
}

// parentName returns name without its first label. The parent of the
// root is the root.
func parentName(name string) string {
	if name == "." {
		return "."
	}
	i, _ := dns.NextLabel(name, 0)
	if i >= len(name) {
		return "."
	}
	return name[i:]
}

// cut returns the delegation point below the apex that name is at or
// under, or "" when name belongs to the zone itself.
func (d *zoneData) cut(name string) string {
	labels := dns.SplitDomainName(name)
	apexLabels := dns.CountLabel(d.apex)
	// Walk down from just below the apex, so that the highest cut wins:
	// records below it are glue or occluded.
	for n := apexLabels + 1; n <= len(labels); n++ {
		owner := dns.Fqdn(strings.Join(labels[len(labels)-n:], "."))
		if len(d.ns[owner]) > 0 {
			return owner
		}
	}
	return ""
}

// classifier decides, for one fault, which questions a resolver with an
// empty cache can still resolve, by following the lab's zone data from
// the root: delegations, glue, name server names and CNAME and DNAME
// targets. A zone is reachable when some server address of one of its
// name servers can be learnt and belongs to a process that the fault
// leaves up for that zone.
type classifier struct {
	zones *labZones
	down  serverDown
	// reachable caches the result per zone apex; visiting breaks loops.
	reachable map[string]bool
	visiting  map[string]bool
}

func newClassifier(zones *labZones, down serverDown) *classifier {
	if down == nil {
		down = func(string, string, string) bool { return false }
	}
	return &classifier{zones: zones, down: down, reachable: map[string]bool{}, visiting: map[string]bool{}}
}

// resolvable reports whether name can be resolved, and returns its
// addresses when it has some.
func (c *classifier) resolvable(name string) (bool, []string, error) {
	return c.lookup(strings.ToLower(dns.Fqdn(name)), 0)
}

func (c *classifier) lookup(name string, depth int) (bool, []string, error) {
	if depth > maxLookupDepth {
		return false, nil, nil
	}
	apex := "."
	d, err := c.zones.zone(apex)
	if err != nil || d == nil {
		return false, nil, err
	}
	// The root's name servers and their addresses come from the hints,
	// which match the root zone's own NS records and glue.
	if ok, err := c.delegationReachable(d, apex, depth); !ok || err != nil {
		return false, nil, err
	}
	// Follow referrals down to the zone that holds name.
	for {
		child := d.cut(name)
		if child == "" {
			break
		}
		ok, err := c.delegationReachable(d, child, depth)
		if !ok || err != nil {
			return false, nil, err
		}
		next, err := c.zones.zone(child)
		if err != nil || next == nil {
			return false, nil, err
		}
		d = next
	}
	return c.answer(d, name, depth)
}

// answer follows a DNAME, CNAME or wildcard CNAME of name inside d, and
// returns the addresses of name otherwise.
func (c *classifier) answer(d *zoneData, name string, depth int) (bool, []string, error) {
	for owner := parentName(name); dns.IsSubDomain(d.apex, owner) && owner != d.apex; owner = parentName(owner) {
		if target, ok := d.dname[owner]; ok {
			rewritten := strings.TrimSuffix(name, owner) + target
			return c.lookup(rewritten, depth+1)
		}
	}
	if target, ok := d.cname[name]; ok {
		return c.lookup(target, depth+1)
	}
	if !d.exists[name] {
		encloser := parentName(name)
		for !d.exists[encloser] && encloser != d.apex {
			encloser = parentName(encloser)
		}
		if target, ok := d.cname["*."+encloser]; ok {
			return c.lookup(target, depth+1)
		}
	}
	return true, d.addrs[name], nil
}

// delegationReachable reports whether a server of the zone child, as
// delegated by parent, can be reached. Glue in parent gives the address
// of a name server directly, and other name server names are looked up.
//
// NOTE: a zone found unreachable while a loop was cut stays unreachable
// for the rest of the classification, even if another path would reach
// it.
func (c *classifier) delegationReachable(parent *zoneData, child string, depth int) (bool, error) {
	if ok, known := c.reachable[child]; known {
		return ok, nil
	}
	if c.visiting[child] {
		return false, nil
	}
	c.visiting[child] = true
	defer delete(c.visiting, child)
	ok, err := c.anyServerUp(parent, child, depth)
	if err != nil {
		return false, err
	}
	c.reachable[child] = ok
	return ok, nil
}

func (c *classifier) anyServerUp(parent *zoneData, child string, depth int) (bool, error) {
	for _, ns := range parent.ns[child] {
		// NOTE: any address record in the parent for a name below the
		// parent counts as glue, sibling glue included, on the
		// assumption that Bulwark uses it as most resolvers do.
		addrs, glued := parent.addrs[ns]
		if !glued || !dns.IsSubDomain(parent.apex, ns) {
			ok, found, err := c.lookup(ns, depth+1)
			if err != nil {
				return false, err
			}
			if !ok {
				continue
			}
			addrs = found
		}
		for _, a := range addrs {
			if in, ok := c.zones.instances[a]; ok && !c.down(in, a, child) {
				return true, nil
			}
		}
	}
	return false, nil
}

// affectedSet returns the questions of qs that the resolver could resolve
// from an empty cache without the fault but not with it. It also returns
// how many questions the zone data cannot resolve even without a fault,
// which should be none.
func affectedSet(zones *labZones, down serverDown, qs []question) (map[question]bool, int, error) {
	healthy := newClassifier(zones, nil)
	faulty := newClassifier(zones, down)
	affected := map[question]bool{}
	unresolvable := 0
	for _, q := range qs {
		ok, _, err := healthy.resolvable(q.Name)
		if err != nil {
			return nil, 0, err
		}
		if !ok {
			unresolvable++
			continue
		}
		ok, _, err = faulty.resolvable(q.Name)
		if err != nil {
			return nil, 0, err
		}
		if !ok {
			affected[q] = true
		}
	}
	return affected, unresolvable, nil
}
