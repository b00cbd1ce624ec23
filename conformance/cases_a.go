package conformance

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// proofStep sends AT1 with a K1 proof mutated by mutate.
func proofStep(name string, mutate func(r *run, j *jws), accept bool, ws []want) step {
	return step{name: name, accept: accept, want: ws, do: func(r *run) (*exchange, *verdict) {
		it, v := r.needDPoP()
		if v != nil {
			return nil, v
		}
		var m func(*jws)
		if mutate != nil {
			m = func(j *jws) { mutate(r, j) }
		}
		return r.rs(r.dpopReq(it, r.s.k1, m))
	}}
}

// fixedProof returns a proofFn that always yields v.
func fixedProof(v string) proofFn {
	return func(string) (string, error) { return v, nil }
}

// rawStep sends AT1 under the DPoP scheme with a literal DPoP value built
// from a valid proof by f.
func rawStep(name string, f func(r *run, valid string) string, ws []want) step {
	return step{name: name, want: ws, do: func(r *run) (*exchange, *verdict) {
		it, v := r.needDPoP()
		if v != nil {
			return nil, v
		}
		q := r.dpopReq(it, r.s.k1, nil)
		good := q.proof
		q.proof = func(nonce string) (string, error) {
			p, err := good(nonce)
			if err != nil {
				return "", err
			}
			return f(r, p), nil
		}
		return r.rs(q)
	}}
}

var proofOrOpenRequest = or(wantProof, []want{{400, "any", []string{"invalid_request", "invalid_dpop_proof"}}, {400, "json", []string{"invalid_request", "invalid_dpop_proof"}}})

