package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

//go:embed default.yaml
var defaultYAML []byte

//go:embed root.hints
var builtinRootHints string

//go:embed root.ds
var builtinTrustAnchors string

// Error is a configuration error. It names the file, the line (0 when
// unknown) and the key path such as "resolver.upstream_port".
type Error struct {
	File string
	Line int
	Key  string
	Err  error
}

func (e *Error) Error() string {
	file := e.File
	if file == "" {
		file = "embedded default"
	}
	where := file
	if e.Line > 0 {
		where = fmt.Sprintf("%s:%d", file, e.Line)
	}
	if e.Key == "" {
		return fmt.Sprintf("config %s: %v", where, e.Err)
	}
	return fmt.Sprintf("config %s: %s: %v", where, e.Key, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Load reads, parses and validates the config file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Err: err}
	}
	return Parse(data, path)
}

// Default returns the embedded default config, which resolves from the IANA
// root servers.
func Default() *Config {
	c, err := Parse(defaultYAML, "")
	if err != nil {
		panic("embedded default config is invalid: " + err.Error())
	}
	for i := range c.Server.Listen {
		c.Server.Listen[i].Optional = c.Server.Listen[i].AddrPort.Addr().Is6()
	}
	return c
}

// DefaultYAML returns the text of the embedded default config.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// Parse decodes data strictly, fills in defaults and validates the result.
// file is used in error messages and to resolve relative paths; "" means the
// embedded default.
func Parse(data []byte, file string) (*Config, error) {
	c := newDefault(file)
	if err := decode(data, c); errors.Is(err, io.EOF) {
		c = newDefault(file) // an empty document
	} else if err != nil {
		return nil, decodeError(file, data, err)
	}
	c.File = file
	c.restoreNullSections()
	c.setListDefaults()
	c.setTransportDefaults()
	v := validator{cfg: c, file: file}
	v.tree, _ = parser.ParseBytes(data, 0)
	if err := v.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// decode decodes data strictly into c. The YAML library panics on some
// malformed input (such as a tag on a value that must be a list), so a panic
// becomes an error.
func decode(data []byte, c *Config) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("invalid YAML: the parser failed (%v); check tags, indentation and list syntax", v)
		}
	}()
	return yaml.NewDecoder(bytes.NewReader(data), yaml.DisallowUnknownField()).Decode(c)
}

// decodeError turns a YAML decoding error into an *Error carrying the line.
func decodeError(file string, data []byte, err error) error {
	var ye yaml.Error
	if errors.As(err, &ye) {
		line := 0
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			line = tk.Position.Line
		}
		msg := ye.GetMessage()
		var uf *yaml.UnknownFieldError
		if errors.As(err, &uf) {
			msg += ": remove it or check its spelling against docs/configuration.md"
			return &Error{File: file, Line: line, Err: errors.New(msg)}
		}
		// Type mismatches name Go types; name the key and the YAML type
		// wanted instead.
		tree, _ := parser.ParseBytes(data, 0)
		key := keyAtLine(tree, line)
		if want := wantedType(msg); want != "" && key != "" {
			msg = "invalid value: want " + want + " (see docs/configuration.md)"
		}
		return &Error{File: file, Line: line, Key: key, Err: errors.New(msg)}
	}
	if strings.Contains(err.Error(), "does not implemented Unmarshaler") {
		// The YAML library gives no position for a list or section where
		// a duration or size is expected.
		return &Error{File: file, Err: errors.New("invalid value: a list or section where a duration or size is expected; check the keys against docs/configuration.md")}
	}
	var ve *valueError
	if errors.As(err, &ve) {
		tree, _ := parser.ParseBytes(data, 0)
		key, line := findValue(tree, ve.value)
		if path := keyAtLine(tree, line); path != "" {
			key = path // the whole path, such as intel.nod.warm_up
		}
		return &Error{File: file, Line: line, Key: key, Err: err}
	}
	return &Error{File: file, Err: err}
}

// wantedType returns the kind of value that a YAML type error asks for, or
// "" when msg is not such an error.
func wantedType(msg string) string {
	switch {
	case strings.Contains(msg, "of type bool"):
		return "true or false"
	case strings.Contains(msg, "of type int"), strings.Contains(msg, "of type uint"):
		return "a whole number"
	case strings.Contains(msg, "sequence is expected"), strings.Contains(msg, "of type []"):
		return "a list"
	case strings.Contains(msg, "mapping"), strings.Contains(msg, "of type config."):
		return "a section of keys"
	case strings.Contains(msg, "of type string"):
		return "a string"
	}
	return ""
}

// keyAtLine returns the dotted path, such as dnssec.validation or
// server.listen[0].address, of the key written on line, or "".
func keyAtLine(tree *ast.File, line int) string {
	if tree == nil || line == 0 {
		return ""
	}
	for _, doc := range tree.Docs {
		if path, ok := findKeyLine(doc.Body, "", line); ok {
			return path
		}
	}
	return ""
}

func findKeyLine(n ast.Node, path string, line int) (string, bool) {
	switch n := n.(type) {
	case *ast.MappingNode:
		for _, v := range n.Values {
			if p, ok := findKeyLine(v, path, line); ok {
				return p, true
			}
		}
	case *ast.MappingValueNode:
		key := n.Key.String()
		if path != "" {
			key = path + "." + key
		}
		if tk := n.Key.GetToken(); tk != nil && tk.Position != nil && tk.Position.Line == line {
			return key, true
		}
		return findKeyLine(n.Value, key, line)
	case *ast.SequenceNode:
		for i, v := range n.Values {
			if p, ok := findKeyLine(v, fmt.Sprintf("%s[%d]", path, i), line); ok {
				return p, true
			}
		}
	}
	return "", false
}

// findValue returns the key and line of the first mapping value whose text
// is value.
func findValue(tree *ast.File, value string) (string, int) {
	if tree == nil {
		return "", 0
	}
	f := &valueFinder{value: value}
	for _, doc := range tree.Docs {
		if doc.Body != nil && f.line == 0 {
			ast.Walk(f, doc.Body)
		}
	}
	return f.key, f.line
}

type valueFinder struct {
	value string
	key   string
	line  int
}

func (f *valueFinder) Visit(n ast.Node) ast.Visitor {
	if f.line != 0 {
		return nil
	}
	mv, ok := n.(*ast.MappingValueNode)
	if !ok || mv.Value == nil {
		return f
	}
	tk := mv.Value.GetToken()
	if tk != nil && tk.Value == f.value {
		f.key = mv.Key.String()
		f.line = tk.Position.Line
		return nil
	}
	return f
}

// resolvePath makes p relative to the directory of the config file.
func (c *Config) resolvePath(p string) string {
	if p == "" || filepath.IsAbs(p) || c.File == "" {
		return p
	}
	return filepath.Join(filepath.Dir(c.File), p)
}

// lineOf returns the line of the node at the YAML path, or 0.
func lineOf(tree *ast.File, path string) int {
	if tree == nil {
		return 0
	}
	p, err := yaml.PathString("$." + path)
	if err != nil {
		return 0
	}
	n, err := p.FilterFile(tree)
	if err != nil || n == nil || n.GetToken() == nil {
		return 0
	}
	return n.GetToken().Position.Line
}
