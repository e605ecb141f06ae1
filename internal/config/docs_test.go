package config

import (
	"encoding"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func readReference(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatalf("read the config reference: %v", err)
	}
	return string(data)
}

// TestReferenceExamplesParse keeps the examples in docs/configuration.md
// valid.
func TestReferenceExamplesParse(t *testing.T) {
	doc := readReference(t)
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(doc, -1)
	if len(blocks) < 2 {
		t.Fatalf("found %d YAML examples in docs/configuration.md, want at least 2", len(blocks))
	}
	for i, b := range blocks {
		if _, err := Parse([]byte(b[1]), "docs/configuration.md example"); err != nil {
			t.Errorf("example %d: %v", i+1, err)
		}
	}
}

// TestReferenceListsEveryKey checks that every key of the schema has a row
// in docs/configuration.md.
func TestReferenceListsEveryKey(t *testing.T) {
	doc := readReference(t)
	keys := yamlKeys(reflect.TypeOf(Config{}), "")
	if len(keys) < 20 {
		t.Fatalf("found only %d keys in the schema: %v", len(keys), keys)
	}
	for _, k := range keys {
		if !strings.Contains(doc, "| `"+k+"` |") {
			t.Errorf("key %s has no row in docs/configuration.md", k)
		}
	}
}

// textUnmarshaler is the type of encoding.TextUnmarshaler. A struct that
// implements it, such as Time, is one YAML value, not a section.
var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// yamlKeys lists the dotted YAML paths of a struct type; list elements are
// written as "[]".
func yamlKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		path := prefix + tag
		ft := f.Type
		switch {
		case ft.Kind() == reflect.Struct && !reflect.PointerTo(ft).Implements(textUnmarshaler):
			keys = append(keys, yamlKeys(ft, path+".")...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			keys = append(keys, path)
			keys = append(keys, yamlKeys(ft.Elem(), path+"[].")...)
		default:
			keys = append(keys, path)
		}
	}
	return keys
}
