package pipeline

import (
	"sync"

	"bulwark/internal/cache"
)

// flights lets concurrent identical questions share one resolution.
type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

type flight struct {
	done chan struct{}
	pk   *cache.Packed
}

// do runs fn once for all callers with the same key at the same time and
// returns its result to each.
func (f *flights) do(key string, fn func() *cache.Packed) *cache.Packed {
	f.mu.Lock()
	if fl, ok := f.m[key]; ok {
		f.mu.Unlock()
		<-fl.done
		return fl.pk
	}
	fl := &flight{done: make(chan struct{})}
	f.m[key] = fl
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.m, key)
		f.mu.Unlock()
		close(fl.done)
	}()
	fl.pk = fn()
	return fl.pk
}

// start runs fn on a new goroutine unless a call with the same key is in
// progress, and returns the flight to wait on. Its pk is set once done is
// closed.
func (f *flights) start(key string, fn func() *cache.Packed) *flight {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fl, ok := f.m[key]; ok {
		return fl
	}
	fl := &flight{done: make(chan struct{})}
	f.m[key] = fl
	go func() {
		defer func() {
			f.mu.Lock()
			delete(f.m, key)
			f.mu.Unlock()
			close(fl.done)
		}()
		fl.pk = fn()
	}()
	return fl
}
