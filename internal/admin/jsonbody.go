package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
)

// maxJSONBody bounds the JSON body of a request, in bytes. The largest
// valid body is a domain name with a note, far below it.
const maxJSONBody = 64 << 10

// bodyError is the rejection of a request body: the HTTP status and the
// message of the error response.
type bodyError struct {
	status int
	msg    string
}

func (e *bodyError) Error() string { return e.msg }

// readJSON decodes the request body, one JSON object of at most
// maxJSONBody bytes, into v, a pointer to a struct. It rejects unknown
// fields, naming the valid ones, and any data after the object. When the
// body is rejected it writes the error response, 413 for a body that is
// too large and 400 otherwise, and returns false.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := decodeJSONBody(w, r, v); err != nil {
		writeError(w, err.status, err.msg)
		return false
	}
	return true
}

func decodeJSONBody(w http.ResponseWriter, r *http.Request, v any) *bodyError {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJSONBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return &bodyError{http.StatusRequestEntityTooLarge,
			fmt.Sprintf("request body larger than %d bytes: send one JSON object of at most %d bytes", tooLarge.Limit, tooLarge.Limit)}
	case err != nil:
		return &bodyError{http.StatusBadRequest, "failed to read the request body: " + err.Error()}
	}

	names := jsonFields(v)
	fields := strings.Join(names, ", ")
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return &bodyError{http.StatusBadRequest, "missing JSON body: send an object with the fields " + fields}
	}
	if trimmed[0] != '{' {
		return &bodyError{http.StatusBadRequest, "invalid JSON body: send one object with the fields " + fields}
	}

	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &bodyError{http.StatusBadRequest, describeJSONError(err, fields)}
	}
	if msg := checkKeys(data, names); msg != "" {
		return &bodyError{http.StatusBadRequest, msg}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &bodyError{http.StatusBadRequest, fmt.Sprintf(
			"invalid JSON body: more data after the object at byte %d: send one object only", dec.InputOffset())}
	}
	return nil
}

// checkKeys returns a message about the first key of the object at the
// start of data that is not exactly one of names or that repeats an
// earlier key, and "" when there is none. encoding/json matches keys in
// any letter case and lets a repeated key override the first silently.
func checkKeys(data []byte, names []string) string {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil {
		return ""
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		key, ok := tok.(string)
		if err != nil || !ok {
			return ""
		}
		switch {
		case !slices.Contains(names, key):
			return fmt.Sprintf("unknown field %q in the JSON body: valid fields are %s", key, strings.Join(names, ", "))
		case seen[key]:
			return fmt.Sprintf("invalid JSON body: field %q is given twice: give it once", key)
		}
		seen[key] = true
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return ""
		}
	}
	return ""
}

// describeJSONError turns a decoding error into a message that names the
// offending field or position and the valid fields.
func describeJSONError(err error, fields string) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("invalid JSON body: %v at byte %d", syntax, syntax.Offset)
	case errors.As(err, &typ) && typ.Field != "":
		return fmt.Sprintf("invalid JSON body: field %q must be a %s, not a JSON %s", typ.Field, typ.Type, typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "invalid JSON body: the object is cut short"
	}
	// encoding/json reports an unknown field only as text, in the form
	// `json: unknown field "NAME"`.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Sprintf("unknown field %s in the JSON body: valid fields are %s", name, fields)
	}
	return "invalid JSON body: " + err.Error()
}

// jsonFields returns the JSON names of the fields of the struct v points
// to, in their order.
func jsonFields(v any) []string {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		names = append(names, name)
	}
	return names
}
