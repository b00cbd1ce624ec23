package conformance

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
)

// The authorization-code binding cases (RFC 9449 §10, §10.1): a code
// bound by dpop_jkt at the authorization endpoint or at the PAR endpoint
// (RFC 9126), or by a DPoP proof sent to the PAR endpoint, is redeemed
// with the bound key and with another. They need Target.Authorization; the
// PAR cases also the metadata, whose pushed_authorization_request_endpoint
// names the PAR endpoint. Each step runs its own flow, so that a code a
// refused redemption spent cannot decide another step.

// authzFlow is one authorization request the suite sends.
type authzFlow struct {
	par      bool       // push it first (RFC 9126)
	jkt      string     // dpop_jkt parameter, if any
	proof    *clientKey // DPoP proof on the PAR request, if any
	mutate   func(*jws) // applied to that proof
	verifier string     // PKCE code_verifier, set by start
}

// pkcePair returns a fresh PKCE verifier and its S256 challenge.
func pkcePair() (verifier, challenge string) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	verifier = base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// authorizationParams returns the parameters of a fresh authorization
// request with PKCE for verifier's challenge.
func (s *session) authorizationParams(challenge, state string) url.Values {
	a := s.t.Authorization
	p := url.Values{}
	for k, vs := range a.Params {
		p[k] = append([]string(nil), vs...)
	}
	p.Set("response_type", "code")
	p.Set("client_id", s.t.ClientID)
	p.Set("redirect_uri", a.RedirectURI)
	p.Set("state", state)
	p.Set("code_challenge", challenge)
	p.Set("code_challenge_method", "S256")
	if s.t.Scope != "" && p.Get("scope") == "" {
		p.Set("scope", s.t.Scope)
	}
	return p
}

// parEndpoint returns the metadata's PAR endpoint, or the verdict that
// makes the case not applicable.
func (r *run) parEndpoint() (string, *verdict) {
	md, _, v := r.metadata()
	if v != nil {
		return "", v
	}
	ep, _ := md["pushed_authorization_request_endpoint"].(string)
	if ep == "" {
		v := skipf("not applicable: the metadata advertises no pushed_authorization_request_endpoint (RFC 9126 §5)")
		return "", &v
	}
	if u, err := url.Parse(ep); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		v := failf("pushed_authorization_request_endpoint is not an http(s) URL")
		return "", &v
	}
	return ep, nil
}

