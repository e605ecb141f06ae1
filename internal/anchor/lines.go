package anchor

import (
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// ParseLines parses DS and DNSKEY records in zone-file syntax: one record per
// line or spread over lines inside parentheses, comments after ';', a blank
// owner meaning the previous owner, and the $ORIGIN and $TTL directives.
// Relative names are completed with origin ("" means the root). Errors name
// the line where the record starts. Text without any record is an error.
func ParseLines(text, origin string) ([]dns.RR, error) {
	origin, err := absoluteName(origin, ".")
	if err != nil {
		return nil, fmt.Errorf("invalid origin: %w", err)
	}
	entries, err := splitEntries(text)
	if err != nil {
		return nil, err
	}
	var (
		out       []dns.RR
		ttlLine   string // the last $TTL directive, given to each record's parser
		prevOwner string
	)
	for _, e := range entries {
		fields := strings.Fields(e.text)
		if strings.HasPrefix(fields[0], "$") {
			switch strings.ToUpper(fields[0]) {
			case "$ORIGIN":
				if len(fields) != 2 {
					return nil, fmt.Errorf("line %d: $ORIGIN takes one domain name", e.line)
				}
				if origin, err = absoluteName(fields[1], origin); err != nil {
					return nil, fmt.Errorf("line %d: invalid $ORIGIN: %w", e.line, err)
				}
			case "$TTL":
				ttlLine = strings.TrimSpace(e.text) + "\n"
				zp := dns.NewZoneParser(strings.NewReader(ttlLine), origin, "")
				zp.Next()
				if err := zp.Err(); err != nil {
					return nil, fmt.Errorf("line %d: %s", e.line, parseErrorText(err))
				}
			default:
				return nil, fmt.Errorf("line %d: directive %s is not supported in trust anchor text: only $ORIGIN and $TTL are", e.line, fields[0])
			}
			continue
		}
		record := e.text
		if record[0] == ' ' || record[0] == '\t' {
			if prevOwner == "" {
				return nil, fmt.Errorf("line %d: record starts with white space but no earlier record gives its owner name", e.line)
			}
			record = prevOwner + record
		}
		rr, err := parseRecord(ttlLine+record+"\n", origin)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", e.line, err)
		}
		if err := Check(rr); err != nil {
			return nil, fmt.Errorf("line %d: invalid trust anchor %q: %w", e.line, strings.Join(fields, " "), err)
		}
		prevOwner = rr.Header().Name
		out = append(out, Canonicalize(rr))
	}
	if len(out) == 0 {
		return nil, errors.New("no DS or DNSKEY record found")
	}
	return out, nil
}

// parseRecord parses exactly one resource record.
func parseRecord(text, origin string) (dns.RR, error) {
	zp := dns.NewZoneParser(strings.NewReader(text), origin, "")
	zp.SetIncludeAllowed(false)
	zp.SetDefaultTTL(0) // a $TTL directive at the start of text overrides it
	rr, ok := zp.Next()
	if err := zp.Err(); err != nil {
		return nil, errors.New(parseErrorText(err))
	}
	if !ok || rr == nil {
		return nil, errors.New("no record")
	}
	if _, more := zp.Next(); more {
		return nil, errors.New("more than one record")
	}
	return rr, nil
}

// parseErrorText returns the message of a zone parser error without its
// "dns: " prefix and without its position, which counts from the start of the
// one record given to the parser, not from the start of the text.
func parseErrorText(err error) string {
	msg := strings.TrimPrefix(err.Error(), "dns: ")
	if i := strings.LastIndex(msg, " at line: "); i >= 0 {
		msg = msg[:i]
	}
	return msg
}

// absoluteName returns name as a canonical fully qualified name, completing a
// relative name with origin.
func absoluteName(name, origin string) (string, error) {
	if name == "" {
		name = "."
	}
	if name != "." && !dns.IsFqdn(name) {
		if origin == "." {
			name += "."
		} else {
			name += "." + origin
		}
	}
	if _, ok := dns.IsDomainName(name); !ok {
		return "", fmt.Errorf("%q is not a domain name", name)
	}
	return dns.CanonicalName(name), nil
}

// entry is one record or directive of zone-file text with the comments
// removed and the lines inside parentheses joined.
type entry struct {
	line int // number of the entry's first line, from 1
	text string
}

// splitEntries cuts zone-file text into entries. It tracks quotes and
// backslash escapes so that ';', '(' and ')' inside them keep their meaning
// as data.
func splitEntries(text string) ([]entry, error) {
	var (
		entries   []entry
		b         strings.Builder
		line      = 1
		start     = 1
		depth     = 0
		inQuote   bool
		inComment bool
		escaped   bool
	)
	flush := func() {
		if strings.TrimSpace(b.String()) != "" {
			entries = append(entries, entry{line: start, text: b.String()})
		}
		b.Reset()
	}
	for _, r := range text {
		if r == '\n' {
			if inQuote {
				return nil, fmt.Errorf("line %d: quoted text is not closed", line)
			}
			inComment, escaped = false, false
			line++
			if depth == 0 {
				flush()
				start = line
			} else {
				b.WriteByte(' ')
			}
			continue
		}
		if inComment {
			continue
		}
		if r == '\r' {
			r = ' '
		}
		switch {
		case escaped:
			escaped = false
		case r == '\\':
			escaped = true
		case inQuote:
			inQuote = r != '"'
		case r == '"':
			inQuote = true
		case r == ';':
			inComment = true
			continue
		case r == '(':
			depth++
		case r == ')':
			depth--
			if depth < 0 {
				return nil, fmt.Errorf("line %d: ')' without a matching '('", line)
			}
		}
		b.WriteRune(r)
	}
	if inQuote {
		return nil, fmt.Errorf("line %d: quoted text is not closed", line)
	}
	if depth > 0 {
		return nil, fmt.Errorf("line %d: '(' is not closed", start)
	}
	flush()
	return entries, nil
}
