package grpcresource_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/internal/redistest"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/mtlsbound/certs"
	"github.com/senderbound/senderbound/replaycache/redisstore"
	"github.com/senderbound/senderbound/resource"
	"github.com/senderbound/senderbound/resource/grpcresource"
	"github.com/senderbound/senderbound/resource/internal/restest"
)

// direct makes every test client an untrusted peer: the interceptors never
// see a trusted proxy, as over the Internet.
func direct(_ *restest.Env, c *resource.Config) { c.TrustedProxies = nil }

// mdFunc builds the outgoing metadata of a call whose target URI is htu.
type mdFunc func(t testing.TB, e *restest.Env, htu string) []string

// dpopMD sends "scheme <token>" and a DPoP proof for POST htu with ath;
// mod edits the proof (default signer K1).
func dpopMD(scheme string, tok func(testing.TB, *restest.Env) string, mod func(e *restest.Env, p *restest.Proof)) mdFunc {
	return func(t testing.TB, e *restest.Env, htu string) []string {
		at := tok(t, e)
		p := &restest.Proof{Prover: e.K1, Method: http.MethodPost, URL: htu, Opts: dpop.ProofOptions{AccessToken: at}}
		if mod != nil {
			mod(e, p)
		}
		proof, err := p.Prover.Proof(p.Method, p.URL, p.Opts)
		if err != nil {
			t.Fatal(err)
		}
		if p.Edit != nil {
			proof = p.Edit(proof)
		}
		return []string{"authorization", scheme + " " + at, "dpop", proof}
	}
}

// bearerMD sends "Bearer <token>" only.
func bearerMD(tok func(testing.TB, *restest.Env) string) mdFunc {
	return func(t testing.TB, e *restest.Env, _ string) []string {
		return []string{"authorization", "Bearer " + tok(t, e)}
	}
}

// certBound mints a token bound to the certificate of leaf.
func certBound(leaf func(*restest.Env) *certs.Leaf) func(testing.TB, *restest.Env) string {
	return func(t testing.TB, e *restest.Env) string {
		return e.Token(t, func(c map[string]any) { c["cnf"] = map[string]any{"x5t#S256": mtlsbound.Thumbprint(leaf(e).Cert)} })
	}
}

func c1(e *restest.Env) *certs.Leaf { return e.C1 }
func c2(e *restest.Env) *certs.Leaf { return e.C2 }
func s1(e *restest.Env) *certs.Leaf { return e.S1 }

func unbound(t testing.TB, e *restest.Env) string { return e.Token(t, nil) }

// bothBound mints a token bound to K1 and to C1.
func bothBound(t testing.TB, e *restest.Env) string {
	return e.Token(t, func(c map[string]any) {
		c["cnf"] = map[string]any{"jkt": e.K1.Thumbprint(), "x5t#S256": mtlsbound.Thumbprint(e.C1.Cert)}
	})
}

func expiredK1(t testing.TB, e *restest.Env) string {
	return e.Token(t, func(c map[string]any) {
		c["cnf"] = map[string]any{"jkt": e.K1.Thumbprint()}
		c["iat"] = e.T0.Add(-2 * time.Hour).Unix()
		c["exp"] = e.T0.Add(-time.Hour).Unix()
	})
}

// grpcCase is one call and its expected outcome.
type grpcCase struct {
	name   string
	method string                         // unary method name, or "Stream"; default "Any"
	leaf   func(*restest.Env) *certs.Leaf // client certificate, nil for none
	plain  bool                           // no TLS
	md     mdFunc
	replay bool // send the same call first, which must succeed
	// Expected outcome.
	wantCode    codes.Code
	wantScheme  string // the challenge that carries the error
	wantError   string
	wantBinding resource.Binding
	after       func(t *testing.T, c *callCtx)
}

// callCtx is what a case's after function gets.
type callCtx struct {
	env  *restest.Env
	addr string
	ans  answer
	sent []string
}

