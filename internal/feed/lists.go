package feed

import (
	"bytes"
	"fmt"
	"net/netip"
)

// lineFunc parses one line of a line-based format into b.
type lineFunc func(b *builder, text []byte, line int)

func parseLines(lr *lineReader, b *builder, parse lineFunc) {
	for {
		text, tooLong, ok := lr.next()
		if !ok {
			return
		}
		if tooLong {
			b.bad(lr.line, text, reasonLineTooLong)
			continue
		}
		parse(b, text, lr.line)
	}
}

// localHostNames are the names that hosts files map to the local machine or
// to broadcast and multicast addresses. Entries for them are not blocking
// rules, so parsers skip them.
var localHostNames = map[string]bool{
	"localhost.":             true,
	"localhost.localdomain.": true,
	"local.":                 true,
	"broadcasthost.":         true,
	"ip6-localhost.":         true,
	"ip6-loopback.":          true,
	"ip6-localnet.":          true,
	"ip6-mcastprefix.":       true,
	"ip6-allnodes.":          true,
	"ip6-allrouters.":        true,
	"ip6-allhosts.":          true,
}

// stripComment removes a comment that starts with marker at the start of the
// line or after a space or tab, and the spaces around what is left. A marker
// inside a word is kept, so the entry shows up as malformed.
func stripComment(text []byte, marker byte) []byte {
	for i, c := range text {
		if c == marker && (i == 0 || text[i-1] == ' ' || text[i-1] == '\t') {
			text = text[:i]
			break
		}
	}
	return bytes.TrimSpace(text)
}

// cutField splits off the first field of s, which starts with no space.
func cutField(s []byte) (field, rest []byte) {
	i := bytes.IndexAny(s, " \t")
	if i < 0 {
		return s, nil
	}
	return s[:i], bytes.TrimLeft(s[i:], " \t")
}

// quoteField returns a field for use in a reason, cut to a readable length.
func quoteField(field []byte) string {
	if len(field) > 64 {
		field = field[:64]
	}
	return fmt.Sprintf("%q", field)
}

func parseHostsLine(b *builder, text []byte, line int) {
	content := stripComment(text, '#')
	if len(content) == 0 {
		b.res.Comments++
		return
	}
	parseHostsEntry(b, text, content, line)
}

// parseHostsEntry reads "ADDRESS name [name...]" from content, which has no
// comment and no surrounding spaces.
func parseHostsEntry(b *builder, text, content []byte, line int) {
	addr, rest := cutField(content)
	switch string(addr) {
	case "0.0.0.0", "127.0.0.1", "::", "::1":
	default:
		if _, err := netip.ParseAddr(string(addr)); err != nil {
			b.bad(line, text, "invalid address "+quoteField(addr)+" at the start of a hosts line")
			return
		}
	}
	if len(rest) == 0 {
		b.bad(line, text, "missing host name after the address")
		return
	}
	var badReason string
	entries, skipped := 0, 0
	for len(rest) > 0 {
		var field []byte
		field, rest = cutField(rest)
		if string(field) == "0.0.0.0" {
			skipped++
			continue
		}
		if looksLikeAddress(field) {
			if badReason == "" {
				badReason = "IP address " + quoteField(field) + " in place of a host name"
			}
			continue
		}
		name, reason := canonicalName(field)
		if reason != "" {
			if badReason == "" {
				badReason = reason + ": " + quoteField(field)
			}
			continue
		}
		if localHostNames[name] {
			skipped++
			continue
		}
		entries++
		b.add(Rule{Trigger: QName, Name: name, Subdomains: true, Action: Block, Line: line})
	}
	switch {
	case badReason != "":
		b.bad(line, text, badReason)
	case entries == 0 && skipped > 0:
		b.res.Comments++
	}
}

func parseDomainsLine(b *builder, text []byte, line int) {
	content := stripComment(text, '#')
	if len(content) == 0 {
		b.res.Comments++
		return
	}
	if bytes.ContainsAny(content, " \t") {
		b.bad(line, text, "more than one field: expected one name or address per line")
		return
	}
	r, reason := parseEntry(content, line)
	if reason != "" {
		b.bad(line, text, reason)
		return
	}
	b.add(r)
}

// parseCSV reads a CSV feed with the name or address in opts.CSVColumn. Lines
// starting with "#" are comments. The first row is a header, and skipped,
// when its name column contains no dot and no colon, which rules out every
// IP address and every name below a top-level domain.
func parseCSV(lr *lineReader, b *builder, opts Options) {
	column := max(opts.CSVColumn, 0)
	categoryColumn := opts.CSVCategoryColumn
	if categoryColumn == column {
		categoryColumn = -1
	}
	// categories stores one copy of each category string.
	categories := make(map[string]string)
	var fields [][]byte
	firstRow := true
	for {
		text, tooLong, ok := lr.next()
		if !ok {
			return
		}
		line := lr.line
		if tooLong {
			b.bad(line, text, reasonLineTooLong)
			continue
		}
		content := bytes.TrimSpace(text)
		if len(content) == 0 || content[0] == '#' {
			b.res.Comments++
			continue
		}
		var reason string
		fields, reason = splitCSV(fields[:0], content)
		if reason != "" {
			b.bad(line, text, reason)
			continue
		}
		if column >= len(fields) {
			b.bad(line, text, fmt.Sprintf("missing column %d: the row has %d", column+1, len(fields)))
			continue
		}
		entry := bytes.TrimSpace(fields[column])
		if firstRow {
			firstRow = false
			if !bytes.ContainsAny(entry, ".:") {
				b.res.Comments++
				continue
			}
		}
		r, reason := parseEntry(entry, line)
		if reason != "" {
			b.bad(line, text, reason)
			continue
		}
		if categoryColumn >= 0 && categoryColumn < len(fields) {
			r.Category = internString(categories, bytes.TrimSpace(fields[categoryColumn]))
		}
		b.add(r)
	}
}

func internString(m map[string]string, b []byte) string {
	if s, ok := m[string(b)]; ok {
		return s
	}
	s := string(b)
	m[s] = s
	return s
}

// splitCSV appends the fields of one CSV row to fields. A quoted field may
// contain commas and doubled quotes, and it is returned without its outer
// quotes but with doubled quotes left as they are. Rows cannot span lines.
func splitCSV(fields [][]byte, row []byte) ([][]byte, string) {
	for {
		if len(row) > 0 && row[0] == '"' {
			end := 1
			for {
				i := bytes.IndexByte(row[end:], '"')
				if i < 0 {
					return fields, "unterminated quoted field"
				}
				end += i
				if end+1 < len(row) && row[end+1] == '"' {
					end += 2
					continue
				}
				break
			}
			fields = append(fields, row[1:end])
			row = row[end+1:]
			if len(row) == 0 {
				return fields, ""
			}
			if row[0] != ',' {
				return fields, "unexpected text after a quoted field"
			}
			row = row[1:]
			continue
		}
		i := bytes.IndexByte(row, ',')
		if i < 0 {
			return append(fields, row), ""
		}
		fields = append(fields, row[:i])
		row = row[i+1:]
	}
}
