// Package timedstore wraps a DPoP replay store so that the duration and
// the error of each call are reported to a callback, for metrics. The
// wrapper keeps the store's optional [dpop.SinceReplayStore] method, so
// that replay-state loss detection keeps working through it.
package timedstore

import (
	"context"
	"reflect"
	"time"

	"github.com/senderbound/senderbound/dpop"
)

// Wrap returns s with every CheckAndStore (and CheckAndStoreSince, when s
// has it) timed and reported to observe. The result, fresh or not, and
// the error are passed through unchanged. observe must be safe for
// concurrent use. A nil s, or a nil pointer in s, is returned as it is,
// so that the verifier built on it refuses it as missing instead of
// failing at the first request.
func Wrap(s dpop.ReplayStore, observe func(d time.Duration, err error)) dpop.ReplayStore {
	if s == nil {
		return s
	}
	if r := reflect.ValueOf(s); r.Kind() == reflect.Pointer && r.IsNil() {
		return s
	}
	t := timed{s: s, observe: observe}
	if ss, ok := s.(dpop.SinceReplayStore); ok {
		return &timedSince{timed: t, ss: ss}
	}
	return &t
}

type timed struct {
	s       dpop.ReplayStore
	observe func(time.Duration, error)
}

func (t *timed) CheckAndStore(ctx context.Context, key [32]byte, exp time.Time) (bool, error) {
	start := time.Now()
	fresh, err := t.s.CheckAndStore(ctx, key, exp)
	t.observe(time.Since(start), err)
	return fresh, err
}

type timedSince struct {
	timed
	ss dpop.SinceReplayStore
}

func (t *timedSince) CheckAndStoreSince(ctx context.Context, key [32]byte, since, exp time.Time) (bool, error) {
	start := time.Now()
	fresh, err := t.ss.CheckAndStoreSince(ctx, key, since, exp)
	t.observe(time.Since(start), err)
	return fresh, err
}

var (
	_ dpop.ReplayStore      = (*timed)(nil)
	_ dpop.SinceReplayStore = (*timedSince)(nil)
)
