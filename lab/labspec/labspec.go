// Package labspec defines the files that a generated lab contains and
// that tests read: the schema of lab.json, the columns of expected.tsv and
// the text form of expected values. The generator in lab/cmd/labgen writes
// these files and test/labkit reads them, so both sides share this package.
package labspec

import (
	"strings"

	"github.com/miekg/dns"
)

// File names inside a lab directory.
const (
	InfoFile     = "lab.json"
	ExpectedFile = "expected.tsv"
	QueriesFile  = "queries.txt"
	HintsFile    = "root.hints"
	ConfigFile   = "bulwark.yaml"
	ProbesFile   = "probes.json"
	// Trust anchor of the lab root, written when lab-up signs the lab.
	RootAnchorsFile = "root-anchors.xml" // RFC 7958 XML
	RootDSFile      = "root.ds"          // DS records in master-file form
	SignPlanFile    = "dnssec/plan.json"
	PIDDir          = "pids"
)

// Base ports, shifted by the port offset of a lab.
const (
	AuthBasePort     = 53
	ResolverBasePort = 5300
)

// ExpectedHeader is the first line of expected.tsv.
const ExpectedHeader = "#name\ttype\trcode\tad\tede\tvalue"

// EDENoReachableAuthority is the Extended DNS Error code 22 (RFC 8914
// section 4.23), expected on SERVFAIL rows whose authorities are lame,
// silent or unreachable.
const EDENoReachableAuthority = 22

// RoleRoot2018 is the role of the servers of the 2018 root zone, which is
// not part of the lab's own hierarchy.
const RoleRoot2018 = "root2018"

// Program names used in Server.Program and Instance.Program.
const (
	ProgramKnot = "knotd"
	ProgramNSD  = "nsd"
	ProgramStub = "labstub"
)

// EncryptedBegin and EncryptedEnd are YAML comments around the encrypted
// listeners of the generated config, so that a test can drop them from a
// copy that runs beside the lab's resolver. ProtectiveSNI is the TLS
// server name of the protective flavour in that config.
const (
	EncryptedBegin = "# encrypted listeners"
	EncryptedEnd   = "# end of encrypted listeners"
	ProtectiveSNI  = "protective.dns.lab"
)

// Info is the content of lab.json: the facts a test needs about one lab.
// Every path is absolute. Names are fully qualified, lowercase, with the
// trailing dot.
type Info struct {
	Dir             string `json:"dir"`
	PortOffset      int    `json:"port_offset"`
	AuthPort        int    `json:"auth_port"`
	ResolverPort    int    `json:"resolver_port"`
	ResolverAddress string `json:"resolver_address"`
	// DoTAddress, DoHAddress and DoQAddress are the encrypted listeners of
	// the generated config, with the unfiltered flavour. The DoH path
	// /protective and the TLS server name ProtectiveSNI select the
	// protective flavour.
	DoTAddress string `json:"dot_address"`
	DoHAddress string `json:"doh_address"`
	DoQAddress string `json:"doq_address"`
	// MetricsAddress is the metrics listener of the generated config,
	// port 9153 plus the offset.
	MetricsAddress string `json:"metrics_address"`
	BulwarkConfig  string `json:"bulwark_config"`
	RootHints      string `json:"root_hints"`
	Queries        string `json:"queries"`
	Expected       string `json:"expected"`
	ZoneDir        string `json:"zone_dir"`
	ZoneCount      int    `json:"zone_count"`
	PopularZones   int    `json:"popular_zone_count"`
	TLDCount       int    `json:"tld_count"`

	Servers   []Server          `json:"servers"`
	Instances []Instance        `json:"instances"`
	QueryLogs map[string]string `json:"query_logs"`

	QminTLD       string `json:"qmin_tld"`
	QminDeepName  string `json:"qmin_deep_name"`
	QminLog       string `json:"qmin_log"`
	DeepChainCuts int    `json:"deep_chain_cuts"`

	NXNSAttackName  string   `json:"nxns_attack_name"`
	NXNSAttackNames []string `json:"nxns_attack_names"`
	NXNSNSCount     int      `json:"nxns_ns_count"`
	NXNSVictimZone  string   `json:"nxns_victim_zone"`
	NXNSVictimLog   string   `json:"nxns_victim_log"`

	NegativeTTLName string `json:"negative_ttl_name"`
	NegativeTTL     int    `json:"negative_ttl"`
	NegativeTTLZone string `json:"negative_ttl_zone"`

	BigTXTName    string `json:"big_txt_name"`
	BigTXTStrings int    `json:"big_txt_strings"`
	BigTXTBytes   int    `json:"big_txt_bytes"`

	DNAMEName   string `json:"dname_name"`
	DNAMEOwner  string `json:"dname_owner"`
	DNAMETarget string `json:"dname_target"`

	CycleName          string   `json:"cycle_name"`
	CycleNames         []string `json:"cycle_names"`
	LameName           string   `json:"lame_name"`
	PartlyLameName     string   `json:"partly_lame_name"`
	SilentName         string   `json:"silent_name"`
	TruncateUDPName    string   `json:"truncate_udp_name"`
	ENTNXDOMAINName    string   `json:"ent_nxdomain_name"`
	ENTNXDOMAINENT     string   `json:"ent_nxdomain_ent"`
	NoGlueName         string   `json:"noglue_name"`
	PartlyBrokenNSName string   `json:"partly_broken_ns_name"`
	IPv6OnlyName       string   `json:"ipv6_only_name"`
	SlowName           string   `json:"slow_name"`
	SlowDelayMS        int      `json:"slow_delay_ms"`
	WildcardName       string   `json:"wildcard_name"`
	ENTName            string   `json:"ent_name"`
	SubDelegationName  string   `json:"sub_delegation_name"`
	CNAMEChainName     string   `json:"cname_chain_name"`
	PublicSuffixENT    string   `json:"public_suffix_ent"`

	// DNSSEC of the lab: the root's trust anchor files, the signed zones
	// and the scenario cases below DNSSECZone.
	TrustAnchorXML    string       `json:"trust_anchor_xml"`
	TrustAnchorDS     string       `json:"trust_anchor_ds"`
	SignPlan          string       `json:"sign_plan"`
	SignedZoneCount   int          `json:"signed_zone_count"`
	SignedPopular     []string     `json:"signed_popular_zones"`
	DNSSECZone        string       `json:"dnssec_zone"`
	DNSSECCases       []DNSSECCase `json:"dnssec_cases"`
	KeyTrapKeys       int          `json:"keytrap_keys"`
	KeyTrapSignatures int          `json:"keytrap_signatures"`

	// Root2018 describes the servers of the real signed root zone of
	// 2018-01-29 and the Bulwark configs that use them.
	Root2018 *Root2018 `json:"root2018,omitempty"`

	// Policy describes the protective flavour of the lab's config.
	Policy Policy `json:"policy"`
}

