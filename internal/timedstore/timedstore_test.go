package timedstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/internal/redistest"
	"github.com/senderbound/senderbound/internal/timedstore"
	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/replaycache/redisstore"
)

type observations struct {
	mu   sync.Mutex
	errs []bool
}

func (o *observations) observe(d time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if d < 0 {
		panic("negative duration")
	}
	o.errs = append(o.errs, err != nil)
}

// TestWrap checks that the wrapper passes results and errors through,
// reports each call, and keeps CheckAndStoreSince exactly when the store
// has it (a real LRU has not, a real Redis store has).
func TestWrap(t *testing.T) {
	t.Parallel()
	lru, err := replaycache.NewLRU(replaycache.Config{Capacity: 16})
	if err != nil {
		t.Fatal(err)
	}
	srv := redistest.Start(t)
	rs, err := redisstore.New(srv.Client(), redisstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		store     dpop.ReplayStore
		wantSince bool
	}{
		{"lru", lru, false},
		{"redis", rs, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var o observations
			w := timedstore.Wrap(tt.store, o.observe)
			ss, since := w.(dpop.SinceReplayStore)
			if since != tt.wantSince {
				t.Fatalf("wrapper has CheckAndStoreSince = %t, want %t", since, tt.wantSince)
			}
			ctx := context.Background()
			exp := time.Now().Add(time.Minute)
			key := [32]byte{1}
			if fresh, err := w.CheckAndStore(ctx, key, exp); !fresh || err != nil {
				t.Fatalf("first claim = %t, %v", fresh, err)
			}
			if fresh, err := w.CheckAndStore(ctx, key, exp); fresh || err != nil {
				t.Fatalf("second claim = %t, %v", fresh, err)
			}
			want := []bool{false, false}
			if since {
				if fresh, err := ss.CheckAndStoreSince(ctx, [32]byte{2}, time.Now(), exp); !fresh || err != nil {
					t.Fatalf("claim since = %t, %v", fresh, err)
				}
				want = append(want, false)
			}
			cancelled, cancel := context.WithCancel(ctx)
			cancel()
			_, err := w.CheckAndStore(cancelled, [32]byte{3}, exp)
			if tt.name == "redis" {
				if err == nil || !errors.Is(err, context.Canceled) {
					t.Fatalf("cancelled claim error %v, want context.Canceled passed through", err)
				}
				want = append(want, true)
			} else {
				want = append(want, err != nil)
			}
			o.mu.Lock()
			defer o.mu.Unlock()
			if len(o.errs) != len(want) {
				t.Fatalf("observed %v, want %v", o.errs, want)
			}
			for i := range want {
				if o.errs[i] != want[i] {
					t.Fatalf("observed %v, want %v", o.errs, want)
				}
			}
		})
	}
}
