package restest

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/resource"
)

// Proof describes the DPoP proof a case sends; Build functions edit it.
type Proof struct {
	Prover *dpop.Prover
	Method string
	URL    string
	Opts   dpop.ProofOptions
	// Edit, when set, rewrites the finished proof string.
	Edit func(string) string
}

// DPoPBound returns claims bound to k's thumbprint.
func DPoPBound(p *dpop.Prover) func(*Env, map[string]any) {
	return func(_ *Env, c map[string]any) { c["cnf"] = map[string]any{"jkt": p.Thumbprint()} }
}

// DPoPRequest sets "scheme token" and a DPoP proof. tok makes the token; mod
// edits the proof parameters (defaults: K1, the request's method and URL,
// ath of the token).
func DPoPRequest(scheme string, tok func(testing.TB, *Env) string, mod func(e *Env, p *Proof)) func(testing.TB, *Env, *http.Request) {
	return func(t testing.TB, e *Env, r *http.Request) {
		at := tok(t, e)
		p := &Proof{Prover: e.K1, Method: r.Method, URL: r.URL.String(), Opts: dpop.ProofOptions{AccessToken: at}}
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
		r.Header.Set("Authorization", scheme+" "+at)
		r.Header.Set("DPoP", proof)
	}
}

// K1Token mints a valid AS token bound to K1.
func K1Token(t testing.TB, e *Env) string {
	c := e.Claims()
	c["cnf"] = map[string]any{"jkt": e.K1.Thumbprint()}
	return e.AS.Mint(t, Header(), c)
}

func certToken(leaf func(*Env) string) func(testing.TB, *Env) string {
	return func(t testing.TB, e *Env) string {
		c := e.Claims()
		c["cnf"] = map[string]any{"x5t#S256": leaf(e)}
		return e.AS.Mint(t, Header(), c)
	}
}

func c1(e *Env) string { return mtlsbound.Thumbprint(e.C1.Cert) }
func s1(e *Env) string { return mtlsbound.Thumbprint(e.S1.Cert) }

func bothToken(t testing.TB, e *Env) string {
	c := e.Claims()
	c["cnf"] = map[string]any{"jkt": e.K1.Thumbprint(), "x5t#S256": c1(e)}
	return e.AS.Mint(t, Header(), c)
}

