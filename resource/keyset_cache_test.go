package resource_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/oautherr"
	"github.com/senderbound/senderbound/resource"
	"github.com/senderbound/senderbound/resource/internal/restest"
)

// TestRemoteKeySetCacheLifetime pins how long fetched keys are used:
// without Cache-Control for DefaultTTL; with no-store, no-cache or
// max-age=0 only until the next use after MinRefreshInterval (never more
// often); with a max-age above MaxTTL for MaxTTL.
func TestRemoteKeySetCacheLifetime(t *testing.T) {
	t.Parallel()
	t.Run("no Cache-Control: DefaultTTL", func(t *testing.T) {
		t.Parallel()
		e := newRemoteEnv(t, -1) // MinRefreshInterval 1 min, DefaultTTL 10 min
		tok := e.token(t, e.as)
		for _, step := range []struct {
			advance time.Duration
			hits    int64
		}{{0, 1}, {9 * time.Minute, 1}, {2 * time.Minute, 2}} {
			e.clk.Add(step.advance)
			if err := e.check(tok); err != nil {
				t.Fatal(err)
			}
			if n := e.srv.hits.Load(); n != step.hits {
				t.Fatalf("after %v: fetches = %d, want %d", step.advance, n, step.hits)
			}
		}
	})
	for _, cc := range []string{"no-store", "no-cache", "max-age=0", "private, no-cache, max-age=600"} {
		t.Run(cc, func(t *testing.T) {
			t.Parallel()
			e := newRemoteEnv(t, -1)
			e.srv.update(func(s *jwksServer) { s.cacheControl = cc })
			tok := e.token(t, e.as)
			for _, step := range []struct {
				advance time.Duration
				hits    int64
			}{{0, 1}, {30 * time.Second, 1}, {31 * time.Second, 2}, {10 * time.Second, 2}} {
				e.clk.Add(step.advance)
				if err := e.check(tok); err != nil {
					t.Fatal(err)
				}
				if n := e.srv.hits.Load(); n != step.hits {
					t.Fatalf("after +%v: fetches = %d, want %d", step.advance, n, step.hits)
				}
			}
		})
	}
	t.Run("max-age capped by MaxTTL", func(t *testing.T) {
		t.Parallel()
		as := restest.NewIssuer(t, "https://as.example.test", jose.ES256, "k1")
		srv := newJWKSServer(t, as.JWKS())
		srv.update(func(s *jwksServer) { s.cacheControl = "max-age=86400" })
		clk := newClock(time.Unix(1_900_000_000, 0))
		ks, err := resource.NewRemoteKeySet(resource.RemoteKeySetConfig{
			JWKSURL: srv.URL, HTTPClient: srv.Client(), MaxTTL: 5 * time.Minute, Now: clk.Now,
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, step := range []struct {
			advance time.Duration
			hits    int64
		}{{0, 1}, {4 * time.Minute, 1}, {2 * time.Minute, 2}} {
			clk.Add(step.advance)
			if _, err := ks.Keys(t.Context()); err != nil {
				t.Fatal(err)
			}
			ks.WaitIdle()
			if n := srv.hits.Load(); n != step.hits {
				t.Fatalf("after +%v: fetches = %d, want %d", step.advance, n, step.hits)
			}
		}
	})
}

// TestRemoteKeySetFailedRefreshKeepsKeys: a refresh triggered by an unknown
// kid that fails leaves the last good keys in use (tokens under them are
// still accepted, the unknown kid is invalid_token, not 503) and is not
// retried within MinRefreshInterval.
func TestRemoteKeySetFailedRefreshKeepsKeys(t *testing.T) {
	t.Parallel()
	e := newRemoteEnv(t, -1)
	tok := e.token(t, e.as)
	if err := e.check(tok); err != nil {
		t.Fatal(err)
	}
	e.srv.update(func(s *jwksServer) { s.status = http.StatusServiceUnavailable })
	e.clk.Add(2 * time.Minute)
	next := restest.NewIssuer(t, e.as.ID, jose.ES256, "k2")
	if err := e.check(e.token(t, next)); !errors.Is(err, resource.ErrInvalidToken) {
		t.Fatalf("unknown kid during an outage: %v, want ErrInvalidToken", err)
	}
	if n := e.srv.hits.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2 (one failed refresh)", n)
	}
	if err := e.check(tok); err != nil {
		t.Fatalf("token under the last good key refused after a failed refresh: %v", err)
	}
	if err := e.check(e.token(t, next)); !errors.Is(err, resource.ErrInvalidToken) {
		t.Fatalf("second unknown kid: %v", err)
	}
	if n := e.srv.hits.Load(); n != 2 {
		t.Fatalf("failed refresh retried within the interval: %d fetches", n)
	}
	// The issuer recovers and publishes k2: the next refresh after the
	// interval picks it up.
	e.srv.update(func(s *jwksServer) {
		s.status = http.StatusOK
		s.set.Keys = append(s.set.Keys, next.JWK())
	})
	e.clk.Add(2 * time.Minute)
	if err := e.check(e.token(t, next)); err != nil {
		t.Fatalf("token under k2 after recovery: %v", err)
	}
}

// TestRemoteKeySetConcurrentRotation: many requests naming a freshly
// rotated-in kid at once, through Verifier.Check, cause one fetch.
func TestRemoteKeySetConcurrentRotation(t *testing.T) {
	t.Parallel()
	e := newRemoteEnv(t, -1)
	if err := e.check(e.token(t, e.as)); err != nil {
		t.Fatal(err)
	}
	next := restest.NewIssuer(t, e.as.ID, jose.ES256, "k2")
	e.srv.update(func(s *jwksServer) {
		s.set.Keys = append(s.set.Keys, next.JWK())
		s.delay = 50 * time.Millisecond
	})
	e.clk.Add(2 * time.Minute)
	tok := e.token(t, next)
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- e.check(tok)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("token under the rotated-in key: %v", err)
		}
	}
	if got := e.srv.hits.Load(); got != 2 {
		t.Fatalf("fetches = %d, want 2 (initial and one collapsed refresh)", got)
	}
}

