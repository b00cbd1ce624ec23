package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// asProofStep sends a DPoP token request whose K1 proof is mutated.
func asProofStep(name string, mutate func(r *run, j *jws), accept bool, ws []want) step {
	return step{name: name, accept: accept, want: ws, do: func(r *run) (*exchange, *verdict) {
		var m func(*jws)
		if mutate != nil {
			m = func(j *jws) { mutate(r, j) }
		}
		return r.tok(r.s.dpopTokenRequest(r.s.k1, m))
	}}
}

var nqchar = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]+$`)

// needJWT skips a case whose token is not a decodable JWT.
func needJWT(it *issued) *verdict {
	if it.claims == nil {
		v := skipf("precondition: the access token is not a JWT the suite can decode")
		return &v
	}
	return nil
}

// metadata fetches and caches the metadata document.
func (r *run) metadata() (map[string]any, *exchange, *verdict) {
	req, err := http.NewRequestWithContext(r.ctx, http.MethodGet, r.s.t.MetadataURL, nil)
	if err != nil {
		v := suitef("%s", sanitizeErr(err))
		return nil, nil, &v
	}
	x := r.note(r.s.do(r.s.plain, req, nil))
	if x.err != nil || x.status != http.StatusOK || x.json == nil {
		r.fail = x
		v := failf("metadata: %s", x.describe())
		return nil, x, &v
	}
	return x.json, x, nil
}

// introspect posts token to the introspection endpoint.
func (r *run) introspect(token string, auth bool, method string) (*exchange, *verdict) {
	form := "token=" + urlQueryEscape(token)
	u := r.s.t.IntrospectionEndpoint
	var body *strings.Reader
	if method == http.MethodGet {
		u += "?" + form
		body = strings.NewReader("")
	} else {
		body = strings.NewReader(form)
	}
	req, err := http.NewRequestWithContext(r.ctx, method, u, body)
	if err != nil {
		v := suitef("%s", sanitizeErr(err))
		return nil, &v
	}
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if auth {
		req.SetBasicAuth(urlQueryEscape(r.s.t.IntrospectionClientID), urlQueryEscape(r.s.t.IntrospectionClientSecret))
	}
	return r.note(r.s.do(r.s.plain, req, []string{token, r.s.t.IntrospectionClientSecret})), nil
}

// tokenExchanges returns the run's exchanges with the token endpoint.
func (s *session) tokenExchanges() []*exchange {
	var out []*exchange
	for _, x := range s.log {
		if x.err == nil && x.method == http.MethodPost && htuOf(x.url) == htuOf(s.t.TokenEndpoint) {
			out = append(out, x)
		}
	}
	return out
}

// freshNonceState forgets nonces learnt from origin u.
func (s *session) freshNonceState(u string) { delete(s.nonces, origin(u)) }

// casesB are the DPoP cases at the token endpoint and issuer (group B).
var casesB = []Case{
	Case{ID: "DPOP-AS-01", Title: "a valid proof yields a token bound to the proof key, token_type DPoP", Section: "RFC 9449 §5, §6", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupB, Needs: CapDPoP,
		Expect: "token request with a K1 proof → 200, token_type DPoP, cnf.jkt = jkt(K1) when the token is a JWT",
		run: func(ctx context.Context, r *run) verdict {
			it, err := r.s.newDPoPToken(ctx, r.s.k1)
			if err != nil {
				r.fail = r.decisive()
				return failf("%s", sanitizeErr(err))
			}
			r.note(it.x)
			if it.claims == nil {
				return passf("token_type DPoP (opaque token: binding checked by DPOP-AS-12)")
			}
			if got, _ := cnfMember(it.claims, "jkt"); got != r.s.k1.jkt {
				return failf("cnf.jkt is %q, want the proof key's thumbprint", safeToken(got))
			}
			return passf("token_type DPoP, cnf.jkt matches the proof key")
		}},
	Case{ID: "DPOP-AS-02", Title: "an invalid proof at the token endpoint is invalid_dpop_proof", Section: "RFC 9449 §5", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupB, Needs: CapDPoP,
		Expect: "bad signature, htu of the resource, typ JWT → 400 json:invalid_dpop_proof; stale iat without a nonce, not retried → 400 json:invalid_dpop_proof or use_dpop_nonce",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(
				asProofStep("bad signature", func(_ *run, j *jws) { j.flipSig = true }, false, wantASProof),
				asProofStep("htu of the resource", func(r *run, j *jws) { j.claims["htu"] = htuOf(r.s.t.Resource) }, false, wantASProof),
				asProofStep("typ JWT", func(_ *run, j *jws) { j.header["typ"] = "JWT" }, false, wantASProof),
				// Without a nonce and without the nonce retry: a server may
				// take freshness from its nonce instead of iat (RFC 9449
				// §4.3 (11), §11.1), so use_dpop_nonce is a refusal too.
				step{name: "stale iat", want: or(wantASProof, []want{{400, "json", []string{"use_dpop_nonce"}}}), do: func(r *run) (*exchange, *verdict) {
					q := r.s.dpopTokenRequest(r.s.k1, func(j *jws) {
						j.claims["iat"] = r.s.now().Add(-15 * time.Minute).Unix()
						delete(j.claims, "nonce")
					})
					q.noRetry = true
					return r.tok(q)
				}},
			)
		}},
	Case{ID: "DPOP-AS-03", Title: "the token endpoint applies every §4.3 check with htu = the URL called", Section: "RFC 9449 §4.3, §5", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupB, Needs: CapDPoP,
		Expect: "htu of another endpoint, htm GET, jwk with d, alg none → 400 json:invalid_dpop_proof",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(
				asProofStep("htu of another endpoint", func(r *run, j *jws) { j.claims["htu"] = otherPath(r.s.t.TokenEndpoint) }, false, wantASProof),
				asProofStep("htm GET", func(_ *run, j *jws) { j.claims["htm"] = http.MethodGet }, false, wantASProof),
				asProofStep("jwk with d", func(r *run, j *jws) { j.header["jwk"] = json.RawMessage(r.s.k1.privJSON) }, false, wantASProof),
				asProofStep("alg none", func(_ *run, j *jws) { j.header["alg"] = "none"; j.unsigned = true }, false, wantASProof),
			)
		}},
	Case{ID: "DPOP-AS-05", Title: "cnf.jkt is the RFC 7638 SHA-256 thumbprint of the proof key (KAT-16)", Section: "RFC 9449 §6.1", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupB, Needs: CapDPoP,
		Expect: "ES256 proof by the RFC 7517 A.2 EC key → cnf.jkt cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s",
		run: func(ctx context.Context, r *run) verdict {
			return r.katBinding("cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s", nil)
		}},
	Case{ID: "DPOP-AS-06", Title: "a public client's refresh token is bound to the DPoP key", Section: "RFC 9449 §5", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupB, Needs: CapDPoP | CapRefreshGrant,
		Expect: "two refresh tokens of the public client from the refresh grant with K1 proofs: refresh one with a K2 proof → 400 [open: invalid_grant|invalid_dpop_proof]; the other with a K1 proof → 200, token_type DPoP, new access token bound to K1",
		run: func(ctx context.Context, r *run) verdict {
			a, v := r.dpopRefreshable(r.s.k1)
			if v != nil {
				return *v
			}
			b, v := r.dpopRefreshable(r.s.k1)
			if v != nil {
				return *v
			}
			var refreshed *exchange
			if v := r.steps(
				step{name: "refresh with K2", want: []want{{400, "json", []string{"invalid_grant", "invalid_dpop_proof"}}}, do: func(r *run) (*exchange, *verdict) {
					return r.tok(r.s.refreshRequest(a.refresh, r.s.k2, nil))
				}},
				step{name: "refresh with K1", accept: true, do: func(r *run) (*exchange, *verdict) {
					x, v := r.tok(r.s.refreshRequest(b.refresh, r.s.k1, nil))
					refreshed = x
					return x, v
				}},
			); v.status != StatusPass {
				return v
			}
			it, err := parseIssued(refreshed, r.s.k1)
			if err != nil {
				r.fail = refreshed
				return failf("refresh with K1: %s", sanitizeErr(err))
			}
			if !strings.EqualFold(it.tokenType, "DPoP") {
				r.fail = refreshed
				return failf("refresh with K1: token_type %q, not DPoP", safeToken(it.tokenType))
			}
			why, observed := r.boundTo(it, "jkt", r.s.k1.jkt)
			if why != "" {
				r.fail = refreshed
				return failf("refresh with K1: the new access token's cnf.jkt %s", why)
			}
			if !observed {
				return passf("K2 refused, K1 accepted with token_type DPoP (opaque token, binding not observable)")
			}
			return passf("K2 refused; K1 accepted and the new access token is bound to K1")
		}},
	Case{ID: "DPOP-AS-07", Title: "refreshing a key-bound refresh token without DPoP fails", Section: "RFC 9449 §5", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupB, Needs: CapDPoP | CapRefreshGrant,
		Expect: "refresh token of the public client from the refresh grant with a K1 proof; refresh without DPoP header → 400 [open: invalid_grant|invalid_dpop_proof|invalid_request]",
		run: func(ctx context.Context, r *run) verdict {
			a, v := r.dpopRefreshable(r.s.k1)
			if v != nil {
				return *v
			}
			return r.steps(step{name: "refresh without proof", want: []want{{400, "json", []string{"invalid_grant", "invalid_dpop_proof", "invalid_request"}}}, do: func(r *run) (*exchange, *verdict) {
				return r.tok(r.s.refreshRequest(a.refresh, nil, nil))
			}})
		}},
	Case{ID: "DPOP-AS-08", Title: "a confidential client's refresh with another key", Section: "RFC 9449 §5", Level: LevelRecord, Role: RoleTokenEndpoint, Group: GroupB, Needs: CapDPoP,
		Expect: "refresh token of the confidential client (client_credentials, else the refresh grant sent as the confidential client) obtained with a K1 proof; refresh with a K2 proof → recorded: status, and for a 200 whether cnf.jkt = jkt(K2)",
		run: func(ctx context.Context, r *run) verdict {
			if r.s.t.ClientSecret == "" {
				return skipf("precondition: needs a confidential client")
			}
			rt, why := "", "client_credentials issued none"
			if it, err := r.s.dpopToken(ctx); err == nil && it.refresh != "" {
				rt = it.refresh
			} else if r.s.t.RefreshGrant == nil {
				why += "; no refresh grant is configured"
			} else {
				x, fv := r.tok(r.s.refreshGrantRequest(r.s.k1, nil, true))
				if fv != nil {
					return *fv
				}
				switch it, err := parseIssued(x, r.s.k1); {
				case err != nil:
					why += "; the refresh grant: " + sanitizeErr(err)
				case it.refresh == "":
					why += "; the refresh grant issued none either"
				default:
					rt = it.refresh
				}
			}
			if rt == "" {
				return skipf("precondition: no refresh token for the confidential client (%s)", why)
			}
			q := r.s.dpopTokenRequest(r.s.k2, nil)
			q.form = url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
			x, fv := r.tok(q)
			if fv != nil {
				return *fv
			}
			if x.status >= 500 {
				return serverErrorf(x.status, "the target")
			}
			it, err := parseIssued(x, r.s.k2)
			if err != nil {
				return passf("recorded: refresh with K2 refused: %s", x.describe())
			}
			switch jkt, observed := r.bindingOf(it, "jkt"); {
			case !observed:
				return passf("recorded: refresh with K2 accepted, token_type %s (binding not observable)", safeToken(it.tokenType))
			case jkt == r.s.k2.jkt:
				return passf("recorded: refresh with K2 accepted, token_type %s, cnf.jkt = jkt(K2)", safeToken(it.tokenType))
			case jkt == r.s.k1.jkt:
				return passf("recorded: refresh with K2 accepted, token_type %s, cnf.jkt = jkt(K1)", safeToken(it.tokenType))
			case jkt == "":
				return passf("recorded: refresh with K2 accepted, token_type %s, no cnf.jkt", safeToken(it.tokenType))
			default:
				return passf("recorded: refresh with K2 accepted, token_type %s, cnf.jkt of neither key", safeToken(it.tokenType))
			}
		}},
	Case{ID: "DPOP-AS-09", Title: "token_type DPoP if and only if the token has cnf.jkt", Section: "RFC 9449 §5", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupB, Needs: CapDPoP,
		Expect: "over every token response of the run: token_type DPoP ⇔ access token has cnf.jkt",
		run: func(ctx context.Context, r *run) verdict {
			if _, fv := r.tok(r.s.dpopTokenRequest(r.s.k1, nil)); fv != nil {
				return *fv
			}
			if r.s.cert1 != nil {
				_, _ = r.s.newMTLSToken(ctx, r.s.cert1)
			}
			n := 0
			for _, x := range r.s.tokenExchanges() {
				it, err := parseIssued(x, nil)
				if err != nil || it.claims == nil {
					continue
				}
				n++
				_, bound := cnfMember(it.claims, "jkt")
				if strings.EqualFold(it.tokenType, "DPoP") != bound {
					r.fail = x
					return failf("token_type %q with cnf.jkt present=%v", safeToken(it.tokenType), bound)
				}
			}
			if n == 0 {
				return skipf("precondition: no decodable token responses")
			}
			return passf("%d token responses consistent", n)
		}},
	Case{ID: "DPOP-AS-10", Title: "dpop_signing_alg_values_supported lists the accepted proof algorithms", Section: "RFC 9449 §5.1", Level: LevelMust, Role: RoleMetadata, Group: GroupB, Needs: CapDPoP | CapMetadata,
		Expect: "non-empty array without none and HS*; a listed alg → 200; ES512 when unlisted → 400 json:invalid_dpop_proof",
		run: func(ctx context.Context, r *run) verdict {
			m, _, v := r.metadata()
			if v != nil {
				return *v
			}
			raw, ok := m["dpop_signing_alg_values_supported"].([]any)
			if !ok || len(raw) == 0 {
				return failf("dpop_signing_alg_values_supported missing or empty")
			}
			var algs []string
			for _, a := range raw {
				s, _ := a.(string)
				if s == "" || strings.EqualFold(s, "none") || strings.HasPrefix(strings.ToUpper(s), "HS") {
					return failf("dpop_signing_alg_values_supported lists %q", safeToken(s))
				}
				algs = append(algs, s)
			}
			if !containsFold(algs, "ES256") {
				return passf("algs %v (ES256 not listed; acceptance not probed)", algs)
			}
			ss := []step{asProofStep("listed alg ES256", nil, true, nil)}
			if !containsFold(algs, "ES512") {
				ck, err := generateKeyFor(jose.ES512)
				if err != nil {
					return suitef("%v", err)
				}
				ss = append(ss, step{name: "unlisted alg ES512", want: wantASProof, do: func(r *run) (*exchange, *verdict) {
					return r.tok(r.s.dpopTokenRequest(ck, nil))
				}})
			}
			return r.steps(ss...)
		}},
	Case{ID: "DPOP-AS-12", Title: "introspection of a DPoP token returns cnf.jkt", Section: "RFC 9449 §6.2; RFC 7662 §2.2", Level: LevelMust, Role: RoleIntrospection, Group: GroupB, Needs: CapDPoP | CapIntrospection,
		Expect: "POST introspection token=AT1 → active true, cnf.jkt = jkt(K1), token_type absent or DPoP",
		run: func(ctx context.Context, r *run) verdict {
			it, v := r.needDPoP()
			if v != nil {
				return *v
			}
			x, fv := r.introspect(it.access, true, http.MethodPost)
			if fv != nil {
				return *fv
			}
			r.fail = x
			if x.status != http.StatusOK || x.json == nil {
				return failf("introspection: %s", x.describe())
			}
			if x.json["active"] != true {
				return failf("active is not true")
			}
			if got, _ := cnfMember(x.json, "jkt"); got != r.s.k1.jkt {
				return failf("cnf.jkt %q, want jkt(K1)", safeToken(got))
			}
			if tt, ok := x.json["token_type"]; ok && tt != "DPoP" {
				return failf("token_type %v, want DPoP", tt)
			}
			r.fail = nil
			return passf("active, cnf.jkt matches")
		}},
	Case{ID: "DPOP-AS-13", Title: "introspection needs no DPoP proof", Section: "RFC 9449 §6.2", Level: LevelMust, Role: RoleIntrospection, Group: GroupB, Needs: CapDPoP | CapIntrospection,
		Expect: "introspection without a DPoP header → 200 with active true",
		run: func(ctx context.Context, r *run) verdict {
			it, v := r.needDPoP()
			if v != nil {
				return *v
			}
			x, fv := r.introspect(it.access, true, http.MethodPost)
			if fv != nil {
				return *fv
			}
			if x.status != http.StatusOK || x.json["active"] != true {
				r.fail = x
				return failf("introspection: %s", x.describe())
			}
			return passf("active without a proof")
		}},
	Case{ID: "DPOP-AS-14", Title: "a nonce-demanding AS answers use_dpop_nonce with one DPoP-Nonce", Section: "RFC 9449 §8", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupB, Needs: CapDPoP | CapTokenNonce,
		Expect: "proof without nonce → 400 json:use_dpop_nonce and exactly one DPoP-Nonce",
		run: func(ctx context.Context, r *run) verdict {
			r.s.freshNonceState(r.s.t.TokenEndpoint)
			q := r.s.dpopTokenRequest(r.s.k1, nil)
			q.noRetry = true
			x, fv := r.tok(q)
			if fv != nil {
				return *fv
			}
			r.fail = x
			if g := gradeRefusal(x, []want{{400, "json", []string{"use_dpop_nonce"}}}); g.tier != TierPass {
				return g.wrap("%s", g.reason)
			}
			if n := len(x.header.Values("DPoP-Nonce")); n != 1 {
				return failf("%d DPoP-Nonce headers, want 1", n)
			}
			r.fail = nil
			return passf("use_dpop_nonce with one DPoP-Nonce")
		}},
	Case{ID: "DPOP-AS-15", Title: "nonces cannot be predicted", Section: "RFC 9449 §8", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupB, Needs: CapDPoP | CapTokenNonce,
		Expect: "30 nonces from the token endpoint: not a bare counter or timestamp, at least 22 characters (a nonce may repeat: RFC 9449 §11.1)",
		run: func(ctx context.Context, r *run) verdict {
			return r.nonceSample(func() (*exchange, *verdict) {
				r.s.freshNonceState(r.s.t.TokenEndpoint)
				q := r.s.dpopTokenRequest(r.s.k1, nil)
				q.noRetry = true
				return r.tok(q)
			})
		}},
	Case{ID: "DPOP-AS-16", Title: "a nonce that matches no recent AS nonce is refused", Section: "RFC 9449 §8", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupB, Needs: CapDPoP | CapTokenNonce,
		Expect: "proof with a random nonce → 400 json:use_dpop_nonce (+ new DPoP-Nonce)",
		run: func(ctx context.Context, r *run) verdict {
			bogus := randomID()
			return r.steps(step{name: "random nonce", want: []want{{400, "json", []string{"use_dpop_nonce"}}}, do: func(r *run) (*exchange, *verdict) {
				q := r.s.dpopTokenRequest(r.s.k1, func(j *jws) { j.claims["nonce"] = bogus })
				q.noRetry = true
				return r.tok(q)
			}})
		}},
	Case{ID: "DPOP-AS-17", Title: "no AS response carries more than one DPoP-Nonce", Section: "RFC 9449 §8", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupB, Needs: CapDPoP,
		Expect: "count DPoP-Nonce on every token-endpoint response of the run → ≤ 1",
		run: func(ctx context.Context, r *run) verdict {
			r.note(mustTok(r, r.s.dpopTokenRequest(r.s.k1, nil)))
			xs := r.s.tokenExchanges()
			for _, x := range xs {
				if n := len(x.header.Values("DPoP-Nonce")); n > 1 {
					r.fail = x
					return failf("a response carried %d DPoP-Nonce headers", n)
				}
			}
			return passf("%d responses checked", len(xs))
		}},
	Case{ID: "DPOP-AS-18", Title: "DPoP-Nonce values match 1*NQCHAR", Section: "RFC 9449 §8.1", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupB, Needs: CapDPoP,
		Expect: "every DPoP-Nonce seen in the run matches ^[\\x21\\x23-\\x5B\\x5D-\\x7E]+$",
		run: func(ctx context.Context, r *run) verdict {
			r.warmUp()
			n := 0
			for _, x := range r.s.log {
				for _, v := range x.header.Values("DPoP-Nonce") {
					n++
					if !nqchar.MatchString(v) {
						r.fail = x
						return failf("a DPoP-Nonce value has characters outside NQCHAR")
					}
				}
			}
			if n == 0 {
				return skipf("precondition: no DPoP-Nonce was seen in this run")
			}
			return passf("%d nonce values checked", n)
		}},
	Case{ID: "DPOP-AS-19", Title: "a 200 carrying DPoP-Nonce is not cacheable", Section: "RFC 9449 §8.2", Level: LevelShould, Role: RoleTokenEndpoint, Group: GroupB, Needs: CapDPoP,
		Expect: "every 2xx with DPoP-Nonce in the run has Cache-Control: no-store",
		run: func(ctx context.Context, r *run) verdict {
			r.warmUp()
			n := 0
			for _, x := range r.s.log {
				if x.status/100 == 2 && x.header.Get("DPoP-Nonce") != "" {
					n++
					if !strings.Contains(strings.ToLower(x.header.Get("Cache-Control")), "no-store") {
						r.fail = x
						return failf("a 2xx with DPoP-Nonce lacks Cache-Control: no-store")
					}
				}
			}
			if n == 0 {
				return skipf("precondition: no 2xx response carried DPoP-Nonce")
			}
			return passf("%d responses checked", n)
		}},
	Case{ID: "DPOP-AS-20", Title: "once a nonce was given, a proof without nonce is refused", Section: "RFC 9449 §11.3", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupB, Needs: CapDPoP | CapTokenNonce,
		Expect: "obtain a nonce, then a proof without nonce → 400 json:use_dpop_nonce",
		run: func(ctx context.Context, r *run) verdict {
			if _, err := r.s.newDPoPToken(ctx, r.s.k1); err != nil {
				return skipf("precondition: %s", sanitizeErr(err))
			}
			return r.steps(step{name: "no nonce after one was issued", want: []want{{400, "json", []string{"use_dpop_nonce"}}}, do: func(r *run) (*exchange, *verdict) {
				q := r.s.dpopTokenRequest(r.s.k1, func(j *jws) { delete(j.claims, "nonce") })
				q.noRetry = true
				return r.tok(q)
			}})
		}},
	Case{ID: "DPOP-AS-21", Title: "a nonce works only at the server that issued it", Section: "RFC 9449 §9", Level: LevelShould, Role: RoleTokenEndpoint, Group: GroupB, Needs: CapDPoP | CapTokenNonce | CapNonce,
		Expect: "RS nonce at the AS → 400 json:use_dpop_nonce; AS nonce at the RS → 401 DPoP:use_dpop_nonce",
		run: func(ctx context.Context, r *run) verdict {
			it, v := r.needDPoP()
			if v != nil {
				return *v
			}
			// Learn one nonce from each server.
			r.s.freshNonceState(r.s.t.Resource)
			q := r.dpopReq(it, r.s.k1, nil)
			q.noRetry = true
			x, fv := r.rs(q)
			if fv != nil {
				return *fv
			}
			rsNonce := x.header.Get("DPoP-Nonce")
			r.s.freshNonceState(r.s.t.TokenEndpoint)
			tq := r.s.dpopTokenRequest(r.s.k1, nil)
			tq.noRetry = true
			y, fv := r.tok(tq)
			if fv != nil {
				return *fv
			}
			asNonce := y.header.Get("DPoP-Nonce")
			if rsNonce == "" || asNonce == "" {
				return skipf("precondition: could not learn a nonce from both servers")
			}
			return r.steps(
				step{name: "RS nonce at the AS", want: []want{{400, "json", []string{"use_dpop_nonce"}}}, do: func(r *run) (*exchange, *verdict) {
					q := r.s.dpopTokenRequest(r.s.k1, func(j *jws) { j.claims["nonce"] = rsNonce })
					q.noRetry = true
					return r.tok(q)
				}},
				step{name: "AS nonce at the RS", want: []want{{401, "DPoP", []string{"use_dpop_nonce", "invalid_dpop_proof"}}}, do: func(r *run) (*exchange, *verdict) {
					q := r.dpopReq(it, r.s.k1, func(j *jws) { j.claims["nonce"] = asNonce })
					q.noRetry = true
					return r.rs(q)
				}},
			)
		}},
	Case{ID: "DPOP-AS-27", Title: "token responses are not cacheable", Section: "RFC 6749 §5.1", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupB,
		Expect: "every 200 from the token endpoint in the run has Cache-Control: no-store",
		run: func(ctx context.Context, r *run) verdict {
			if r.s.caps&CapDPoP != 0 {
				_, _ = r.s.newDPoPToken(ctx, r.s.k1)
			} else if r.s.cert1 != nil {
				_, _ = r.s.newMTLSToken(ctx, r.s.cert1)
			}
			n := 0
			for _, x := range r.s.tokenExchanges() {
				if x.status != http.StatusOK {
					continue
				}
				n++
				if !strings.Contains(strings.ToLower(x.header.Get("Cache-Control")), "no-store") {
					r.fail = x
					return failf("a 200 token response lacks Cache-Control: no-store")
				}
			}
			if n == 0 {
				return skipf("precondition: no successful token response")
			}
			return passf("%d token responses checked", n)
		}},
	Case{ID: "DPOP-AS-28", Title: "without nonces, DPoP tokens are short-lived", Section: "RFC 9449 §11.2", Level: LevelShould, Role: RoleTokenEndpoint, Group: GroupB, Needs: CapDPoP,
		Expect: "no nonce mode → expires_in ≤ 3600",
		run: func(ctx context.Context, r *run) verdict {
			if r.s.t.TokenEndpointNonceRequired {
				return skipf("precondition: the token endpoint uses nonces")
			}
			it, v := r.needDPoP()
			if v != nil {
				return *v
			}
			if it.expiresIn == 0 {
				if exp, ok := it.claims["exp"].(float64); ok {
					it.expiresIn = exp - float64(r.s.now().Unix())
				}
			}
			if it.expiresIn <= 0 {
				return skipf("precondition: lifetime not observable")
			}
			if it.expiresIn > 3600 {
				return failf("lifetime %.0f s", it.expiresIn)
			}
			return passf("lifetime %.0f s", it.expiresIn)
		}},
	Case{ID: "DPOP-AS-29", Title: "DPoP does not authenticate the client; it combines with mTLS", Section: "RFC 9449 §3, §5, §11.11", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupB, Needs: CapDPoP,
		Expect: "confidential client id with a proof but no credentials → 400/401 invalid_client; mTLS client auth plus proof → recorded (RFC 9449 §5 makes a DPoP-bound token a MAY), but a DPoP token must carry cnf.jkt = jkt(K1)",
		run: func(ctx context.Context, r *run) verdict {
			if r.s.t.ClientSecret == "" {
				return skipf("precondition: needs a confidential client")
			}
			ss := []step{{name: "proof without client credentials", want: []want{{400, "json", []string{"invalid_client"}}, {401, "json", []string{"invalid_client"}}}, do: func(r *run) (*exchange, *verdict) {
				q := r.s.dpopTokenRequest(r.s.k1, nil)
				q.secret = false
				return r.tok(q)
			}}}
			v := r.steps(ss...)
			if v.status != StatusPass || r.s.cert1 == nil {
				return v
			}
			q := r.s.dpopTokenRequest(r.s.k1, nil)
			q.secret, q.client, q.clientID = false, r.s.cert1, r.s.t.mtlsClientID()
			x, fv := r.tok(q)
			if fv != nil {
				return *fv
			}
			r.checks = append(r.checks, r.checkOf("mTLS + proof", r.mtlsPlusProof(x), x))
			return r.summarize(r.checks, len(r.checks))
		}},
}

// mtlsPlusProof grades the answer to a proof from a client authenticated
// by its certificate. Issuing a DPoP-bound token to such a client is a MAY
// (RFC 9449 §5), so a refusal or an unbound answer is recorded; a DPoP
// token bound to another key than the proof's is a failure.
func (r *run) mtlsPlusProof(x *exchange) verdict {
	it, err := parseIssued(x, r.s.k1)
	if err != nil {
		v := recordf("not issued (%s); RFC 9449 §5 makes a DPoP-bound token for this client a MAY", sanitizeErr(err))
		v.level = LevelRecord
		return v
	}
	if !strings.EqualFold(it.tokenType, "DPoP") {
		v := recordf("token_type %q: the proof was not used; RFC 9449 §5 makes a DPoP-bound token for this client a MAY", safeToken(it.tokenType))
		v.level = LevelRecord
		return v
	}
	if it.claims != nil {
		if got, _ := cnfMember(it.claims, "jkt"); got != r.s.k1.jkt {
			r.fail = x
			return failf("token_type DPoP, but cnf.jkt does not match the proof key")
		}
	}
	return passf("token_type DPoP, bound to the proof key")
}

// refreshable sends q, a request of the refresh grant, and returns what it
// issued; a refusal or a response without a refresh token is a skip.
func (r *run) refreshable(q tokReq) (*issued, *verdict) {
	x, fv := r.tok(q)
	if fv != nil {
		return nil, fv
	}
	it, err := parseIssued(x, nil)
	if err != nil {
		v := skipf("precondition: the refresh grant: %s", sanitizeErr(err))
		return nil, &v
	}
	if it.refresh == "" {
		v := skipf("precondition: the refresh grant issued no refresh token")
		return nil, &v
	}
	return it, nil
}

// dpopRefreshable obtains through the refresh grant a DPoP-bound access
// token and a refresh token of the public client with a proof by key. A
// token_type other than DPoP is a skip; an access token bound to another
// key is a failure.
func (r *run) dpopRefreshable(key *clientKey) (*issued, *verdict) {
	it, v := r.refreshable(r.s.refreshGrantRequest(key, nil, false))
	if v != nil {
		return nil, v
	}
	it.key = key
	if !strings.EqualFold(it.tokenType, "DPoP") {
		v := skipf("precondition: the refresh grant with a proof issued token_type %q, not DPoP", safeToken(it.tokenType))
		return nil, &v
	}
	if why, _ := r.boundTo(it, "jkt", key.jkt); why != "" {
		r.fail = it.x
		v := failf("the refresh grant's access token: cnf.jkt %s", why)
		return nil, &v
	}
	return it, nil
}

// bindingOf returns the access token's cnf member, read from its claims or,
// for an opaque token, by introspection; observed is false when neither
// shows it (an opaque token without introspection, or one introspection
// calls inactive).
func (r *run) bindingOf(it *issued, member string) (val string, observed bool) {
	if it.claims != nil {
		val, _ = cnfMember(it.claims, member)
		return val, true
	}
	if r.s.caps&CapIntrospection == 0 {
		return "", false
	}
	x, fv := r.introspect(it.access, true, http.MethodPost)
	if fv != nil || x.status != http.StatusOK || x.json["active"] != true {
		return "", false
	}
	val, _ = cnfMember(x.json, member)
	return val, true
}

// boundTo says why the access token's cnf member is not want ("" when it
// is, or when the binding is not observable, then observed is false).
func (r *run) boundTo(it *issued, member, want string) (why string, observed bool) {
	got, observed := r.bindingOf(it, member)
	switch {
	case !observed || got == want:
		return "", observed
	case got == "":
		return "is absent", true
	}
	return fmt.Sprintf("is %q, want %s", safeToken(got), want), true
}

// katBinding requests a token with a proof by a fixed key and checks cnf.jkt.
func (r *run) katBinding(want string, mutate func(*jws)) verdict {
	key, err := rfc7517ECKey()
	if err != nil {
		return suitef("%v", err)
	}
	x, fv := r.tok(r.s.dpopTokenRequest(key, mutate))
	if fv != nil {
		return *fv
	}
	it, err := parseIssued(x, key)
	if err != nil {
		r.fail = x
		return failf("%s", sanitizeErr(err))
	}
	got, ok := cnfMember(it.claims, "jkt")
	if !ok && r.s.caps&CapIntrospection != 0 {
		y, fv := r.introspect(it.access, true, http.MethodPost)
		if fv != nil {
			return *fv
		}
		got, ok = cnfMember(y.json, "jkt")
	}
	if !ok {
		return skipf("precondition: cnf.jkt not observable (opaque token, no introspection)")
	}
	if got != want {
		return failf("cnf.jkt %q, want %s", safeToken(got), want)
	}
	return passf("cnf.jkt = %s", want)
}

// nonceSample collects 30 nonces and checks that they cannot be
// predicted: not bare numbers (a counter or a timestamp) and at least 22
// characters (128 bits in base64url). It does not require a new nonce per
// response: RFC 9449 §11.1 lets a server accept one nonce several times.
// That a nonce works only at the server that issued it is DPOP-AS-21's
// check; that an unknown nonce is refused, DPOP-AS-16's and ERR-15's.
func (r *run) nonceSample(get func() (*exchange, *verdict)) verdict {
	seen := map[string]bool{}
	digitsOnly := true
	short := false
	for i := 0; i < 30; i++ {
		x, v := get()
		if v != nil {
			return *v
		}
		n := x.header.Get("DPoP-Nonce")
		if n == "" {
			r.fail = x
			return failf("response %d carried no DPoP-Nonce", i+1)
		}
		seen[n] = true
		if strings.Trim(n, "0123456789") != "" {
			digitsOnly = false
		}
		if len(n) < 22 {
			short = true
		}
	}
	if digitsOnly {
		return attackf("nonces are bare numbers (counter or timestamp)")
	}
	if short {
		return failf("a nonce is shorter than 22 characters (under 128 bits)")
	}
	return passf("30 nonces, %d distinct, none a bare number or shorter than 22 characters", len(seen))
}

// warmUp makes sure the run has material for the audit cases: one DPoP
// token request and one DPoP resource request (each with the nonce retry).
func (r *run) warmUp() {
	if r.s.caps&CapDPoP == 0 {
		return
	}
	if it, err := r.s.dpopToken(r.ctx); err == nil {
		_, _ = r.rs(r.dpopReq(it, r.s.k1, nil))
	}
}

func mustTok(r *run, q tokReq) *exchange {
	x, err := r.s.token(r.ctx, q)
	if err != nil {
		return nil
	}
	return x
}

func generateKeyFor(alg jose.SignatureAlgorithm) (*clientKey, error) {
	switch alg {
	case jose.ES384, jose.ES512:
		return genEC(alg)
	}
	return nil, fmt.Errorf("unsupported %s", alg)
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }
