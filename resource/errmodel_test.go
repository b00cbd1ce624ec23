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

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/oautherr"
	"github.com/senderbound/senderbound/resource"
	"github.com/senderbound/senderbound/resource/internal/restest"
)

// TestErrorModelAcrossLayers: the error Check returns matches its own class
// sentinel and, through its cause, the dpop sentinels and *dpop.Error of
// the proof check, and carries the fine-grained reason of that check; the
// DPoP sentinels of the two packages are one value.
func TestErrorModelAcrossLayers(t *testing.T) {
	t.Parallel()
	if resource.ErrInvalidProof != dpop.ErrInvalidProof || resource.ErrUseNonce != dpop.ErrUseNonce {
		t.Fatal("resource and dpop name one failure with two sentinels")
	}
	tests := []struct {
		name     string
		mod      func(e *restest.Env, p *restest.Proof)
		replay   bool
		wantIs   []error
		wantNot  []error
		reason   oautherr.Reason
		wantCode string
	}{
		{
			name:     "replayed proof",
			replay:   true,
			wantIs:   []error{resource.ErrInvalidProof, dpop.ErrInvalidProof, dpop.ErrReplay},
			wantNot:  []error{resource.ErrInvalidToken, dpop.ErrKeyQuota},
			reason:   oautherr.ReasonProofReplayed,
			wantCode: oautherr.InvalidDPoPProof,
		},
		{
			name:     "htu mismatch",
			mod:      func(_ *restest.Env, p *restest.Proof) { p.URL = "https://elsewhere.example.test/any" },
			wantIs:   []error{resource.ErrInvalidProof, dpop.ErrInvalidProof},
			wantNot:  []error{dpop.ErrReplay},
			reason:   oautherr.ReasonProofHTUMismatch,
			wantCode: oautherr.InvalidDPoPProof,
		},
		{
			name: "ath mismatch",
			mod: func(_ *restest.Env, p *restest.Proof) {
				p.Opts = dpop.ProofOptions{AccessToken: p.Opts.AccessToken + "x"}
			},
			wantIs:   []error{resource.ErrInvalidProof, dpop.ErrInvalidProof},
			reason:   oautherr.ReasonProofATHMismatch,
			wantCode: oautherr.InvalidDPoPProof,
		},
		{
			name:     "proof by another key",
			mod:      func(e *restest.Env, p *restest.Proof) { p.Prover = e.K2 },
			wantIs:   []error{resource.ErrInvalidToken, dpop.ErrKeyMismatch},
			wantNot:  []error{resource.ErrInvalidProof},
			reason:   oautherr.ReasonProofKeyMismatch,
			wantCode: oautherr.InvalidToken,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := restest.NewEnv(t, restest.Options{DPoP: true, InsecureHTTP: true})
			r := httptest.NewRequest(http.MethodGet, "http://rs.example.test/any", nil)
			restest.DPoPRequest("DPoP", restest.K1Token, tc.mod)(t, e, r)
			_, err := e.Verifier.Check(r, anyPolicy)
			if tc.replay {
				if err != nil {
					t.Fatalf("first use refused: %v", err)
				}
				_, err = e.Verifier.Check(r, anyPolicy)
			}
			var re *resource.Error
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want *resource.Error", err)
			}
			for _, s := range tc.wantIs {
				if !errors.Is(err, s) {
					t.Errorf("errors.Is(err, %v) = false", s)
				}
			}
			for _, s := range tc.wantNot {
				if errors.Is(err, s) {
					t.Errorf("errors.Is(err, %v) = true", s)
				}
			}
			var de *dpop.Error
			if !errors.As(err, &de) {
				t.Error("errors.As does not find the *dpop.Error")
			}
			if re.Reason != tc.reason || re.Code != tc.wantCode {
				t.Errorf("reason %q code %q, want %q %q", re.Reason, re.Code, tc.reason, tc.wantCode)
			}
		})
	}
}

// TestKeysUnavailableLogged: when the issuer's keys cannot be fetched the
// request is refused with 503, and the server log (not the client) learns
// which URL failed and why, once per interval.
func TestKeysUnavailableLogged(t *testing.T) {
	t.Parallel()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))
	t.Cleanup(down.Close)
	var buf bytes.Buffer
	var mu sync.Mutex
	e := restest.NewEnv(t, restest.Options{Mod: func(_ *restest.Env, c *resource.Config) {
		ks, err := resource.NewRemoteKeySet(resource.RemoteKeySetConfig{JWKSURL: down.URL + "/jwks"})
		if err != nil {
			t.Fatal(err)
		}
		c.Issuers[0].Keys = ks
		c.Logger = slog.New(slog.NewTextHandler(&syncWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}})
	r := httptest.NewRequest(http.MethodGet, "http://rs.example.test/any", nil)
	r.Header.Set("Authorization", "Bearer "+e.Token(t, nil))
	_, err := e.Verifier.Check(r, anyPolicy)
	var re *resource.Error
	if !errors.As(err, &re) || re.Reason != oautherr.ReasonKeysUnavailable || re.Status != http.StatusServiceUnavailable || !errors.Is(err, resource.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	w := httptest.NewRecorder()
	resource.WriteError(w, err)
	if body := w.Body.String(); strings.Contains(body, down.URL) || strings.Contains(body, "502") {
		t.Fatalf("the response names the failed dependency: %q", body)
	}
	mu.Lock()
	log := buf.String()
	mu.Unlock()
	for _, want := range []string{"level=WARN", "reason=keys_unavailable", down.URL + "/jwks", "HTTP status 502"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q: %q", want, log)
		}
	}
	if strings.Contains(log, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")[:20]) {
		t.Fatal("the log contains the token")
	}
	// A flood of refusals while the keys stay unavailable is one Warn per
	// interval, not one per request.
	for range 3 {
		if _, err := e.Verifier.Check(r, anyPolicy); !errors.Is(err, resource.ErrUnavailable) {
			t.Fatalf("err = %v", err)
		}
	}
	mu.Lock()
	n := strings.Count(buf.String(), "level=WARN")
	mu.Unlock()
	if n != 1 {
		t.Fatalf("%d Warn records for 4 refusals within the interval, want 1", n)
	}
}

// TestAlgorithmsRequired: the access-token algorithm allow-list has no
// implicit default; a nil or empty list is a construction error, and
// DefaultAlgorithms is the named choice (a fresh slice each call).
func TestAlgorithmsRequired(t *testing.T) {
	t.Parallel()
	e := restest.NewEnv(t, restest.Options{})
	tests := []struct {
		name    string
		algs    []string
		wantErr bool
	}{
		{name: "nil", algs: nil, wantErr: true},
		{name: "empty", algs: []string{}, wantErr: true},
		{name: "default", algs: resource.DefaultAlgorithms()},
		{name: "narrowed", algs: []string{"ES256"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := e.Config
			cfg.Algorithms = tc.algs
			_, err := resource.New(cfg)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
		})
	}
	a := resource.DefaultAlgorithms()
	a[0] = "none"
	if resource.DefaultAlgorithms()[0] == "none" {
		t.Fatal("DefaultAlgorithms shares its slice")
	}
}