// flipSig flips one bit of the proof's signature (canonically re-encoded).
func flipSig(s string) string {
	i := strings.LastIndexByte(s, '.')
	sig, err := base64.RawURLEncoding.DecodeString(s[i+1:])
	if err != nil || len(sig) == 0 {
		return s + "x"
	}
	sig[len(sig)/2] ^= 0x01
	return s[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
}

// BoundCases are the DPoP and mTLS cases. They need an Env with DPoP
// enabled (no nonces, InsecureHTTP off) and the targets of StartServers.
func BoundCases() []Case {
	const B, D = "Bearer", "DPoP"
	dp := func(name string, mod func(e *Env, p *Proof), status int, scheme, code string) Case {
		return Case{Name: name, Via: "tls", Build: DPoPRequest(D, K1Token, mod), WantStatus: status, WantScheme: scheme, WantError: code}
	}
	badProof := func(name string, mod func(e *Env, p *Proof)) Case {
		return dp(name, mod, 401, D, "invalid_dpop_proof")
	}
	return []Case{
		{Name: "DPOP-RS-20/valid DPoP request", Via: "tls", Build: DPoPRequest(D, K1Token, nil), WantStatus: 200, WantBinding: resource.BindingDPoP},
		{Name: "DPOP-RS-20/scheme dpop lower case", Via: "tls", Build: DPoPRequest("dpop", K1Token, nil), WantStatus: 200, WantBinding: resource.BindingDPoP},
		{Name: "DPOP-RS-03/header name in lower case", Via: "tls", Build: func(t testing.TB, e *Env, r *http.Request) {
			DPoPRequest(D, K1Token, nil)(t, e, r)
			v := r.Header.Get("DPoP")
			r.Header.Del("DPoP")
			r.Header["dpop"] = []string{v}
		}, WantStatus: 200},
		{Name: "ATV-24/unknown cnf member beside jkt ignored", Via: "tls", Build: DPoPRequest(D, func(t testing.TB, e *Env) string {
			c := e.Claims()
			c["cnf"] = map[string]any{"jkt": e.K1.Thumbprint(), "x-ext": 1}
			return e.AS.Mint(t, Header(), c)
		}, nil), WantStatus: 200, WantBinding: resource.BindingDPoP},
		{Name: "DPOP-RS-11/request query ignored", Path: "/any?a=1", Via: "tls", Build: DPoPRequest(D, K1Token, nil), WantStatus: 200},
		{Name: "AcceptBound/DPoP token on default route", Path: "/bound", Via: "tls", Build: DPoPRequest(D, K1Token, nil), WantStatus: 200, WantBinding: resource.BindingDPoP},
		{Name: "DPOP-RS-15/ADV-107/replayed proof", Via: "tls", Build: DPoPRequest(D, K1Token, nil), Replay: true, WantStatus: 401, WantScheme: D, WantError: "invalid_dpop_proof"},
		{Name: "DPOP-RS-25/DPoP over plain HTTP from an untrusted peer", Via: "http", Build: DPoPRequest(D, K1Token, nil), WantStatus: 400, WantError: "invalid_request"},
		{Name: "DPOP-RS-25/DPoP through the trusted TLS-terminating proxy", Via: "proxy-none", Build: DPoPRequest(D, K1Token, nil), WantStatus: 200, WantBinding: resource.BindingDPoP},
		{Name: "DPOP-RS-25/DPoP through the trusted proxy with its own certificate", Via: "mproxy-none", Build: DPoPRequest(D, K1Token, nil), WantStatus: 200, WantBinding: resource.BindingDPoP},
		{Name: "ADV-51/a client's Forwarded passed through the X-Forwarded proxy", Via: "proxy-none", Build: func(t testing.TB, e *Env, r *http.Request) {
			// A proof made for another server, and the host it names
			// in a Forwarded field the proxy does not set.
			DPoPRequest(D, K1Token, func(e *Env, p *Proof) { p.URL = "https://other-rs.example.test" + r.URL.Path })(t, e, r)
			r.Header.Set("Forwarded", "proto=https;host=other-rs.example.test")
		}, WantStatus: 400, WantError: "invalid_request"},
		{Name: "DPOP-RS-01/two DPoP fields", Via: "tls", Build: func(t testing.TB, e *Env, r *http.Request) {
			DPoPRequest(D, K1Token, nil)(t, e, r)
			p2, _ := e.K1.Proof(r.Method, r.URL.String(), dpop.ProofOptions{AccessToken: strings.TrimPrefix(r.Header.Get("Authorization"), "DPoP ")})
			r.Header.Add("DPoP", p2)
		}, WantStatus: 400, WantError: "invalid_request"},
		{Name: "DPOP-RS-01/DPoP and dpop fields", Via: "tls", Build: func(t testing.TB, e *Env, r *http.Request) {
			DPoPRequest(D, K1Token, nil)(t, e, r)
			p2, _ := e.K1.Proof(r.Method, r.URL.String(), dpop.ProofOptions{AccessToken: strings.TrimPrefix(r.Header.Get("Authorization"), "DPoP ")})
			r.Header["dpop"] = []string{p2}
		}, WantStatus: 400, WantError: "invalid_request"},
		{Name: "DPOP-RS-21/ADV-68/DPoP scheme without proof", Via: "tls", Build: func(t testing.TB, e *Env, r *http.Request) {
			r.Header.Set("Authorization", "DPoP "+K1Token(t, e))
		}, WantStatus: 401, WantScheme: D, WantError: "invalid_dpop_proof"},
		{Name: "ADV-67/unbound token under DPoP with valid proof", Via: "tls", Build: DPoPRequest(D, valid, nil), WantStatus: 401, WantScheme: D, WantError: "invalid_token"},
		{Name: "ADV-33/DPoP proof presented as the access token", Via: "tls", Build: func(t testing.TB, e *Env, r *http.Request) {
			p1, _ := e.K1.Proof(r.Method, r.URL.String(), dpop.ProofOptions{})
			p2, _ := e.K1.Proof(r.Method, r.URL.String(), dpop.ProofOptions{AccessToken: p1})
			r.Header.Set("Authorization", "DPoP "+p1)
			r.Header.Set("DPoP", p2)
		}, WantStatus: 401, WantScheme: D, WantError: "invalid_token"},
		dp("DPOP-RS-19/ADV-69/ERR-06/proof by K2 for a K1 token", func(e *Env, p *Proof) { p.Prover = e.K2 }, 401, D, "invalid_token"),
		badProof("ERR-05/DPOP-RS-07/flipped signature bit", func(e *Env, p *Proof) { p.Edit = flipSig }),
		badProof("DPOP-RS-10/htm POST on GET", func(e *Env, p *Proof) { p.Method = "POST" }),
		badProof("ADV-48/htm get lower case", func(e *Env, p *Proof) { p.Method = "get" }),
		badProof("DPOP-RS-11/htu other path", func(e *Env, p *Proof) { p.URL = strings.Replace(p.URL, "/any", "/other", 1) }),
		badProof("ADV-50/htu http on https request", func(e *Env, p *Proof) { p.URL = strings.Replace(p.URL, "https:", "http:", 1) }),
		badProof("DPOP-RS-17/ADV-70/no ath", func(e *Env, p *Proof) { p.Opts.AccessToken = "" }),
		badProof("DPOP-RS-18/ADV-70/ath of another token", func(e *Env, p *Proof) { p.Opts.AccessToken = p.Opts.AccessToken + "x" }),
		badProof("DPOP-RS-13/iat too old", func(e *Env, p *Proof) {
			p.Prover = proverAt(e, e.T0.Add(-3*time.Minute))
		}),
		badProof("ADV-44/iat one day ahead", func(e *Env, p *Proof) { p.Prover = proverAt(e, e.T0.Add(24*time.Hour)) }),
		badProof("ADV-104/DPoP field of 100 KiB", func(e *Env, p *Proof) { p.Edit = func(s string) string { return s + strings.Repeat("A", 100<<10) } }),
		badProof("ADV-76/proof with a DPoP prefix", func(e *Env, p *Proof) { p.Edit = func(s string) string { return "DPoP " + s } }),
		badProof("ADV-76/proof with a trailing dot", func(e *Env, p *Proof) { p.Edit = func(s string) string { return s + "." } }),
		badProof("DPOP-RS-02/two proofs joined by a comma", func(e *Env, p *Proof) { p.Edit = func(s string) string { return s + ", " + s } }),
		dp("DPOP-RS-12/ADV-53/htu with upper-case scheme", func(e *Env, p *Proof) { p.URL = "HTTPS" + p.URL[len("https"):] }, 200, "", ""),
		badProof("ADV-54/htu path in other letter case", func(e *Env, p *Proof) { p.URL = strings.Replace(p.URL, "/any", "/ANY", 1) }),
		badProof("ADV-51/htu naming another host", func(e *Env, p *Proof) { p.URL = "https://rs2.example.test/any" }),
		{Name: "ERR-04/expired DPoP-bound token with a valid proof", Via: "tls", Build: DPoPRequest(D, func(t testing.TB, e *Env) string {
			c := e.Claims()
			c["cnf"] = map[string]any{"jkt": e.K1.Thumbprint()}
			c["exp"] = e.T0.Add(-time.Minute).Unix()
			return e.AS.Mint(t, Header(), c)
		}, nil), WantStatus: 401, WantScheme: D, WantError: "invalid_token"},
		{Name: "ERR-07/DPoP token lacking scope", Path: "/admin", Via: "tls", Build: DPoPRequest(D, K1Token, nil), WantStatus: 403, WantScheme: D, WantError: "insufficient_scope"},
		{Name: "ERR-11/invalid Bearer token: only the Bearer challenge has error", Via: "tls", Build: func(t testing.TB, e *Env, r *http.Request) {
			r.Header.Set("Authorization", "Bearer INVALID_TOKEN")
		}, WantStatus: 401, WantScheme: B, WantError: "invalid_token"},
		{Name: "ERR-03/ERR-20/challenges list DPoP with algs and Bearer", Via: "tls", WantStatus: 401, After: func(t testing.TB, c *Call) {
			chs := Challenges(t, c.Resp.Header)
			if len(chs) != 2 || chs[0].Scheme != D || chs[1].Scheme != B {
				t.Fatalf("challenges = %v", c.Resp.Header.Values("WWW-Authenticate"))
			}
			if chs[0].Params["algs"] != "ES256 PS256" {
				t.Fatalf("algs = %q", chs[0].Params["algs"])
			}
		}},
		{Name: "AcceptMTLS/DPoP-bound token refused on the DPoP challenge after the route's", Path: "/mtls", Via: "tls", Build: DPoPRequest(D, K1Token, nil), WantStatus: 401, WantScheme: D, WantError: "invalid_token", After: func(t testing.TB, c *Call) {
			if chs := Challenges(t, c.Resp.Header); len(chs) != 2 || chs[0].Scheme != B || chs[1].Scheme != D || chs[1].Params["algs"] == "" {
				t.Fatalf("challenges = %v", c.Resp.Header.Values("WWW-Authenticate"))
			}
		}},

		// mTLS-bound tokens.
		{Name: "MTLS-CB-09/MTLS-CB-12/certificate-bound token with C1", Via: "mtls-c1", Build: auth(B, certToken(c1)), WantStatus: 200, WantBinding: resource.BindingMTLS},
		{Name: "AcceptMTLS/certificate-bound token", Path: "/mtls", Via: "mtls-c1", Build: auth(B, certToken(c1)), WantStatus: 200, WantBinding: resource.BindingMTLS},
		{Name: "MTLS-CB-09/ADV-83/certificate with same DN, other key", Via: "mtls-c2", Build: auth(B, certToken(c1)), WantStatus: 401, WantScheme: B, WantError: "invalid_token"},
		{Name: "MTLS-CB-10/ADV-84/no client certificate over TLS", Via: "tls", Build: auth(B, certToken(c1)), WantStatus: 401, WantScheme: B, WantError: "invalid_token"},
		{Name: "MTLS-CB-11/self-signed certificate", Via: "mtls-s1", Build: auth(B, certToken(s1)), WantStatus: 200, WantBinding: resource.BindingMTLS},
		{Name: "MTLS-CB-14/re-issued certificate, same key", Via: "mtls-c1b", Build: auth(B, certToken(c1)), WantStatus: 401, WantScheme: B, WantError: "invalid_token"},
		{Name: "ERR-13/DPoP-bound token under Bearer over mTLS", Via: "mtls-c1", Build: auth(B, K1Token), WantStatus: 401, WantScheme: B, WantError: "invalid_token"},
		{Name: "MTLS-CB-16/ADV-73/both bindings, only the proof", Via: "tls", Build: DPoPRequest(D, bothToken, nil), WantStatus: 401, WantScheme: D, WantError: "invalid_token"},
		{Name: "MTLS-CB-16/ADV-73/both bindings, only the certificate", Via: "mtls-c1", Build: auth(B, bothToken), WantStatus: 401, WantScheme: B, WantError: "invalid_token"},
		{Name: "MTLS-CB-16/both bindings, both proofs", Via: "mtls-c1", Build: DPoPRequest(D, bothToken, nil), WantStatus: 200, WantBinding: resource.BindingDPoP},
		{Name: "ADV-90/x5t#S256 over the SPKI instead of the certificate", Via: "mtls-c1", Build: auth(B, certToken(func(e *Env) string {
			return mtlsbound.ThumbprintDER(e.C1.Cert.RawSubjectPublicKeyInfo)
		})), WantStatus: 401, WantScheme: B, WantError: "invalid_token"},

		// Forwarded certificates (RFC 9440).
		{Name: "CCERT-02/Client-Cert from the trusted proxy", Via: "proxy-c1", Build: auth(B, certToken(c1)), WantStatus: 200, WantBinding: resource.BindingMTLS,
			After: func(t testing.TB, c *Call) {
				if c.Resp.Header.Get("Cache-Control") != "no-store" {
					t.Fatal("response authorised by a forwarded certificate is cacheable (CCERT-10)")
				}
			}},
		{Name: "CCERT-02/trusted proxy, no client certificate", Via: "proxy-none", Build: auth(B, certToken(c1)), WantStatus: 401, WantScheme: B, WantError: "invalid_token"},
		{Name: "CCERT-02/trusted proxy with its own certificate forwards C1", Via: "mproxy-c1", Build: auth(B, certToken(c1)), WantStatus: 200, WantBinding: resource.BindingMTLS,
			After: func(t testing.TB, c *Call) {
				if c.Resp.Header.Get("Cache-Control") != "no-store" {
					t.Fatal("response authorised by a forwarded certificate is cacheable (CCERT-10)")
				}
			}},
		{Name: "CCERT-02/trusted proxy with its own certificate forwards none", Via: "mproxy-none", Build: auth(B, certToken(c1)), WantStatus: 401, WantScheme: B, WantError: "invalid_token"},
		{Name: "CCERT-02/a trusted proxy's own certificate is not the client's", Via: "mproxy-none", Build: auth(B, certToken(func(e *Env) string { return mtlsbound.Thumbprint(e.P.Cert) })), WantStatus: 401, WantScheme: B, WantError: "invalid_token"},
		{Name: "CCERT-02/a trusted proxy's own certificate is not the client's, with C1 forwarded", Via: "mproxy-c1", Build: auth(B, certToken(func(e *Env) string { return mtlsbound.Thumbprint(e.P.Cert) })), WantStatus: 401, WantScheme: B, WantError: "invalid_token"},
		{Name: "CCERT-01/ADV-85/Client-Cert from an untrusted peer ignored", Via: "http", Build: func(t testing.TB, e *Env, r *http.Request) {
			auth(B, certToken(c1))(t, e, r)
			r.Header.Set("Client-Cert", mtlsbound.FormatClientCertHeader(e.C1.Cert))
		}, WantStatus: 401, WantScheme: B, WantError: "invalid_token"},
		{Name: "CCERT-16/ADV-87/TLS certificate C2 wins over a Client-Cert of C1", Via: "mtls-c2", Build: func(t testing.TB, e *Env, r *http.Request) {
			auth(B, certToken(c1))(t, e, r)
			r.Header.Set("Client-Cert", mtlsbound.FormatClientCertHeader(e.C1.Cert))
		}, WantStatus: 401, WantScheme: B, WantError: "invalid_token"},
	}
}

// proverAt returns a prover over K1's key whose clock reads at.
func proverAt(e *Env, at time.Time) *dpop.Prover {
	p, err := dpop.NewProver(e.k1Key, &dpop.ProverOptions{Now: func() time.Time { return at }})
	if err != nil {
		panic(err)
	}
	return p
}
