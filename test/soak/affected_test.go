package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"bulwark/lab/labspec"
)

// testZones is a small lab: a root and two TLDs on one process each,
// one Knot DNS and one NSD, and second-level zones on a third process.
// Some zones depend on another TLD through their name servers or a CNAME,
// and the TLD lame is delegated to an address that no process owns.
var testZones = map[string]string{
	".": `. 86400 IN SOA a.root. h.root. 1 1 1 1 1
. 86400 IN NS a.root.
a.root. 86400 IN A 127.53.1.1
com. 86400 IN NS a.nic.com.
a.nic.com. 86400 IN A 127.53.1.3
org. 86400 IN NS a.nic.org.
a.nic.org. 86400 IN A 127.53.2.3
lame. 86400 IN NS a.nic.lame.
a.nic.lame. 86400 IN A 127.53.9.9
`,
	"com.": `com. 86400 IN SOA a.nic.com. h.com. 1 1 1 1 1
com. 86400 IN NS a.nic.com.
a.nic.com. 86400 IN A 127.53.1.3
glued.com. 86400 IN NS ns1.glued.com.
ns1.glued.com. 86400 IN A 127.53.1.5
provider.com. 86400 IN NS ns1.provider.com.
ns1.provider.com. 86400 IN A 127.53.1.5
`,
	"org.": `org. 86400 IN SOA a.nic.org. h.org. 1 1 1 1 1
org. 86400 IN NS a.nic.org.
a.nic.org. 86400 IN A 127.53.2.3
glued.org. 86400 IN NS ns1.glued.org.
ns1.glued.org. 86400 IN A 127.53.1.5
hosted.org. 86400 IN NS ns1.provider.com.
both.org. 86400 IN NS ns1.provider.com.
both.org. 86400 IN NS ns1.both.org.
ns1.both.org. 86400 IN A 127.53.1.5
`,
	"glued.com.": `glued.com. 60 IN SOA ns1.glued.com. h.glued.com. 1 1 1 1 1
glued.com. 60 IN NS ns1.glued.com.
ns1.glued.com. 60 IN A 127.53.1.5
www.glued.com. 60 IN A 198.18.0.1
`,
	"provider.com.": `provider.com. 60 IN SOA ns1.provider.com. h.provider.com. 1 1 1 1 1
provider.com. 60 IN NS ns1.provider.com.
ns1.provider.com. 60 IN A 127.53.1.5
`,
	"glued.org.": `glued.org. 60 IN SOA ns1.glued.org. h.glued.org. 1 1 1 1 1
glued.org. 60 IN NS ns1.glued.org.
ns1.glued.org. 60 IN A 127.53.1.5
www.glued.org. 60 IN CNAME www.glued.com.
*.sites.glued.org. 60 IN CNAME cdn.glued.com.
old.glued.org. 60 IN DNAME glued.com.
plain.glued.org. 60 IN A 198.18.0.2
`,
	"hosted.org.": `hosted.org. 60 IN SOA ns1.provider.com. h.hosted.org. 1 1 1 1 1
hosted.org. 60 IN NS ns1.provider.com.
`,
	"both.org.": `both.org. 60 IN SOA ns1.both.org. h.both.org. 1 1 1 1 1
both.org. 60 IN NS ns1.provider.com.
both.org. 60 IN NS ns1.both.org.
ns1.both.org. 60 IN A 127.53.1.5
`,
}