// TestRemoteKeySetHTTPClient: the configured client is the one used (its
// timeout bounds a fetch; its CA pool is needed for a private CA), and
// the default client trusts no private CA.
func TestRemoteKeySetHTTPClient(t *testing.T) {
	t.Parallel()
	as := restest.NewIssuer(t, "https://as.example.test", jose.ES256, "k1")
	now := time.Unix(1_900_000_000, 0)
	check := func(t *testing.T, ks *resource.RemoteKeySet) error {
		v, err := resource.New(resource.Config{
			Algorithms: resource.DefaultAlgorithms(),
			Issuers:    []resource.Issuer{{Identifier: as.ID, Keys: ks}},
			Audience:   restest.Audience,
			Now:        func() time.Time { return now },
		})
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Check(bearerRequest(as.Mint(t, restest.Header(), as.Claims(restest.Audience, now))), anyPolicy)
		return err
	}
	t.Run("timeout of the configured client", func(t *testing.T) {
		t.Parallel()
		srv := newJWKSServer(t, as.JWKS())
		srv.update(func(s *jwksServer) { s.delay = time.Second })
		ks, err := resource.NewRemoteKeySet(resource.RemoteKeySetConfig{
			JWKSURL:    srv.URL,
			HTTPClient: &http.Client{Transport: srv.Client().Transport, Timeout: 100 * time.Millisecond},
		})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := check(t, ks); !errors.Is(err, resource.ErrUnavailable) {
			t.Fatalf("slow JWKS: %v, want ErrUnavailable", err)
		}
		if d := time.Since(start); d > 800*time.Millisecond {
			t.Fatalf("fetch took %v: the client's 100 ms timeout was not applied", d)
		}
	})
	t.Run("private CA: configured client works, default client refuses", func(t *testing.T) {
		t.Parallel()
		srv := newJWKSServer(t, as.JWKS())
		custom, err := resource.NewRemoteKeySet(resource.RemoteKeySetConfig{JWKSURL: srv.URL, HTTPClient: srv.Client()})
		if err != nil {
			t.Fatal(err)
		}
		if err := check(t, custom); err != nil {
			t.Fatalf("client trusting the test CA: %v", err)
		}
		def, err := resource.NewRemoteKeySet(resource.RemoteKeySetConfig{JWKSURL: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		if err := check(t, def); !errors.Is(err, resource.ErrUnavailable) {
			t.Fatalf("default client accepted a server certificate from an untrusted CA: %v", err)
		}
	})
}

// sameBytes reports whether a and b are the same backing array.
func sameBytes(a, b []byte) bool { return len(a) > 0 && len(b) > 0 && &a[0] == &b[0] }

// TestTokenCacheEntries checks the verified-token cache through what it
// shares: a cache hit returns the verified claims of the first
// verification (Principal.Claims documents that it may be shared), so
// identical backing arrays mean the signature was not checked again. The
// cache is keyed by the whole token (a re-signed token with the same
// claims is a miss), bounded (the least recently used entry is evicted),
// and off with a negative size.
func TestTokenCacheEntries(t *testing.T) {
	t.Parallel()
	env := func(size int) *restest.Env {
		return restest.NewEnv(t, restest.Options{Mod: func(_ *restest.Env, c *resource.Config) { c.TokenCacheSize = size }})
	}
	checkClaims := func(t *testing.T, e *restest.Env, tok string) []byte {
		t.Helper()
		p, err := e.Verifier.Check(bearerRequest(tok), anyPolicy)
		if err != nil {
			t.Fatal(err)
		}
		return p.Claims
	}
	t.Run("hit, keyed by the token, bounded", func(t *testing.T) {
		t.Parallel()
		e := env(2)
		claims := e.Claims()
		a := e.AS.Mint(t, restest.Header(), claims)
		a2 := e.AS.Mint(t, restest.Header(), claims) // same claims, new ECDSA signature
		if a == a2 {
			t.Fatal("test setup: re-signing produced the same token")
		}
		b := e.Token(t, nil)
		c := e.Token(t, nil)
		first := checkClaims(t, e, a)
		if !sameBytes(first, checkClaims(t, e, a)) {
			t.Fatal("second use of a token verified again (no cache hit)")
		}
		if sameBytes(first, checkClaims(t, e, a2)) {
			t.Fatal("a different token with the same claims was served from the cache")
		}
		checkClaims(t, e, b)
		checkClaims(t, e, c) // the cache holds 2: a is now the least recently used
		if sameBytes(first, checkClaims(t, e, a)) {
			t.Fatal("cache of size 2 still held the least recently used of 4 tokens")
		}
	})
	t.Run("disabled", func(t *testing.T) {
		t.Parallel()
		e := env(-1)
		tok := e.Token(t, nil)
		if sameBytes(checkClaims(t, e, tok), checkClaims(t, e, tok)) {
			t.Fatal("TokenCacheSize -1 still cached the token")
		}
	})
}

// TestHooksDPoPRejection: a rejected DPoP request is reported once with its
// reason, and neither the token nor the proof reaches the log.
func TestHooksDPoPRejection(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	var mu sync.Mutex
	var reasons []string
	e := restest.NewEnv(t, restest.Options{DPoP: true, InsecureHTTP: true, Mod: func(_ *restest.Env, c *resource.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&syncWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c.OnReject = func(r string) { mu.Lock(); reasons = append(reasons, r); mu.Unlock() }
	}})
	r := httptest.NewRequest(http.MethodGet, "http://rs.example.test/any", nil)
	restest.DPoPRequest("DPoP", restest.K1Token, func(_ *restest.Env, p *restest.Proof) {
		p.Opts = dpop.ProofOptions{AccessToken: p.Opts.AccessToken + "x"} // ath of another token
	})(t, e, r)
	if _, err := e.Verifier.Check(r, anyPolicy); !errors.Is(err, resource.ErrInvalidProof) {
		t.Fatalf("err = %v, want ErrInvalidProof", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reasons) != 1 || reasons[0] != string(oautherr.ReasonProofATHMismatch) {
		t.Fatalf("reasons = %v", reasons)
	}
	log := buf.String()
	if !strings.Contains(log, "reason=proof_ath_mismatch") {
		t.Fatalf("log = %q", log)
	}
	for _, field := range []string{strings.TrimPrefix(r.Header.Get("Authorization"), "DPoP "), r.Header.Get("DPoP")} {
		for _, part := range strings.Split(field, ".") {
			if len(part) >= 16 && strings.Contains(log, part) {
				t.Fatal("log contains part of the token or the proof")
			}
		}
	}
}

type syncWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