// otherPath returns target with its last path segment replaced.
func otherPath(target string) string {
	u, err := url.Parse(target)
	if err != nil {
		return target + "-other"
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "-conformance-other"
	u.RawQuery, u.Fragment = "", ""
	return u.String()
}

func otherMethod(m string) string {
	if m == http.MethodPost {
		return http.MethodGet
	}
	return http.MethodPost
}

// jwsJSON converts a compact JWS to the flattened JSON serialization.
func jwsJSON(compact string) string {
	p := strings.Split(compact, ".")
	if len(p) != 3 {
		return compact
	}
	b, _ := json.Marshal(map[string]string{"protected": p[0], "payload": p[1], "signature": p[2]})
	return string(b)
}

// advertisedAlgs returns the algs of the resource's DPoP challenge to an
// unauthenticated request.
func (r *run) advertisedAlgs() []string {
	x, err := r.s.resource(r.ctx, rsReq{})
	if err != nil || x == nil || x.err != nil {
		return nil
	}
	r.note(x)
	c, ok := findChallenge(x.challenges, "DPoP")
	if !ok {
		return nil
	}
	v, _ := c.Param("algs")
	return strings.Fields(v)
}

// casesA are the DPoP proof cases at a resource server (group A).
var casesA = []Case{
	Case{ID: "DPOP-RS-01", Title: "more than one DPoP header field is refused", Section: "RFC 9449 §4.3 (1)", Level: LevelMust, Role: RoleResource, Group: GroupA, Needs: CapDPoP,
		Expect: "two DPoP lines, each valid; and a DPoP plus a dpop line → 401 DPoP:invalid_dpop_proof [open: 400 invalid_request]",
		run: func(ctx context.Context, r *run) verdict {
			two := func(second string) func(r *run) (*exchange, *verdict) {
				return func(r *run) (*exchange, *verdict) {
					it, v := r.needDPoP()
					if v != nil {
						return nil, v
					}
					q := r.dpopReq(it, r.s.k1, nil)
					q.extra = []namedProof{{second, r.s.proof(r.s.k1, q.method, r.s.t.Resource, it.access, nil)}}
					return r.rs(q)
				}
			}
			return r.steps(
				step{name: "two DPoP lines", do: two("DPoP"), want: proofOrOpenRequest},
				step{name: "DPoP and dpop lines", do: two("dpop"), want: proofOrOpenRequest},
			)
		}},
	Case{ID: "DPOP-RS-02", Title: "the DPoP value is exactly one compact JWS", Section: "RFC 9449 §4.1, §4.3 (2)", Level: LevelMust, Role: RoleResource, Group: GroupA, Needs: CapDPoP,
		Expect: "values x, a.b, a five-segment JWE, a JWS JSON serialization, two proofs joined by \", \" → 401 DPoP:invalid_dpop_proof",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(
				rawStep("value x", func(*run, string) string { return "x" }, wantProof),
				rawStep("value a.b", func(*run, string) string { return "a.b" }, wantProof),
				rawStep("five segments", func(_ *run, p string) string { return p + ".e30.e30" }, wantProof),
				rawStep("JWS JSON serialization", func(_ *run, p string) string { return jwsJSON(p) }, wantProof),
				rawStep("two proofs joined", func(_ *run, p string) string { return p + ", " + p }, wantProof),
			)
		}},
	Case{ID: "DPOP-RS-03", Title: "the DPoP header name is case-insensitive", Section: "RFC 9449 §4.1; RFC 9110 §5.1", Level: LevelMust, Role: RoleResource, Group: GroupA, Needs: CapDPoP,
		Expect: "valid proof sent as dpop: and DPOP: → 2xx",
		run: func(ctx context.Context, r *run) verdict {
			as := func(name string) step {
				return step{name: "header " + name, accept: true, do: func(r *run) (*exchange, *verdict) {
					it, v := r.needDPoP()
					if v != nil {
						return nil, v
					}
					q := r.dpopReq(it, r.s.k1, nil)
					q.proofHeader = name
					return r.rs(q)
				}}
			}
			return r.steps(as("dpop"), as("DPOP"))
		}},
	Case{ID: "DPOP-RS-04", Title: "the proof header has typ, alg and jwk", Section: "RFC 9449 §4.2, §4.3 (3)", Level: LevelMust, Role: RoleResource, Group: GroupA, Needs: CapDPoP,
		Expect: "proof without typ, without alg, without jwk → 401 DPoP:invalid_dpop_proof",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(
				proofStep("no typ", func(_ *run, j *jws) { j.header["typ"] = nil }, false, wantProof),
				proofStep("no alg", func(_ *run, j *jws) { j.header["alg"] = nil }, false, wantProof),
				proofStep("no jwk", func(_ *run, j *jws) { j.header["jwk"] = nil }, false, wantProof),
			)
		}},
	Case{ID: "DPOP-RS-05", Title: "proof typ is dpop+jwt", Section: "RFC 9449 §4.3 (4)", Level: LevelMust, Role: RoleResource, Group: GroupA, Needs: CapDPoP,
		Expect: "typ absent, JWT, at+jwt → 401 DPoP:invalid_dpop_proof; dpop+jwt → 2xx; application/dpop+jwt and DPoP+JWT → recorded",
		run: func(ctx context.Context, r *run) verdict {
			v := r.steps(
				proofStep("typ absent", func(_ *run, j *jws) { j.header["typ"] = nil }, false, wantProof),
				proofStep("typ JWT", func(_ *run, j *jws) { j.header["typ"] = "JWT" }, false, wantProof),
				proofStep("typ at+jwt", func(_ *run, j *jws) { j.header["typ"] = "at+jwt" }, false, wantProof),
				proofStep("typ dpop+jwt", nil, true, nil),
			)
			if v.status != StatusPass {
				return v
			}
			var rec []string
			for _, typ := range []string{"application/dpop+jwt", "DPoP+JWT"} {
				it, sv := r.needDPoP()
				if sv != nil {
					return *sv
				}
				typ := typ
				x, fv := r.rs(r.dpopReq(it, r.s.k1, func(j *jws) { j.header["typ"] = typ }))
				if fv != nil {
					return *fv
				}
				if x.err == nil && x.status >= 500 {
					r.fail = x
					return serverErrorf(x.status, "typ %s", typ)
				}
				rec = append(rec, fmt.Sprintf("%s → %s", typ, x.describe()))
			}
			return passf("required variants as expected; recorded: %s", strings.Join(rec, "; "))
		}},
	Case{ID: "DPOP-RS-06", Title: "proof alg is an allowed asymmetric algorithm", Section: "RFC 9449 §4.3 (5), §11.6", Level: LevelMust, Role: RoleResource, Group: GroupA, Needs: CapDPoP,
		Expect: "alg none, HS256 (keyed with the jwk JSON), a registered alg not advertised in algs → 401 DPoP:invalid_dpop_proof; ES256 → 2xx",
		run: func(ctx context.Context, r *run) verdict {
			ss := []step{
				proofStep("alg none", func(_ *run, j *jws) { j.header["alg"] = "none"; j.unsigned = true }, false, wantProof),
				proofStep("alg HS256", func(r *run, j *jws) { j.hmacKey = r.s.k1.pubJSON }, false, wantProof),
			}
			algs := r.advertisedAlgs()
			unlisted := ""
			for _, a := range []string{"ES512", "ES384"} {
				if len(algs) > 0 && !containsFold(algs, a) {
					unlisted = a
					break
				}
			}
			if unlisted != "" {
				curve := elliptic.P521()
				alg := jose.ES512
				if unlisted == "ES384" {
					curve, alg = elliptic.P384(), jose.ES384
				}
				k, err := ecdsa.GenerateKey(curve, rand.Reader)
				if err != nil {
					return suitef("%v", err)
				}
				ck, err := newClientKey(k, alg)
				if err != nil {
					return suitef("%v", err)
				}
				ss = append(ss, step{name: "unadvertised alg " + unlisted, want: wantProof, do: func(r *run) (*exchange, *verdict) {
					it, v := r.needDPoP()
					if v != nil {
						return nil, v
					}
					return r.rs(r.dpopReq(it, ck, nil))
				}})
			}
			ss = append(ss, proofStep("alg ES256", nil, true, nil))
			v := r.steps(ss...)
			if v.status == StatusPass && unlisted == "" {
				v.reason += " (no algs advertised: the unconfigured-alg variant was not run)"
			}
			return v
		}},
	Case{ID: "DPOP-RS-07", Title: "the proof signature verifies with the jwk header key", Section: "RFC 9449 §4.3 (6)", Level: LevelMust, Role: RoleResource, Group: GroupA, Needs: CapDPoP,
		Expect: "one flipped signature bit; proof signed by K2 with jwk K1 → 401 DPoP:invalid_dpop_proof",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(
				proofStep("flipped signature bit", func(_ *run, j *jws) { j.flipSig = true }, false, wantProof),
				proofStep("signed by K2, jwk K1", func(r *run, j *jws) { j.key = r.s.k2 }, false, wantProof),
			)
		}},
	Case{ID: "DPOP-RS-08", Title: "the jwk header holds no private key", Section: "RFC 9449 §4.2, §4.3 (7)", Level: LevelMust, Role: RoleResource, Group: GroupA, Needs: CapDPoP,
		Expect: "valid proof whose jwk also carries d → 401 DPoP:invalid_dpop_proof",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(proofStep("jwk with d", func(r *run, j *jws) { j.header["jwk"] = json.RawMessage(r.s.k1.privJSON) }, false, wantProof))
		}},
	Case{ID: "DPOP-RS-09", Title: "the proof has jti, htm, htu and iat", Section: "RFC 9449 §4.2, §4.3 (3)", Level: LevelMust, Role: RoleResource, Group: GroupA, Needs: CapDPoP,
		Expect: "drop each claim in turn → 401 DPoP:invalid_dpop_proof",
		run: func(ctx context.Context, r *run) verdict {
			var ss []step
			for _, c := range []string{"jti", "htm", "htu", "iat"} {
				c := c
				ss = append(ss, proofStep("no "+c, func(_ *run, j *jws) { delete(j.claims, c) }, false, wantProof))
			}
			return r.steps(ss...)
		}},
	Case{ID: "DPOP-RS-10", Title: "htm equals the request method", Section: "RFC 9449 §4.3 (8)", Level: LevelMust, Role: RoleResource, Group: GroupA, Needs: CapDPoP,
		Expect: "htm of another method → 401 DPoP:invalid_dpop_proof; matching htm → 2xx",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(
				proofStep("htm of another method", func(r *run, j *jws) { j.claims["htm"] = otherMethod(r.s.t.method()) }, false, wantProof),
				proofStep("matching htm", nil, true, nil),
			)
		}},
	Case{ID: "DPOP-RS-11", Title: "htu equals the target URI without query and fragment", Section: "RFC 9449 §4.2, §4.3 (9)", Level: LevelMust, Role: RoleResource, Group: GroupA, Needs: CapDPoP,
		Expect: "request with ?a=1 and a clean htu → 2xx; htu of another path → 401 DPoP:invalid_dpop_proof",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(
				step{name: "query on the request, clean htu", accept: true, do: func(r *run) (*exchange, *verdict) {
					it, v := r.needDPoP()
					if v != nil {
						return nil, v
					}
					q := r.dpopReq(it, r.s.k1, nil)
					q.query = "a=1"
					return r.rs(q)
				}},
				proofStep("htu of another path", func(r *run, j *jws) { j.claims["htu"] = otherPath(r.s.t.Resource) }, false, wantProof),
			)
		}},
	Case{ID: "DPOP-RS-12", Title: "htu is compared after syntax- and scheme-based normalization", Section: "RFC 9449 §4.3", Level: LevelShould, Role: RoleResource, Group: GroupA, Needs: CapDPoP,
		Expect: "htu with upper-case scheme and host (and explicit default port) → 2xx; path with other letter case → 401 DPoP:invalid_dpop_proof",
		run: func(ctx context.Context, r *run) verdict {
			u, err := url.Parse(r.s.t.Resource)
			if err != nil {
				return skipf("resource URL does not parse")
			}
			upper := strings.ToUpper(u.Scheme) + "://" + strings.ToUpper(u.Host)
			if u.Port() == "" {
				if u.Scheme == "https" {
					upper += ":443"
				} else {
					upper += ":80"
				}
			}
			upper += u.EscapedPath()
			ss := []step{proofStep("upper-case scheme and host", func(_ *run, j *jws) { j.claims["htu"] = upper }, true, nil)}
			if p := strings.ToUpper(u.Path); p != u.Path {
				flipped := u.Scheme + "://" + u.Host + p
				ss = append(ss, proofStep("path with other letter case", func(_ *run, j *jws) { j.claims["htu"] = flipped }, false, wantProof))
			}
			return r.steps(ss...)
		}},
	Case{ID: "DPOP-RS-13", Title: "the proof's iat lies inside the acceptance window", Section: "RFC 9449 §4.3 (11), §11.1", Level: LevelMust, Role: RoleResource, Group: GroupA, Needs: CapDPoP,
		Expect: "iat 15 minutes old → 401 DPoP:invalid_dpop_proof; iat now → 2xx",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(
				proofStep("iat 15 min old", func(r *run, j *jws) { j.claims["iat"] = r.s.now().Add(-15 * time.Minute).Unix() }, false, wantProof),
				proofStep("iat now", nil, true, nil),
			)
		}},
	Case{ID: "DPOP-RS-14", Title: "a slightly future iat may be tolerated", Section: "RFC 9449 §11.1", Level: LevelRecord, Role: RoleResource, Group: GroupA, Needs: CapDPoP,
		Expect: "iat now+3 s and now+1 h → recorded (ADV-44 requires refusing +1 day)",
		run: func(ctx context.Context, r *run) verdict {
			it, v := r.needDPoP()
			if v != nil {
				return *v
			}
			var rec []string
			for _, d := range []time.Duration{3 * time.Second, time.Hour} {
				d := d
				x, fv := r.rs(r.dpopReq(it, r.s.k1, func(j *jws) { j.claims["iat"] = r.s.now().Add(d).Unix() }))
				if fv != nil {
					return *fv
				}
				if x.err == nil && x.status >= 500 {
					r.fail = x
					return serverErrorf(x.status, "iat +%s", d)
				}
				rec = append(rec, fmt.Sprintf("iat +%s → %s", d, x.describe()))
			}
			return passf("recorded: %s", strings.Join(rec, "; "))
		}},
	Case{ID: "DPOP-RS-15", Title: "a replayed proof is refused", Section: "RFC 9449 §11.1", Level: LevelPolicy, Role: RoleResource, Group: GroupA, Needs: CapDPoP,
		Expect: "the identical request twice → first 2xx, second 401 DPoP:invalid_dpop_proof",
		run: func(ctx context.Context, r *run) verdict {
			it, v := r.needDPoP()
			if v != nil {
				return *v
			}
			q := r.dpopReq(it, r.s.k1, nil)
			var last *string
			q.proof, last = recordProof(q.proof)
			x, fv := r.rs(q)
			if fv != nil {
				return *fv
			}
			if why := accepted(x); why != "" {
				r.fail = x
				return failf("first send: %s", why)
			}
			q.noRetry = true
			q.proof = fixedProof(*last)
			x, fv = r.rs(q)
			if fv != nil {
				return *fv
			}
			ws := wantProof
			if r.s.t.NonceRequired {
				ws = []want{{401, "DPoP", []string{"invalid_dpop_proof", "use_dpop_nonce"}}}
			}
			if g := gradeRefusal(x, ws); g.tier != TierPass {
				r.fail = x
				return g.wrap("replay: %s", g.reason)
			}
			return passf("replay refused")
		}},
	Case{ID: "DPOP-RS-16", Title: "a jti tracker refuses needlessly large jti values or stores digests", Section: "RFC 9449 §11.1", Level: LevelRecord, Role: RoleResource, Group: GroupA, Needs: CapDPoP,
		Expect: "jti of 4 KiB → refused, or accepted (memory use is not observable) — recorded; never 5xx",
		run: func(ctx context.Context, r *run) verdict {
			it, v := r.needDPoP()
			if v != nil {
				return *v
			}
			x, fv := r.rs(r.dpopReq(it, r.s.k1, func(j *jws) { j.claims["jti"] = strings.Repeat("j", 4096) }))
			if fv != nil {
				return *fv
			}
			if x.err == nil && x.status >= 500 {
				r.fail = x
				return serverErrorf(x.status, "the target")
			}
			return passf("recorded: 4 KiB jti → %s", x.describe())
		}},
	Case{ID: "DPOP-RS-17", Title: "ath is the hash of the presented token", Section: "RFC 9449 §4.2, §7", Level: LevelMust, Role: RoleResource, Group: GroupA, Needs: CapDPoP,
		Expect: "no ath; ath of another token → 401 DPoP:invalid_dpop_proof; correct ath → 2xx",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(
				proofStep("no ath", func(_ *run, j *jws) { delete(j.claims, "ath") }, false, wantProof),
				proofStep("ath of another token", func(_ *run, j *jws) { j.claims["ath"] = tokenHash("another-token-" + randomID()) }, false, wantProof),
				proofStep("correct ath", nil, true, nil),
			)
		}},
	Case{ID: "DPOP-RS-18", Title: "ath is checked against the exact token in Authorization", Section: "RFC 9449 §4.3 (12), §7", Level: LevelMust, Role: RoleResource, Group: GroupA, Needs: CapDPoP,
		Expect: "proof with ath of AT1 sent with AT1' (another token bound to K1) → 401 DPoP:invalid_dpop_proof [open: invalid_token]",
		run: func(ctx context.Context, r *run) verdict {
			it, v := r.needDPoP()
			if v != nil {
				return *v
			}
			it2, err := r.s.newDPoPToken(ctx, r.s.k1)
			if err != nil {
				return skipf("precondition: no second token: %s", sanitizeErr(err))
			}
			if it2.access == it.access {
				return skipf("precondition: the token endpoint returned the same token twice")
			}
			q := r.dpopReq(it, r.s.k1, nil)
			q.token = it2.access
			return r.steps(step{name: "ath of AT1 with AT1'", want: []want{{401, "DPoP", []string{"invalid_dpop_proof", "invalid_token"}}},
				do: func(r *run) (*exchange, *verdict) { return r.rs(q) }})
		}},
	Case{ID: "DPOP-RS-19", Title: "the proof key matches cnf.jkt", Section: "RFC 9449 §4.3 (12), §6, §7.1", Level: LevelMust, Role: RoleResource, Group: GroupA, Needs: CapDPoP,
		Expect: "AT1 with a valid proof by K2 → 401 DPoP:invalid_token [open: invalid_dpop_proof]",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(step{name: "K2 proof with AT1", want: []want{{401, "DPoP", []string{"invalid_token", "invalid_dpop_proof"}}}, do: func(r *run) (*exchange, *verdict) {
				it, v := r.needDPoP()
				if v != nil {
					return nil, v
				}
				return r.rs(r.dpopReq(it, r.s.k2, nil))
			}})
		}},
	Case{ID: "DPOP-RS-20", Title: "DPoP tokens travel under the DPoP scheme, case-insensitively", Section: "RFC 9449 §7.1; RFC 9110 §11.1", Level: LevelMust, Role: RoleResource, Group: GroupA, Needs: CapDPoP,
		Expect: "Authorization: DPoP AT1 → 2xx; Authorization: dpop AT1 → 2xx",
		run: func(ctx context.Context, r *run) verdict {
			sch := func(s string) step {
				return step{name: "scheme " + s, accept: true, do: func(r *run) (*exchange, *verdict) {
					it, v := r.needDPoP()
					if v != nil {
						return nil, v
					}
					q := r.dpopReq(it, r.s.k1, nil)
					q.scheme = s
					return r.rs(q)
				}}
			}
			return r.steps(sch("DPoP"), sch("dpop"))
		}},
	Case{ID: "DPOP-RS-21", Title: "the DPoP scheme needs a DPoP header", Section: "RFC 9449 §7.1", Level: LevelMust, Role: RoleResource, Group: GroupA, Needs: CapDPoP,
		Expect: "Authorization: DPoP AT1 without DPoP header → 401 DPoP challenge [open: invalid_dpop_proof|invalid_request|invalid_token], or 400 DPoP:invalid_request (RFC 6750 §3.1)",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(step{name: "no DPoP header", want: []want{{401, "DPoP", []string{"invalid_dpop_proof", "invalid_request", "invalid_token"}}, {400, "DPoP", []string{"invalid_request"}}}, do: func(r *run) (*exchange, *verdict) {
				it, v := r.needDPoP()
				if v != nil {
					return nil, v
				}
				q := r.dpopReq(it, r.s.k1, nil)
				q.proof = nil
				return r.rs(q)
			}})
		}},
	Case{ID: "DPOP-RS-22", Title: "access is granted only when every check passes", Section: "RFC 9449 §7.1", Level: LevelMust, Role: RoleResource, Group: GroupA, Needs: CapDPoP,
		Expect: "single-fault variants (signature, key, iat, htu, htm, ath) of the configured request → never 2xx",
		run: func(ctx context.Context, r *run) verdict {
			any := wantAny4xx
			return r.steps(
				proofStep("bad signature", func(_ *run, j *jws) { j.flipSig = true }, false, any),
				proofStep("K2 signs for jwk K1", func(r *run, j *jws) { j.key = r.s.k2 }, false, any),
				proofStep("stale iat", func(r *run, j *jws) { j.claims["iat"] = r.s.now().Add(-time.Hour).Unix() }, false, any),
				proofStep("other htu", func(r *run, j *jws) { j.claims["htu"] = otherPath(r.s.t.Resource) }, false, any),
				proofStep("other htm", func(r *run, j *jws) { j.claims["htm"] = otherMethod(r.s.t.method()) }, false, any),
				proofStep("no ath", func(_ *run, j *jws) { delete(j.claims, "ath") }, false, any),
			)
		}},
	Case{ID: "DPOP-RS-25", Title: "DPoP runs only over HTTPS", Section: "RFC 9449 §2", Level: LevelMust, Role: RoleResource, Group: GroupA, Needs: CapDPoP,
		Expect: "AT1 + proof over plain HTTP (Target.PlainResource, else the http:// form of the resource URL) → never 2xx",
		run: func(ctx context.Context, r *run) verdict {
			it, v := r.needDPoP()
			if v != nil {
				return *v
			}
			u := r.s.t.PlainResource
			probe := u == ""
			if probe {
				u = r.s.t.Resource
				if strings.HasPrefix(u, "https://") {
					u = "http://" + strings.TrimPrefix(u, "https://")
				}
			}
			m := r.s.t.method()
			x, fv := r.rs(rsReq{method: m, url: u, scheme: "DPoP", token: it.access, proof: r.s.proof(r.s.k1, m, u, it.access, nil)})
			if fv != nil {
				return *fv
			}
			if x.err == nil && x.status >= 200 && x.status < 300 {
				r.fail = x
				if r.s.t.localHTTP(u) {
					return localSetting("DPoP over plain HTTP on loopback accepted")
				}
				return attackf("plain HTTP request accepted (status %d)", x.status)
			}
			if !probe {
				if x.err != nil {
					return skipf("precondition: the plain-HTTP resource does not answer (%s)", x.describe())
				}
				return passf("plain HTTP refused: %s", x.describe())
			}
			// Only the resource's own address was probed: an HTTPS-only
			// listener cannot serve the request at all, so this shows
			// little. Target.PlainResource makes the case meaningful.
			if x.err != nil {
				return passf("plain HTTP not served at the resource's address (%s); set a plain-HTTP resource URL to test a listener without TLS", x.describe())
			}
			if len(x.challenges) == 0 && x.json == nil {
				return passf("plain HTTP not served as a resource at its address (status %d, no challenge); set a plain-HTTP resource URL to test a listener without TLS", x.status)
			}
			return passf("plain HTTP refused: %s", x.describe())
		}},
	Case{ID: "DPOP-RS-26", Title: "extension claims in a proof are allowed", Section: "RFC 9449 §4.2", Level: LevelShould, Role: RoleResource, Group: GroupA, Needs: CapDPoP,
		Expect: "proof plus claim \"ext\":\"x\" → 2xx",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(proofStep("extra claim", func(_ *run, j *jws) { j.claims["ext"] = "x" }, true, nil))
		}},
}

// recordProof wraps f so that the last proof it built can be replayed.
func recordProof(f proofFn) (proofFn, *string) {
	last := new(string)
	return func(nonce string) (string, error) {
		p, err := f(nonce)
		if err == nil {
			*last = p
		}
		return p, err
	}, last
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
