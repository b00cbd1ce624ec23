package conformance

import (
	"context"
	"net/http"
	"strings"
	"time"
)

// challengeCharsOK reports whether v stays within %x20-21 / %x23-5B / %x5D-7E.
func challengeCharsOK(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 0x20 || c == '"' || c == '\\' || c > 0x7e {
			return false
		}
	}
	return true
}

// unauthenticated sends a request without credentials.
func (r *run) unauthenticated() (*exchange, *verdict) {
	return r.rs(rsReq{})
}

// casesC are the challenge, error response and DPoP-Nonce cases (group
// C).
var casesC = []Case{
	Case{ID: "ERR-01", Title: "no credentials → 401 with a DPoP challenge", Section: "RFC 6750 §3; RFC 9449 §7.1", Level: LevelMust, Role: RoleResource, Group: GroupC, Needs: CapDPoP,
		Expect: "request without Authorization → 401 with WWW-Authenticate including a DPoP challenge",
		run: func(ctx context.Context, r *run) verdict {
			x, v := r.unauthenticated()
			if v != nil {
				return *v
			}
			r.fail = x
			if x.err != nil || x.status != http.StatusUnauthorized {
				return failf("got %s, want 401", x.describe())
			}
			if x.chErr != nil {
				return failf("WWW-Authenticate does not parse")
			}
			if _, ok := findChallenge(x.challenges, "DPoP"); !ok {
				return failf("no DPoP challenge")
			}
			r.fail = nil
			return passf("401 with a DPoP challenge")
		}},
	Case{ID: "ERR-02", Title: "challenges to an unauthenticated request carry no error", Section: "RFC 6750 §3.1; RFC 9449 §7.2", Level: LevelShould, Role: RoleResource, Group: GroupC,
		Expect: "request without Authorization → no error= in any challenge",
		run: func(ctx context.Context, r *run) verdict {
			x, v := r.unauthenticated()
			if v != nil {
				return *v
			}
			if len(x.challenges) == 0 {
				r.fail = x
				return failf("no challenge: %s", x.describe())
			}
			for _, c := range x.challenges {
				if _, ok := c.Param("error"); ok {
					r.fail = x
					return failf("%s challenge carries error", safeToken(c.Scheme))
				}
			}
			return passf("no error information")
		}},
	Case{ID: "ERR-03", Title: "the DPoP challenge advertises algs", Section: "RFC 9449 §7.1", Level: LevelShould, Role: RoleResource, Group: GroupC, Needs: CapDPoP,
		Expect: "DPoP challenge has algs: space-separated, non-empty, no none, no HS*",
		run: func(ctx context.Context, r *run) verdict {
			x, v := r.unauthenticated()
			if v != nil {
				return *v
			}
			c, ok := findChallenge(x.challenges, "DPoP")
			if !ok {
				r.fail = x
				return failf("no DPoP challenge")
			}
			algs, ok := c.Param("algs")
			if !ok || strings.TrimSpace(algs) == "" {
				r.fail = x
				return failf("no algs parameter")
			}
			for _, a := range strings.Fields(algs) {
				if strings.EqualFold(a, "none") || strings.HasPrefix(strings.ToUpper(a), "HS") {
					r.fail = x
					return failf("algs lists %s", safeToken(a))
				}
			}
			return passf("algs %q", safeToken(algs))
		}},
	Case{ID: "ERR-04", Title: "a presented token that fails carries error in the challenge", Section: "RFC 6750 §3; RFC 9449 §7.1", Level: LevelShould, Role: RoleResource, Group: GroupC, Needs: CapDPoP | CapIssuerKey,
		Expect: "expired AT1 with a valid proof → 401 DPoP:invalid_token",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(forgedStep("expired token", func(r *run, j *jws) { j.claims["exp"] = r.s.now().Add(-5 * time.Minute).Unix() }, false, wantDPoPToken))
		}},
	Case{ID: "ERR-05", Title: "a proof failing §4.3 is reported as invalid_dpop_proof", Section: "RFC 9449 §7.1, §12.2", Level: LevelMust, Role: RoleResource, Group: GroupC, Needs: CapDPoP,
		Expect: "bad proof signature → 401 DPoP:invalid_dpop_proof (exact code)",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(proofStep("bad signature", func(_ *run, j *jws) { j.flipSig = true }, false, wantProof))
		}},
	Case{ID: "ERR-06", Title: "a failed key binding is reported as invalid_token", Section: "RFC 9449 §7.1 (Fig. 16)", Level: LevelMust, Role: RoleResource, Group: GroupC, Needs: CapDPoP,
		Expect: "AT1 with a valid K2 proof → 401 DPoP:invalid_token (exact code)",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(step{name: "K2 proof with AT1", want: wantDPoPToken, do: func(r *run) (*exchange, *verdict) {
				it, v := r.needDPoP()
				if v != nil {
					return nil, v
				}
				return r.rs(r.dpopReq(it, r.s.k2, nil))
			}})
		}},
	Case{ID: "ERR-07", Title: "insufficient scope → 403 insufficient_scope", Section: "RFC 6750 §3.1", Level: LevelShould, Role: RoleResource, Group: GroupC, Needs: CapDPoP | CapIssuerKey,
		Expect: "AT1 re-issued without any scope, at a resource that requires Target.ResourceScope → 403, error=\"insufficient_scope\"",
		run: func(ctx context.Context, r *run) verdict {
			if r.s.t.ResourceScope == "" {
				return skipf("precondition: no scope the resource requires is configured (--resource-scope)")
			}
			return r.steps(forgedStep("token without scope", func(_ *run, j *jws) { delete(j.claims, "scope") }, false,
				[]want{{403, "DPoP", []string{"insufficient_scope"}}}))
		}},
	Case{ID: "ERR-08", Title: "challenge parameters appear at most once", Section: "RFC 6750 §3; RFC 9110 §11.2", Level: LevelMust, Role: RoleResource, Group: GroupC,
		Expect: "every challenge of the run parses; realm, scope, error, error_description, error_uri at most once each",
		run: func(ctx context.Context, r *run) verdict {
			_, _ = r.unauthenticated()
			_, _ = r.rs(rsReq{scheme: "Bearer", token: "conformance-invalid-token-" + randomID()})
			n := 0
			for _, x := range r.s.log {
				if x.chErr != nil {
					r.fail = x
					return failf("a WWW-Authenticate value does not parse as a challenge list")
				}
				for _, c := range x.challenges {
					n++
					for _, p := range []string{"realm", "scope", "error", "error_description", "error_uri"} {
						if c.Count(p) > 1 {
							r.fail = x
							return failf("%s challenge repeats %s", safeToken(c.Scheme), p)
						}
					}
				}
			}
			if n == 0 {
				return skipf("precondition: no challenge seen")
			}
			return passf("%d challenges checked", n)
		}},
	Case{ID: "ERR-09", Title: "error strings stay in range and do not reflect input", Section: "RFC 6750 §3", Level: LevelMust, Role: RoleResource, Group: GroupC, Needs: CapDPoP,
		Expect: "failures triggered with htu/jti holding \", \\, non-ASCII and CR LF → challenge values within %x20-21/%x23-5B/%x5D-7E, input not reflected",
		run: func(ctx context.Context, r *run) verdict {
			marker := "zq" + randomID()
			evil := []string{marker + "\"\\", marker + "é☃", marker + "\r\nX-Injected: 1"}
			for _, e := range evil {
				for _, claim := range []string{"htu", "jti"} {
					e, claim := e, claim
					it, v := r.needDPoP()
					if v != nil {
						return *v
					}
					x, fv := r.rs(r.dpopReq(it, r.s.k1, func(j *jws) {
						j.claims[claim] = e
						// A hostile jti is a legal jti: add a fault so that the
						// request fails after the claims were read.
						j.claims["htm"] = otherMethod(r.s.t.method())
					}))
					if fv != nil {
						return *fv
					}
					if g := gradeRefusal(x, wantAny4xx); g.tier != TierPass {
						r.fail = x
						return g.wrap("%s with hostile characters: %s", claim, g.reason)
					}
					for _, c := range x.challenges {
						for _, p := range c.Params {
							if (p.Name == "error" || p.Name == "error_description") && !challengeCharsOK(p.Value) {
								r.fail = x
								return failf("%s holds characters outside the allowed set", p.Name)
							}
						}
					}
					for _, v := range x.header.Values("WWW-Authenticate") {
						if strings.Contains(v, marker) {
							r.fail = x
							return attackf("challenge reflects the attacker's %s", claim)
						}
					}
					if x.header.Get("X-Injected") != "" {
						r.fail = x
						return attackf("header injection")
					}
				}
			}
			return passf("6 hostile variants refused cleanly")
		}},
	Case{ID: "ERR-10", Title: "a Bearer challenge carries at least one auth-param", Section: "RFC 6750 §3", Level: LevelShould, Role: RoleResource, Group: GroupC,
		Expect: "every Bearer challenge of the run has a parameter (a bare Bearer warns; RFC 9449 Fig. 17 shows one)",
		run: func(ctx context.Context, r *run) verdict {
			_, _ = r.unauthenticated()
			n := 0
			for _, x := range r.s.log {
				for _, c := range x.challenges {
					if strings.EqualFold(c.Scheme, "Bearer") {
						n++
						if len(c.Params) == 0 && c.Token68 == "" {
							r.fail = x
							return failf("bare Bearer challenge")
						}
					}
				}
			}
			if n == 0 {
				return skipf("precondition: no Bearer challenge seen")
			}
			return passf("%d Bearer challenges checked", n)
		}},
	Case{ID: "ERR-11", Title: "only the attempted scheme's challenge carries the error", Section: "RFC 9449 §7.2", Level: LevelShould, Role: RoleResource, Group: GroupC, Needs: CapDPoP,
		Expect: "Authorization: Bearer <invalid> → 401, Bearer error=\"invalid_token\", DPoP challenge without error (a DPoP-only resource: a DPoP challenge without error)",
		run: func(ctx context.Context, r *run) verdict {
			x, v := r.rs(rsReq{scheme: "Bearer", token: "conformance-invalid-" + randomID()})
			if v != nil {
				return *v
			}
			_, bearer := findChallenge(x.challenges, "Bearer")
			if c, ok := findChallenge(x.challenges, "DPoP"); ok && !bearer && x.status == 401 {
				if _, has := c.Param("error"); !has {
					return passf("Bearer is not offered; the DPoP challenge carries no error (RFC 6750 §3.1)")
				}
			}
			if g := gradeRefusal(x, wantBearerTok); g.tier != TierPass {
				r.fail = x
				return g.wrap("%s", g.reason)
			}
			if c, ok := findChallenge(x.challenges, "DPoP"); ok {
				if _, has := c.Param("error"); has {
					r.fail = x
					return failf("the DPoP challenge carries an error too")
				}
			}
			return passf("error only on the Bearer challenge")
		}},
	Case{ID: "ERR-12", Title: "a token sent by more than one method is a malformed request", Section: "RFC 6750 §2, §3.1; RFC 9449 §7.2", Level: LevelMust, Role: RoleResource, Group: GroupC, Needs: CapDPoP,
		Expect: "Bearer AT1 and DPoP AT1 fields; header plus ?access_token= → 400 invalid_request (never 2xx)",
		run: func(ctx context.Context, r *run) verdict {
			ws := []want{{400, "any", []string{"invalid_request"}}, {400, "json", []string{"invalid_request"}}, {400, "", nil}, {401, "", nil}}
			return r.steps(
				step{name: "two Authorization fields", want: ws, do: func(r *run) (*exchange, *verdict) {
					it, v := r.needDPoP()
					if v != nil {
						return nil, v
					}
					q := r.dpopReq(it, r.s.k1, nil)
					q.headers = []header{{"Authorization", "Bearer " + it.access}}
					return r.rs(q)
				}},
				step{name: "header plus access_token query", want: ws, do: func(r *run) (*exchange, *verdict) {
					it, v := r.needDPoP()
					if v != nil {
						return nil, v
					}
					q := r.dpopReq(it, r.s.k1, nil)
					q.query = "access_token=" + urlQueryEscape(it.access)
					return r.rs(q)
				}},
			)
		}},
	Case{ID: "ERR-13", Title: "a DPoP-bound token under Bearer is refused", Section: "RFC 9449 §7.2", Level: LevelMust, Role: RoleResource, Group: GroupC, Needs: CapDPoP,
		Expect: "Authorization: Bearer AT1 → 401 Bearer:invalid_token (a DPoP-only resource: 401 DPoP challenge, with invalid_token or no error)",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(bearerDowngradeStep("Bearer"))
		}},
	Case{ID: "ERR-14", Title: "a nonce-demanding RS answers 401 use_dpop_nonce with DPoP-Nonce", Section: "RFC 9449 §9", Level: LevelMust, Role: RoleResource, Group: GroupC, Needs: CapDPoP | CapNonce,
		Expect: "proof without nonce → 401 DPoP:use_dpop_nonce, one DPoP-Nonce",
		run: func(ctx context.Context, r *run) verdict {
			it, v := r.needDPoP()
			if v != nil {
				return *v
			}
			r.s.freshNonceState(r.s.t.Resource)
			q := r.dpopReq(it, r.s.k1, nil)
			q.noRetry = true
			x, fv := r.rs(q)
			if fv != nil {
				return *fv
			}
			r.fail = x
			if g := gradeRefusal(x, []want{{401, "DPoP", []string{"use_dpop_nonce"}}}); g.tier != TierPass {
				return g.wrap("%s", g.reason)
			}
			if n := len(x.header.Values("DPoP-Nonce")); n != 1 {
				return failf("%d DPoP-Nonce headers", n)
			}
			r.fail = nil
			return passf("use_dpop_nonce with one DPoP-Nonce")
		}},
	Case{ID: "ERR-15", Title: "a wrong RS nonce is refused with a fresh one, which then works", Section: "RFC 9449 §8, §9, §11.3", Level: LevelMust, Role: RoleResource, Group: GroupC, Needs: CapDPoP | CapNonce,
		Expect: "wrong nonce → 401 DPoP:use_dpop_nonce + new DPoP-Nonce; the new nonce → 2xx",
		run: func(ctx context.Context, r *run) verdict {
			it, v := r.needDPoP()
			if v != nil {
				return *v
			}
			q := r.dpopReq(it, r.s.k1, func(j *jws) { j.claims["nonce"] = "wrong-" + randomID() })
			q.noRetry = true
			x, fv := r.rs(q)
			if fv != nil {
				return *fv
			}
			if g := gradeRefusal(x, []want{{401, "DPoP", []string{"use_dpop_nonce"}}}); g.tier != TierPass {
				r.fail = x
				return g.wrap("wrong nonce: %s", g.reason)
			}
			if x.header.Get("DPoP-Nonce") == "" {
				r.fail = x
				return failf("no fresh DPoP-Nonce with the refusal")
			}
			q = r.dpopReq(it, r.s.k1, nil)
			q.noRetry = true
			y, fv := r.rs(q)
			if fv != nil {
				return *fv
			}
			if why := accepted(y); why != "" {
				r.fail = y
				return failf("fresh nonce: %s", why)
			}
			return passf("refused, then accepted with the fresh nonce")
		}},
	Case{ID: "ERR-16", Title: "at most one DPoP-Nonce per RS response; a 2xx with one is not cacheable", Section: "RFC 9449 §8, §8.2, §9", Level: LevelMust, Role: RoleResource, Group: GroupC, Needs: CapDPoP,
		Expect: "every resource response of the run: ≤ 1 DPoP-Nonce; 2xx with DPoP-Nonce has no-store",
		run: func(ctx context.Context, r *run) verdict {
			r.warmUp()
			n := 0
			for _, x := range r.s.log {
				if x.err != nil || origin(x.url) == origin(r.s.t.TokenEndpoint) {
					continue
				}
				n++
				vs := x.header.Values("DPoP-Nonce")
				if len(vs) > 1 {
					r.fail = x
					return failf("a response carried %d DPoP-Nonce headers", len(vs))
				}
				if len(vs) == 1 && x.status/100 == 2 && !strings.Contains(strings.ToLower(x.header.Get("Cache-Control")), "no-store") {
					r.fail = x
					return failf("a 2xx with DPoP-Nonce lacks no-store")
				}
			}
			if n == 0 {
				return skipf("precondition: no resource responses")
			}
			return passf("%d responses checked", n)
		}},
	Case{ID: "ERR-17", Title: "DPoP is not used with Proxy-Authorization", Section: "RFC 9449 §7.1", Level: LevelMust, Role: RoleResource, Group: GroupC, Needs: CapDPoP,
		Expect: "Proxy-Authorization: DPoP AT1 + proof, no Authorization → 401; no Proxy-Authenticate: DPoP",
		run: func(ctx context.Context, r *run) verdict {
			v := r.steps(step{name: "Proxy-Authorization", want: []want{{401, "", nil}}, do: func(r *run) (*exchange, *verdict) {
				it, v := r.needDPoP()
				if v != nil {
					return nil, v
				}
				q := r.dpopReq(it, r.s.k1, nil)
				q.scheme = ""
				q.headers = []header{{"Proxy-Authorization", "DPoP " + it.access}}
				return r.rs(q)
			}})
			if v.status != StatusPass {
				return v
			}
			for _, x := range r.s.log {
				for _, pa := range x.header.Values("Proxy-Authenticate") {
					if strings.HasPrefix(strings.ToLower(strings.TrimSpace(pa)), "dpop") {
						r.fail = x
						return failf("a response carries Proxy-Authenticate: DPoP")
					}
				}
			}
			return v
		}},
	Case{ID: "ERR-18", Title: "with CORS, WWW-Authenticate and DPoP-Nonce are exposed", Section: "RFC 9449 §7.1, §8", Level: LevelShould, Role: RoleResource, Group: GroupC,
		Expect: "request with Origin → if CORS is enabled, Access-Control-Expose-Headers names both",
		run: func(ctx context.Context, r *run) verdict {
			x, v := r.rs(rsReq{headers: []header{{"Origin", "https://client.example.test"}}})
			if v != nil {
				return *v
			}
			if x.header.Get("Access-Control-Allow-Origin") == "" {
				return skipf("precondition: CORS not enabled for this origin")
			}
			exp := strings.ToLower(strings.Join(x.header.Values("Access-Control-Expose-Headers"), ","))
			if !strings.Contains(exp, "www-authenticate") || !strings.Contains(exp, "dpop-nonce") {
				r.fail = x
				return failf("Access-Control-Expose-Headers lacks WWW-Authenticate or DPoP-Nonce")
			}
			return passf("both exposed")
		}},
	Case{ID: "ERR-19", Title: "token-endpoint errors are RFC 6749 §5.2 JSON and not cacheable", Section: "RFC 6749 §5.1, §5.2; RFC 9449 §5", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupC, Needs: CapDPoP,
		Expect: "invalid_dpop_proof response: JSON with error member, Cache-Control: no-store",
		run: func(ctx context.Context, r *run) verdict {
			x, v := r.tok(r.s.dpopTokenRequest(r.s.k1, func(j *jws) { j.flipSig = true }))
			if v != nil {
				return *v
			}
			r.fail = x
			if g := gradeRefusal(x, wantASProof); g.tier != TierPass {
				return g.wrap("%s", g.reason)
			}
			if !strings.Contains(strings.ToLower(x.header.Get("Content-Type")), "json") {
				return failf("Content-Type is not JSON")
			}
			if !strings.Contains(strings.ToLower(x.header.Get("Cache-Control")), "no-store") {
				return failf("no Cache-Control: no-store")
			}
			r.fail = nil
			return passf("JSON error, no-store")
		}},
	Case{ID: "ERR-20", Title: "challenges offered to an unauthenticated request", Section: "RFC 9449 §7.2 (Fig. 17)", Level: LevelRecord, Role: RoleResource, Group: GroupC,
		Expect: "unauthenticated request → recorded challenge schemes",
		run: func(ctx context.Context, r *run) verdict {
			x, v := r.unauthenticated()
			if v != nil {
				return *v
			}
			if x.err == nil && x.status >= 500 {
				return serverErrorf(x.status, "the target")
			}
			var schemes []string
			for _, c := range x.challenges {
				schemes = append(schemes, safeToken(c.Scheme))
			}
			return passf("recorded: %s, schemes %v", x.describe(), schemes)
		}},
}

