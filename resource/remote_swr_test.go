package resource_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/resource"
	"github.com/senderbound/senderbound/resource/internal/restest"
)

// TestRemoteKeySetStaleWhileRevalidate: once the keys are past their
// lifetime and the JWKS server hangs, requests whose token names a known
// kid are still answered at once from the last good keys, with and without
// the verified-token cache, while one background fetch revalidates them;
// only a request naming an unknown kid waits for that fetch.
func TestRemoteKeySetStaleWhileRevalidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		cacheSize int
	}{
		{"token cache off", -1},
		{"token cache on", 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newRemoteEnv(t, tc.cacheSize)
			tok := e.token(t, e.as)
			if err := e.check(tok); err != nil {
				t.Fatal(err)
			}
			release := make(chan struct{})
			var once sync.Once
			free := func() { once.Do(func() { close(release) }) }
			t.Cleanup(free) // before the server's Close, which waits for its handlers
			e.srv.update(func(s *jwksServer) { s.hang = release })
			e.clk.Add(11 * time.Minute) // past DefaultTTL: the keys are stale

			const n = 16
			errs := make(chan error, n)
			for i := 0; i < n; i++ {
				go func() {
					r := httptest.NewRequest(http.MethodGet, "https://rs.example.test/x", nil)
					r.Header.Set("Authorization", "Bearer "+tok)
					_, err := e.v.Check(r, resource.Policy{Accept: resource.AcceptAny})
					errs <- err
				}()
			}
			timeout := time.After(5 * time.Second)
			for i := 0; i < n; i++ {
				select {
				case err := <-errs:
					if err != nil {
						t.Fatalf("known kid with stale keys: %v", err)
					}
				case <-timeout:
					t.Fatalf("%d of %d requests with a known kid still wait for the hanging JWKS server", n-i, n)
				}
			}
			// One background fetch, however many requests saw stale keys.
			waitFor(t, func() bool { return e.srv.hits.Load() >= 2 })
			if got := e.srv.hits.Load(); got != 2 {
				t.Fatalf("fetches = %d, want 2 (initial and one revalidation)", got)
			}

			// An unknown kid joins the revalidation under way and waits
			// for it (here until its context ends).
			rogue := restest.NewIssuer(t, e.as.ID, jose.ES256, "k-unknown")
			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			defer cancel()
			r := httptest.NewRequestWithContext(ctx, http.MethodGet, "https://rs.example.test/x", nil)
			r.Header.Set("Authorization", "Bearer "+e.token(t, rogue))
			start := time.Now()
			if _, err := e.v.Check(r, resource.Policy{Accept: resource.AcceptAny}); !errors.Is(err, resource.ErrUnavailable) {
				t.Fatalf("unknown kid while the fetch hangs: %v, want ErrUnavailable", err)
			}
			if d := time.Since(start); d < 150*time.Millisecond {
				t.Fatalf("unknown kid answered after %v without waiting for the fetch under way", d)
			}

			// The server answers: the revalidated keys are used.
			free()
			e.ks.WaitIdle()
			if err := e.check(tok); err != nil {
				t.Fatal(err)
			}
			if got := e.srv.hits.Load(); got != 2 {
				t.Fatalf("fetches = %d, want 2", got)
			}
		})
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRemoteKeySetRotationInterval: the issuer restarts with a new key (its
// JWKS now holds only that key). A token under the new key is refused, with
// no fetch, until MinRefreshInterval has passed since the last fetch, and
// accepted after it: by default within [resource.DefaultMinRefreshInterval]
// (a few seconds). A flood of tokens naming made-up kids then costs one
// fetch per interval.
func TestRemoteKeySetRotationInterval(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		interval time.Duration // configured; zero means the default
		want     time.Duration // when the new key is accepted
	}{
		{"default", 0, resource.DefaultMinRefreshInterval},
		{"configured 2 s", 2 * time.Second, 2 * time.Second},
		{"configured 1 min", time.Minute, time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := newClock(time.Unix(1_900_000_000, 0))
			old := restest.NewIssuer(t, "https://as.example.test", jose.ES256, "before-restart")
			srv := newJWKSServer(t, old.JWKS())
			ks, err := resource.NewRemoteKeySet(resource.RemoteKeySetConfig{
				JWKSURL:            srv.URL + "/jwks",
				HTTPClient:         srv.Client(),
				MinRefreshInterval: tc.interval,
				DefaultTTL:         10 * time.Minute,
				Now:                clk.Now,
			})
			if err != nil {
				t.Fatal(err)
			}
			v, err := resource.New(resource.Config{
				Algorithms:     resource.DefaultAlgorithms(),
				Issuers:        []resource.Issuer{{Identifier: old.ID, Keys: ks}},
				Audience:       restest.Audience,
				Now:            clk.Now,
				TokenCacheSize: -1,
			})
			if err != nil {
				t.Fatal(err)
			}
			check := func(i *restest.Issuer) error {
				c := i.Claims(restest.Audience, clk.Now())
				c["exp"] = clk.Now().Add(time.Hour).Unix()
				_, err := v.Check(bearerRequest(i.Mint(t, restest.Header(), c)), anyPolicy)
				ks.WaitIdle()
				return err
			}
			hits := func(want int64) {
				t.Helper()
				if got := srv.hits.Load(); got != want {
					t.Fatalf("fetches = %d, want %d", got, want)
				}
			}
			if err := check(old); err != nil {
				t.Fatal(err)
			}
			hits(1)

			restarted := restest.NewIssuer(t, old.ID, jose.ES256, "after-restart")
			srv.update(func(s *jwksServer) { s.set = restarted.JWKS() })
			clk.Add(tc.want - time.Second)
			if err := check(restarted); !errors.Is(err, resource.ErrInvalidToken) {
				t.Fatalf("new key within the interval: %v, want ErrInvalidToken", err)
			}
			hits(1)
			clk.Add(time.Second)
			if err := check(restarted); err != nil {
				t.Fatalf("new key %v after the last fetch: %v", tc.want, err)
			}
			hits(2)

			// Made-up kids, all at once and again right after: one fetch
			// per interval.
			flood := func() {
				t.Helper()
				var wg sync.WaitGroup
				errs := make(chan error, 32)
				for i := 0; i < 32; i++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						made := *restarted
						made.KID = fmt.Sprintf("made-up-%d", i)
						errs <- check(&made)
					}()
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					if !errors.Is(err, resource.ErrInvalidToken) {
						t.Fatalf("made-up kid: %v, want ErrInvalidToken", err)
					}
				}
			}
			clk.Add(tc.want)
			flood()
			hits(3)
			flood()
			hits(3)
		})
	}
}
