package restest

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/senderbound/senderbound/resource"
)

// fault is one kind of request sent to every route policy.
type fault struct {
	name  string
	via   string
	build func(testing.TB, *Env, *http.Request)
	// status, scheme and code are the refusal, the same under every
	// policy: the challenge of scheme carries error=code.
	status       int
	scheme, code string
	// accepted lists the routes that admit the request (200) instead,
	// with the binding they report.
	accepted map[string]resource.Binding
}

// PolicyCases is the policy × fault matrix: every fault is sent to each
// route policy (/any, /bound, /dpop, /mtls) and is refused with the same
// status, challenge scheme and error code under all of them, except on
// the routes that accept the request. The error code follows the fault,
// never the route: a DPoP-bound token under Bearer is 401
// Bearer:invalid_token on a DPoP-only route too (ERR-13, ADV-64, ADV-65),
// and a bound token of a kind the route does not take is invalid_token on
// the scheme it was sent with. They need an Env with DPoP enabled (no
// nonces, InsecureHTTP off) and the targets of StartServers.
func PolicyCases() []Case {
	const B, D = "Bearer", "DPoP"
	routes := []string{"/any", "/bound", "/dpop", "/mtls"}
	expired := func(t testing.TB, e *Env) string {
		c := e.Claims()
		c["cnf"] = map[string]any{"jkt": e.K1.Thumbprint()}
		c["exp"] = e.T0.Add(-time.Minute).Unix()
		return e.AS.Mint(t, Header(), c)
	}
	garbage := func(testing.TB, *Env) string { return "INVALID_TOKEN" }
	faults := []fault{
		{name: "ERR-01/no credentials", via: "tls", status: 401},
		{name: "ERR-13/ADV-64/DPoP-bound token under Bearer", via: "tls", build: auth(B, K1Token), status: 401, scheme: B, code: "invalid_token"},
		{name: "ADV-65/DPoP-bound token under bearer", via: "tls", build: auth("bearer", K1Token), status: 401, scheme: B, code: "invalid_token"},
		{name: "ADV-65/DPoP-bound token under BEARER", via: "tls", build: auth("BEARER", K1Token), status: 401, scheme: B, code: "invalid_token"},
		{name: "ERR-13/DPoP-bound token under Bearer with a valid proof", via: "tls", build: DPoPRequest(B, K1Token, nil), status: 401, scheme: B, code: "invalid_token"},
		{name: "ERR-13/DPoP-bound token under Bearer over mTLS", via: "mtls-c1", build: auth(B, K1Token), status: 401, scheme: B, code: "invalid_token"},
		{name: "ATV-18/malformed token under Bearer", via: "tls", build: auth(B, garbage), status: 401, scheme: B, code: "invalid_token"},
		{name: "ATV-18/malformed token under DPoP", via: "tls", build: DPoPRequest(D, garbage, nil), status: 401, scheme: D, code: "invalid_token"},
		{name: "ERR-04/expired DPoP-bound token with a valid proof", via: "tls", build: DPoPRequest(D, expired, nil), status: 401, scheme: D, code: "invalid_token"},
		{name: "ERR-06/unbound token under DPoP", via: "tls", build: DPoPRequest(D, valid, nil), status: 401, scheme: D, code: "invalid_token"},
		{name: "DPOP-RS-21/DPoP-bound token without a proof", via: "tls", build: auth(D, K1Token), status: 401, scheme: D, code: "invalid_dpop_proof"},
		{name: "DPOP-RS-07/ERR-05/proof signature invalid", via: "tls", build: DPoPRequest(D, K1Token, func(_ *Env, p *Proof) { p.Edit = flipSig }), status: 401, scheme: D, code: "invalid_dpop_proof"},
		{name: "DPOP-RS-19/ERR-06/proof by another key", via: "tls", build: DPoPRequest(D, K1Token, func(e *Env, p *Proof) { p.Prover = e.K2 }), status: 401, scheme: D, code: "invalid_token"},
		{name: "MTLS-CB-10/certificate-bound token without a certificate", via: "tls", build: auth(B, certToken(c1)), status: 401, scheme: B, code: "invalid_token"},
		{name: "MTLS-CB-09/certificate-bound token with another certificate", via: "mtls-c2", build: auth(B, certToken(c1)), status: 401, scheme: B, code: "invalid_token"},
		{name: "ERR-12/two Authorization fields", via: "tls", build: func(t testing.TB, e *Env, r *http.Request) {
			r.Header.Add("Authorization", B+" "+K1Token(t, e))
			r.Header.Add("Authorization", D+" "+K1Token(t, e))
		}, status: 400, code: "invalid_request"},
		{name: "ERR-01/unbound token under Bearer", via: "tls", build: auth(B, valid), status: 401, scheme: B, code: "invalid_token",
			accepted: map[string]resource.Binding{"/any": resource.BindingBearer}},
		{name: "DPOP-RS-20/DPoP-bound token with a valid proof", via: "tls", build: DPoPRequest(D, K1Token, nil), status: 401, scheme: D, code: "invalid_token",
			accepted: map[string]resource.Binding{"/any": resource.BindingDPoP, "/bound": resource.BindingDPoP, "/dpop": resource.BindingDPoP}},
		{name: "MTLS-CB-12/certificate-bound token with its certificate", via: "mtls-c1", build: auth(B, certToken(c1)), status: 401, scheme: B, code: "invalid_token",
			accepted: map[string]resource.Binding{"/any": resource.BindingMTLS, "/bound": resource.BindingMTLS, "/mtls": resource.BindingMTLS}},
	}
	var cases []Case
	for _, f := range faults {
		for _, path := range routes {
			c := Case{
				Name: f.name + " on " + strings.TrimPrefix(path, "/"), Path: path, Via: f.via, Build: f.build,
				WantStatus: f.status, WantScheme: f.scheme, WantError: f.code,
			}
			if b, ok := f.accepted[path]; ok {
				c.WantStatus, c.WantScheme, c.WantError, c.WantBinding = http.StatusOK, "", "", b
			}
			cases = append(cases, c)
		}
	}
	return cases
}
