package gen

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/miekg/dns"

	"bulwark/lab/labspec"
)

// Directories of the signing step inside a lab directory.
const (
	dnssecDir   = "dnssec"
	unsignedDir = "dnssec/unsigned" // zone files of signed zones before signing
	keysDir     = "dnssec/keys"     // BIND-format key files, one directory per zone
	workDir     = "dnssec/work"     // signer input: unsigned zone plus DS and DNSKEY
)

// SignPlan is the content of dnssec/plan.json: what lab-up signs and
// where it writes the results. Generate writes it; Sign carries it out.
type SignPlan struct {
	Dir           string     `json:"dir"`
	BulwarkConfig string     `json:"bulwark_config"`
	AnchorXML     string     `json:"anchor_xml"`
	AnchorDS      string     `json:"anchor_ds"`
	Zones         []SignZone `json:"zones"`
	KnotDBs       []string   `json:"knot_dbs"` // key databases to empty before importing keys
}

// SignZone is one zone to sign.
type SignZone struct {
	Name   string `json:"name"`
	Parent string `json:"parent"` // "" for the root
	Input  string `json:"input"`  // unsigned zone file
	// Outputs are the files the servers load. A Knot DNS output is the
	// unsigned zone with its children's DS records, signed by knotd at
	// load time with the keys imported into the database of KnotConfig.
	Outputs []SignOutput `json:"outputs"`
	Signing
}

// SignOutput is one file that a signer makes for a zone.
type SignOutput struct {
	Signer     string `json:"signer"`
	Path       string `json:"path"`
	KnotConfig string `json:"knot_config,omitempty"`
}

// knotPolicyID names the Knot DNS signing policy of a key algorithm and
// denial type.
func knotPolicyID(s *Signing) string {
	denial := "nsec"
	if s.NSEC3 {
		denial = "nsec3"
	}
	return fmt.Sprintf("lab-%d-%s", s.Keys[0].Algorithm, denial)
}

// knotPolicies writes the policy section for the zones that in signs.
// Keys are imported by lab-up, so every policy is manual: Knot DNS signs
// with the keys it finds and never generates or rolls one.
func knotPolicies(w *bufio.Writer, in *instance) {
	seen := map[string]*Signing{}
	for _, z := range in.Zones {
		if z.Signing != nil && z.Signing.Signer == signerKnot {
			seen[knotPolicyID(z.Signing)] = z.Signing
		}
	}
	if len(seen) == 0 {
		return
	}
	fmt.Fprintf(w, "policy:\n")
	for _, id := range sortedKeys(seen) {
		s := seen[id]
		fmt.Fprintf(w, "  - id: %q\n    manual: on\n    algorithm: %s\n", id, strings.ToLower(dns.AlgorithmToString[s.Keys[0].Algorithm]))
		// Signatures live 40 days and are refreshed 7 days before
		// they expire, so a lab stays valid for 33 days after lab-up.
		fmt.Fprintf(w, "    rrsig-lifetime: 40d\n    rrsig-refresh: 7d\n    cds-cdnskey-publish: none\n")
		if s.NSEC3 {
			fmt.Fprintf(w, "    nsec3: on\n    nsec3-iterations: 0\n    nsec3-salt-length: 0\n")
		}
	}
	fmt.Fprintln(w)
}

// signedByKnot reports whether in signs z itself.
func signedByKnot(z *Zone, in *instance) bool {
	return z.Signing != nil && z.Signing.Signer == signerKnot && in.Program == labspec.ProgramKnot
}

// zoneFile returns the zone file that instance in loads for z. NSD
// instances load the dnssec-signzone copy of zones that Knot DNS signs.
func (l *Lab) zoneFile(z *Zone, in *instance) string {
	if z.Signing != nil && z.Signing.Signer == signerKnot && in.Program != labspec.ProgramKnot {
		return l.path(zonesDir, strings.TrimSuffix(z.FileName(), ".zone")+".signed.zone")
	}
	return l.path(zonesDir, z.FileName())
}

// writeSignPlan writes dnssec/plan.json for lab-up.
func (l *Lab) writeSignPlan() error {
	plan := SignPlan{
		Dir:           l.opts.OutDir,
		BulwarkConfig: l.path(labspec.ConfigFile),
		AnchorXML:     l.path(labspec.RootAnchorsFile),
		AnchorDS:      l.path(labspec.RootDSFile),
	}
	for _, in := range l.instances {
		for _, z := range in.Zones {
			if signedByKnot(z, in) {
				plan.KnotDBs = append(plan.KnotDBs, l.path(in.Name, "db"))
				break
			}
		}
	}
	for _, z := range l.sortedZones() {
		if z.Signing == nil {
			continue
		}
		sz := SignZone{Name: z.Name, Input: l.path(unsignedDir, z.FileName()), Signing: *z.Signing}
		if z.parent != nil {
			sz.Parent = z.parent.Name
		}
		done := map[string]bool{}
		for _, name := range z.Instances {
			in := l.byInst[name]
			out := SignOutput{Signer: z.Signing.Signer, Path: l.zoneFile(z, in)}
			switch {
			case signedByKnot(z, in):
				out.KnotConfig = l.configPath(in)
			case z.Signing.Signer == signerKnot:
				out.Signer = signerBind
			}
			if !done[out.Path] {
				done[out.Path] = true
				sz.Outputs = append(sz.Outputs, out)
			}
		}
		plan.Zones = append(plan.Zones, sz)
	}
	sort.SliceStable(plan.Zones, func(i, j int) bool { return canonicalLess(plan.Zones[i].Name, plan.Zones[j].Name) })
	if err := os.MkdirAll(l.path(unsignedDir), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", l.path(unsignedDir), err)
	}
	return writeJSON(l.path(labspec.SignPlanFile), plan)
}

// unsignedPath returns the path that writeZones writes the zone file of z
// to.
func (l *Lab) unsignedPath(z *Zone) string {
	if z.Signing != nil {
		return l.path(unsignedDir, z.FileName())
	}
	return l.path(zonesDir, z.FileName())
}

// signedZones returns the names of every signed zone and of the signed
// popular zones.
func (l *Lab) signedZones() (count int, popular []string) {
	for _, z := range l.zones {
		if z.Signing != nil {
			count++
		}
	}
	for _, pz := range l.popular {
		if pz.Zone.Signing != nil {
			popular = append(popular, pz.Zone.Name)
		}
	}
	return count, popular
}

func keyDirOf(dir, zone string) string {
	name := strings.TrimSuffix(zone, ".")
	if name == "" {
		name = "root"
	}
	return filepath.Join(dir, keysDir, name)
}
