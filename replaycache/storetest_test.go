package replaycache_test

import (
	"context"
	"testing"
	"time"

	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/replaycache/storetest"
)

// TestLRUContract runs the Store contract checks against the LRU; the
// unavailable store is an LRU full of live entries (ErrFull).
func TestLRUContract(t *testing.T) {
	t.Parallel()
	const grace = 50 * time.Millisecond
	storetest.Run(t, storetest.Config{
		New: func(t *testing.T) replaycache.Store {
			s, err := replaycache.NewLRU(replaycache.Config{Grace: grace})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Retention: grace,
		NewUnavailable: func(t *testing.T) replaycache.Store {
			s, err := replaycache.NewLRU(replaycache.Config{Capacity: 1, Shards: 1, Grace: grace})
			if err != nil {
				t.Fatal(err)
			}
			if fresh, err := s.CheckAndStore(context.Background(), [32]byte{1}, time.Now().Add(time.Hour)); err != nil || !fresh {
				t.Fatalf("filling claim = %v, %v", fresh, err)
			}
			return s
		},
	})
}
