package issuer

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/oautherr"
)

// reasonRecorder is a Metrics that keeps the last refusal.
type reasonRecorder struct {
	mu   sync.Mutex
	last *Error
	end  string
}

func (m *reasonRecorder) TokenIssued(string, string)              {}
func (m *reasonRecorder) Observe(Operation, time.Duration, error) {}
func (m *reasonRecorder) Refused(endpoint string, e *Error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.last, m.end = e, endpoint
}

// take returns the endpoint and reason of the last refusal and forgets it.
func (m *reasonRecorder) take() (string, oautherr.Reason) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.last == nil {
		return "", ""
	}
	end, r := m.end, m.last.Reason
	m.last, m.end = nil, ""
	return end, r
}

func parHarness(t *testing.T, nonces bool, par PARConfig) (*harness, *reasonRecorder) {
	t.Helper()
	rec := &reasonRecorder{}
	h := newHarness(t, harnessOpts{nonces: nonces, edit: func(c *ServerConfig) {
		c.PAR = &par
		c.Metrics = rec
	}})
	return h, rec
}

func (h *harness) parURL() string { return h.server.PARURL() }
func (h *harness) aliasPARURL() string {
	return "https://" + h.alias.Listener.Addr().String() + PARPath
}

// checkPARResponse asserts what every PAR response carries: no-store, a
// JSON body, the RFC 6749 §5.2 shape on errors and no echoed input; on
// success 201 with a fresh request_uri and expires_in (RFC 9126 §2.2).
func (h *harness) checkPARResponse(r result) {
	h.t.Helper()
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		h.t.Errorf("Cache-Control = %q", cc)
	}
	if strings.Contains(string(r.raw), "ATTACKER") {
		h.t.Errorf("response echoes request input: %s", r.raw)
	}
	if !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		h.t.Errorf("Content-Type = %q", r.header.Get("Content-Type"))
	}
	if r.status != http.StatusCreated {
		if r.str("error") == "" {
			h.t.Errorf("error response without error member: %s", r.raw)
		}
		return
	}
	if ru := r.str("request_uri"); !strings.HasPrefix(ru, RequestURIPrefix) || len(ru) != len(RequestURIPrefix)+43 {
		h.t.Errorf("request_uri %q", ru)
	}
	if r.body["expires_in"] != float64(60) {
		h.t.Errorf("expires_in %v", r.body["expires_in"])
	}
}

