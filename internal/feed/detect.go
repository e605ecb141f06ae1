package feed

import (
	"bytes"
)

// detectSampleLines is how many lines with content Detect looks at.
const detectSampleLines = 200

// Detect guesses the format of a feed from the start of its content. A zone
// directive, an SOA record or a CNAME record means RPZ. An AdGuard comment,
// header or rule means AdGuard. Otherwise the most common line shape wins
// among hosts lines, CSV rows and single entries. Detect returns Domains
// when it finds nothing else.
func Detect(data []byte) Format {
	data = bytes.TrimPrefix(data, utf8BOM)
	var hosts, csv, single int
	seen := 0
	for line := range bytes.Lines(data) {
		if seen == detectSampleLines {
			break
		}
		s := bytes.TrimSpace(line)
		if len(s) == 0 {
			continue
		}
		switch {
		case s[0] == '$' || isZoneRecord(s):
			return RPZ
		case s[0] == '!', bytes.HasPrefix(s, []byte("[Adblock")),
			bytes.HasPrefix(s, []byte("||")), bytes.HasPrefix(s, []byte("@@")),
			bytes.HasSuffix(s, []byte("^")):
			return AdGuard
		case s[0] == '#', s[0] == ';':
			continue
		}
		seen++
		switch {
		case isHostsLine(s):
			hosts++
		case bytes.IndexByte(s, ',') >= 0:
			csv++
		default:
			single++
		}
	}
	switch {
	case hosts > csv && hosts > single:
		return Hosts
	case csv > hosts && csv > single:
		return CSV
	}
	return Domains
}

// isZoneRecord reports whether a line has an SOA or CNAME type field between
// its first and last fields, as records of a policy zone do.
func isZoneRecord(s []byte) bool {
	fields := bytes.Fields(s)
	for i := 1; i < len(fields)-1 && i < 5; i++ {
		switch string(bytes.ToUpper(fields[i])) {
		case "SOA", "CNAME":
			return true
		}
	}
	return false
}
