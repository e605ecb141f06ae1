package taxii

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"bulwark/internal/atomicfile"
)

// State stores, per collection, the added_after to use on the next pull,
// in a JSON file replaced atomically.
type State struct {
	path  string
	After map[string]time.Time `json:"added_after"`
}

// LoadState reads the state file at path; a missing file is an empty
// state.
func LoadState(path string) (*State, error) {
	s := &State{path: path, After: map[string]time.Time{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("TAXII state %s: %w", path, err)
	}
	if err := json.Unmarshal(data, s); err != nil {
		return nil, fmt.Errorf("TAXII state %s: invalid JSON: %w: remove the file to pull everything again", path, err)
	}
	if s.After == nil {
		s.After = map[string]time.Time{}
	}
	return s, nil
}

// Key names a collection in the state: its API root URL and id.
func Key(rootURL, id string) string { return dirURL(rootURL) + "collections/" + id + "/" }

// Save writes the state.
func (s *State) Save() error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(s.path, data, 0o600)
}

// Pull reads the objects of a collection added since the last pull and,
// on success, stores where this pull ended and saves the state.
func (c *Client) Pull(ctx context.Context, st *State, rootURL, id string) ([]json.RawMessage, error) {
	key := Key(rootURL, id)
	page, err := c.Objects(ctx, rootURL, id, st.After[key])
	if err != nil {
		return nil, err
	}
	if !page.AddedLast.IsZero() {
		st.After[key] = page.AddedLast
		if err := st.Save(); err != nil {
			return page.Objects, err
		}
	}
	return page.Objects, nil
}
