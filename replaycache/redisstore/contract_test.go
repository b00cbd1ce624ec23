package redisstore_test

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/senderbound/senderbound/internal/redistest"
	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/replaycache/redisstore"
	"github.com/senderbound/senderbound/replaycache/storetest"
)

// TestContract runs the Store contract checks against stores on one real
// redis-server, each under its own prefix; the unavailable store points at
// a server that was stopped.
func TestContract(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	const grace = 50 * time.Millisecond
	var n atomic.Int64
	storetest.Run(t, storetest.Config{
		New: func(t *testing.T) replaycache.Store {
			return newStore(t, srv.Client(), redisstore.Config{Prefix: "contract" + strconv.FormatInt(n.Add(1), 10) + ":", Grace: grace})
		},
		Retention: grace,
		NewUnavailable: func(t *testing.T) replaycache.Store {
			down := redistest.Start(t)
			s := newStore(t, down.Client(), redisstore.Config{Timeout: 200 * time.Millisecond})
			down.Stop()
			return s
		},
	})
}