// push sends a pushed authorization request with params to ep, with a
// DPoP proof by f.proof when set, and retries once with the server's nonce
// on use_dpop_nonce.
func (r *run) push(ep string, params url.Values, f *authzFlow) (*exchange, *verdict) {
	s := r.s
	org := origin(ep)
	var x *exchange
	for attempt := 0; attempt < 2; attempt++ {
		req, err := http.NewRequestWithContext(r.ctx, http.MethodPost, ep, strings.NewReader(params.Encode()))
		if err != nil {
			v := suitef("%s", sanitizeErr(err))
			return nil, &v
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		var secrets []string
		if s.t.ClientSecret != "" {
			req.SetBasicAuth(url.QueryEscape(s.t.ClientID), url.QueryEscape(s.t.ClientSecret))
			secrets = append(secrets, s.t.ClientSecret)
		}
		if f.proof != nil {
			p, err := s.proof(f.proof, http.MethodPost, ep, "", f.mutate)(s.nonces[org])
			if err != nil {
				v := suitef("building proof: %s", sanitizeErr(err))
				return nil, &v
			}
			req.Header.Set("DPoP", p)
			secrets = append(secrets, p)
		}
		x = r.note(s.do(s.plain, req, secrets))
		if x.err != nil {
			return x, nil
		}
		if n := x.header.Get("DPoP-Nonce"); n != "" {
			s.nonces[org] = n
		}
		if f.proof == nil || attempt > 0 || x.status != http.StatusBadRequest || x.errorCode("json") != "use_dpop_nonce" || x.header.Get("DPoP-Nonce") == "" {
			break
		}
	}
	return x, nil
}

// start sends the authorization request of f (pushing it first when
// f.par) and returns the code from the authorization endpoint's redirect.
// A refusal of the valid request is a verdict against the target.
func (r *run) start(f *authzFlow) (string, *exchange, *verdict) {
	s := r.s
	a := s.t.Authorization
	var challenge string
	f.verifier, challenge = pkcePair()
	state := randomID()
	params := s.authorizationParams(challenge, state)
	if f.jkt != "" {
		params.Set("dpop_jkt", f.jkt)
	}
	if f.par {
		ep, v := r.parEndpoint()
		if v != nil {
			return "", nil, v
		}
		x, v := r.push(ep, params, f)
		if v != nil {
			return "", x, v
		}
		ru, _ := x.json["request_uri"].(string)
		if x.err != nil || x.status != http.StatusCreated || ru == "" {
			r.fail = x
			v := failf("the PAR endpoint refused a valid pushed authorization request: %s", x.describe())
			return "", x, &v
		}
		params = url.Values{"client_id": {s.t.ClientID}, "request_uri": {ru}}
	}
	u := a.Endpoint
	if strings.Contains(u, "?") {
		u += "&" + params.Encode()
	} else {
		u += "?" + params.Encode()
	}
	req, err := http.NewRequestWithContext(r.ctx, http.MethodGet, u, nil)
	if err != nil {
		v := suitef("%s", sanitizeErr(err))
		return "", nil, &v
	}
	x := r.note(s.do(s.plain, req, nil))
	loc := ""
	if x.err == nil {
		loc = x.header.Get("Location")
	}
	code, why := codeFrom(loc, a.RedirectURI, state)
	if x.err != nil || (x.status != http.StatusFound && x.status != http.StatusSeeOther) || why != "" {
		r.fail = x
		if why == "" {
			why = x.describe()
		}
		v := failf("the authorization endpoint gave no code for a valid request: %s", why)
		return "", x, &v
	}
	return code, x, nil
}

// codeFrom reads the code of a redirect to redirectURI that carries state.
func codeFrom(loc, redirectURI, state string) (code, why string) {
	if loc == "" {
		return "", "no redirect"
	}
	base, query, _ := strings.Cut(loc, "?")
	if want, _, _ := strings.Cut(redirectURI, "?"); base != want {
		return "", "redirected to another URI than the redirect_uri"
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", "malformed redirect query"
	}
	if e := q.Get("error"); e != "" {
		return "", "redirected with error " + safeToken(e)
	}
	if q.Get("state") != state {
		return "", "the redirect does not carry the request's state"
	}
	if q.Get("code") == "" {
		return "", "the redirect carries no code"
	}
	return q.Get("code"), ""
}

// redeem exchanges code for a token with a proof by key.
func (r *run) redeem(f *authzFlow, code string, key *clientKey) (*exchange, *verdict) {
	q := tokReq{
		form: url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {r.s.t.Authorization.RedirectURI}, "code_verifier": {f.verifier}},
		secret: r.s.t.ClientSecret != "",
		proof:  r.s.proof(key, http.MethodPost, r.s.t.TokenEndpoint, "", nil),
	}
	return r.tok(q)
}

// bindStep runs flow f and redeems its code with key: the bound key must
// get a token bound to it (accept), any other key a refusal.
func bindStep(name string, f func(r *run) *authzFlow, key func(r *run) *clientKey, accept bool) step {
	st := step{name: name, accept: accept, want: wantCodeKey}
	st.do = func(r *run) (*exchange, *verdict) {
		fl := f(r)
		code, x, v := r.start(fl)
		if v != nil {
			return x, v
		}
		k := key(r)
		x, v = r.redeem(fl, code, k)
		if v != nil || !accept || accepted(x) != "" {
			return x, v
		}
		if it, err := parseIssued(x, k); err == nil && it.claims != nil {
			if got, _ := cnfMember(it.claims, "jkt"); got != k.jkt {
				v := failf("the token is not bound to the key of the authorization request (cnf.jkt %q)", safeToken(got))
				return x, &v
			}
		}
		return x, nil
	}
	return st
}

// parStep pushes flow f and grades the PAR endpoint's answer.
func parStep(name string, f func(r *run) *authzFlow, accept bool, ws []want) step {
	return step{name: name, accept: accept, want: ws, do: func(r *run) (*exchange, *verdict) {
		ep, v := r.parEndpoint()
		if v != nil {
			return nil, v
		}
		fl := f(r)
		_, challenge := pkcePair()
		params := r.s.authorizationParams(challenge, randomID())
		if fl.jkt != "" {
			params.Set("dpop_jkt", fl.jkt)
		}
		return r.push(ep, params, fl)
	}}
}

// wantCodeKey: a code redeemed with a key other than the bound one.
var wantCodeKey = []want{{400, "json", []string{"invalid_grant", "invalid_dpop_proof"}}}

func keyK1(r *run) *clientKey { return r.s.k1 }
func keyK2(r *run) *clientKey { return r.s.k2 }

// needPAR is what the PAR cases need.
const needPAR = CapDPoP | CapMetadata | CapAuthorization

