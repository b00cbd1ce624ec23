package restest

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/resource"
)

// NonceAt mints a nonce with the Env's secret as a server labelled label
// would have at time at.
func (e *Env) NonceAt(t testing.TB, at time.Time, label string) string {
	t.Helper()
	n, err := dpop.NewNonces(dpop.NonceConfig{Secrets: [][]byte{e.nonceSecret}, Label: label, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	s, err := n.NewNonce()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Do sends a follow-up GET to path through the same target, with a K1
// DPoP request carrying nonce.
func (c *Call) Do(t testing.TB, path, nonce string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.Target.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	DPoPRequest("DPoP", K1Token, func(e *Env, p *Proof) { p.Opts.Nonce = nonce })(t, c.Env, req)
	resp, err := c.Target.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	CheckHygiene(t, req, resp, b)
	return resp, b
}

func withNonce(nonce func(t testing.TB, e *Env) string) func(testing.TB, *Env, *http.Request) {
	return func(t testing.TB, e *Env, r *http.Request) {
		n := nonce(t, e)
		DPoPRequest("DPoP", K1Token, func(e *Env, p *Proof) { p.Opts.Nonce = n })(t, e, r)
	}
}

// retryWithIssuedNonce asserts one DPoP-Nonce was issued and that it works.
func retryWithIssuedNonce(t testing.TB, c *Call) {
	vals := c.Resp.Header.Values("DPoP-Nonce")
	if len(vals) != 1 {
		t.Fatalf("%d DPoP-Nonce fields, want 1", len(vals))
	}
	resp, body := c.Do(t, "/any", vals[0])
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("retry with the issued nonce: %d %q", resp.StatusCode, body)
	}
}

// NonceCases need an Env with DPoP and Nonces.
func NonceCases() []Case {
	const D = "DPoP"
	return []Case{
		{Name: "ERR-14/ADV-78/proof without nonce", Via: "tls", Build: DPoPRequest(D, K1Token, nil), WantStatus: 401, WantScheme: D, WantError: "use_dpop_nonce", After: retryWithIssuedNonce},
		{Name: "ERR-15/ADV-80/unknown nonce", Via: "tls", Build: withNonce(func(testing.TB, *Env) string { return "not-a-nonce" }), WantStatus: 401, WantScheme: D, WantError: "use_dpop_nonce", After: retryWithIssuedNonce},
		{Name: "ADV-80/expired nonce", Via: "tls", Build: withNonce(func(t testing.TB, e *Env) string {
			return e.NonceAt(t, e.T0.Add(-10*time.Minute), Audience)
		}), WantStatus: 401, WantScheme: D, WantError: "use_dpop_nonce", After: retryWithIssuedNonce},
		{Name: "DPOP-AS-21/nonce issued for another server", Via: "tls", Build: withNonce(func(t testing.TB, e *Env) string {
			return e.NonceAt(t, e.T0, "https://as.example.test")
		}), WantStatus: 401, WantScheme: D, WantError: "use_dpop_nonce"},
		{Name: "ERR-14/fresh nonce accepted, no new nonce", Via: "tls", Build: withNonce(func(t testing.TB, e *Env) string {
			return e.NonceAt(t, e.T0, Audience)
		}), WantStatus: 200, WantBinding: resource.BindingDPoP, After: func(t testing.TB, c *Call) {
			if c.Resp.Header.Get("DPoP-Nonce") != "" {
				t.Fatal("fresh nonce replaced needlessly")
			}
		}},
		{Name: "ERR-16/nonce near expiry: fresh one sent ahead, response not cacheable", Via: "tls", Build: withNonce(func(t testing.TB, e *Env) string {
			return e.NonceAt(t, e.T0.Add(-4*time.Minute), Audience)
		}), WantStatus: 200, After: func(t testing.TB, c *Call) {
			n := c.Resp.Header.Get("DPoP-Nonce")
			if n == "" || c.Resp.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("DPoP-Nonce %q, Cache-Control %q", n, c.Resp.Header.Get("Cache-Control"))
			}
			if resp, body := c.Do(t, "/any", n); resp.StatusCode != http.StatusOK {
				t.Fatalf("the renewed nonce fails: %d %q", resp.StatusCode, body)
			}
		}},
		{Name: "ERR-07/insufficient scope keeps the renewed nonce", Path: "/admin", Via: "tls", Build: withNonce(func(t testing.TB, e *Env) string {
			return e.NonceAt(t, e.T0.Add(-4*time.Minute), Audience)
		}), WantStatus: 403, WantScheme: D, WantError: "insufficient_scope", After: func(t testing.TB, c *Call) {
			if c.Resp.Header.Get("DPoP-Nonce") == "" {
				t.Fatal("renewed nonce dropped on 403")
			}
		}},
	}
}

// InsecureHTTPCases need an Env with DPoP and InsecureHTTP.
func InsecureHTTPCases() []Case {
	return []Case{
		{Name: "DPOP-RS-25/InsecureAllowDPoPOverHTTP accepts plain HTTP", Via: "http", Build: DPoPRequest("DPoP", K1Token, nil), WantStatus: 200, WantBinding: resource.BindingDPoP},
		{Name: "DPOP-RS-15/replay over plain HTTP", Via: "http", Build: DPoPRequest("DPoP", K1Token, nil), Replay: true, WantStatus: 401, WantScheme: "DPoP", WantError: "invalid_dpop_proof"},
		{Name: "DPOP-RS-11/htu https on a plain-HTTP request", Via: "http", Build: DPoPRequest("DPoP", K1Token, func(e *Env, p *Proof) {
			p.URL = "https" + p.URL[len("http"):]
		}), WantStatus: 401, WantScheme: "DPoP", WantError: "invalid_dpop_proof"},
	}
}