// boundCases are the HTTP table's DPoP, mTLS, downgrade and replay cases,
// through the interceptors, unary and streaming.
func boundCases() []grpcCase {
	const B, D = "Bearer", "DPoP"
	k1 := restest.K1Token
	var cs []grpcCase
	for _, m := range []string{"Any", "Stream"} {
		cs = append(cs,
			grpcCase{name: "DPOP-RS-20/valid DPoP call", method: m, md: dpopMD(D, k1, nil), wantBinding: resource.BindingDPoP},
			grpcCase{name: "MTLS-CB-09/valid certificate-bound call", method: m, leaf: c1, md: bearerMD(certBound(c1)), wantBinding: resource.BindingMTLS},
			grpcCase{name: "MTLS-CB-11/self-signed client certificate", method: m, leaf: s1, md: bearerMD(certBound(s1)), wantBinding: resource.BindingMTLS},
			grpcCase{name: "ERR-13/ADV-64/DPoP token as Bearer", method: m, md: bearerMD(k1), wantCode: codes.Unauthenticated, wantScheme: B, wantError: "invalid_token"},
			grpcCase{name: "ADV-65/DPoP token as bearer, lower case", method: m, md: func(t testing.TB, e *restest.Env, _ string) []string {
				return []string{"authorization", "bearer " + k1(t, e)}
			}, wantCode: codes.Unauthenticated, wantScheme: B, wantError: "invalid_token"},
			grpcCase{name: "DPOP-RS-21/missing proof", method: m, md: func(t testing.TB, e *restest.Env, _ string) []string {
				return []string{"authorization", "DPoP " + k1(t, e)}
			}, wantCode: codes.Unauthenticated, wantScheme: D, wantError: "invalid_dpop_proof"},
			grpcCase{name: "DPOP-RS-15/ADV-107/replayed proof", method: m, md: dpopMD(D, k1, nil), replay: true, wantCode: codes.Unauthenticated, wantScheme: D, wantError: "invalid_dpop_proof"},
			grpcCase{name: "ERR-06/proof by another key", method: m, md: dpopMD(D, k1, func(e *restest.Env, p *restest.Proof) { p.Prover = e.K2 }), wantCode: codes.Unauthenticated, wantScheme: D, wantError: "invalid_token"},
			grpcCase{name: "DPOP-RS-11/htu of another method", method: m, md: func(t testing.TB, e *restest.Env, htu string) []string {
				return dpopMD(D, k1, nil)(t, e, htu[:strings.LastIndexByte(htu, '/')]+"/Bound")
			}, wantCode: codes.Unauthenticated, wantScheme: D, wantError: "invalid_dpop_proof"},
			grpcCase{name: "DPOP-RS-10/htm GET", method: m, md: dpopMD(D, k1, func(_ *restest.Env, p *restest.Proof) { p.Method = http.MethodGet }), wantCode: codes.Unauthenticated, wantScheme: D, wantError: "invalid_dpop_proof"},
			grpcCase{name: "DPOP-RS-18/ath of another token", method: m, md: dpopMD(D, k1, func(_ *restest.Env, p *restest.Proof) { p.Opts.AccessToken = "other" }), wantCode: codes.Unauthenticated, wantScheme: D, wantError: "invalid_dpop_proof"},
			grpcCase{name: "DPOP-RS-07/bad proof signature", method: m, md: dpopMD(D, k1, func(_ *restest.Env, p *restest.Proof) {
				p.Edit = func(s string) string { return s[:len(s)-4] + "AAAA" }
			}), wantCode: codes.Unauthenticated, wantScheme: D, wantError: "invalid_dpop_proof"},
			grpcCase{name: "MTLS-CB-10/certificate-bound token without a certificate", method: m, md: bearerMD(certBound(c1)), wantCode: codes.Unauthenticated, wantScheme: B, wantError: "invalid_token"},
			grpcCase{name: "ADV-83/certificate-bound token with another certificate", method: m, leaf: c2, md: bearerMD(certBound(c1)), wantCode: codes.Unauthenticated, wantScheme: B, wantError: "invalid_token"},
			grpcCase{name: "MTLS-CB-09/self-signed token with a CA certificate", method: m, leaf: c1, md: bearerMD(certBound(s1)), wantCode: codes.Unauthenticated, wantScheme: B, wantError: "invalid_token"},
			grpcCase{name: "ERR-04/expired token", method: m, md: dpopMD(D, expiredK1, nil), wantCode: codes.Unauthenticated, wantScheme: D, wantError: "invalid_token"},
			grpcCase{name: "ERR-01/ERR-02/no credentials", method: m, wantCode: codes.Unauthenticated},
			grpcCase{name: "DPOP-RS-25/DPoP without TLS", method: m, plain: true, md: dpopMD(D, k1, nil), wantCode: codes.InvalidArgument, wantError: "invalid_request"},
			grpcCase{name: "ERR-12/ADV-74/two authorization values", method: m, md: func(t testing.TB, e *restest.Env, htu string) []string {
				kv := dpopMD(D, k1, nil)(t, e, htu)
				return append(kv, "authorization", "Bearer "+k1(t, e))
			}, wantCode: codes.InvalidArgument, wantError: "invalid_request"},
			grpcCase{name: "DPOP-RS-01/two dpop values", method: m, md: func(t testing.TB, e *restest.Env, htu string) []string {
				kv := dpopMD(D, k1, nil)(t, e, htu)
				return append(kv, "dpop", kv[3])
			}, wantCode: codes.InvalidArgument, wantError: "invalid_request"},
		)
	}
	return append(cs,
		grpcCase{name: "ATV-13/token signed by an unknown key", md: bearerMD(func(t testing.TB, e *restest.Env) string {
			return e.Rogue.Mint(t, restest.Header(), e.Claims())
		}), wantCode: codes.Unauthenticated, wantScheme: B, wantError: "invalid_token"},
		grpcCase{name: "MTLS-CB-16/token bound to key and certificate, both proven", leaf: c1, md: dpopMD(D, bothBound, nil), wantBinding: resource.BindingDPoP},
		grpcCase{name: "MTLS-CB-16/token bound to key and certificate, no certificate", md: dpopMD(D, bothBound, nil), wantCode: codes.Unauthenticated, wantScheme: D, wantError: "invalid_token"},
		grpcCase{name: "AcceptAny/unbound bearer token", md: bearerMD(unbound), wantBinding: resource.BindingBearer},
		grpcCase{name: "AcceptBound/unbound bearer token refused", method: "Bound", md: bearerMD(unbound), wantCode: codes.Unauthenticated, wantScheme: B, wantError: "invalid_token"},
		grpcCase{name: "AcceptBound/DPoP token", method: "Bound", md: dpopMD(D, k1, nil), wantBinding: resource.BindingDPoP},
		grpcCase{name: "AcceptDPoP/DPoP token", method: "DPoP", md: dpopMD(D, k1, nil), wantBinding: resource.BindingDPoP},
		grpcCase{name: "AcceptDPoP/certificate-bound token refused", method: "DPoP", leaf: c1, md: bearerMD(certBound(c1)), wantCode: codes.Unauthenticated, wantScheme: B, wantError: "invalid_token"},
		grpcCase{name: "AcceptMTLS/certificate-bound token", method: "MTLS", leaf: c1, md: bearerMD(certBound(c1)), wantBinding: resource.BindingMTLS},
		grpcCase{name: "AcceptMTLS/DPoP token refused", method: "MTLS", md: dpopMD(D, k1, nil), wantCode: codes.Unauthenticated, wantScheme: D, wantError: "invalid_token"},
		grpcCase{name: "ERR-07/insufficient scope", method: "Admin", md: dpopMD(D, k1, nil), wantCode: codes.PermissionDenied, wantScheme: D, wantError: "insufficient_scope", after: func(t *testing.T, c *callCtx) {
			for _, ch := range challenges(t, c.ans) {
				if ch.Params["error"] == "insufficient_scope" && ch.Params["scope"] != "admin" {
					t.Fatalf("scope = %q, want admin", ch.Params["scope"])
				}
			}
		}},
		grpcCase{name: "ATV-26/scope granted", method: "Write", md: dpopMD(D, func(t testing.TB, e *restest.Env) string {
			return e.Token(t, func(c map[string]any) {
				c["cnf"] = map[string]any{"jkt": e.K1.Thumbprint()}
				c["scope"] = "read write"
			})
		}, nil), wantBinding: resource.BindingDPoP},
	)
}