// writeTestLab writes the zones of testZones, a Knot DNS config for the
// root and com, an NSD config for org and an NSD config for the rest.
func writeTestLab(t *testing.T) *labspec.Info {
	t.Helper()
	dir := t.TempDir()
	file := func(zone string) string {
		name := strings.TrimSuffix(zone, ".")
		if name == "" {
			name = "root"
		}
		return filepath.Join(dir, name+".zone")
	}
	for zone, text := range testZones {
		if err := os.WriteFile(file(zone), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	knot := "zone:\n"
	for _, z := range []string{".", "com."} {
		knot += "  - domain: \"" + z + "\"\n    file: \"" + file(z) + "\"\n    dnssec-signing: on\n"
	}
	nsdTLD := "server:\n    ip-address: 127.53.2.3@53\nzone:\n    name: \"org.\"\n    zonefile: \"" + file("org.") + "\"\n"
	nsdSLD := "server:\n"
	for _, z := range []string{"glued.com.", "provider.com.", "glued.org.", "hosted.org.", "both.org."} {
		nsdSLD += "zone:\n    name: \"" + z + "\"\n    zonefile: \"" + file(z) + "\"\n"
	}
	// The 2018 root is not part of the lab's hierarchy and must be
	// ignored, although it loads the root zone too.
	root2018 := "zone:\n  - domain: \".\"\n    file: \"/nonexistent/root2018.zone\"\n"
	configs := map[string]string{"knot.conf": knot, "nsd-tld.conf": nsdTLD, "nsd-sld.conf": nsdSLD, "root2018.conf": root2018}
	for name, text := range configs {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &labspec.Info{
		Instances: []labspec.Instance{
			{Name: "root2018", Program: labspec.ProgramKnot, Role: labspec.RoleRoot2018, Config: filepath.Join(dir, "root2018.conf")},
			{Name: "knot-tld", Program: labspec.ProgramKnot, Role: "tld", Config: filepath.Join(dir, "knot.conf")},
			{Name: "nsd-tld", Program: labspec.ProgramNSD, Role: "tld", Config: filepath.Join(dir, "nsd-tld.conf")},
			{Name: "nsd-sld", Program: labspec.ProgramNSD, Role: "sld", Config: filepath.Join(dir, "nsd-sld.conf")},
		},
		Servers: []labspec.Server{
			{Address: "127.53.1.1", Instance: "knot-tld"},
			{Address: "127.53.1.3", Instance: "knot-tld"},
			{Address: "127.53.2.3", Instance: "nsd-tld"},
			{Address: "127.53.1.5", Instance: "nsd-sld"},
		},
	}
}

func TestClassifierResolvable(t *testing.T) {
	zones, err := readLabZones(writeTestLab(t))
	if err != nil {
		t.Fatalf("readLabZones() error = %v", err)
	}
	// The root and com share a process in this lab, so stopping com alone
	// is a zone fault on that process.
	comDown := func(in, _, zone string) bool { return in == "knot-tld" && dns.IsSubDomain("com.", zone) }
	orgDown := func(in, _, zone string) bool { return in == "nsd-tld" && dns.IsSubDomain("org.", zone) }
	tests := []struct {
		name  string
		down  serverDown
		qname string
		want  bool
	}{
		{"no fault", nil, "www.glued.com.", true},
		{"no fault nxdomain", nil, "missing.glued.org.", true},
		{"no fault cname", nil, "www.glued.org.", true},
		{"no fault provider", nil, "hosted.org.", true},
		{"under stopped tld", comDown, "www.glued.com.", false},
		{"stopped tld apex", comDown, "com.", false},
		{"other tld glued", comDown, "plain.glued.org.", true},
		{"name server under stopped tld", comDown, "www.hosted.org.", false},
		{"one name server left", comDown, "www.both.org.", true},
		{"cname into stopped tld", comDown, "www.glued.org.", false},
		{"wildcard cname into stopped tld", comDown, "x.sites.glued.org.", false},
		{"dname into stopped tld", comDown, "www.old.glued.org.", false},
		{"black-holed tld", orgDown, "plain.glued.org.", false},
		{"other tld than black-holed", orgDown, "www.glued.com.", true},
		{"name in other case", orgDown, "WWW.Glued.COM.", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, _, err := newClassifier(zones, tt.down).resolvable(tt.qname)
			if err != nil {
				t.Fatalf("resolvable(%q) error = %v", tt.qname, err)
			}
			if ok != tt.want {
				t.Errorf("resolvable(%q) = %v, want %v", tt.qname, ok, tt.want)
			}
		})
	}
}

func TestAffectedSet(t *testing.T) {
	zones, err := readLabZones(writeTestLab(t))
	if err != nil {
		t.Fatalf("readLabZones() error = %v", err)
	}
	qs := []question{
		{"www.glued.com.", dns.TypeA},
		{"plain.glued.org.", dns.TypeA},
		{"www.hosted.org.", dns.TypeMX},
		{"www.lame.", dns.TypeA}, // delegated to an address of no lab process
	}
	affected, unresolvable, err := affectedSet(zones, instanceDown("knot-tld"), qs)
	if err != nil {
		t.Fatalf("affectedSet() error = %v", err)
	}
	// Stopping knot-tld stops the root too, so every question that the
	// lab can resolve is affected.
	for _, q := range qs[:3] {
		if !affected[q] {
			t.Errorf("affectedSet(knot-tld down)[%v] = false, want true", q)
		}
	}
	if affected[qs[3]] || unresolvable != 1 {
		t.Errorf("affectedSet() = %v, %d unresolvable; want %v left out and counted as unresolvable", affected, unresolvable, qs[3])
	}

	affected, _, err = affectedSet(zones, instanceDown("nsd-tld"), qs)
	if err != nil {
		t.Fatalf("affectedSet() error = %v", err)
	}
	want := map[question]bool{qs[1]: true, qs[2]: true}
	if len(affected) != len(want) || !affected[qs[1]] || !affected[qs[2]] {
		t.Errorf("affectedSet(nsd-tld down) = %v, want %v", affected, want)
	}
}

func TestReadLabZonesErrors(t *testing.T) {
	info := writeTestLab(t)
	info.Instances = info.Instances[3:] // only the second-level zones
	if _, err := readLabZones(info); err == nil || !strings.Contains(err.Error(), "root zone") {
		t.Errorf("readLabZones(no root) error = %v, want one naming the root zone", err)
	}
	info.Instances[0].Config = "/nonexistent/nsd.conf"
	if _, err := readLabZones(info); err == nil || !strings.Contains(err.Error(), "/nonexistent/nsd.conf") {
		t.Errorf("readLabZones(missing config) error = %v, want one naming the file", err)
	}
}
