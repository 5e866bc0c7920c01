package es

import (
	"container/list"
	"context"
	"fmt"
	"sync"
)

// entry is what the cache keeps for one subject: the folded state, the
// subject's version and the position of the last event folded, and the
// version of the subject's last snapshot.
type entry[S any] struct {
	state       S
	version     uint64
	position    uint64
	snapVersion uint64
}

// lru is a bounded least-recently-used map from subject to entry. It is
// safe for concurrent use.
//
// epoch guards against a load that began before an invalidation putting
// its stale result back: a loader reads the epoch before it reads the
// store, and put ignores results from an older epoch.
type lru[S any] struct {
	mu    sync.Mutex
	size  int
	ll    *list.List // of *lruItem[S], most recent first
	items map[string]*list.Element
	epoch uint64
}

type lruItem[S any] struct {
	key string
	e   entry[S]
}

func newLRU[S any](size int) *lru[S] {
	return &lru[S]{size: size, ll: list.New(), items: map[string]*list.Element{}}
}

func (c *lru[S]) get(key string) (entry[S], bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return entry[S]{}, false
	}
	c.ll.MoveToFront(el)
	return el.Value.(*lruItem[S]).e, true
}

// currentEpoch returns the epoch a loader must hand to put.
func (c *lru[S]) currentEpoch() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

// put stores e under key unless the cache was invalidated since epoch or
// already holds a newer version of key, evicting the least recently used
// entry beyond the size bound.
func (c *lru[S]) put(key string, e entry[S], epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch != c.epoch {
		return
	}
	if el, ok := c.items[key]; ok {
		it := el.Value.(*lruItem[S])
		if it.e.version <= e.version {
			it.e = e
		}
		c.ll.MoveToFront(el)
		return
	}
	c.items[key] = c.ll.PushFront(&lruItem[S]{key: key, e: e})
	for c.ll.Len() > c.size {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*lruItem[S]).key)
	}
}

// replace stores e under key when the cached entry is at version from,
// and reports whether it did. Save uses it to fold its own events into a
// cached state without a reload.
func (c *lru[S]) replace(key string, from uint64, e entry[S]) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return false
	}
	it := el.Value.(*lruItem[S])
	if it.e.version != from {
		return false
	}
	it.e = e
	c.ll.MoveToFront(el)
	return true
}

// remove drops key and starts a new epoch, so that loads already under way
// do not put their results back.
func (c *lru[S]) remove(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	if el, ok := c.items[key]; ok {
		c.ll.Remove(el)
		delete(c.items, key)
	}
}

func (c *lru[S]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

// flight makes concurrent loads of one key share a single call.
type flight[V any] struct {
	mu    sync.Mutex
	calls map[string]*call[V]
}

type call[V any] struct {
	done chan struct{}
	val  V
	err  error
}

// do calls fn once for all callers that ask for key while it runs. The
// first caller runs fn; the others wait for its result or for their own
// ctx to end. shared reports whether the result came from another
// caller's call. A panic in fn becomes an error for every caller.
func (g *flight[V]) do(ctx context.Context, key string, fn func() (V, error)) (v V, shared bool, err error) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = map[string]*call[V]{}
	}
	if c, ok := g.calls[key]; ok {
		g.mu.Unlock()
		select {
		case <-c.done:
			return c.val, true, c.err
		case <-ctx.Done():
			var zero V
			return zero, true, ctx.Err()
		}
	}
	c := &call[V]{done: make(chan struct{})}
	g.calls[key] = c
	g.mu.Unlock()

	defer func() {
		if p := recover(); p != nil {
			c.err = fmt.Errorf("es: load panicked: %v", p)
		}
		g.mu.Lock()
		delete(g.calls, key)
		g.mu.Unlock()
		close(c.done)
		v, err = c.val, c.err
	}()
	c.val, c.err = fn()
	return c.val, false, c.err
}