// bearerDowngradeStep sends AT1 under the given Bearer spelling, no proof.
func bearerDowngradeStep(scheme string) step {
	// A resource that does not offer Bearer at all may answer as to a
	// request without credentials: a DPoP challenge without an error
	// (RFC 6750 §3.1: an unsupported authentication method).
	return step{name: "scheme " + scheme, want: []want{{401, "Bearer", []string{"invalid_token"}}, {401, "DPoP", []string{"invalid_token"}}, {401, dpopOnly, []string{""}}}, do: func(r *run) (*exchange, *verdict) {
		it, v := r.needDPoP()
		if v != nil {
			return nil, v
		}
		return r.rs(rsReq{scheme: scheme, token: it.access})
	}}
}

// forgedStep sends a token forged from AT1 with a valid K1 proof under the
// DPoP scheme.
func forgedStep(name string, mutate func(r *run, j *jws), accept bool, ws []want) step {
	return step{name: name, accept: accept, want: ws, do: func(r *run) (*exchange, *verdict) {
		it, v := r.needDPoP()
		if v != nil {
			return nil, v
		}
		tok, err := r.s.forge(it, func(j *jws) { mutate(r, j) })
		if err != nil {
			fv := suitef("%s", sanitizeErr(err))
			return nil, &fv
		}
		q := r.dpopReq(it, r.s.k1, nil)
		q.token = tok
		q.proof = r.s.proof(r.s.k1, q.method, r.s.t.Resource, tok, nil)
		return r.rs(q)
	}}
}
