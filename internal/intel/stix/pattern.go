package stix

import (
	"fmt"
	"strings"
)

// maxPatternDomains bounds the domains of one pattern.
const maxPatternDomains = 10000

// ParsePattern returns the domains of a STIX pattern made of equality
// comparisons on domain-name:value joined by OR, inside one observation
// expression or across several:
//
//	[domain-name:value = 'a.example' OR domain-name:value = 'b.example']
//	[domain-name:value = 'a.example'] OR [domain-name:value = 'b.example']
//
// Any other pattern, such as one with AND, another object path, another
// operator or a qualifier like WITHIN, is an error saying what it has,
// because blocking on part of it would block more than it describes.
func ParsePattern(pattern string) ([]string, error) {
	toks, err := tokenize(pattern)
	if err != nil {
		return nil, err
	}
	p := &patternParser{toks: toks}
	var domains []string
	for {
		got, err := p.observation()
		if err != nil {
			return nil, err
		}
		domains = append(domains, got...)
		if len(domains) > maxPatternDomains {
			return nil, fmt.Errorf("pattern lists more than %d domains", maxPatternDomains)
		}
		if p.done() {
			return domains, nil
		}
		if err := p.expect("OR"); err != nil {
			return nil, err
		}
	}
}

// operatorChars are the characters of comparison operators such as =, !=
// and >=, which need no space around them.
const operatorChars = "=!<>"

// token is a word, a punctuation mark or a quoted string literal.
type token struct {
	text    string
	literal bool
}

func tokenize(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '[' || c == ']' || c == '(' || c == ')':
			toks = append(toks, token{text: string(c)})
			i++
		case c == '\'':
			lit, n, err := literal(s[i:])
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{text: lit, literal: true})
			i += n
		case strings.IndexByte(operatorChars, c) >= 0:
			j := i
			for j < len(s) && strings.IndexByte(operatorChars, s[j]) >= 0 {
				j++
			}
			toks = append(toks, token{text: s[i:j]})
			i = j
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n\r[]()'"+operatorChars, rune(s[j])) {
				j++
			}
			toks = append(toks, token{text: s[i:j]})
			i = j
		}
	}
	return toks, nil
}

// literal reads the quoted string at the start of s and returns its value
// and length, with \' and \\ unescaped.
func literal(s string) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 >= len(s) || s[i+1] != '\'' && s[i+1] != '\\' {
				return "", 0, fmt.Errorf("invalid escape in string literal %s", s)
			}
			i++
			b.WriteByte(s[i])
		case '\'':
			return b.String(), i + 1, nil
		default:
			b.WriteByte(s[i])
		}
	}
	return "", 0, fmt.Errorf("unterminated string literal %s", s)
}

type patternParser struct {
	toks []token
	pos  int
}

func (p *patternParser) done() bool { return p.pos >= len(p.toks) }

func (p *patternParser) next() (token, error) {
	if p.done() {
		return token{}, fmt.Errorf("pattern ends early")
	}
	t := p.toks[p.pos]
	p.pos++
	return t, nil
}

func (p *patternParser) expect(word string) error {
	t, err := p.next()
	if err != nil {
		return err
	}
	if t.literal || !strings.EqualFold(t.text, word) {
		return fmt.Errorf("pattern has %q where %s is read; only OR of domain-name:value equality is supported", t.text, word)
	}
	return nil
}

// observation reads "[cmp OR cmp ...]".
func (p *patternParser) observation() ([]string, error) {
	if err := p.expect("["); err != nil {
		return nil, err
	}
	var domains []string
	for {
		d, err := p.comparison()
		if err != nil {
			return nil, err
		}
		domains = append(domains, d)
		t, err := p.next()
		if err != nil {
			return nil, err
		}
		if !t.literal && t.text == "]" {
			return domains, nil
		}
		if t.literal || !strings.EqualFold(t.text, "OR") {
			return nil, fmt.Errorf("pattern joins comparisons with %q; only OR is supported", t.text)
		}
	}
}

// comparison reads "domain-name:value = 'name'".
func (p *patternParser) comparison() (string, error) {
	path, err := p.next()
	if err != nil {
		return "", err
	}
	if path.literal || path.text != "domain-name:value" {
		return "", fmt.Errorf("pattern compares %q; only domain-name:value is supported", path.text)
	}
	op, err := p.next()
	if err != nil {
		return "", err
	}
	if op.literal || op.text != "=" {
		return "", fmt.Errorf("pattern uses operator %q; only = is supported", op.text)
	}
	val, err := p.next()
	if err != nil {
		return "", err
	}
	if !val.literal {
		return "", fmt.Errorf("pattern compares with %q, not a string literal", val.text)
	}
	return val.text, nil
}
