package integration

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
)

// protective returns the address and port of the lab's protective listener.
func protective(t *testing.T) (string, int) {
	t.Helper()
	host, portText, err := net.SplitHostPort(lab.Info.Policy.ProtectiveAddress)
	if err != nil {
		t.Fatalf("lab.json policy.protective_address %q: %v", lab.Info.Policy.ProtectiveAddress, err)
	}
	p, err := net.LookupPort("udp", portText)
	if err != nil {
		t.Fatal(err)
	}
	return host, p
}

// blockText returns the JSON text of a blocked answer's EDE.
func blockText(t *testing.T, r *kdigResult) map[string]any {
	t.Helper()
	i := strings.Index(r.Output, ";; EDE: 15 (Blocked): '")
	if i < 0 {
		return nil
	}
	rest := r.Output[i+len(";; EDE: 15 (Blocked): '"):]
	end := strings.Index(rest, "'\n")
	if end < 0 {
		return nil
	}
	var text map[string]any
	if err := json.Unmarshal([]byte(rest[:end]), &text); err != nil {
		t.Errorf("EDE text %q is not JSON: %v", rest[:end], err)
	}
	return text
}

func TestPolicyTriggers(t *testing.T) {
	p := lab.Info.Policy
	addr, protectivePort := protective(t)
	for _, tt := range []struct {
		name    string
		qtype   string
		blocked bool
		list    string
		rcode   string // on the unfiltered listener
	}{
		{p.ListedName, "A", true, "urlhaus-hosts", "NXDOMAIN"},
		{"sub." + p.ListedName, "A", true, "urlhaus-hosts", "NXDOMAIN"},
		{p.CNAMEToListed, "A", true, "urlhaus-hosts", "NXDOMAIN"},
		{p.ListedAddressName, "A", true, "urlhaus-domains", "NOERROR"},
		{p.AllowedName, "A", false, "", "NXDOMAIN"},
		{p.CNAMEToAllowed, "A", false, "", "NXDOMAIN"},
		{p.CleanName, "A", false, "", "NOERROR"},
		{"000-0.000webhostapp.com.", "A", true, "phishing", "NXDOMAIN"},
		{"x.fuel.ac.", "A", true, "hagezi-rpz", "NXDOMAIN"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := kdig(addr, protectivePort, tt.name, tt.qtype, "+edns")
			if err != nil {
				t.Fatal(err)
			}
			if tt.blocked {
				if r.Status != "NXDOMAIN" || r.EDE != 15 {
					t.Fatalf("protective: %s EDE %d, want NXDOMAIN with EDE 15\n%s", r.Status, r.EDE, r.Output)
				}
				text := blockText(t, r)
				if text["list"] != tt.list || text["category"] == nil || text["o"] != "Bulwark lab" {
					t.Errorf("protective: EDE text %v, want list %q, its category and the operator", text, tt.list)
				}
			} else if r.EDE == 15 {
				t.Errorf("protective: blocked (EDE 15), want it allowed\n%s", r.Output)
			}

			u, err := kdig(resolver, port, tt.name, tt.qtype, "+edns")
			if err != nil {
				t.Fatal(err)
			}
			if u.Status != tt.rcode || u.EDE == 15 {
				t.Errorf("unfiltered: %s EDE %d, want %s without a block", u.Status, u.EDE, tt.rcode)
			}
		})
	}
}

func TestBlockedAnswerOverTCP(t *testing.T) {
	addr, protectivePort := protective(t)
	r, err := kdig(addr, protectivePort, lab.Info.Policy.ListedName, "AAAA", "+edns", "+tcp")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != "NXDOMAIN" || r.EDE != 15 {
		t.Errorf("over TCP: %s EDE %d, want NXDOMAIN with EDE 15", r.Status, r.EDE)
	}
}
