package resolver

import (
	"context"
	"errors"
	"fmt"

	"bulwark/internal/dnssec"
	"bulwark/internal/trace"
)

// request is the state of one client query, shared by the nested lookups of
// name server addresses that it causes.
type request struct {
	ctx context.Context
	cfg *Config
	// queries counts upstream queries sent so far.
	queries int
	// depth is the nesting of name server address lookups.
	depth int
	// stack holds the lookups in progress, as "name/type", so that a lookup
	// that needs itself (a delegation cycle) fails at once.
	stack map[string]bool
	// budget is the validation work left.
	budget *dnssec.Budget
	// refresh skips cached answer data (see WithRefresh).
	refresh bool
	// trace records the steps when the client query is traced; nil
	// otherwise.
	trace *trace.Recorder
}

// errBudget is returned when a client query has used all its upstream
// queries.
var errBudget = errors.New("upstream query budget spent")

// spend takes one upstream query from the budget.
func (q *request) spend() error {
	if err := q.ctx.Err(); err != nil {
		return err
	}
	if q.queries >= q.cfg.MaxUpstreamQueries {
		return fmt.Errorf("%w after %d queries", errBudget, q.queries)
	}
	q.queries++
	return nil
}