// nonceCases need an Env with resource-server nonces.
func nonceCases() []grpcCase {
	const D = "DPoP"
	withNonce := func(nonce func(t testing.TB, e *restest.Env) string) mdFunc {
		return func(t testing.TB, e *restest.Env, htu string) []string {
			n := nonce(t, e)
			return dpopMD(D, restest.K1Token, func(_ *restest.Env, p *restest.Proof) { p.Opts.Nonce = n })(t, e, htu)
		}
	}
	retry := func(t *testing.T, c *callCtx) {
		n := metadata.Join(c.ans.header, c.ans.trailer).Get("dpop-nonce")
		if len(n) != 1 {
			t.Fatalf("%d dpop-nonce values, want 1", len(n))
		}
		// Same method, the issued nonce: admitted.
		cc := dial(t, c.env, c.addr, nil, false)
		htu := "https://" + c.addr + fullMethod("Any")
		a := invoke(t.Context(), cc, "Any", withNonce(func(testing.TB, *restest.Env) string { return n[0] })(t, c.env, htu)...)
		if a.err != nil {
			t.Fatalf("retry with the issued nonce: %v", a.err)
		}
	}
	var cs []grpcCase
	for _, m := range []string{"Any", "Stream"} {
		cs = append(cs,
			grpcCase{name: "ERR-14/ADV-78/proof without nonce", method: m, md: dpopMD(D, restest.K1Token, nil), wantCode: codes.Unauthenticated, wantScheme: D, wantError: "use_dpop_nonce", after: retry},
			grpcCase{name: "ERR-15/ADV-80/unknown nonce", method: m, md: withNonce(func(testing.TB, *restest.Env) string { return "not-a-nonce" }), wantCode: codes.Unauthenticated, wantScheme: D, wantError: "use_dpop_nonce", after: retry},
			grpcCase{name: "ERR-14/fresh nonce accepted, no new nonce", method: m, md: withNonce(func(t testing.TB, e *restest.Env) string {
				return e.NonceAt(t, e.T0, restest.Audience)
			}), wantBinding: resource.BindingDPoP, after: func(t *testing.T, c *callCtx) {
				if n := c.ans.header.Get("dpop-nonce"); len(n) != 0 {
					t.Fatal("fresh nonce replaced needlessly")
				}
			}},
			grpcCase{name: "ERR-16/nonce near expiry: fresh one in the response header", method: m, md: withNonce(func(t testing.TB, e *restest.Env) string {
				return e.NonceAt(t, e.T0.Add(-4*time.Minute), restest.Audience)
			}), wantBinding: resource.BindingDPoP, after: func(t *testing.T, c *callCtx) {
				if n := c.ans.header.Get("dpop-nonce"); len(n) != 1 || n[0] == "" {
					t.Fatalf("dpop-nonce header metadata = %q, want one nonce", n)
				}
			}},
		)
	}
	return cs
}