func authzForm(extra ...string) url.Values {
	v := url.Values{"response_type": {"code"}, "redirect_uri": {"https://app.example.test/cb"}, "scope": {"read"},
		"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return v
}

// TestPAREndpointRefusals: every refusal of the PAR endpoint (RFC 9126,
// RFC 9449 §10.1; DPOP-AS-25, DPOP-AS-26) with its status, error code and
// stable reason, over real TLS.
func TestPAREndpointRefusals(t *testing.T) {
	t.Parallel()
	h, rec := parHarness(t, false, PARConfig{})
	c := h.client(nil)
	k1, k2 := h.prover(nil), h.prover(nil)
	replayed := h.proof(k1, h.parURL(), "")
	if r := h.post(c, h.parURL(), authzForm("client_id", "public"), map[string]string{"DPoP": replayed}); r.status != 201 {
		t.Fatalf("first use of the proof: %d %s", r.status, r.raw)
	}
	getProof, err := k1.Proof(http.MethodGet, h.parURL(), dpop.ProofOptions{})
	if err != nil {
		t.Fatal(err)
	}
	many := authzForm("client_id", "public")
	for i := 0; len(many) <= maxAuthorizationParams; i++ {
		many.Set("x"+strconv.Itoa(i), "v")
	}
	tests := []struct {
		name   string
		req    func() *http.Request
		status int
		code   string
		reason oautherr.Reason
	}{
		{"GET", func() *http.Request { return mustGet(t, h.parURL()+"?client_id=public") }, 405, "invalid_request", oautherr.ReasonRequestMalformed},
		{"not a form", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, h.parURL(), strings.NewReader(`{"client_id":"public"}`))
			r.Header.Set("Content-Type", "application/json")
			return r
		}, 400, "invalid_request", oautherr.ReasonRequestMalformed},
		{"repeated parameter", formReq(h.parURL(), "client_id=public&scope=read&scope=write", nil), 400, "invalid_request", oautherr.ReasonRequestMalformed},
		{"too many parameters", formReq(h.parURL(), many.Encode(), nil), 400, "invalid_request", oautherr.ReasonRequestMalformed},
		{"secret in the query", formReq(h.parURL()+"?client_secret=x", authzForm("client_id", "public").Encode(), nil), 400, "invalid_request", oautherr.ReasonRequestMalformed},
		{"no client", formReq(h.parURL(), authzForm().Encode(), nil), 400, "invalid_client", oautherr.ReasonClientIDMissing},
		{"unknown client", formReq(h.parURL(), authzForm("client_id", attackMarker).Encode(), nil), 400, "invalid_client", oautherr.ReasonClientUnknown},
		{"wrong secret", formReq(h.parURL(), authzForm().Encode(), basic("conf", "wrong-"+confSecret)), 401, "invalid_client", oautherr.ReasonClientSecret},
		{"confidential client without secret", formReq(h.parURL(), authzForm("client_id", "conf").Encode(), nil), 400, "invalid_client", oautherr.ReasonClientAuthMethod},
		{"assertion for the token endpoint", formReq(h.parURL(), authzForm("client_assertion_type", ClientAssertionType, "client_assertion",
			assertion(t, h.jwtKey, jose.ES256, "c1", map[string]any{"iss": "jwtc", "sub": "jwtc", "aud": h.tokenURL(), "jti": "par-aud",
				"iat": h.clock.Now().Unix(), "exp": h.clock.Now().Add(time.Minute).Unix()})).Encode(), nil), 400, "invalid_client", oautherr.ReasonClientAssertion},
		{"request_uri in the body", formReq(h.parURL(), authzForm("client_id", "public", "request_uri", RequestURIPrefix+"abc").Encode(), nil), 400, "invalid_request", oautherr.ReasonRequestURINotAllowed},
		{"dpop_jkt of 42 characters", formReq(h.parURL(), authzForm("client_id", "public", "dpop_jkt", k1.Thumbprint()[:42]).Encode(), nil), 400, "invalid_request", oautherr.ReasonDPoPJKTMalformed},
		{"dpop_jkt padded", formReq(h.parURL(), authzForm("client_id", "public", "dpop_jkt", k1.Thumbprint()+"=").Encode(), nil), 400, "invalid_request", oautherr.ReasonDPoPJKTMalformed},
		{"dpop_jkt in base64", formReq(h.parURL(), authzForm("client_id", "public", "dpop_jkt", "+"+k1.Thumbprint()[1:]).Encode(), nil), 400, "invalid_request", oautherr.ReasonDPoPJKTMalformed},
		{"dpop_jkt repeated", formReq(h.parURL(), "client_id=public&dpop_jkt="+k1.Thumbprint()+"&dpop_jkt="+k1.Thumbprint(), nil), 400, "invalid_request", oautherr.ReasonRequestMalformed},
		{"DPOP-AS-25 proof is not a JWS", formReq(h.parURL(), authzForm("client_id", "public").Encode(), map[string]string{"DPoP": attackMarker}), 400, "invalid_dpop_proof", oautherr.ReasonProofMalformed},
		{"DPOP-AS-25 htu of the token endpoint", formReq(h.parURL(), authzForm("client_id", "public").Encode(), map[string]string{"DPoP": h.proof(k1, h.tokenURL(), "")}), 400, "invalid_dpop_proof", oautherr.ReasonProofHTUMismatch},
		{"DPOP-AS-25 htu of the alias at the conventional URL", formReq(h.parURL(), authzForm("client_id", "public").Encode(), map[string]string{"DPoP": h.proof(k1, h.aliasPARURL(), "")}), 400, "invalid_dpop_proof", oautherr.ReasonProofHTUMismatch},
		{"DPOP-AS-25 htm GET", formReq(h.parURL(), authzForm("client_id", "public").Encode(), map[string]string{"DPoP": getProof}), 400, "invalid_dpop_proof", oautherr.ReasonProofHTMMismatch},
		{"DPOP-AS-25 replayed proof", formReq(h.parURL(), authzForm("client_id", "public").Encode(), map[string]string{"DPoP": replayed}), 400, "invalid_dpop_proof", oautherr.ReasonProofReplayed},
		{"DPOP-AS-26 dpop_jkt of another key", formReq(h.parURL(), authzForm("client_id", "public", "dpop_jkt", k2.Thumbprint()).Encode(), map[string]string{"DPoP": h.proof(k1, h.parURL(), "")}), 400, "invalid_dpop_proof", oautherr.ReasonDPoPJKTMismatch},
		{"DPOP-AS-26 dpop_jkt differing in case", formReq(h.parURL(), authzForm("client_id", "public", "dpop_jkt", flipFirstLetter(k1.Thumbprint())).Encode(), map[string]string{"DPoP": h.proof(k1, h.parURL(), "")}), 400, "invalid_dpop_proof", oautherr.ReasonDPoPJKTMismatch},
	}
	// Sequential: each case reads the refusal the shared recorder saw.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do(c, tt.req())
			h.checkPARResponse(r)
			if r.status != tt.status || r.str("error") != tt.code {
				t.Fatalf("got %d %s, want %d %s", r.status, r.raw, tt.status, tt.code)
			}
			if tt.status == 405 && r.header.Get("Allow") != http.MethodPost {
				t.Errorf("Allow = %q", r.header.Get("Allow"))
			}
			if tt.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
			}
			if end, reason := rec.take(); end != "par" || reason != tt.reason {
				t.Errorf("refused at %q with reason %q, want par %q", end, reason, tt.reason)
			}
		})
	}
}

