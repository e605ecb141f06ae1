package resolver

import "context"

// refreshKey marks a context made by WithRefresh.
type refreshKey struct{}

// WithRefresh returns a context that makes Resolve ask the servers for the
// answer even when the cache holds it, as a prefetch of an answer about to
// expire needs. Zone cuts, name server addresses and DNSSEC keys still come
// from the cache.
func WithRefresh(ctx context.Context) context.Context {
	return context.WithValue(ctx, refreshKey{}, true)
}

// refreshing reports whether ctx was made by WithRefresh.
func refreshing(ctx context.Context) bool {
	v, _ := ctx.Value(refreshKey{}).(bool)
	return v
}