// challenges parses the www-authenticate metadata of an answer.
func challenges(t testing.TB, a answer) []restest.Challenge {
	t.Helper()
	return restest.Challenges(t, http.Header{"Www-Authenticate": metadata.Join(a.header, a.trailer).Get("www-authenticate")})
}

// runCases sends every case to the servers of v and checks the outcome.
func runCases(t *testing.T, e *restest.Env, tg targets, cases []grpcCase) {
	for _, tc := range cases {
		method := tc.method
		if method == "" {
			method = "Any"
		}
		t.Run(method+"/"+tc.name, func(t *testing.T) {
			t.Parallel()
			addr, scheme := tg.TLS, "https://"
			if tc.plain {
				addr, scheme = tg.Plain, "http://"
			}
			var leaf *certs.Leaf
			if tc.leaf != nil {
				leaf = tc.leaf(e)
			}
			cc := dial(t, e, addr, leaf, tc.plain)
			var kv []string
			if tc.md != nil {
				kv = tc.md(t, e, scheme+addr+fullMethod(method))
			}
			if tc.replay {
				if a := invoke(t.Context(), cc, method, kv...); a.err != nil {
					t.Fatalf("first send: %v", a.err)
				}
			}
			a := invoke(t.Context(), cc, method, kv...)
			if got := status.Code(a.err); got != tc.wantCode {
				t.Fatalf("code = %v, want %v (%v)", got, tc.wantCode, a.err)
			}
			checkHygiene(t, kv, a)
			if tc.wantCode == codes.OK {
				want := restest.OKBody(nil)
				for _, part := range strings.Split(a.body, "|") {
					if !strings.HasPrefix(part, "ok sub=") || (tc.wantBinding != "" && !strings.HasSuffix(part, "binding="+string(tc.wantBinding))) {
						t.Fatalf("reply %q, want binding %s (not %q)", a.body, tc.wantBinding, want)
					}
				}
				if method == "Stream" && strings.Count(a.body, "|") != 1 {
					t.Fatalf("stream replies %q, want 2", a.body)
				}
			} else {
				if a.body != "" {
					t.Fatalf("refused call has a reply %q", a.body)
				}
				checkChallenges(t, tc, a)
			}
			if tc.after != nil {
				tc.after(t, &callCtx{env: e, addr: addr, ans: a, sent: kv})
			}
		})
	}
}