func flipFirstLetter(s string) string {
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z':
			return s[:i] + strings.ToUpper(string(c)) + s[i+1:]
		case c >= 'A' && c <= 'Z':
			return s[:i] + strings.ToLower(string(c)) + s[i+1:]
		}
	}
	return s
}

func formReq(target, body string, hdr map[string]string) func() *http.Request {
	return func() *http.Request {
		r, err := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
		if err != nil {
			panic(err)
		}
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		return r
	}
}

// TestPARClientAuthentication: the PAR endpoint authenticates every client
// authentication method as the token endpoint does (RFC 9126 §2.1,
// MTLS-CA-14), and records the authenticated client with the request.
func TestPARClientAuthentication(t *testing.T) {
	t.Parallel()
	h, _ := parHarness(t, false, PARConfig{})
	now := h.clock.Now()
	tests := []struct {
		name   string
		client string
		c      *http.Client
		url    string
		form   url.Values
		hdr    map[string]string
	}{
		{"client_secret_basic", "conf", h.client(nil), h.parURL(), authzForm(), basic("conf", confSecret)},
		{"client_secret_post", "post", h.client(nil), h.parURL(), authzForm("client_id", "post", "client_secret", postSecret), nil},
		{"none", "public", h.client(nil), h.parURL(), authzForm("client_id", "public"), nil},
		{"private_key_jwt, aud = PAR URL", "jwtc", h.client(nil), h.parURL(), authzForm("client_assertion_type", ClientAssertionType, "client_assertion",
			assertion(t, h.jwtKey, jose.ES256, "c1", map[string]any{"iss": "jwtc", "sub": "jwtc", "aud": h.parURL(), "jti": "par-1",
				"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()})), nil},
		{"tls_client_auth on the alias", "pki", h.client(h.c1), h.aliasPARURL(), authzForm("client_id", "pki"), nil},
		{"self_signed_tls_client_auth", "selfsigned", h.client(h.s1), h.parURL(), authzForm("client_id", "selfsigned"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.post(tt.c, tt.url, tt.form, tt.hdr)
			h.checkPARResponse(r)
			if r.status != 201 {
				t.Fatalf("got %d %s", r.status, r.raw)
			}
			p, err := h.server.TakePushedRequest(context.Background(), tt.client, r.str("request_uri"))
			if err != nil {
				t.Fatal(err)
			}
			if p.ClientID != tt.client || p.Params["client_id"] != tt.client || p.Params["redirect_uri"] != "https://app.example.test/cb" {
				t.Errorf("pushed request %+v", p)
			}
			for _, k := range []string{"client_secret", "client_assertion", "client_assertion_type"} {
				if _, ok := p.Params[k]; ok {
					t.Errorf("%s kept with the pushed request", k)
				}
			}
		})
	}
}

// TestPARBindsTheCode drives RFC 9449 §10.1 end to end on the library
// (DPOP-AS-24, DPOP-AS-25, DPOP-AS-22): the key of a PAR proof, or a
// pushed dpop_jkt, reaches the authorization request, and a grant handler
// returning it as Grant.DPoPJKT makes the token endpoint refuse every
// other key with invalid_grant.
func TestPARBindsTheCode(t *testing.T) {
	t.Parallel()
	h, _ := parHarness(t, false, PARConfig{})
	c := h.client(nil)
	k1, k2 := h.prover(nil), h.prover(nil)
	tests := []struct {
		name  string
		form  url.Values
		proof *dpop.Prover
	}{
		{"DPOP-AS-25 proof only", authzForm("client_id", "public"), k1},
		{"DPOP-AS-24 dpop_jkt only", authzForm("client_id", "public", "dpop_jkt", k1.Thumbprint()), nil},
		{"both, matching", authzForm("client_id", "public", "dpop_jkt", k1.Thumbprint()), k1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tt.proof != nil {
				hdr["DPoP"] = h.proof(tt.proof, h.parURL(), "")
			}
			r := h.post(c, h.parURL(), tt.form, hdr)
			h.checkPARResponse(r)
			if r.status != 201 {
				t.Fatalf("PAR: %d %s", r.status, r.raw)
			}
			ar, err := h.server.AuthorizationRequest(context.Background(), url.Values{"client_id": {"public"}, "request_uri": {r.str("request_uri")}, "scope": {"write"}})
			if err != nil {
				t.Fatal(err)
			}
			if !ar.Pushed || ar.DPoPJKT != k1.Thumbprint() || ar.Params[ParamDPoPJKT] != k1.Thumbprint() || ar.Params["scope"] != "read" {
				t.Fatalf("authorization request %+v: want the pushed parameters only, bound to K1", ar)
			}
			// The embedder's code grant returns the binding as Grant.DPoPJKT.
			form := url.Values{"grant_type": {testGrant}, "client_id": {"public"}, "subject": {"frank"}, "dpop_jkt": {ar.DPoPJKT}}
			if r := h.post(c, h.tokenURL(), form, map[string]string{"DPoP": h.proof(k2, h.tokenURL(), "")}); r.status != 400 || r.str("error") != "invalid_grant" {
				t.Fatalf("redeemed with K2: %d %s", r.status, r.raw)
			}
			r = h.post(c, h.tokenURL(), form, map[string]string{"DPoP": h.proof(k1, h.tokenURL(), "")})
			h.checkTokenResponse(r)
			if r.status != 200 || cnfOf(h.verify(r.str("access_token")))["jkt"] != k1.Thumbprint() {
				t.Fatalf("redeemed with K1: %d %s", r.status, r.raw)
			}
		})
	}
}

// TestPARNonce: with server nonces, a PAR proof without one is answered
// 400 use_dpop_nonce with a DPoP-Nonce, and the retry with it succeeds
// (RFC 9449 §8 at the PAR endpoint).
func TestPARNonce(t *testing.T) {
	t.Parallel()
	h, rec := parHarness(t, true, PARConfig{})
	c := h.client(nil)
	k1 := h.prover(nil)
	r := h.post(c, h.parURL(), authzForm("client_id", "public"), map[string]string{"DPoP": h.proof(k1, h.parURL(), "")})
	h.checkPARResponse(r)
	nonce := r.header.Get("DPoP-Nonce")
	if r.status != 400 || r.str("error") != "use_dpop_nonce" || nonce == "" {
		t.Fatalf("without nonce: %d %s", r.status, r.raw)
	}
	if _, reason := rec.take(); reason != oautherr.ReasonNonceRequired {
		t.Errorf("reason %q", reason)
	}
	r = h.post(c, h.parURL(), authzForm("client_id", "public"), map[string]string{"DPoP": h.proof(k1, h.parURL(), nonce)})
	h.checkPARResponse(r)
	if r.status != 201 {
		t.Fatalf("with nonce: %d %s", r.status, r.raw)
	}
	// Without a proof there is no nonce to demand.
	if r := h.post(c, h.parURL(), authzForm("client_id", "public"), nil); r.status != 201 {
		t.Fatalf("without proof: %d %s", r.status, r.raw)
	}
}

// TestTakePushedRequest: a request_uri resolves once, for the client that
// pushed it, before it expires; any other use is invalid_request with
// reason request_uri_invalid, and a foreign client spends it.
func TestTakePushedRequest(t *testing.T) {
	t.Parallel()
	h, _ := parHarness(t, false, PARConfig{})
	c := h.client(nil)
	push := func() string {
		t.Helper()
		r := h.post(c, h.parURL(), authzForm("client_id", "public"), nil)
		if r.status != 201 {
			t.Fatalf("PAR: %d %s", r.status, r.raw)
		}
		return r.str("request_uri")
	}
	ctx := context.Background()
	used, foreign, expired := push(), push(), push()
	if _, err := h.server.TakePushedRequest(ctx, "public", used); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, client, uri string
		before            func()
	}{
		{"used twice", "public", used, nil},
		{"another client", "conf", foreign, nil},
		{"the pushing client after another client tried it", "public", foreign, nil},
		{"expired", "public", expired, func() { h.clock.Advance(61 * time.Second) }},
		{"unknown", "public", RequestURIPrefix + strings.Repeat("A", 43), nil},
		{"not ours", "public", "https://attacker.example/" + attackMarker, nil},
		{"too long", "public", RequestURIPrefix + strings.Repeat("A", 300), nil},
		{"no client", "", push(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.before != nil {
				tt.before()
			}
			_, err := h.server.TakePushedRequest(ctx, tt.client, tt.uri)
			var e *Error
			if !errors.As(err, &e) || e.Code != "invalid_request" || e.Reason != oautherr.ReasonRequestURIInvalid || e.Status != 400 || !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("got %v", err)
			}
			if strings.Contains(e.Error(), "ATTACKER") {
				t.Errorf("error echoes input: %v", e)
			}
		})
	}
}

// TestAuthorizationDPoPJKT: dpop_jkt at the authorization endpoint
// (RFC 9449 §10, THUMB-11) is one 43-character base64url thumbprint or
// absent; anything else is invalid_request with reason dpop_jkt_malformed.
func TestAuthorizationDPoPJKT(t *testing.T) {
	t.Parallel()
	const jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" // KAT-3
	tests := []struct {
		name string
		vals []string
		want string
		ok   bool
	}{
		{"absent", nil, "", true},
		{"empty counts as absent", []string{""}, "", true},
		{"KAT-3 thumbprint", []string{jkt}, jkt, true},
		{"42 characters", []string{jkt[:42]}, "", false},
		{"44 characters", []string{jkt + "A"}, "", false},
		{"padding", []string{jkt[:42] + "="}, "", false},
		{"standard base64 alphabet", []string{"+" + jkt[1:]}, "", false},
		{"whitespace", []string{" " + jkt[1:]}, "", false},
		{"non-ASCII", []string{"é" + jkt[2:]}, "", false},
		{"repeated", []string{jkt, jkt}, "", false},
		{"attacker text", []string{attackMarker}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q := url.Values{"client_id": {"app"}}
			if tt.vals != nil {
				q[ParamDPoPJKT] = tt.vals
			}
			got, err := AuthorizationDPoPJKT(q)
			if tt.ok {
				if err != nil || got != tt.want {
					t.Fatalf("got %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != "invalid_request" || e.Status != 400 || e.Reason != oautherr.ReasonDPoPJKTMalformed || got != "" {
				t.Fatalf("got %q, %v", got, err)
			}
			if strings.Contains(e.Error(), "ATTACKER") || (len(tt.vals) > 0 && tt.vals[0] != "" && strings.Contains(e.Error(), tt.vals[0])) {
				t.Errorf("error echoes input: %v", e)
			}
		})
	}
}

// TestAuthorizationRequest: the authorization endpoint's view of a request
// without PAR, and the Require setting (RFC 9126 §5).
func TestAuthorizationRequest(t *testing.T) {
	t.Parallel()
	const jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	plain := newHarness(t, harnessOpts{})
	required, _ := parHarness(t, false, PARConfig{Require: true})
	many := url.Values{"client_id": {"app"}}
	for i := 0; len(many) <= maxAuthorizationParams; i++ {
		many.Set("x"+strconv.Itoa(i), "v")
	}
	tests := []struct {
		name   string
		s      *Server
		q      url.Values
		jkt    string
		reason oautherr.Reason // "" means accepted
	}{
		{"plain, bound", plain.server, url.Values{"client_id": {"app"}, "dpop_jkt": {jkt}, "state": {"s"}}, jkt, ""},
		{"plain, unbound", plain.server, url.Values{"client_id": {"app"}, "dpop_jkt": {""}}, "", ""},
		{"malformed dpop_jkt", plain.server, url.Values{"client_id": {"app"}, "dpop_jkt": {jkt[:40]}}, "", oautherr.ReasonDPoPJKTMalformed},
		{"repeated dpop_jkt", plain.server, url.Values{"client_id": {"app"}, "dpop_jkt": {jkt, jkt}}, "", oautherr.ReasonDPoPJKTMalformed},
		{"repeated parameter", plain.server, url.Values{"client_id": {"app"}, "scope": {"a", "b"}}, "", oautherr.ReasonRequestMalformed},
		{"control character", plain.server, url.Values{"client_id": {"app"}, "state": {"a\nb"}}, "", oautherr.ReasonRequestMalformed},
		{"no client_id", plain.server, url.Values{"dpop_jkt": {jkt}}, "", oautherr.ReasonRequestMalformed},
		{"too many parameters", plain.server, many, "", oautherr.ReasonRequestMalformed},
		{"request_uri without PAR", plain.server, url.Values{"client_id": {"app"}, "request_uri": {RequestURIPrefix + "x"}}, "", oautherr.ReasonRequestURIInvalid},
		{"PAR required", required.server, url.Values{"client_id": {"public"}, "dpop_jkt": {jkt}}, "", oautherr.ReasonPushedRequestRequired},
		{"PAR required, unknown request_uri", required.server, url.Values{"client_id": {"public"}, "request_uri": {RequestURIPrefix + "x"}}, "", oautherr.ReasonRequestURIInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ar, err := tt.s.AuthorizationRequest(context.Background(), tt.q)
			if tt.reason == "" {
				if err != nil || ar.DPoPJKT != tt.jkt || ar.Pushed || ar.ClientID != "app" {
					t.Fatalf("got %+v, %v", ar, err)
				}
				if _, ok := ar.Params[ParamDPoPJKT]; ok != (tt.jkt != "") {
					t.Errorf("params %v", ar.Params)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != "invalid_request" || e.Reason != tt.reason {
				t.Fatalf("got %+v, %v; want reason %s", ar, err, tt.reason)
			}
		})
	}
}

// TestPushedRequestStore: the memory store refuses new requests when full
// of live ones (503 at the endpoint), drops an expired oldest one, and
// hands a request to exactly one of concurrent Takes.
func TestPushedRequestStore(t *testing.T) {
	t.Parallel()
	t.Run("full", func(t *testing.T) {
		t.Parallel()
		clock := &fixedClock{t: time.Now()}
		st, err := NewMemoryPushedRequestStore(1, clock.Now)
		if err != nil {
			t.Fatal(err)
		}
		h, rec := parHarness(t, false, PARConfig{Store: st})
		c := h.client(nil)
		if r := h.post(c, h.parURL(), authzForm("client_id", "public"), nil); r.status != 201 {
			t.Fatalf("first: %d %s", r.status, r.raw)
		}
		r := h.post(c, h.parURL(), authzForm("client_id", "public"), nil)
		h.checkPARResponse(r)
		if r.status != 503 || r.str("error") != "temporarily_unavailable" {
			t.Fatalf("full: %d %s", r.status, r.raw)
		}
		if _, reason := rec.take(); reason != oautherr.ReasonPushedRequestStoreUnavailable {
			t.Errorf("reason %q", reason)
		}
		clock.Advance(2 * time.Minute)
		if r := h.post(c, h.parURL(), authzForm("client_id", "public"), nil); r.status != 201 {
			t.Fatalf("after the oldest expired: %d %s", r.status, r.raw)
		}
	})
	t.Run("one Take wins", func(t *testing.T) {
		t.Parallel()
		st, err := NewMemoryPushedRequestStore(0, nil)
		if err != nil {
			t.Fatal(err)
		}
		id := [32]byte{1}
		if err := st.Put(context.Background(), id, PushedRequest{ClientID: "a", ExpiresAt: time.Now().Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := st.Take(context.Background(), id); err == nil {
					wins.Add(1)
				} else if !errors.Is(err, ErrTokenNotFound) {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d Takes won", wins.Load())
		}
	})
	t.Run("negative capacity", func(t *testing.T) {
		t.Parallel()
		if _, err := NewMemoryPushedRequestStore(-1, nil); !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("got %v", err)
		}
	})
}

// TestPARConfigAndMetadata: PAR is advertised (with its mTLS alias and
// the Require flag) exactly when enabled, its lifetime is bounded, and the
// path is not served without it.
func TestPARConfigAndMetadata(t *testing.T) {
	t.Parallel()
	off := newHarness(t, harnessOpts{})
	on, _ := parHarness(t, false, PARConfig{Require: true})
	if m := off.server.Metadata(); m.PushedAuthorizationRequestEndpoint != "" || m.MTLSEndpointAliases["pushed_authorization_request_endpoint"] != "" {
		t.Errorf("PAR advertised while off: %+v", m)
	}
	if r := off.post(off.client(nil), off.srv.URL+PARPath, authzForm("client_id", "public"), nil); r.status != 404 {
		t.Errorf("PAR served while off: %d", r.status)
	}
	if off.server.PARHandler() != nil || off.server.PARURL() != "" {
		t.Error("PAR handler while off")
	}
	m := on.server.Metadata()
	if m.PushedAuthorizationRequestEndpoint != on.srv.URL+PARPath || !m.RequirePushedAuthorizationRequests ||
		m.MTLSEndpointAliases["pushed_authorization_request_endpoint"] != on.aliasPARURL() {
		t.Errorf("metadata %+v", m)
	}
	r := on.do(on.client(nil), mustGet(t, on.srv.URL+MetadataPath))
	if r.str("pushed_authorization_request_endpoint") != on.srv.URL+PARPath || r.body["require_pushed_authorization_requests"] != true {
		t.Errorf("served metadata %s", r.raw)
	}
	for _, d := range []time.Duration{time.Millisecond, 11 * time.Minute, -time.Second} {
		_, err := NewServer(ServerConfig{Issuer: on.is, Clients: on.server.cfg.Clients, ReplayStore: testReplay(t, on.is), PAR: &PARConfig{Lifetime: d}})
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Lifetime %v: %v", d, err)
		}
	}
}

// TestPARCheck: PARConfig.Check validates the pushed parameters (RFC 9126
// §2.1) after the other checks: a GrantError refuses with its code, any
// other error is server_error, and a refused request spends no proof.
func TestPARCheck(t *testing.T) {
	t.Parallel()
	var seen sync.Map
	h, rec := parHarness(t, false, PARConfig{Check: func(_ context.Context, c *Client, p map[string]string) error {
		seen.Store(p["state"], c.ID+" "+p["client_id"]+" "+p[ParamDPoPJKT])
		switch p["redirect_uri"] {
		case "https://app.example.test/cb":
			return nil
		case "https://broken.example.test/cb":
			return errors.New("registry down")
		}
		return GrantError(ErrInvalidRequest, "redirect_uri is not registered")
	}})
	c := h.client(nil)
	k1 := h.prover(nil)
	proof := h.proof(k1, h.parURL(), "")
	tests := []struct {
		name, redirect string
		status         int
		code           string
		reason         oautherr.Reason
	}{
		{"unregistered redirect_uri", "https://attacker.example/cb", 400, "invalid_request", oautherr.ReasonRequestMalformed},
		{"failing check", "https://broken.example.test/cb", 500, "server_error", oautherr.ReasonInternal},
		{"valid, with the same proof", "https://app.example.test/cb", 201, "", ""},
	}
	for i, tt := range tests {
		r := h.post(c, h.parURL(), authzForm("client_id", "public", "redirect_uri", tt.redirect, "state", strconv.Itoa(i)), map[string]string{"DPoP": proof})
		h.checkPARResponse(r)
		if r.status != tt.status || r.str("error") != tt.code {
			t.Fatalf("%s: %d %s", tt.name, r.status, r.raw)
		}
		if _, reason := rec.take(); reason != tt.reason {
			t.Errorf("%s: reason %q, want %q", tt.name, reason, tt.reason)
		}
		if v, _ := seen.Load(strconv.Itoa(i)); v != "public public "+k1.Thumbprint() {
			t.Errorf("%s: Check saw %v", tt.name, v)
		}
	}
}
