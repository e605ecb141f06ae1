package gen

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"bulwark/lab/labspec"
)

// The policy zone holds names that reach listed names and addresses only
// through their answers, so that tests can check the checks of CNAME
// targets and answer addresses.
const policyZone = "lab-policy.net."

// Feed files of lab/data/feeds that the lab's protective flavour loads, with
// the format and category of each.
var policyFeeds = []struct {
	name, file, format, category string
}{
	{"urlhaus-hosts", "urlhaus-filter-hosts.txt", "hosts", "malware"},
	{"urlhaus-domains", "urlhaus-filter-domains.txt", "domains", "malware"},
	{"urlhaus-adguard", "urlhaus-filter-agh.txt", "adguard", "malware"},
	{"urlhaus-rpz", "urlhaus-filter-rpz.conf", "rpz", "malware"},
	{"phishing", "phishing-database-domains-active-slice.txt", "domains", "phishing"},
	{"hagezi-rpz", "hagezi-tif-mini-rpz-slice.txt", "rpz", "malware"},
}

// allowFile is the lab's allowlist, written into the lab directory.
const allowFile = "policy-allow.txt"

// buildPolicy makes lab-policy.net with a CNAME to a listed name, a name
// whose address is listed, and a CNAME to an allowlisted name.
func (l *Lab) buildPolicy() error {
	listed, err := firstHostsName(filepath.Join(l.opts.DataDir, "feeds", "urlhaus-filter-hosts.txt"), 0)
	if err != nil {
		return err
	}
	allowed, err := firstHostsName(filepath.Join(l.opts.DataDir, "feeds", "urlhaus-filter-hosts.txt"), 1)
	if err != nil {
		return err
	}
	addr, err := firstAddress(filepath.Join(l.opts.DataDir, "feeds", "urlhaus-filter-domains.txt"))
	if err != nil {
		return err
	}
	z := l.specialZone(policyZone)
	l.hostAtProvider(z, l.providers[2], 2)
	fill(z)
	z.Add(rr("to-listed.%s 300 IN CNAME %s.", policyZone, listed))
	z.Add(rr("to-allowed.%s 300 IN CNAME %s.", policyZone, allowed))
	z.Add(rr("listed-address.%s 300 IN A %s", policyZone, addr))
	l.policy = labspec.Policy{
		ProtectiveAddress: fmt.Sprintf("127.0.0.2:%d", l.resolverPort()),
		ListedName:        listed + ".",
		AllowedName:       allowed + ".",
		ListedAddress:     addr.String(),
		CNAMEToListed:     "to-listed." + policyZone,
		CNAMEToAllowed:    "to-allowed." + policyZone,
		ListedAddressName: "listed-address." + policyZone,
		CleanName:         "www." + policyZone,
		AllowFile:         l.path(allowFile),
	}
	for _, f := range policyFeeds {
		l.policy.Lists = append(l.policy.Lists, f.name)
	}
	return nil
}

// firstHostsName returns the name on the n-th entry line of a hosts file.
func firstHostsName(path string, n int) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if n == 0 {
			return strings.ToLower(fields[1]), nil
		}
		n--
	}
	return "", fmt.Errorf("%s: fewer entries than needed", path)
}

// firstAddress returns the first IPv4 address entry of a domain list.
func firstAddress(path string) (netip.Addr, error) {
	f, err := os.Open(path)
	if err != nil {
		return netip.Addr{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if a, err := netip.ParseAddr(strings.TrimSpace(sc.Text())); err == nil && a.Is4() {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("%s: no IPv4 address entry", path)
}

// writePolicyConfig writes the policy part of bulwark.yaml and the lab's
// allowlist.
func (l *Lab) writePolicyConfig(w *bufio.Writer) error {
	if err := os.WriteFile(l.path(allowFile), []byte("# Lab allowlist: a listed name that stays resolvable.\n"+strings.TrimSuffix(l.policy.AllowedName, ".")+"\n"), 0o644); err != nil {
		return err
	}
	feeds, err := filepath.Abs(filepath.Join(l.opts.DataDir, "feeds"))
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "policy:\n  block_page:\n    ipv4: 127.0.0.9\n  contact: mailto:abuse@lab.invalid\n  organization: Bulwark lab\n  lists:\n")
	fmt.Fprintf(w, "    - name: lab-allow\n      file: %s\n      format: domains\n      category: malware\n      action: allow\n", l.path(allowFile))
	for _, f := range policyFeeds {
		fmt.Fprintf(w, "    - name: %s\n      file: %s\n      format: %s\n      category: %s\n", f.name, filepath.Join(feeds, f.file), f.format, f.category)
	}
	return nil
}