// checkChallenges asserts the www-authenticate metadata of a refusal: none
// for Unavailable; else at least one, only the attempted scheme's with the
// error (ERR-11), and every Bearer challenge with a realm (ERR-10).
func checkChallenges(t *testing.T, tc grpcCase, a answer) {
	t.Helper()
	chs := challenges(t, a)
	if tc.wantCode == codes.Unavailable {
		if len(chs) != 0 {
			t.Fatalf("Unavailable with challenges %v", chs)
		}
		return
	}
	if len(chs) == 0 {
		t.Fatal("refusal without www-authenticate metadata")
	}
	found := tc.wantScheme == ""
	n := 0
	for _, c := range chs {
		code, has := c.Params["error"]
		if has {
			n++
		}
		if c.Scheme == tc.wantScheme {
			if code != tc.wantError {
				t.Fatalf("%s challenge error = %q, want %q", c.Scheme, code, tc.wantError)
			}
			found = true
		} else if has && tc.wantScheme != "" {
			t.Fatalf("%s challenge carries error %q; only %s may (ERR-11)", c.Scheme, code, tc.wantScheme)
		}
		if c.Scheme == "Bearer" && c.Params["realm"] == "" {
			t.Fatal("Bearer challenge without realm (ERR-10)")
		}
	}
	if !found {
		t.Fatalf("no %s challenge in %v", tc.wantScheme, chs)
	}
	if tc.wantError == "" && n != 0 {
		t.Fatalf("challenges carry an error on a call without credentials (ERR-02): %v", chs)
	}
	if tc.wantError != "" && tc.wantScheme == "" && n > 1 {
		t.Fatalf("more than one challenge carries an error (ERR-11): %v", chs)
	}
	if msg := status.Convert(a.err).Message(); tc.wantError != "" && !strings.HasPrefix(msg, tc.wantError) {
		t.Fatalf("status message %q does not start with %q", msg, tc.wantError)
	}
}

