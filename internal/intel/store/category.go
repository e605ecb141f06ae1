package store

// Policy categories of the entries, as policy lists name them.
const (
	categoryMalware  = "malware"
	categoryPhishing = "phishing"
	categoryBotnet   = "botnet"
)

// PolicyCategories lists the policy categories that PolicyCategory
// returns, in a fixed order.
var PolicyCategories = []string{categoryBotnet, categoryMalware, categoryPhishing}

// PolicyCategory maps an entry's category to the policy category whose
// flavours apply its block. DGA names and command servers lead to botnets;
// phishing stays phishing; tunnels, NXDOMAIN floods, fast flux and the
// other categories count as malware.
func PolicyCategory(category string) string {
	switch category {
	case "dga", "c2", "botnet", "cnc":
		return categoryBotnet
	case "phishing":
		return categoryPhishing
	}
	return categoryMalware
}
