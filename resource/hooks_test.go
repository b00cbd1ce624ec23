package resource_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/senderbound/senderbound/resource"
	"github.com/senderbound/senderbound/resource/internal/restest"
)

// TestErrorHooksMatchWriteError checks that Error.Challenges and
// Error.DPoPNonce return exactly the WWW-Authenticate and DPoP-Nonce values
// WriteError sends, so adapters that answer in other forms (gRPC metadata)
// send the same challenges (ERR-01, ERR-11, ERR-14).
func TestErrorHooksMatchWriteError(t *testing.T) {
	t.Parallel()
	e := restest.NewEnv(t, restest.Options{DPoP: true, Nonces: true})
	tests := []struct {
		name      string
		env       *restest.Env
		policy    resource.Policy
		build     func(t testing.TB, e *restest.Env, r *http.Request)
		wantClass error
		wantN     int  // number of challenges
		wantNonce bool // a DPoP-Nonce is sent
	}{
		{"ERR-01/no credentials", e, resource.Policy{Accept: resource.AcceptAny}, nil, resource.ErrNoCredentials, 2, false},
		{"ERR-11/DPoP fault on a route that offers Bearer only", e, resource.Policy{Accept: resource.AcceptMTLS}, func(t testing.TB, e *restest.Env, r *http.Request) {
			r.Header.Set("Authorization", "DPoP not-a-token")
			r.Header.Set("DPoP", "x")
		}, resource.ErrInvalidToken, 2, false},
		{"ERR-14/use_dpop_nonce", e, resource.Policy{}, restest.DPoPRequest("DPoP", restest.K1Token, nil), resource.ErrUseNonce, 2, true},
		{"unavailable: no challenge", e, resource.Policy{Accept: resource.AcceptAny + 1}, restest.DPoPRequest("DPoP", restest.K1Token, nil), resource.ErrUnavailable, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "https://rs.example.test/any", nil)
			if tc.build != nil {
				tc.build(t, tc.env, r)
			}
			_, err := tc.env.Verifier.Check(r, tc.policy)
			var re *resource.Error
			if !errors.As(err, &re) || !errors.Is(err, tc.wantClass) {
				t.Fatalf("Check: %v, want %v", err, tc.wantClass)
			}
			w := httptest.NewRecorder()
			resource.WriteError(w, err)
			if got, want := re.Challenges(), w.Header().Values("WWW-Authenticate"); !slices.Equal(got, want) || len(got) != tc.wantN {
				t.Fatalf("Challenges() = %q, WriteError sent %q, want %d", got, want, tc.wantN)
			}
			if got, want := re.DPoPNonce(), w.Header().Get("DPoP-Nonce"); got != want || (got != "") != tc.wantNonce {
				t.Fatalf("DPoPNonce() = %q, WriteError sent %q", got, want)
			}
		})
	}
}

// TestPrincipalDPoPNonce checks that Principal.DPoPNonce is the nonce
// SetResponseHeaders sends: a renewed one when the client's is due, else
// none (ERR-16).
func TestPrincipalDPoPNonce(t *testing.T) {
	t.Parallel()
	e := restest.NewEnv(t, restest.Options{DPoP: true, Nonces: true})
	tests := []struct {
		name    string
		age     time.Duration
		renewed bool
	}{
		{"fresh nonce", 0, false},
		{"nonce near expiry", 4 * time.Minute, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := e.NonceAt(t, e.T0.Add(-tc.age), restest.Audience)
			r := httptest.NewRequest(http.MethodGet, "https://rs.example.test/any", nil)
			restest.DPoPRequest("DPoP", restest.K1Token, func(_ *restest.Env, p *restest.Proof) { p.Opts.Nonce = n })(t, e, r)
			p, err := e.Verifier.Check(r, resource.Policy{})
			if err != nil {
				t.Fatal(err)
			}
			h := http.Header{}
			p.SetResponseHeaders(h)
			if got, want := p.DPoPNonce(), h.Get("DPoP-Nonce"); got != want || (got != "") != tc.renewed {
				t.Fatalf("DPoPNonce() = %q, SetResponseHeaders sent %q, renewed %v", got, want, tc.renewed)
			}
		})
	}
}
