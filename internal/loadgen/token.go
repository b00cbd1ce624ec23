package loadgen

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// minRefreshWait bounds how often a token is requested: a token endpoint
// granting very short lifetimes, or failing, is not hammered.
const minRefreshWait = time.Second

// TokenSource returns a new access token and how long it stays valid (0
// when unknown), e.g. by a client_credentials request. It is called from
// one goroutine at a time.
type TokenSource func(ctx context.Context) (token string, lifetime time.Duration, err error)

// refreshMargin is how long before its end a token is replaced at the
// latest: JWT expiry times are whole seconds, so a token may end up to a
// second before its lifetime says.
const refreshMargin = 1500 * time.Millisecond

// refreshWait returns when to replace a token of lifetime: at three
// quarters of it, and refreshMargin before its end at the latest, but not
// sooner than minRefreshWait.
func refreshWait(lifetime time.Duration) time.Duration {
	return max(min(lifetime*3/4, lifetime-refreshMargin), minRefreshWait)
}

// refresher replaces a token before it expires (see refreshWait), and
// after a failure asks again every second (requests meanwhile use the old
// token, and are refused once it has expired, which the outcomes show).
type refresher struct {
	source TokenSource
	set    func(token string)

	mu        sync.Mutex
	refreshed int64
	failed    int64
	lastErr   error
}

// run refreshes until ctx ends; lifetime is that of the current token, 0
// meaning it never needs refreshing.
func (k *refresher) run(ctx context.Context, lifetime time.Duration) {
	if k.source == nil || lifetime <= 0 {
		return
	}
	timer := time.NewTimer(refreshWait(lifetime))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		tok, life, err := k.source(ctx)
		if ctx.Err() != nil {
			return
		}
		k.mu.Lock()
		if err != nil || tok == "" {
			if err == nil {
				err = fmt.Errorf("empty access token")
			}
			k.failed++
			k.lastErr = err
			k.mu.Unlock()
			timer.Reset(minRefreshWait)
			continue
		}
		k.refreshed++
		k.mu.Unlock()
		k.set(tok)
		if life <= 0 {
			return
		}
		timer.Reset(refreshWait(life))
	}
}

// warnings describes failed refreshes, without the tokens.
func (k *refresher) warnings() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.failed == 0 {
		return nil
	}
	return []string{fmt.Sprintf("%d token refreshes failed (%d succeeded), the last with: %v", k.failed, k.refreshed, k.lastErr)}
}