// checkHygiene asserts that no part of a sent credential comes back in the
// status message or the response metadata, and that at most one
// dpop-nonce is sent (ERR-16).
func checkHygiene(t testing.TB, sent []string, a answer) {
	t.Helper()
	var dump strings.Builder
	if a.err != nil {
		dump.WriteString(status.Convert(a.err).Message())
	}
	for _, md := range []metadata.MD{a.header, a.trailer} {
		for k, vs := range md {
			dump.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
		}
		if n := len(md.Get("dpop-nonce")); n > 1 {
			t.Fatalf("%d dpop-nonce values (ERR-16)", n)
		}
	}
	for i := 1; i < len(sent); i += 2 {
		_, cred, _ := strings.Cut(sent[i], " ")
		if cred == "" {
			cred = sent[i]
		}
		for _, part := range strings.Split(cred, ".") {
			if len(part) >= 16 && strings.Contains(dump.String(), part) {
				t.Fatalf("the answer echoes part of the %s metadata", sent[i-1])
			}
		}
	}
}

func TestBoundCases(t *testing.T) {
	t.Parallel()
	e := restest.NewEnv(t, restest.Options{DPoP: true, Mod: direct})
	runCases(t, e, startServers(t, e, e.Verifier), boundCases())
}

func TestNonceCases(t *testing.T) {
	t.Parallel()
	e := restest.NewEnv(t, restest.Options{DPoP: true, Nonces: true, Mod: direct})
	runCases(t, e, startServers(t, e, e.Verifier), nonceCases())
}

// TestWithoutDPoP runs the certificate-bound cases against a resource
// server that does not offer DPoP: a DPoP call gets a challenge without
// error information (RFC 6750 §3.1).
func TestWithoutDPoP(t *testing.T) {
	t.Parallel()
	e := restest.NewEnv(t, restest.Options{Mod: direct})
	runCases(t, e, startServers(t, e, e.Verifier), []grpcCase{
		{name: "MTLS-CB-09/valid certificate-bound call", leaf: c1, md: bearerMD(certBound(c1)), wantBinding: resource.BindingMTLS},
		{name: "MTLS-CB-09/valid certificate-bound stream", method: "Stream", leaf: c1, md: bearerMD(certBound(c1)), wantBinding: resource.BindingMTLS},
		{name: "DPoP scheme not offered", md: dpopMD("DPoP", restest.K1Token, nil), wantCode: codes.Unauthenticated},
	})
}

// TestReplayStoreDown: with the shared Redis replay store gone, DPoP calls
// fail closed with Unavailable, without challenges or token details
// (ADV-108); certificate-bound calls, which need no replay store, go on.
func TestReplayStoreDown(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client()
	t.Cleanup(func() { _ = rdb.Close() })
	store, err := redisstore.New(rdb, redisstore.Config{Prefix: "grpc-test:"})
	if err != nil {
		t.Fatal(err)
	}
	e := restest.NewEnv(t, restest.Options{DPoP: true, ReplayStore: store, Mod: direct})
	tg := startServers(t, e, e.Verifier)
	// Each group waits for its parallel subtests.
	t.Run("up", func(t *testing.T) {
		runCases(t, e, tg, []grpcCase{{name: "DPOP-RS-15/Redis up", md: dpopMD("DPoP", restest.K1Token, nil), wantBinding: resource.BindingDPoP}})
	})
	srv.Stop()
	var down []grpcCase
	for _, m := range []string{"Any", "Stream"} {
		down = append(down, []grpcCase{
			{name: "ADV-108/Redis down", method: m, md: dpopMD("DPoP", restest.K1Token, nil), wantCode: codes.Unavailable, after: func(t *testing.T, c *callCtx) {
				if msg := status.Convert(c.ans.err).Message(); msg != "service temporarily unavailable" {
					t.Fatalf("message %q", msg)
				}
			}},
			{name: "Redis down, certificate-bound call", method: m, leaf: c1, md: bearerMD(certBound(c1)), wantBinding: resource.BindingMTLS},
		}...)
	}
	t.Run("down", func(t *testing.T) { runCases(t, e, tg, down) })
}