// Policy is the protective flavour served on ProtectiveAddress, with the
// names that test each kind of trigger. Its lists are the real feeds of
// lab/data/feeds in hosts, domain-list, AdGuard and RPZ forms, and an
// allowlist in AllowFile.
type Policy struct {
	ProtectiveAddress string   `json:"protective_address"`
	Lists             []string `json:"lists"`
	// ListedName is in the lists; AllowedName is too, but also in the
	// allowlist.
	ListedName  string `json:"listed_name"`
	AllowedName string `json:"allowed_name"`
	// ListedAddress is an address entry of the domain list.
	ListedAddress string `json:"listed_address"`
	// CNAMEToListed and CNAMEToAllowed are lab names whose CNAMEs point
	// at ListedName and AllowedName; ListedAddressName has ListedAddress
	// as its A record; CleanName is in no list.
	CNAMEToListed     string `json:"cname_to_listed"`
	CNAMEToAllowed    string `json:"cname_to_allowed"`
	ListedAddressName string `json:"listed_address_name"`
	CleanName         string `json:"clean_name"`
	AllowFile         string `json:"allow_file"`
}

// DNSSECCase is one DNSSEC scenario zone and the questions that test it.
type DNSSECCase struct {
	Name        string        `json:"name"`
	Zone        string        `json:"zone"`
	Description string        `json:"description"`
	Signed      bool          `json:"signed"`
	Signer      string        `json:"signer,omitempty"`
	Queries     []DNSSECQuery `json:"queries"`
}

// DNSSECQuery is a question with the rcode, AD bit and Extended DNS Error
// a validating resolver returns when the query has the DO or AD bit set.
// It is also a row of expected.tsv.
type DNSSECQuery struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Rcode string `json:"rcode"`
	AD    bool   `json:"ad"`
	EDE   int    `json:"ede"` // -1 for none
}

// Root2018 is the lab copy of the real root zone of serial 2018012900.
// Its signatures are valid from 2018-01-21 to 2018-02-11, so Bulwark must
// validate it at a fixed time inside that window.
type Root2018 struct {
	Zone            string        `json:"zone"`
	Serial          uint32        `json:"serial"`
	Address         string        `json:"address"`
	BadAddress      string        `json:"bad_address"`
	TrustAnchorXML  string        `json:"trust_anchor_xml"`
	ValidationTime  string        `json:"validation_time"`
	Config          string        `json:"config"`
	BadConfig       string        `json:"bad_config"`
	ResolverPort    int           `json:"resolver_port"`
	BadResolverPort int           `json:"bad_resolver_port"`
	Hints           string        `json:"hints"`
	BadHints        string        `json:"bad_hints"`
	Queries         []DNSSECQuery `json:"queries"`
	BadQueries      []DNSSECQuery `json:"bad_queries"`
}

// Server is one listening address of the lab.
type Server struct {
	Address  string `json:"address"`
	Port     int    `json:"port"`
	Program  string `json:"program"`
	Instance string `json:"instance"`
	Role     string `json:"role"`
	// InNSSet is false for backend-only addresses that no NS record names.
	InNSSet bool `json:"in_ns_set"`
	// Mode and Backend are set for labstub listeners only.
	Mode    string   `json:"mode,omitempty"`
	Backend string   `json:"backend,omitempty"`
	Faults  []string `json:"faults,omitempty"`
	Log     string   `json:"log,omitempty"`
}

// Instance is one process started by lab-up.
type Instance struct {
	Name      string   `json:"name"`
	Program   string   `json:"program"`
	Role      string   `json:"role"`
	Addresses []string `json:"addresses"`
	Config    string   `json:"config"`
	Log       string   `json:"log"`
	PIDFile   string   `json:"pid_file"`
	Zones     int      `json:"zones"`
	// Cookies is true for the instances that answer DNS cookies
	// (RFC 7873).
	Cookies bool `json:"cookies,omitempty"`
}

// ShortValue formats the RDATA of rr as dig +short prints it, for example
// "198.18.3.4", "10 mail.example.com." or "\"v=spf1 -all\"". TXT strings
// keep their quotes and are separated by one space.
func ShortValue(rr dns.RR) string {
	header := rr.Header().String()
	return strings.TrimPrefix(rr.String(), header)
}
