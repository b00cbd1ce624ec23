package resource_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/resource"
	"github.com/senderbound/senderbound/resource/internal/restest"
)

// clock is a settable clock shared by the key set and the verifier.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock { c := &clock{}; c.ns.Store(t.UnixNano()); return c }
func (c *clock) Now() time.Time   { return time.Unix(0, c.ns.Load()) }
func (c *clock) Add(d time.Duration) {
	c.ns.Add(int64(d))
}

// jwksServer serves a switchable JWK Set and counts fetches.
type jwksServer struct {
	*httptest.Server
	mu           sync.Mutex
	set          jose.JSONWebKeySet
	status       int
	cacheControl string
	contentType  string
	delay        time.Duration
	hang         chan struct{} // when set, requests wait until it is closed
	hits         atomic.Int64
}

func newJWKSServer(t *testing.T, set jose.JSONWebKeySet) *jwksServer {
	s := &jwksServer{set: set, status: 200, contentType: "application/json"}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		set, status, cc, ct, delay, hang := s.set, s.status, s.cacheControl, s.contentType, s.delay, s.hang
		s.mu.Unlock()
		time.Sleep(delay)
		if hang != nil {
			select {
			case <-hang:
			case <-r.Context().Done():
				return
			}
		}
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) update(f func(s *jwksServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// remoteEnv is a verifier whose only issuer's keys come from a JWKS URL.
type remoteEnv struct {
	clk  *clock
	as   *restest.Issuer
	srv  *jwksServer
	ks   *resource.RemoteKeySet
	v    *resource.Verifier
	t0   time.Time
	auds string
}

func newRemoteEnv(t *testing.T, cacheSize int) *remoteEnv {
	t.Helper()
	e := &remoteEnv{t0: time.Unix(1_900_000_000, 0)}
	e.clk = newClock(e.t0)
	e.as = restest.NewIssuer(t, "https://as.example.test", jose.ES256, "k1")
	e.srv = newJWKSServer(t, e.as.JWKS())
	var err error
	e.ks, err = resource.NewRemoteKeySet(resource.RemoteKeySetConfig{
		JWKSURL:            e.srv.URL + "/jwks",
		HTTPClient:         e.srv.Client(), // trusts the test server's CA
		MinRefreshInterval: time.Minute,
		DefaultTTL:         10 * time.Minute,
		Now:                e.clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.v, err = resource.New(resource.Config{
		Algorithms:     resource.DefaultAlgorithms(),
		Issuers:        []resource.Issuer{{Identifier: e.as.ID, Keys: e.ks}},
		Audience:       restest.Audience,
		Now:            e.clk.Now,
		TokenCacheSize: cacheSize,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *remoteEnv) token(t *testing.T, i *restest.Issuer) string {
	c := i.Claims(restest.Audience, e.clk.Now())
	c["exp"] = e.clk.Now().Add(time.Hour).Unix()
	return i.Mint(t, restest.Header(), c)
}

// check sends tok under Bearer and then waits for a background fetch the
// check may have started, so that fetch counts and key changes are seen
// by the next step.
func (e *remoteEnv) check(tok string) error {
	r := httptest.NewRequest(http.MethodGet, "https://rs.example.test/x", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	_, err := e.v.Check(r, resource.Policy{Accept: resource.AcceptAny})
	e.ks.WaitIdle()
	return err
}

func TestRemoteKeySet(t *testing.T) {
	t.Parallel()
	t.Run("fetched once, cached per Cache-Control max-age", func(t *testing.T) {
		t.Parallel()
		e := newRemoteEnv(t, -1)
		e.srv.update(func(s *jwksServer) { s.cacheControl = "public, max-age=120" })
		tok := e.token(t, e.as)
		for i := 0; i < 3; i++ {
			if err := e.check(tok); err != nil {
				t.Fatal(err)
			}
		}
		if n := e.srv.hits.Load(); n != 1 {
			t.Fatalf("fetches = %d, want 1", n)
		}
		e.clk.Add(121 * time.Second)
		if err := e.check(tok); err != nil {
			t.Fatal(err)
		}
		if n := e.srv.hits.Load(); n != 2 {
			t.Fatalf("fetches after max-age = %d, want 2", n)
		}
	})
	t.Run("rotation: unknown kid triggers one refresh per interval", func(t *testing.T) {
		t.Parallel()
		e := newRemoteEnv(t, -1)
		if err := e.check(e.token(t, e.as)); err != nil {
			t.Fatal(err)
		}
		next := restest.NewIssuer(t, e.as.ID, jose.ES256, "k2")
		e.srv.update(func(s *jwksServer) { s.set.Keys = append(s.set.Keys, next.JWK()) })
		e.clk.Add(2 * time.Minute) // past MinRefreshInterval, before DefaultTTL
		if err := e.check(e.token(t, next)); err != nil {
			t.Fatalf("token under the rotated-in key: %v", err)
		}
		if n := e.srv.hits.Load(); n != 2 {
			t.Fatalf("fetches = %d, want 2", n)
		}
		// Another unknown kid right away: no new fetch, refused.
		rogue := restest.NewIssuer(t, e.as.ID, jose.ES256, "k3")
		if err := e.check(e.token(t, rogue)); !errors.Is(err, resource.ErrInvalidToken) {
			t.Fatalf("err = %v, want ErrInvalidToken", err)
		}
		if n := e.srv.hits.Load(); n != 2 {
			t.Fatalf("unknown kid within the interval fetched again: %d", n)
		}
	})
	t.Run("concurrent refreshes collapse into one request", func(t *testing.T) {
		t.Parallel()
		e := newRemoteEnv(t, -1)
		e.srv.update(func(s *jwksServer) { s.delay = 100 * time.Millisecond })
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := e.ks.Refresh(t.Context()); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if n := e.srv.hits.Load(); n != 1 {
			t.Fatalf("fetches = %d, want 1", n)
		}
	})
	t.Run("outage: last good keys kept", func(t *testing.T) {
		t.Parallel()
		e := newRemoteEnv(t, -1)
		tok := e.token(t, e.as)
		if err := e.check(tok); err != nil {
			t.Fatal(err)
		}
		e.srv.update(func(s *jwksServer) { s.status = http.StatusInternalServerError })
		e.clk.Add(11 * time.Minute) // keys expired; refetch fails
		if err := e.check(tok); err != nil {
			t.Fatalf("token refused during the outage: %v", err)
		}
		if n := e.srv.hits.Load(); n != 2 {
			t.Fatalf("fetches = %d, want 2 (one failed refetch)", n)
		}
		if err := e.check(tok); err != nil {
			t.Fatal(err)
		}
		if n := e.srv.hits.Load(); n != 2 {
			t.Fatalf("failed refetch retried within the interval: %d", n)
		}
	})
	t.Run("no keys ever fetched: 503", func(t *testing.T) {
		t.Parallel()
		e := newRemoteEnv(t, -1)
		e.srv.update(func(s *jwksServer) { s.status = http.StatusBadGateway })
		err := e.check(e.token(t, e.as))
		var re *resource.Error
		if !errors.As(err, &re) || !errors.Is(err, resource.ErrUnavailable) || re.Status != http.StatusServiceUnavailable {
			t.Fatalf("err = %v, want 503 ErrUnavailable", err)
		}
	})
	t.Run("response that is not JSON is refused", func(t *testing.T) {
		t.Parallel()
		e := newRemoteEnv(t, -1)
		e.srv.update(func(s *jwksServer) { s.contentType = "text/html" })
		if err := e.check(e.token(t, e.as)); !errors.Is(err, resource.ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
	})
	t.Run("JWKS with a private key is refused", func(t *testing.T) {
		t.Parallel()
		e := newRemoteEnv(t, -1)
		e.srv.update(func(s *jwksServer) {
			s.set = jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: e.as.Key, KeyID: "k1", Algorithm: "ES256"}}}
		})
		if err := e.check(e.token(t, e.as)); !errors.Is(err, resource.ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
	})
	t.Run("token cache entry dropped when its key leaves the set", func(t *testing.T) {
		t.Parallel()
		e := newRemoteEnv(t, 100)
		tok := e.token(t, e.as)
		if err := e.check(tok); err != nil {
			t.Fatal(err)
		}
		next := restest.NewIssuer(t, e.as.ID, jose.ES256, "k2")
		e.srv.update(func(s *jwksServer) { s.set = next.JWKS() })
		if err := e.check(tok); err != nil {
			t.Fatalf("cached token before the key set changed: %v", err)
		}
		e.clk.Add(11 * time.Minute) // keys expire; the revalidation drops k1
		if err := e.check(tok); err != nil {
			t.Fatalf("stale keys are served while they are revalidated: %v", err)
		}
		if err := e.check(tok); !errors.Is(err, resource.ErrInvalidToken) {
			t.Fatalf("err = %v, want ErrInvalidToken after k1 left the set", err)
		}
	})
}

func TestDiscovery(t *testing.T) {
	t.Parallel()
	as := restest.NewIssuer(t, "", jose.ES256, "k1")
	tests := []struct {
		name       string
		issuerPath string
		serve      func(issuer string) map[string]any // path → document
		wantErr    error
	}{
		{
			name: "RFC 8414 metadata",
			serve: func(iss string) map[string]any {
				return map[string]any{"/.well-known/oauth-authorization-server": map[string]any{"issuer": iss, "jwks_uri": iss + "/jwks"}}
			},
		},
		{
			name:       "RFC 8414 metadata for an issuer with a path",
			issuerPath: "/tenant1",
			serve: func(iss string) map[string]any {
				return map[string]any{"/.well-known/oauth-authorization-server/tenant1": map[string]any{"issuer": iss, "jwks_uri": iss + "/jwks"}}
			},
		},
		{
			name: "OpenID fallback",
			serve: func(iss string) map[string]any {
				return map[string]any{"/.well-known/openid-configuration": map[string]any{"issuer": iss, "jwks_uri": iss + "/jwks"}}
			},
		},
		{
			name: "ATV-38/metadata issuer with a trailing slash",
			serve: func(iss string) map[string]any {
				return map[string]any{"/.well-known/oauth-authorization-server": map[string]any{"issuer": iss + "/", "jwks_uri": iss + "/jwks"}}
			},
			wantErr: resource.ErrInvalidToken,
		},
		{
			name: "ATV-38/OpenID metadata for another issuer",
			serve: func(iss string) map[string]any {
				return map[string]any{"/.well-known/openid-configuration": map[string]any{"issuer": "https://other.example", "jwks_uri": iss + "/jwks"}}
			},
			wantErr: resource.ErrInvalidToken,
		},
		{
			name:    "no metadata at all",
			serve:   func(string) map[string]any { return nil },
			wantErr: resource.ErrUnavailable,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var docs map[string]any
			var mu sync.Mutex
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				d := docs
				mu.Unlock()
				if strings.HasSuffix(r.URL.Path, "/jwks") {
					w.Header().Set("Content-Type", "application/jwk-set+json")
					_ = json.NewEncoder(w).Encode(as.JWKS())
					return
				}
				doc, ok := d[r.URL.Path]
				if !ok {
					http.NotFound(w, r)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(doc)
			}))
			defer srv.Close()
			iss := srv.URL + tc.issuerPath
			mu.Lock()
			docs = tc.serve(iss)
			mu.Unlock()
			ks, err := resource.NewRemoteKeySet(resource.RemoteKeySetConfig{Issuer: iss, HTTPClient: srv.Client()})
			if err != nil {
				t.Fatal(err)
			}
			now := time.Unix(1_900_000_000, 0)
			v, err := resource.New(resource.Config{
				Algorithms: resource.DefaultAlgorithms(),
				Issuers:    []resource.Issuer{{Identifier: iss, Keys: ks}},
				Audience:   restest.Audience,
				Now:        func() time.Time { return now },
			})
			if err != nil {
				t.Fatal(err)
			}
			i := *as
			i.ID = iss
			r := httptest.NewRequest(http.MethodGet, "https://rs.example.test/x", nil)
			r.Header.Set("Authorization", "Bearer "+i.Mint(t, restest.Header(), i.Claims(restest.Audience, now)))
			_, err = v.Check(r, resource.Policy{Accept: resource.AcceptAny})
			if tc.wantErr == nil && err != nil {
				t.Fatalf("Check: %v", err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Check err = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

// TestDiscoveryErrorNamesEachDocument: when discovery fails, the error
// names the RFC 8414 document's own cause, not only the OpenID fallback's.
func TestDiscoveryErrorNamesEachDocument(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// status and body of the RFC 8414 document; the OpenID one is 404.
		status int
		body   string
		want   []string
	}{
		{"RFC 8414 document answers 500", http.StatusInternalServerError, "", []string{"/.well-known/oauth-authorization-server: HTTP status 500", "/.well-known/openid-configuration: HTTP status 404"}},
		{"RFC 8414 document is not JSON", http.StatusOK, "{", []string{"metadata at https://", "/.well-known/oauth-authorization-server is not JSON", "/.well-known/openid-configuration: HTTP status 404"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/.well-known/oauth-authorization-server" {
					http.NotFound(w, r)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			ks, err := resource.NewRemoteKeySet(resource.RemoteKeySetConfig{Issuer: srv.URL, HTTPClient: srv.Client()})
			if err != nil {
				t.Fatal(err)
			}
			_, err = ks.Keys(context.Background())
			if err == nil {
				t.Fatal("Keys succeeded without metadata")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			// One line, one package prefix: logs and readiness answers
			// print it as it is.
			if msg := err.Error(); strings.Contains(msg, "\n") || strings.Count(msg, "resource: ") != 1 {
				t.Errorf("error %q is not one line with one prefix", msg)
			}
		})
	}
}

func TestNewRemoteKeySetErrors(t *testing.T) {
	t.Parallel()
	for _, cfg := range []resource.RemoteKeySetConfig{
		{},
		{JWKSURL: "https://a/jwks", Issuer: "https://a"},
		{JWKSURL: "/relative"},
		{Issuer: "ftp://as.example"},
	} {
		if _, err := resource.NewRemoteKeySet(cfg); err == nil {
			t.Errorf("NewRemoteKeySet(%+v) accepted", cfg)
		}
	}
}