func TestNewRefusesBadConfig(t *testing.T) {
	t.Parallel()
	e := restest.NewEnv(t, restest.Options{})
	tests := []struct {
		name string
		cfg  grpcresource.Config
	}{
		{"no verifier", grpcresource.Config{}},
		{"DPoP default without DPoP", grpcresource.Config{Verifier: e.Verifier, Default: resource.Policy{Accept: resource.AcceptDPoP}}},
		{"invalid scope", grpcresource.Config{Verifier: e.Verifier, Methods: map[string]resource.Policy{"/a.B/C": {Scopes: []string{"a b"}}}}},
		{"method without service", grpcresource.Config{Verifier: e.Verifier, Methods: map[string]resource.Policy{"Check": {}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := grpcresource.New(tc.cfg); err == nil {
				t.Fatal("New accepted the configuration")
			}
		})
	}
}

// TestConfigCopied: changing the caller's map and scopes after New has no
// effect.
func TestConfigCopied(t *testing.T) {
	t.Parallel()
	e := restest.NewEnv(t, restest.Options{DPoP: true, Mod: direct})
	scopes := []string{"admin"}
	methods := map[string]resource.Policy{fullMethod("Any"): {Accept: resource.AcceptAny, Scopes: scopes}}
	in, err := grpcresource.New(grpcresource.Config{Verifier: e.Verifier, Methods: methods})
	if err != nil {
		t.Fatal(err)
	}
	scopes[0] = "read"
	methods[fullMethod("Any")] = resource.Policy{Accept: resource.AcceptAny}
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+e.Token(t, nil), ":authority", "rs.example.test"))
	_, err = in.Unary()(ctx, nil, &grpc.UnaryServerInfo{FullMethod: fullMethod("Any")}, func(context.Context, any) (any, error) {
		t.Fatal("handler ran")
		return nil, nil
	})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("code %v, want PermissionDenied: the copied policy requires admin", status.Code(err))
	}
}

// TestAuthorityDefaultPort: gRPC clients drop :443 from the audience they
// give per-RPC credentials, so a proof for https://host/... must match a
// call whose :authority is host:443 (DPOP-RS-12), and a proof for another
// port must not.
func TestAuthorityDefaultPort(t *testing.T) {
	t.Parallel()
	e := restest.NewEnv(t, restest.Options{DPoP: true, Mod: direct})
	in, err := grpcresource.New(grpcresource.Config{Verifier: e.Verifier, Default: resource.Policy{Accept: resource.AcceptAny}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		authority, htu string
		want           codes.Code
	}{
		{"rs.example.test:443", "https://rs.example.test/test.Routes/Any", codes.OK},
		{"rs.example.test", "https://rs.example.test:443/test.Routes/Any", codes.OK},
		{"rs.example.test:8443", "https://rs.example.test/test.Routes/Any", codes.Unauthenticated},
	}
	for _, tc := range tests {
		t.Run(tc.authority+" "+tc.htu, func(t *testing.T) {
			t.Parallel()
			kv := dpopMD("DPoP", restest.K1Token, nil)(t, e, tc.htu)
			md := metadata.Pairs(append([]string{":authority", tc.authority}, kv...)...)
			ctx := metadata.NewIncomingContext(callContext(nil), md)
			_, err := in.Unary()(ctx, nil, &grpc.UnaryServerInfo{FullMethod: fullMethod("Any")}, func(context.Context, any) (any, error) { return nil, nil })
			if status.Code(err) != tc.want {
				t.Fatalf("%v, want %v", err, tc.want)
			}
		})
	}
}