// casesAuthorizationCode are the authorization-code binding cases.
var casesAuthorizationCode = []Case{
	Case{ID: "DPOP-AS-22", Title: "a code requested with dpop_jkt is redeemed only with that key", Section: "RFC 9449 §10", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupB, Needs: CapDPoP | CapAuthorization,
		Expect: "authorization request with dpop_jkt = jkt(K1); redeem with a K2 proof → 400 json:invalid_grant|invalid_dpop_proof; with K1 → 200, cnf.jkt = jkt(K1)",
		run: func(_ context.Context, r *run) verdict {
			flow := func(r *run) *authzFlow { return &authzFlow{jkt: r.s.k1.jkt} }
			return r.steps(bindStep("redeem with K2", flow, keyK2, false), bindStep("redeem with K1", flow, keyK1, true))
		}},
	Case{ID: "DPOP-AS-23", Title: "dpop_jkt is optional", Section: "RFC 9449 §10", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupB, Needs: CapDPoP | CapAuthorization,
		Expect: "authorization request without dpop_jkt; redeem with a K1 proof → 200, token_type DPoP, cnf.jkt = jkt(K1)",
		run: func(_ context.Context, r *run) verdict {
			return r.steps(bindStep("redeem with K1", func(*run) *authzFlow { return &authzFlow{} }, keyK1, true))
		}},
	Case{ID: "DPOP-AS-24", Title: "dpop_jkt in a pushed authorization request binds the code", Section: "RFC 9449 §10.1, RFC 9126", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupB, Needs: needPAR,
		Expect: "PAR body dpop_jkt = jkt(K1), no DPoP header; redeem with a K2 proof → 400 json:invalid_grant|invalid_dpop_proof; with K1 → 200, cnf.jkt = jkt(K1)",
		run: func(_ context.Context, r *run) verdict {
			flow := func(r *run) *authzFlow { return &authzFlow{par: true, jkt: r.s.k1.jkt} }
			return r.steps(bindStep("redeem with K2", flow, keyK2, false), bindStep("redeem with K1", flow, keyK1, true))
		}},
	Case{ID: "DPOP-AS-25", Title: "a DPoP proof at the PAR endpoint is checked and binds the code", Section: "RFC 9449 §10.1, §4.3", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupB, Needs: needPAR,
		Expect: "PAR with a K1 proof: redeem with K2 → 400 json:invalid_grant|invalid_dpop_proof, with K1 → 200; PAR with a bad signature, with htu of the token endpoint, with htm GET → 400 json:invalid_dpop_proof",
		run: func(_ context.Context, r *run) verdict {
			flow := func(r *run) *authzFlow { return &authzFlow{par: true, proof: r.s.k1} }
			bad := func(m func(r *run, j *jws)) func(r *run) *authzFlow {
				return func(r *run) *authzFlow {
					return &authzFlow{par: true, proof: r.s.k1, mutate: func(j *jws) { m(r, j) }}
				}
			}
			return r.steps(
				bindStep("K1 proof, redeem with K2", flow, keyK2, false),
				bindStep("K1 proof, redeem with K1", flow, keyK1, true),
				parStep("bad signature", bad(func(_ *run, j *jws) { j.flipSig = true }), false, wantASProof),
				parStep("htu of the token endpoint", bad(func(r *run, j *jws) { j.claims["htu"] = htuOf(r.s.t.TokenEndpoint) }), false, wantASProof),
				parStep("htm GET", bad(func(_ *run, j *jws) { j.claims["htm"] = http.MethodGet }), false, wantASProof),
			)
		}},
	Case{ID: "DPOP-AS-26", Title: "a PAR request whose dpop_jkt and DPoP proof disagree is refused", Section: "RFC 9449 §10.1", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupB, Needs: needPAR,
		Expect: "PAR with dpop_jkt = jkt(K2) and a K1 proof → 400 json:invalid_request|invalid_dpop_proof; with dpop_jkt = jkt(K1) and a K1 proof → 201",
		run: func(_ context.Context, r *run) verdict {
			return r.steps(
				parStep("dpop_jkt of K2, K1 proof", func(r *run) *authzFlow { return &authzFlow{par: true, jkt: r.s.k2.jkt, proof: r.s.k1} }, false,
					[]want{{400, "json", []string{"invalid_request", "invalid_dpop_proof"}}}),
				parStep("dpop_jkt of K1, K1 proof", func(r *run) *authzFlow { return &authzFlow{par: true, jkt: r.s.k1.jkt, proof: r.s.k1} }, true, nil),
			)
		}},
}
