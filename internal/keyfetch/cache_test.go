package keyfetch

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// source is a Load function whose outcome the test sets.
type source struct {
	calls atomic.Int32
	mu    sync.Mutex
	val   int
	err   error
	gate  chan struct{} // when set, Load waits on it
}

func (s *source) set(v int, err error) {
	s.mu.Lock()
	s.val, s.err = v, err
	s.mu.Unlock()
}

func (s *source) load(context.Context) (int, time.Duration, error) {
	s.calls.Add(1)
	if s.gate != nil {
		<-s.gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.val, time.Minute, s.err
}

func newCache(c *clock, s *source, maxStale time.Duration) *Cache[int] {
	return New(Config[int]{Load: s.load, MinRefreshInterval: 10 * time.Second, MaxStale: maxStale, Timeout: time.Second, Now: c.now})
}

var errDown = errors.New("down")

// TestCacheLifecycle walks a value through fetch, lifetime, failed
// revalidation, MaxStale and recovery.
func TestCacheLifecycle(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		maxStale time.Duration
		// after a first value 1, the source fails and the clock moves by
		// advance; then Get is called (and the background fetch awaited).
		advance time.Duration
		want    int
		wantErr error
	}{
		{"fresh", 0, 30 * time.Second, 1, nil},
		{"stale, no bound", 0, 100 * time.Hour, 1, nil},
		{"stale within MaxStale", 5 * time.Minute, 5 * time.Minute, 1, nil},
		{"stale past MaxStale", 5 * time.Minute, 7 * time.Minute, 0, errDown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &clock{t: time.Unix(1767225600, 0)}
			s := &source{}
			s.set(1, nil)
			kc := newCache(c, s, tt.maxStale)
			if v, err := kc.Get(context.Background()); v != 1 || err != nil {
				t.Fatalf("first Get = %d, %v", v, err)
			}
			s.set(2, errDown)
			c.advance(tt.advance)
			v, err := kc.Get(context.Background())
			kc.WaitIdle()
			if v != tt.want || !errors.Is(err, tt.wantErr) {
				t.Fatalf("Get = %d, %v; want %d, %v", v, err, tt.want, tt.wantErr)
			}
			if v, err := kc.Get(context.Background()); v != tt.want || !errors.Is(err, tt.wantErr) {
				t.Fatalf("after the failed revalidation: Get = %d, %v", v, err)
			}
			s.set(3, nil)
			c.advance(10 * time.Second)
			if v, err := kc.Refresh(context.Background()); v != 3 || err != nil {
				t.Fatalf("recovery: %d, %v", v, err)
			}
		})
	}
}

// TestCacheRefreshRateLimited: refreshes within MinRefreshInterval do not
// fetch, and concurrent ones share one fetch.
func TestCacheRefreshRateLimited(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1767225600, 0)}
	s := &source{}
	s.set(1, nil)
	kc := newCache(c, s, 0)
	if _, err := kc.Get(context.Background()); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if v, _ := kc.Refresh(context.Background()); v != 1 {
			t.Fatalf("Refresh = %d", v)
		}
	}
	if n := s.calls.Load(); n != 1 {
		t.Fatalf("%d loads within the interval, want 1", n)
	}
	c.advance(10 * time.Second)
	s.gate = make(chan struct{})
	s.set(2, nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v, err := kc.Refresh(context.Background()); v != 2 || err != nil {
				t.Errorf("Refresh = %d, %v", v, err)
			}
		}()
	}
	for s.calls.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	close(s.gate)
	wg.Wait()
	if n := s.calls.Load(); n != 2 {
		t.Fatalf("%d loads, want 2 (concurrent refreshes collapsed)", n)
	}
}

// TestCacheFirstFetchFails: without a value, Get reports the fetch error
// and retries no sooner than MinRefreshInterval.
func TestCacheFirstFetchFails(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1767225600, 0)}
	s := &source{}
	s.set(0, errDown)
	kc := newCache(c, s, 0)
	for range 3 {
		if _, err := kc.Get(context.Background()); !errors.Is(err, errDown) {
			t.Fatalf("Get error %v", err)
		}
	}
	if n := s.calls.Load(); n != 1 {
		t.Fatalf("%d loads, want 1", n)
	}
}

func TestTTL(t *testing.T) {
	t.Parallel()
	const def, maxTTL = 5 * time.Minute, time.Hour
	tests := []struct {
		cc   []string
		want time.Duration
	}{
		{nil, def},
		{[]string{"max-age=60"}, time.Minute},
		{[]string{"public, MAX-AGE=120"}, 2 * time.Minute},
		{[]string{`max-age="30"`}, 30 * time.Second},
		{[]string{"max-age=999999999"}, maxTTL},
		{[]string{"max-age=-1"}, def},
		{[]string{"max-age=x"}, def},
		{[]string{"max-age=60", "no-cache"}, 0},
		{[]string{"no-store"}, 0},
	}
	for _, tt := range tests {
		h := http.Header{}
		for _, v := range tt.cc {
			h.Add("Cache-Control", v)
		}
		if got := TTL(h, def, maxTTL); got != tt.want {
			t.Errorf("TTL(%q) = %v, want %v", tt.cc, got, tt.want)
		}
	}
}
