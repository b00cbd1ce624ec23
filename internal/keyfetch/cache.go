// Package keyfetch holds what the resource server's issuer key set and the
// issuer's client key sets share: a cache of one remotely fetched value
// with a lifetime, stale-while-revalidate, a rate limit on refetches and
// collapsed concurrent fetches ([Cache]), the Cache-Control lifetime rule
// ([TTL]) and a size-capped GET of a JSON document ([Get]).
package keyfetch

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrStale is returned when the last good value is older than the
// configured MaxStale and no newer one could be fetched yet.
var ErrStale = errors.New("keyfetch: cached value too old and no fetch succeeded since")

// Config configures a [Cache].
type Config[T any] struct {
	// Load fetches the value and says how long it may be used. Required.
	// It runs detached from the caller's cancellation (other callers may
	// be waiting on it), under a context bounded by Timeout.
	Load func(ctx context.Context) (T, time.Duration, error)
	// MinRefreshInterval is the least time between the starts of two
	// fetches. Required (positive).
	MinRefreshInterval time.Duration
	// MaxStale bounds how long past its lifetime the last good value is
	// still returned while fetches fail. Zero means without bound.
	MaxStale time.Duration
	// Timeout bounds one fetch. Required (positive).
	Timeout time.Duration
	// Now is the clock. Required.
	Now func() time.Time
	// Observe, when set, is told of every fetch's duration and outcome.
	Observe func(d time.Duration, err error)
}

// Cache holds one remotely fetched value. It is fetched lazily on first
// use; after that no caller waits for a value it already has: a value
// past its lifetime stays in use while one background fetch revalidates it
// (up to MaxStale past its lifetime), and the last good value stays in use
// when a fetch fails. Only [Cache.Refresh] and the first use wait. A
// Cache is safe for concurrent use.
type Cache[T any] struct {
	cfg Config[T]

	mu        sync.Mutex
	val       T
	have      bool
	expires   time.Time // when the value should be refetched
	lastFetch time.Time // start of the last fetch (success or failure)
	lastErr   error
	inflight  chan struct{} // non-nil while a fetch runs
}

// New returns a Cache for cfg, which the caller has validated.
func New[T any](cfg Config[T]) *Cache[T] {
	return &Cache[T]{cfg: cfg}
}

// usableLocked reports whether the cached value may be returned at now.
func (c *Cache[T]) usableLocked(now time.Time) bool {
	return c.have && (c.cfg.MaxStale <= 0 || now.Before(c.expires.Add(c.cfg.MaxStale)))
}

// Get returns the cached value. Without a usable value it waits for a
// fetch (started at most once per MinRefreshInterval). With one it never
// waits: a value past its lifetime is still returned while one fetch
// revalidates it in the background.
func (c *Cache[T]) Get(ctx context.Context) (T, error) {
	c.mu.Lock()
	now := c.cfg.Now()
	if c.usableLocked(now) {
		if !now.Before(c.expires) && c.inflight == nil && now.Sub(c.lastFetch) >= c.cfg.MinRefreshInterval {
			c.startLocked(ctx, now)
		}
		v := c.val
		c.mu.Unlock()
		return v, nil
	}
	return c.fetchLocked(ctx)
}

// Refresh refetches the value, unless a fetch started less than
// MinRefreshInterval ago; a caller joins a fetch already under way and
// waits for it, or for ctx. It returns the newest usable value.
func (c *Cache[T]) Refresh(ctx context.Context) (T, error) {
	c.mu.Lock()
	return c.fetchLocked(ctx)
}

// WaitIdle blocks until no fetch is under way.
func (c *Cache[T]) WaitIdle() {
	c.mu.Lock()
	done := c.inflight
	c.mu.Unlock()
	if done != nil {
		<-done
	}
}

// resultLocked returns the usable value or the reason there is none.
func (c *Cache[T]) resultLocked() (T, error) {
	if c.usableLocked(c.cfg.Now()) {
		return c.val, nil
	}
	var zero T
	if c.lastErr != nil {
		return zero, c.lastErr
	}
	return zero, ErrStale
}

// fetchLocked joins the fetch under way, or starts one unless the last
// started less than MinRefreshInterval ago, and waits for it. Called with
// c.mu held; releases it.
func (c *Cache[T]) fetchLocked(ctx context.Context) (T, error) {
	if c.inflight == nil {
		now := c.cfg.Now()
		if !c.lastFetch.IsZero() && now.Sub(c.lastFetch) < c.cfg.MinRefreshInterval {
			v, err := c.resultLocked()
			c.mu.Unlock()
			return v, err
		}
		c.startLocked(ctx, now)
	}
	done := c.inflight
	c.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.resultLocked()
}

// startLocked starts a fetch. Called with c.mu held and no fetch under way.
func (c *Cache[T]) startLocked(ctx context.Context, now time.Time) {
	c.lastFetch = now
	done := make(chan struct{})
	c.inflight = done
	go c.fetch(ctx, done)
}

func (c *Cache[T]) fetch(ctx context.Context, done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.Timeout)
	defer cancel()
	start := time.Now()
	v, ttl, err := c.cfg.Load(ctx)
	if c.cfg.Observe != nil {
		c.cfg.Observe(time.Since(start), err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.lastErr = err
	} else {
		c.val, c.have = v, true
		c.lastErr = nil
		c.expires = c.cfg.Now().Add(ttl)
	}
	c.inflight = nil
	close(done)
}
