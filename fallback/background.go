package fallback

import (
	"context"
	"sync"
	"time"
)

// background is the one loop goroutine of a CRLFetcher or a
// CertificateSource: started at most once, stopped by stop, which waits
// for it to end. The zero value is ready to use.
type background struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// start runs step in a new goroutine until ctx ends or stop is called.
// Each call of step does one round and returns how long to wait before
// the next (zero or less: at once). It returns at once; a second start
// has no effect.
func (b *background) start(ctx context.Context, step func(context.Context) time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done != nil {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	b.cancel, b.done = cancel, done
	go func() {
		defer close(done)
		for {
			wait := step(ctx)
			if ctx.Err() != nil {
				return
			}
			if wait <= 0 {
				continue
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}()
}

// stop ends the loop started by start and waits for it. It is safe to
// call more than once, and without start.
func (b *background) stop() {
	b.mu.Lock()
	cancel, done := b.cancel, b.done
	b.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}
