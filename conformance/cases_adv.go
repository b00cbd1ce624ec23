package conformance

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// kat14 is RFC 7515 Appendix E (crit with an unknown extension, alg none).
const kat14 = "eyJhbGciOiJub25lIiwNCiAiY3JpdCI6WyJodHRwOi8vZXhhbXBsZS5jb20vVU5ERUZJTkVEIl0sDQogImh0dHA6Ly9leGFtcGxlLmNvbS9VTkRFRklORUQiOnRydWUNCn0.RkFJTA."

// rsaKey returns the session's RSA-2048 key, generated on first use.
func (s *session) rsaKey() (*clientKey, error) {
	s.rsaOnce.Do(func() { s.rsa, s.rsaErr = genRSA(2048) })
	return s.rsa, s.rsaErr
}

// keyedProofStep sends AT1 with a proof signed by the key from keyFn.
func keyedProofStep(name string, keyFn func(r *run) (*clientKey, error), mutate func(r *run, j *jws), ws []want) step {
	return step{name: name, want: ws, do: func(r *run) (*exchange, *verdict) {
		it, v := r.needDPoP()
		if v != nil {
			return nil, v
		}
		k, err := keyFn(r)
		if err != nil {
			fv := suitef("%s", sanitizeErr(err))
			return nil, &fv
		}
		var m func(*jws)
		if mutate != nil {
			m = func(j *jws) { mutate(r, j) }
		}
		return r.rs(r.dpopReq(it, k, m))
	}}
}

// boundProofStep sends a proof signed by the key from keyFn with a token
// bound to that key when the token endpoint issues one, so that the
// resource can only refuse the proof for what the case tests. When the
// token endpoint will not bind a token to the key (an algorithm or key it
// refuses), the step falls back to AT1; either way a refusal for the key
// binding (invalid_token) is a correct refusal too: RFC 9449 §4.3 lets the
// checks run in any order.
func boundProofStep(name string, keyFn func(r *run) (*clientKey, error), mutate func(r *run, j *jws), ws []want) step {
	return step{name: name, want: or(ws, wantDPoPToken), do: func(r *run) (*exchange, *verdict) {
		k, err := keyFn(r)
		if err != nil {
			fv := suitef("%s", sanitizeErr(err))
			return nil, &fv
		}
		it, err := r.s.boundToken(r.ctx, k)
		if err != nil {
			var v *verdict
			if it, v = r.needDPoP(); v != nil {
				return nil, v
			}
		}
		var m func(*jws)
		if mutate != nil {
			m = func(j *jws) { mutate(r, j) }
		}
		return r.rs(r.dpopReq(it, k, m))
	}}
}

// boundToken returns a DPoP token bound to key, obtained once per key.
func (s *session) boundToken(ctx context.Context, key *clientKey) (*issued, error) {
	if key == s.k1 {
		return s.dpopToken(ctx)
	}
	if s.bound == nil {
		s.bound = map[*clientKey]*issued{}
	}
	if it, ok := s.bound[key]; ok && it != nil && !it.stale() {
		return it, nil
	}
	it, err := s.newDPoPToken(ctx, key)
	if err != nil {
		return nil, err
	}
	s.bound[key] = it
	return it, nil
}

// unconfiguredAlgs are the registered JWS algorithms ADV-07 can sign with,
// in the order it tries them.
var unconfiguredAlgs = []jose.SignatureAlgorithm{jose.ES512, jose.ES384, jose.PS512, jose.PS384, jose.RS512, jose.RS384, jose.EdDSA}

// keyFor generates (or, for RSA, reuses) a key that signs with alg.
func (s *session) keyFor(alg jose.SignatureAlgorithm) (*clientKey, error) {
	switch alg {
	case jose.ES256, jose.ES384, jose.ES512:
		return genEC(alg)
	case jose.EdDSA:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		return newClientKey(k, alg)
	}
	k, err := s.rsaKey()
	if err != nil {
		return nil, err
	}
	return newClientKey(k.signer, alg)
}

func rsaKeyFn(r *run) (*clientKey, error) { return r.s.rsaKey() }

// hugeHeaderSteps send a 100 KiB Authorization and a 100 KiB DPoP header
// (ADV-104), each on a connection of its own (see oversized).
func hugeHeaderSteps() []step {
	big := strings.Repeat("A", 100<<10)
	return []step{
		{name: "100 KiB Authorization", want: wantAny4xx, do: func(r *run) (*exchange, *verdict) {
			return r.rs(rsReq{scheme: "DPoP", token: big, oversized: true})
		}},
		oversized(rawStep("100 KiB DPoP", func(*run, string) string { return big + "." + big + "." + big[:100] }, or(wantProof, wantAny4xx))),
	}
}

// hugeJTIStep sends a proof with a 64 KiB jti (ADV-45) on a connection of
// its own (see oversized): servers with a smaller header limit answer 431
// and close the connection before the request is written.
func hugeJTIStep() step {
	return oversized(proofStep("64 KiB jti", func(_ *run, j *jws) { j.claims["jti"] = strings.Repeat("j", 64<<10) }, false, or(wantProof, wantAny4xx)))
}

// hugeHTUStep sends a proof with a 100 KiB htu (ADV-60) on a connection of
// its own (see oversized).
func hugeHTUStep() step {
	return oversized(proofStep("100 KiB", func(r *run, j *jws) { j.claims["htu"] = htuOf(r.s.t.Resource) + "/" + strings.Repeat("a", 100<<10) }, false, or(wantProof, wantAny4xx)))
}

// oversized makes a step that sends a resource request send it with
// doOversized: the response is read while the request is written, and a
// connection the server closes without answering counts as a refusal.
func oversized(st step) step {
	do := st.do
	st.do = func(r *run) (*exchange, *verdict) {
		r.oversized = true
		defer func() { r.oversized = false }()
		return do(r)
	}
	return st
}

// jwkMembers returns key's public JWK as a mutable map.
func jwkMembers(k *clientKey, private bool) map[string]any {
	var m map[string]any
	src := k.pubJSON
	if private {
		src = k.privJSON
	}
	_ = json.Unmarshal(src, &m)
	return m
}

// rawPayloadStep sends AT1 with a proof whose payload bytes come from edit
// (given the normal claims JSON).
func rawPayloadStep(name string, edit func(claims []byte) []byte, ws []want) step {
	return proofStep(name, func(_ *run, j *jws) {
		b, _ := json.Marshal(j.claims)
		j.rawPayload = edit(b)
	}, false, ws)
}

func replaceLastBrace(b []byte, extra string) []byte {
	return append(append([]byte{}, b[:len(b)-1]...), []byte(extra+"}")...)
}

// prependMember inserts a member at the start of a JSON object.
func prependMember(b []byte, member string) []byte {
	return append([]byte("{"+member+","), b[1:]...)
}

func flipCase(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' {
			return s[:i] + string(c-32) + s[i+1:]
		}
		if c >= 'A' && c <= 'Z' {
			return s[:i] + string(c+32) + s[i+1:]
		}
	}
	return s + "A"
}

func withHost(target, host string) string {
	u, err := url.Parse(target)
	if err != nil {
		return target
	}
	u.Host = host
	u.RawQuery = ""
	return u.String()
}

// wantAnyProof accepts a DPoP proof refusal or any other 4xx.
var wantAnyProof = or(wantProof, wantAny4xx)

// casesADV are the adversarial cases (group ADV).
var casesADV = []Case{
	Case{ID: "ADV-01", Title: "proof with alg none is refused", Section: "RFC 9449 §4.3 (5)", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "alg none, empty signature → 401 DPoP:invalid_dpop_proof",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(proofStep("alg none", func(_ *run, j *jws) { j.header["alg"] = "none"; j.unsigned = true }, false, wantProof))
		}},
	Case{ID: "ADV-02", Title: "alg none in other letter cases is refused", Section: "RFC 9449 §4.3 (5)", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "alg None, NONE, nOnE (unsigned) → 401 DPoP:invalid_dpop_proof",
		run: func(ctx context.Context, r *run) verdict {
			var ss []step
			for _, a := range []string{"None", "NONE", "nOnE"} {
				a := a
				ss = append(ss, proofStep("alg "+a, func(_ *run, j *jws) { j.header["alg"] = a; j.unsigned = true }, false, wantProof))
			}
			return r.steps(ss...)
		}},
	Case{ID: "ADV-03", Title: "HS256 proofs keyed with public data are refused", Section: "RFC 9449 §4.3 (5)", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "HS256 keyed with the jwk JSON; with the raw public point → 401 DPoP:invalid_dpop_proof",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(
				proofStep("HS256 keyed with jwk JSON", func(r *run, j *jws) { j.hmacKey = r.s.k1.pubJSON }, false, wantProof),
				proofStep("HS256 keyed with the point", func(r *run, j *jws) {
					pk := r.s.k1.signer.Public().(*ecdsa.PublicKey)
					b := make([]byte, 64)
					pk.X.FillBytes(b[:32])
					pk.Y.FillBytes(b[32:])
					j.hmacKey = b
				}, false, wantProof),
			)
		}},
	Case{ID: "ADV-06", Title: "alg and key type must agree", Section: "RFC 9449 §4.3 (5)-(6)", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "ES256 header with an RSA jwk; ES384 header with a P-256 jwk; RS256 header with an EC jwk → 401 DPoP:invalid_dpop_proof",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(
				boundProofStep("ES256 with RSA jwk", rsaKeyFn, func(_ *run, j *jws) { j.header["alg"] = "ES256" }, wantProof),
				proofStep("ES384 with P-256 jwk", func(_ *run, j *jws) { j.header["alg"] = "ES384" }, false, wantProof),
				proofStep("RS256 with EC jwk", func(_ *run, j *jws) { j.header["alg"] = "RS256" }, false, wantProof),
			)
		}},
	Case{ID: "ADV-07", Title: "a registered but unconfigured algorithm is refused", Section: "RFC 9449 §4.3 (5)", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "proof by the first of ES512, ES384, PS512, PS384, RS512, RS384, EdDSA that the resource does not advertise → 401 DPoP:invalid_dpop_proof (or invalid_token when no token is bound to that key)",
		run: func(ctx context.Context, r *run) verdict {
			algs := r.advertisedAlgs()
			if len(algs) == 0 {
				return skipf("precondition: the resource advertises no algs")
			}
			for _, alg := range unconfiguredAlgs {
				if containsFold(algs, string(alg)) {
					continue
				}
				return r.steps(boundProofStep(string(alg), func(r *run) (*clientKey, error) { return r.s.keyFor(alg) }, nil, wantProof))
			}
			return skipf("precondition: the resource advertises every algorithm the suite can sign with")
		}},
	Case{ID: "ADV-11", Title: "crit naming an unknown extension invalidates a proof", Section: "RFC 7515 §4.1.11", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "ES256 proof with crit [\"x-unknown\"]; the RFC 7515 Appendix E JWS → refused",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(
				proofStep("crit x-unknown", func(_ *run, j *jws) { j.header["crit"] = []string{"x-unknown"}; j.header["x-unknown"] = true }, false, wantProof),
				rawStep("RFC 7515 Appendix E", func(*run, string) string { return kat14 }, wantProof),
			)
		}},
	Case{ID: "ADV-14", Title: "jku and x5u are never fetched", Section: "RFC 9449 §4.3; RFC 8725 §3.10", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "proof with jku (or x5u) pointing at a canary and no jwk → refused; the canary sees no request",
		run: func(ctx context.Context, r *run) verdict {
			c := newCanary()
			defer c.srv.Close()
			v := r.steps(
				proofStep("jku", func(_ *run, j *jws) { j.header["jwk"] = nil; j.header["jku"] = c.srv.URL + "/jwks" }, false, wantProof),
				proofStep("x5u", func(_ *run, j *jws) { j.header["jwk"] = nil; j.header["x5u"] = c.srv.URL + "/cert" }, false, wantProof),
			)
			if v.status == StatusPass && c.hits.Load() > 0 {
				return attackf("the server fetched the attacker's URL (%d requests)", c.hits.Load())
			}
			return v
		}},
	Case{ID: "ADV-15", Title: "kid instead of jwk is refused", Section: "RFC 9449 §4.3 (3)", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "proof with kid and no jwk → 401 DPoP:invalid_dpop_proof",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(proofStep("kid only", func(r *run, j *jws) { j.header["jwk"] = nil; j.header["kid"] = r.s.k1.jkt }, false, wantProof))
		}},
	Case{ID: "ADV-17", Title: "JWS JSON serializations are refused", Section: "RFC 9449 §4.3 (2)", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "flattened and general JSON serialization → 401 DPoP:invalid_dpop_proof",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(
				rawStep("flattened", func(_ *run, p string) string { return jwsJSON(p) }, wantProof),
				rawStep("general", func(_ *run, p string) string {
					s := strings.Split(p, ".")
					b, _ := json.Marshal(map[string]any{"payload": s[1], "signatures": []map[string]string{{"protected": s[0], "signature": s[2]}}})
					return string(b)
				}, wantProof),
			)
		}},
	Case{ID: "ADV-18", Title: "JWE proofs and JWE tokens are refused", Section: "RFC 9449 §4.3 (2); RFC 8725 §3.3", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "five-segment proof → 401 DPoP:invalid_dpop_proof; five-segment access token → 401 DPoP:invalid_token",
		run: func(ctx context.Context, r *run) verdict {
			jwe := b64s(`{"alg":"dir","enc":"A128GCM"}`) + "..AAAAAAAAAAAAAAAA." + b64s("ciphertext") + "." + b64s("tag-tag-tag-tag-")
			return r.steps(
				rawStep("JWE proof", func(*run, string) string { return jwe }, wantProof),
				step{name: "JWE token", want: wantDPoPToken, do: func(r *run) (*exchange, *verdict) {
					m := r.s.t.method()
					return r.rs(rsReq{method: m, scheme: "DPoP", token: jwe, proof: r.s.proof(r.s.k1, m, r.s.t.Resource, jwe, nil)})
				}},
			)
		}},
	Case{ID: "ADV-20", Title: "a jwk holding d is refused", Section: "RFC 9449 §4.3 (7)", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "jwk with the private d → 401 DPoP:invalid_dpop_proof",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(proofStep("jwk with d", func(r *run, j *jws) { j.header["jwk"] = json.RawMessage(r.s.k1.privJSON) }, false, wantProof))
		}},
	Case{ID: "ADV-21", Title: "an RSA jwk with CRT members but no d is refused", Section: "RFC 9449 §4.3 (7)", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "RSA jwk with p, q, dp, dq, qi and no d → 401 DPoP:invalid_dpop_proof",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(boundProofStep("CRT members", rsaKeyFn, func(r *run, j *jws) {
				m := jwkMembers(j.key, true)
				delete(m, "d")
				j.header["jwk"] = m
			}, wantProof))
		}},
	Case{ID: "ADV-22", Title: "a symmetric jwk is refused", Section: "RFC 9449 §4.3 (5), (7)", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "jwk kty oct with k, HS256 keyed with k → 401 DPoP:invalid_dpop_proof",
		run: func(ctx context.Context, r *run) verdict {
			k := []byte("conformance-symmetric-key-0123456789")
			return r.steps(proofStep("oct jwk", func(_ *run, j *jws) {
				j.header["jwk"] = map[string]string{"kty": "oct", "k": base64.RawURLEncoding.EncodeToString(k)}
				j.hmacKey = k
			}, false, wantProof))
		}},
	Case{ID: "ADV-23", Title: "an EC point not on the curve is refused", Section: "RFC 9449 §4.3 (6)", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "jwk with a wrong y of the right length → 401 DPoP:invalid_dpop_proof (or invalid_token: its thumbprint is no token's), no 5xx",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(proofStep("off-curve point", func(r *run, j *jws) {
				m := jwkMembers(r.s.k1, false)
				y, _ := base64.RawURLEncoding.DecodeString(m["y"].(string))
				y[len(y)-1] ^= 0x01
				m["y"] = base64.RawURLEncoding.EncodeToString(y)
				j.header["jwk"] = m
			}, false, or(wantProof, wantDPoPToken)))
		}},
	Case{ID: "ADV-25", Title: "an RSA key under 2048 bits is refused", Section: "RFC 7518 §3.3", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "RS256 proof by a 1024-bit key → 401 DPoP:invalid_dpop_proof",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(boundProofStep("RSA-1024", func(*run) (*clientKey, error) { return genRSA(1024) }, nil, wantProof))
		}},
	Case{ID: "ADV-28", Title: "jwk alg, use and key_ops must fit a proof signature", Section: "RFC 7517 §4.2-4.4", Level: LevelPolicy, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "jwk with alg RS256 under an ES256 header; use enc; key_ops [encrypt] → 401 DPoP:invalid_dpop_proof",
		run: func(ctx context.Context, r *run) verdict {
			with := func(k string, v any) func(*run, *jws) {
				return func(r *run, j *jws) { m := jwkMembers(r.s.k1, false); m[k] = v; j.header["jwk"] = m }
			}
			return r.steps(
				proofStep("jwk alg RS256", with("alg", "RS256"), false, wantProof),
				proofStep("jwk use enc", with("use", "enc"), false, wantProof),
				proofStep("jwk key_ops encrypt", with("key_ops", []string{"encrypt"}), false, wantProof),
			)
		}},
	Case{ID: "ADV-30", Title: "a jwk that is not a single JWK object is refused", Section: "RFC 9449 §4.3 (3)", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "jwk as a JWK Set, an array, a string → 401 DPoP:invalid_dpop_proof",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(
				proofStep("JWK Set", func(r *run, j *jws) { j.header["jwk"] = map[string]any{"keys": []json.RawMessage{r.s.k1.pubJSON}} }, false, wantProof),
				proofStep("array", func(r *run, j *jws) { j.header["jwk"] = []json.RawMessage{r.s.k1.pubJSON} }, false, wantProof),
				proofStep("string", func(r *run, j *jws) { j.header["jwk"] = string(r.s.k1.pubJSON) }, false, wantProof),
			)
		}},
	Case{ID: "ADV-31", Title: "proof typ other than dpop+jwt is refused", Section: "RFC 9449 §4.3 (4)", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "typ JWT, absent, at+jwt → 401 DPoP:invalid_dpop_proof",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(
				proofStep("typ JWT", func(_ *run, j *jws) { j.header["typ"] = "JWT" }, false, wantProof),
				proofStep("typ absent", func(_ *run, j *jws) { j.header["typ"] = nil }, false, wantProof),
				proofStep("typ at+jwt", func(_ *run, j *jws) { j.header["typ"] = "at+jwt" }, false, wantProof),
			)
		}},
	Case{ID: "ADV-33", Title: "a DPoP proof presented as the access token is refused", Section: "RFC 9068 §4; RFC 8725 §3.12", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "Authorization: DPoP <proof> with a matching fresh proof → 401 DPoP:invalid_token",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(step{name: "proof as token", want: wantDPoPToken, do: func(r *run) (*exchange, *verdict) {
				m := r.s.t.method()
				p, err := r.s.proof(r.s.k1, m, r.s.t.Resource, "", nil)("")
				if err != nil {
					fv := suitef("%v", err)
					return nil, &fv
				}
				return r.rs(rsReq{method: m, scheme: "DPoP", token: p, proof: r.s.proof(r.s.k1, m, r.s.t.Resource, p, nil)})
			}})
		}},
	Case{ID: "ADV-34", Title: "an ID token presented as the access token is refused", Section: "RFC 9068 §4; RFC 8725 §3.12", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP | CapIssuerKey,
		Expect: "token with typ JWT and aud = client_id, signed by the issuer → 401 invalid_token",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(forgedStep("ID token", func(r *run, j *jws) {
				j.header["typ"] = "JWT"
				j.claims["aud"] = r.s.t.ClientID
				j.claims["nonce"] = randomID()
			}, false, wantDPoPToken))
		}},
	Case{ID: "ADV-36", Title: "proof claims with wrong JSON types are refused", Section: "RFC 9449 §4.2", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "htm [\"GET\"], htu {}, iat \"<number>\", jti 123, ath [], nonce 5 → 401 DPoP:invalid_dpop_proof",
		run: func(ctx context.Context, r *run) verdict {
			set := func(k string, f func(j *jws) any) func(*run, *jws) {
				return func(_ *run, j *jws) { j.claims[k] = f(j) }
			}
			return r.steps(
				proofStep("htm array", set("htm", func(j *jws) any { return []any{j.claims["htm"]} }), false, wantProof),
				proofStep("htu object", set("htu", func(j *jws) any { return map[string]any{"u": j.claims["htu"]} }), false, wantProof),
				proofStep("iat string", set("iat", func(j *jws) any { return fmt.Sprint(j.claims["iat"]) }), false, wantProof),
				proofStep("jti number", set("jti", func(*jws) any { return 123 }), false, wantProof),
				proofStep("ath array", set("ath", func(j *jws) any { return []any{j.claims["ath"]} }), false, wantProof),
				proofStep("nonce number", set("nonce", func(*jws) any { return 5 }), false, or(wantProof, []want{{401, "DPoP", []string{"use_dpop_nonce"}}})),
			)
		}},
	Case{ID: "ADV-38", Title: "duplicate member names are refused", Section: "RFC 7515 §4; RFC 7519 §4", Level: LevelPolicy, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "proof payload with htu twice; token with cnf twice (with issuer key) → refused",
		run: func(ctx context.Context, r *run) verdict {
			// The duplicate comes first, so a last-wins parser sees a
			// valid proof: only a parser that refuses duplicates refuses.
			ss := []step{rawPayloadStep("htu twice", func(b []byte) []byte {
				return prependMember(b, `"htu":"https://attacker.example.invalid/"`)
			}, wantProof)}
			if r.s.caps&CapIssuerKey != 0 {
				ss = append(ss, step{name: "cnf twice", want: wantDPoPToken, do: func(r *run) (*exchange, *verdict) {
					return r.rs(forgedRaw(r, func(r *run, _ *jws, b []byte) []byte {
						return prependMember(b, `"cnf":{"jkt":"`+r.s.k2.jkt+`"}`)
					}))
				}})
			}
			return r.steps(ss...)
		}},
	Case{ID: "ADV-39", Title: "non-UTF-8 proof payloads are refused", Section: "RFC 8725 §3.7", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "payload in UTF-16, invalid UTF-8 in jti, a lone surrogate escape in jti → refused, no 5xx; with a BOM → recorded (RFC 8259 §8.1 lets parsers ignore it)",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(
				// RFC 8259 §8.1 lets a parser ignore a BOM: recorded only.
				recordStep(rawPayloadStep("BOM", func(b []byte) []byte { return append([]byte{0xEF, 0xBB, 0xBF}, b...) }, wantProof)),
				rawPayloadStep("UTF-16", func(b []byte) []byte {
					out := []byte{0xFE, 0xFF}
					for _, c := range b {
						out = append(out, 0, c)
					}
					return out
				}, wantProof),
				proofStep("invalid UTF-8 in jti", func(_ *run, j *jws) {
					b, _ := json.Marshal(j.claims)
					j.rawPayload = []byte(strings.Replace(string(b), `"jti":"`, "\"jti\":\"\xff\xfe", 1))
				}, false, wantProof),
				proofStep("lone surrogate in jti", func(_ *run, j *jws) {
					b, _ := json.Marshal(j.claims)
					j.rawPayload = []byte(strings.Replace(string(b), `"jti":"`, `"jti":"\ud800`, 1))
				}, false, wantProof),
			)
		}},
	Case{ID: "ADV-40", Title: "payloads that are not exactly one JSON object are refused", Section: "RFC 7519 §7.2", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "trailing bytes after the object; an array; a string → 401 DPoP:invalid_dpop_proof",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(
				rawPayloadStep("trailing bytes", func(b []byte) []byte { return append(b, []byte(`{"x":1}`)...) }, wantProof),
				rawPayloadStep("array", func(b []byte) []byte { return append(append([]byte("["), b...), ']') }, wantProof),
				rawPayloadStep("string", func(b []byte) []byte { q, _ := json.Marshal(string(b)); return q }, wantProof),
			)
		}},
	Case{ID: "ADV-41", Title: "huge or deeply nested proofs are refused by a size cap", Section: "RFC 9449 §4.3", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "10,000-deep nested arrays in an extension claim; a 1 MiB proof → 400/401/413/431",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(
				rawPayloadStep("deep nesting", func(b []byte) []byte {
					return replaceLastBrace(b, `,"ext":`+strings.Repeat("[", 10000)+strings.Repeat("]", 10000))
				}, wantAnyProof),
				oversized(rawStep("1 MiB proof", func(_ *run, p string) string { return p + strings.Repeat("A", 1<<20-len(p)) }, wantAnyProof)),
			)
		}},
	Case{ID: "ADV-43", Title: "iat with a fraction", Section: "RFC 7519 §2 (NumericDate)", Level: LevelRecord, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "iat = now + 0.25 → recorded; never 5xx",
		run: func(ctx context.Context, r *run) verdict {
			it, v := r.needDPoP()
			if v != nil {
				return *v
			}
			x, fv := r.rs(r.dpopReq(it, r.s.k1, func(j *jws) { j.claims["iat"] = float64(r.s.now().Unix()) + 0.25 }))
			if fv != nil {
				return *fv
			}
			if x.err == nil && x.status >= 500 {
				return serverErrorf(x.status, "the target")
			}
			return passf("recorded: %s", x.describe())
		}},
	Case{ID: "ADV-44", Title: "iat a day off either way is refused", Section: "RFC 9449 §11.1", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "iat now+1 day and now−1 day → 401 DPoP:invalid_dpop_proof",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(
				proofStep("iat +1 day", func(r *run, j *jws) { j.claims["iat"] = r.s.now().Add(24 * time.Hour).Unix() }, false, wantProof),
				proofStep("iat -1 day", func(r *run, j *jws) { j.claims["iat"] = r.s.now().Add(-24 * time.Hour).Unix() }, false, wantProof),
			)
		}},
	Case{ID: "ADV-45", Title: "empty, blank or huge jti is refused", Section: "RFC 9449 §4.2, §11.1", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "jti \"\", \"   \", 64 KiB → refused",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(
				proofStep("empty jti", func(_ *run, j *jws) { j.claims["jti"] = "" }, false, wantProof),
				proofStep("blank jti", func(_ *run, j *jws) { j.claims["jti"] = "   " }, false, wantProof),
				hugeJTIStep(),
			)
		}},
	Case{ID: "ADV-46", Title: "a jti accepted once is refused at another URL of the same RS", Section: "RFC 9449 §11.1", Level: LevelPolicy, Role: RoleResource, Group: GroupADV, Needs: CapDPoP | CapTrustedProxy,
		Expect: "jti J accepted at the resource; a new proof with jti J for the trusted-proxy URL → refused",
		run: func(ctx context.Context, r *run) verdict {
			jti := randomID()
			return r.steps(
				proofStep("first use", func(_ *run, j *jws) { j.claims["jti"] = jti }, true, nil),
				step{name: "same jti, other URL", want: wantProof, do: func(r *run) (*exchange, *verdict) {
					it, v := r.needDPoP()
					if v != nil {
						return nil, v
					}
					m := r.s.t.method()
					u := r.s.t.TrustedProxyResource
					return r.rs(rsReq{method: m, url: u, scheme: "DPoP", token: it.access, proof: r.s.proof(r.s.k1, m, u, it.access, func(j *jws) { j.claims["jti"] = jti })})
				}},
			)
		}},
	Case{ID: "ADV-47", Title: "one jti used by two keys", Section: "RFC 9449 §11.1", Level: LevelRecord, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "jti J by K1 (accepted), then J by K2 with a K2 token → recorded",
		run: func(ctx context.Context, r *run) verdict {
			it, v := r.needDPoP()
			if v != nil {
				return *v
			}
			it2, err := r.s.newDPoPToken(ctx, r.s.k2)
			if err != nil {
				return skipf("precondition: no token for K2: %s", sanitizeErr(err))
			}
			jti := randomID()
			x, fv := r.rs(r.dpopReq(it, r.s.k1, func(j *jws) { j.claims["jti"] = jti }))
			if fv != nil {
				return *fv
			}
			if why := accepted(x); why != "" {
				r.fail = x
				return failf("K1 use: %s", why)
			}
			y, fv := r.rs(r.dpopReq(it2, r.s.k2, func(j *jws) { j.claims["jti"] = jti }))
			if fv != nil {
				return *fv
			}
			if y.err == nil && y.status >= 500 {
				return serverErrorf(y.status, "the target")
			}
			return passf("recorded: K2 reusing K1's jti → %s", y.describe())
		}},
	Case{ID: "ADV-48", Title: "htm is case-sensitive", Section: "RFC 9449 §4.3 (8); RFC 9110 §9.1", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "htm in lower case → 401 DPoP:invalid_dpop_proof",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(proofStep("lower-case htm", func(r *run, j *jws) { j.claims["htm"] = strings.ToLower(r.s.t.method()) }, false, wantProof))
		}},
	Case{ID: "ADV-50", Title: "htu with scheme http on an https request is refused", Section: "RFC 9449 §4.3 (9)", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "htu http://… → 401 DPoP:invalid_dpop_proof",
		run: func(ctx context.Context, r *run) verdict {
			if !strings.HasPrefix(r.s.t.Resource, "https://") {
				return skipf("precondition: the resource is not https")
			}
			return r.steps(proofStep("http scheme", func(r *run, j *jws) {
				j.claims["htu"] = "http://" + strings.TrimPrefix(htuOf(r.s.t.Resource), "https://")
			}, false, wantProof))
		}},
	Case{ID: "ADV-51", Title: "htu naming another server is refused", Section: "RFC 9449 §4.3 (9)", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "htu with another host → refused; a proof for the resource replayed at the second resource → refused",
		run: func(ctx context.Context, r *run) verdict {
			ss := []step{proofStep("other host", func(r *run, j *jws) { j.claims["htu"] = withHost(r.s.t.Resource, "other.example.invalid") }, false, wantProof)}
			if r.s.t.SecondResource != "" {
				ss = append(ss, step{name: "cross-server replay", want: or(wantProof, wantDPoPToken), do: func(r *run) (*exchange, *verdict) {
					it, v := r.needDPoP()
					if v != nil {
						return nil, v
					}
					m := r.s.t.method()
					return r.rs(rsReq{method: m, url: r.s.t.SecondResource, scheme: "DPoP", token: it.access, proof: r.s.proof(r.s.k1, m, r.s.t.Resource, it.access, nil)})
				}})
			}
			return r.steps(ss...)
		}},
	Case{ID: "ADV-52", Title: "htu ports: a wrong explicit port is refused, the default one is fine", Section: "RFC 9449 §4.3; RFC 3986 §6.2.3", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "htu with :8443 (not the server's port) → refused; explicit :443 when the URL has none → 2xx",
		run: func(ctx context.Context, r *run) verdict {
			u, err := url.Parse(r.s.t.Resource)
			if err != nil {
				return skipf("resource URL does not parse")
			}
			wrong := "8443"
			if u.Port() == wrong {
				wrong = "8444"
			}
			ss := []step{proofStep("port "+wrong, func(r *run, j *jws) { j.claims["htu"] = withHost(htuOf(r.s.t.Resource), u.Hostname()+":"+wrong) }, false, wantProof)}
			if u.Port() == "" && u.Scheme == "https" {
				ss = append(ss, proofStep("explicit :443", func(r *run, j *jws) { j.claims["htu"] = withHost(htuOf(r.s.t.Resource), u.Hostname()+":443") }, true, nil))
			}
			return r.steps(ss...)
		}},
	Case{ID: "ADV-53", Title: "htu scheme and host compare case-insensitively", Section: "RFC 9449 §4.3; RFC 3986 §6.2.2.1", Level: LevelShould, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "htu with upper-case scheme and host → 2xx",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(proofStep("upper-case scheme and host", func(r *run, j *jws) {
				u, _ := url.Parse(htuOf(r.s.t.Resource))
				j.claims["htu"] = strings.ToUpper(u.Scheme) + "://" + strings.ToUpper(u.Host) + u.EscapedPath()
			}, true, nil))
		}},
	Case{ID: "ADV-54", Title: "htu path case matters", Section: "RFC 9449 §4.3 (9)", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "htu path with a letter's case flipped → 401 DPoP:invalid_dpop_proof",
		run: func(ctx context.Context, r *run) verdict {
			u, _ := url.Parse(htuOf(r.s.t.Resource))
			if strings.ToUpper(u.Path) == strings.ToLower(u.Path) {
				return skipf("precondition: the resource path has no letters")
			}
			u.Path = flipCase(u.Path)
			flipped := u.String()
			return r.steps(proofStep("path case", func(_ *run, j *jws) { j.claims["htu"] = flipped }, false, wantProof))
		}},
	Case{ID: "ADV-55", Title: "htu with an added trailing slash is refused", Section: "RFC 9449 §4.3 (9)", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "htu + \"/\" → 401 DPoP:invalid_dpop_proof",
		run: func(ctx context.Context, r *run) verdict {
			if strings.HasSuffix(htuOf(r.s.t.Resource), "/") {
				return skipf("precondition: the resource URL ends with /")
			}
			return r.steps(proofStep("trailing slash", func(r *run, j *jws) { j.claims["htu"] = htuOf(r.s.t.Resource) + "/" }, false, wantProof))
		}},
	Case{ID: "ADV-58", Title: "htu carrying a query or fragment is refused", Section: "RFC 9449 §4.2", Level: LevelPolicy, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "htu with ?a=1; with #f (request without query) → 401 DPoP:invalid_dpop_proof",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(
				proofStep("query in htu", func(r *run, j *jws) { j.claims["htu"] = htuOf(r.s.t.Resource) + "?a=1" }, false, wantProof),
				proofStep("fragment in htu", func(r *run, j *jws) { j.claims["htu"] = htuOf(r.s.t.Resource) + "#f" }, false, wantProof),
			)
		}},
	Case{ID: "ADV-59", Title: "htu with userinfo is refused", Section: "RFC 9449 §4.3 (9)", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "htu https://u:p@host/path → 401 DPoP:invalid_dpop_proof",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(proofStep("userinfo", func(r *run, j *jws) {
				u, _ := url.Parse(htuOf(r.s.t.Resource))
				u.User = url.UserPassword("u", "p")
				j.claims["htu"] = u.String()
			}, false, wantProof))
		}},
	Case{ID: "ADV-60", Title: "relative, empty, non-string or huge htu is refused", Section: "RFC 9449 §4.2", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "htu path only, \"\", 5, 100 KiB → refused",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(
				proofStep("relative", func(r *run, j *jws) { u, _ := url.Parse(r.s.t.Resource); j.claims["htu"] = u.EscapedPath() }, false, wantProof),
				proofStep("empty", func(_ *run, j *jws) { j.claims["htu"] = "" }, false, wantProof),
				proofStep("number", func(_ *run, j *jws) { j.claims["htu"] = 5 }, false, wantProof),
				hugeHTUStep(),
			)
		}},
	Case{ID: "ADV-63", Title: "token-endpoint and resource proofs are not interchangeable", Section: "RFC 9449 §4.3, §5", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "a token-endpoint proof at the resource → 401 DPoP:invalid_dpop_proof; a resource proof at the token endpoint → 400 json:invalid_dpop_proof",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(
				proofStep("token-endpoint proof at the RS", func(r *run, j *jws) {
					j.claims["htm"] = http.MethodPost
					j.claims["htu"] = htuOf(r.s.t.TokenEndpoint)
					delete(j.claims, "ath")
				}, false, wantProof),
				asProofStep("RS proof at the token endpoint", func(r *run, j *jws) {
					j.claims["htm"] = r.s.t.method()
					j.claims["htu"] = htuOf(r.s.t.Resource)
				}, false, wantASProof),
			)
		}},
	Case{ID: "ADV-64", Title: "a DPoP token under Bearer is refused", Section: "RFC 9449 §7.2", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "Authorization: Bearer AT1, no DPoP header → 401 Bearer:invalid_token",
		run:    func(ctx context.Context, r *run) verdict { return r.steps(bearerDowngradeStep("Bearer")) }},
	Case{ID: "ADV-65", Title: "the Bearer downgrade check ignores scheme case", Section: "RFC 9449 §7.2; RFC 9110 §11.1", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "Authorization: bearer AT1; BEARER AT1 → 401",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(bearerDowngradeStep("bearer"), bearerDowngradeStep("BEARER"))
		}},
	Case{ID: "ADV-66", Title: "a token in the query is never accepted", Section: "RFC 6750 §2.3; RFC 9449 §7", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "?access_token=AT1 with and without a proof, no Authorization → never 2xx",
		run: func(ctx context.Context, r *run) verdict {
			q := func(withProof bool) func(r *run) (*exchange, *verdict) {
				return func(r *run) (*exchange, *verdict) {
					it, v := r.needDPoP()
					if v != nil {
						return nil, v
					}
					m := r.s.t.method()
					req := rsReq{method: m, query: "access_token=" + urlQueryEscape(it.access), headers: []header{{"X-Conformance", "query-token"}}}
					if withProof {
						req.proof = r.s.proof(r.s.k1, m, r.s.t.Resource, it.access, nil)
					}
					return r.rs(req)
				}
			}
			return r.steps(step{name: "query token with proof", want: wantAny4xx, do: q(true)}, step{name: "query token alone", want: wantAny4xx, do: q(false)})
		}},
	Case{ID: "ADV-67", Title: "an unbound token under the DPoP scheme is refused", Section: "RFC 9449 §7.1", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP | CapIssuerKey,
		Expect: "token without cnf, DPoP scheme, valid proof → 401 DPoP:invalid_token",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(forgedStep("no cnf", func(_ *run, j *jws) { delete(j.claims, "cnf") }, false, wantDPoPToken))
		}},
	Case{ID: "ADV-68", Title: "the DPoP scheme without a DPoP header is refused", Section: "RFC 9449 §7.1", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "Authorization: DPoP AT1, no DPoP header → 401 DPoP challenge, or 400 DPoP:invalid_request (RFC 6750 §3.1)",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(step{name: "no proof", want: []want{{401, "DPoP", nil}, {400, "DPoP", []string{"invalid_request"}}}, do: func(r *run) (*exchange, *verdict) {
				it, v := r.needDPoP()
				if v != nil {
					return nil, v
				}
				return r.rs(rsReq{scheme: "DPoP", token: it.access})
			}})
		}},
	Case{ID: "ADV-69", Title: "a valid proof by another key is refused", Section: "RFC 9449 §7.1", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "AT1 with a K2 proof → 401 DPoP:invalid_token",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(keyedProofStep("K2 proof", func(r *run) (*clientKey, error) { return r.s.k2, nil }, nil, wantDPoPToken))
		}},
	Case{ID: "ADV-70", Title: "ath variants that are not the exact hash are refused", Section: "RFC 9449 §4.2 (KAT-4 negatives)", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "ath missing; of another token; padded; standard alphabet; over \"DPoP <token>\"; one letter's case flipped → refused",
		run: func(ctx context.Context, r *run) verdict {
			athOf := func(f func(tok string) string) func(*run, *jws) {
				return func(r *run, j *jws) { j.claims["ath"] = f(r.s.at1.access) }
			}
			std := func(tok string) string {
				h := sha256.Sum256([]byte(tok))
				return base64.StdEncoding.EncodeToString(h[:])
			}
			return r.steps(
				proofStep("missing", func(_ *run, j *jws) { delete(j.claims, "ath") }, false, wantProof),
				proofStep("other token", athOf(func(string) string { return tokenHash("other") }), false, wantProof),
				proofStep("padded", athOf(func(t string) string { return tokenHash(t) + "=" }), false, wantProof),
				proofStep("standard alphabet", athOf(func(t string) string {
					s := std(t)
					if !strings.ContainsAny(s, "+/") {
						s = strings.TrimRight(s, "=") + "+"
					}
					return s
				}), false, wantProof),
				proofStep("over DPoP <token>", athOf(func(t string) string { return tokenHash("DPoP " + t) }), false, wantProof),
				proofStep("case flipped", athOf(func(t string) string { return flipCase(tokenHash(t)) }), false, wantProof),
			)
		}},
	Case{ID: "ADV-72", Title: "cnf that is not an object is refused", Section: "RFC 7800 §3", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP | CapIssuerKey,
		Expect: "cnf as a string, an array, null → 401 invalid_token",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(
				forgedStep("cnf string", func(r *run, j *jws) { j.claims["cnf"] = r.s.k1.jkt }, false, wantDPoPToken),
				forgedStep("cnf array", func(r *run, j *jws) { j.claims["cnf"] = []any{map[string]any{"jkt": r.s.k1.jkt}} }, false, wantDPoPToken),
				forgedStep("cnf null", func(_ *run, j *jws) { j.claims["cnf"] = json.RawMessage("null") }, false, wantDPoPToken),
			)
		}},
	Case{ID: "ADV-74", Title: "two Authorization fields are a malformed request", Section: "RFC 6750 §3.1; RFC 9110 §5.3", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "Authorization: Bearer AT1 and Authorization: DPoP AT1 → 400 invalid_request",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(step{name: "two fields", want: []want{{400, "any", []string{"invalid_request"}}, {400, "json", []string{"invalid_request"}}}, do: func(r *run) (*exchange, *verdict) {
				it, v := r.needDPoP()
				if v != nil {
					return nil, v
				}
				q := r.dpopReq(it, r.s.k1, nil)
				q.headers = []header{{"Authorization", "Bearer " + it.access}}
				return r.rs(q)
			}})
		}},
	Case{ID: "ADV-76", Title: "DPoP values with extra characters are refused", Section: "RFC 9449 §4.3 (2)", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "\"DPoP \" prefix, trailing '.', '=' padding in a segment, '+'/'/' characters → 401 DPoP:invalid_dpop_proof",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(
				rawStep("scheme prefix", func(_ *run, p string) string { return "DPoP " + p }, wantProof),
				rawStep("trailing dot", func(_ *run, p string) string { return p + "." }, wantProof),
				rawStep("padding", func(_ *run, p string) string { s := strings.Split(p, "."); return s[0] + "=." + s[1] + "." + s[2] }, wantProof),
				standardAlphabetStep(),
			)
		}},
	Case{ID: "ADV-78", Title: "after a nonce was issued, a proof without nonce is refused", Section: "RFC 9449 §9, §11.3", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP | CapNonce,
		Expect: "proof without nonce → 401 DPoP:use_dpop_nonce + DPoP-Nonce",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(step{name: "no nonce", want: []want{{401, "DPoP", []string{"use_dpop_nonce"}}}, do: func(r *run) (*exchange, *verdict) {
				it, v := r.needDPoP()
				if v != nil {
					return nil, v
				}
				q := r.dpopReq(it, r.s.k1, func(j *jws) { delete(j.claims, "nonce") })
				q.noRetry = true
				x, fv := r.rs(q)
				if fv == nil && x.err == nil && x.header.Get("DPoP-Nonce") == "" && x.status == 401 {
					r.fail = x
					v := failf("use_dpop_nonce without a DPoP-Nonce header")
					return nil, &v
				}
				return x, fv
			}})
		}},
	Case{ID: "ADV-80", Title: "tampered nonces are refused", Section: "RFC 9449 §8, §9", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP | CapNonce,
		Expect: "nonce with one character changed; a number; characters outside NQCHAR → refused (use_dpop_nonce)",
		run: func(ctx context.Context, r *run) verdict {
			nonceWant := []want{{401, "DPoP", []string{"use_dpop_nonce", "invalid_dpop_proof"}}}
			mk := func(name string, f func(n string) any) step {
				return step{name: name, want: nonceWant, do: func(r *run) (*exchange, *verdict) {
					it, v := r.needDPoP()
					if v != nil {
						return nil, v
					}
					q := r.dpopReq(it, r.s.k1, func(j *jws) {
						n, _ := j.claims["nonce"].(string)
						if n == "" {
							n = "conformance-nonce"
						}
						j.claims["nonce"] = f(n)
					})
					q.noRetry = true
					return r.rs(q)
				}}
			}
			// Learn a current nonce first.
			if it, v := r.needDPoP(); v == nil {
				_, _ = r.rs(r.dpopReq(it, r.s.k1, nil))
			}
			return r.steps(
				mk("one character changed", func(n string) any { return flipCase(n) }),
				mk("number", func(string) any { return 12345 }),
				mk("outside NQCHAR", func(n string) any { return n + "\" \\" }),
			)
		}},
	Case{ID: "ADV-81", Title: "RS nonces cannot be predicted", Section: "RFC 9449 §9", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP | CapNonce,
		Expect: "30 RS nonces: not bare numbers, ≥ 22 characters (a nonce may repeat: RFC 9449 §11.1)",
		run: func(ctx context.Context, r *run) verdict {
			it, v := r.needDPoP()
			if v != nil {
				return *v
			}
			return r.nonceSample(func() (*exchange, *verdict) {
				q := r.dpopReq(it, r.s.k1, func(j *jws) { delete(j.claims, "nonce") })
				q.noRetry = true
				return r.rs(q)
			})
		}},
	Case{ID: "ADV-82", Title: "a client-sent DPoP-Nonce header is ignored", Section: "RFC 9449 §8", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "valid request plus DPoP-Nonce: <attacker value> → 2xx, and the server never hands that value back",
		run: func(ctx context.Context, r *run) verdict {
			evil := "attacker-chosen-nonce-" + randomID()
			v := r.steps(step{name: "client DPoP-Nonce", accept: true, do: func(r *run) (*exchange, *verdict) {
				it, v := r.needDPoP()
				if v != nil {
					return nil, v
				}
				q := r.dpopReq(it, r.s.k1, nil)
				q.headers = []header{{"DPoP-Nonce", evil}}
				return r.rs(q)
			}})
			for _, x := range r.xs {
				if x.header.Get("DPoP-Nonce") == evil {
					r.fail = x
					return attackf("the server adopted the client's nonce")
				}
			}
			return v
		}},
	Case{ID: "ADV-96", Title: "iss variants are refused", Section: "RFC 9068 §4", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP | CapIssuerKey,
		Expect: "iss with trailing /, upper case, http scheme → 401 invalid_token",
		run: func(ctx context.Context, r *run) verdict {
			iss := func(f func(string) string) func(*run, *jws) {
				return func(_ *run, j *jws) { j.claims["iss"] = f(toString(j.claims["iss"])) }
			}
			return r.steps(
				forgedStep("trailing slash", iss(func(s string) string { return s + "/" }), false, wantDPoPToken),
				forgedStep("upper case", iss(strings.ToUpper), false, wantDPoPToken),
				forgedStep("http scheme", iss(func(s string) string { return strings.Replace(s, "https://", "http://", 1) }), false, wantDPoPToken),
			)
		}},
	Case{ID: "ADV-97", Title: "exp minutes past, missing, or a string is refused", Section: "RFC 7519 §4.1.4", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP | CapIssuerKey,
		Expect: "exp = now − 5 min (beyond any small leeway RFC 7519 §4.1.4 allows); no exp; exp as a string → 401 invalid_token",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(
				forgedStep("exp 5 min ago", func(r *run, j *jws) { j.claims["exp"] = r.s.now().Add(-5 * time.Minute).Unix() }, false, wantDPoPToken),
				forgedStep("no exp", func(_ *run, j *jws) { delete(j.claims, "exp") }, false, wantDPoPToken),
				forgedStep("exp string", func(_ *run, j *jws) { j.claims["exp"] = fmt.Sprint(j.claims["exp"]) }, false, wantDPoPToken),
			)
		}},
	Case{ID: "ADV-98", Title: "a token before nbf is refused", Section: "RFC 7519 §4.1.5", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP | CapIssuerKey,
		Expect: "nbf now+10 min → 401 invalid_token",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(forgedStep("future nbf", func(r *run, j *jws) { j.claims["nbf"] = r.s.now().Add(10 * time.Minute).Unix() }, false, wantDPoPToken))
		}},
	Case{ID: "ADV-100", Title: "keys named in the token header are not trusted", Section: "RFC 8725 §3.10; RFC 9068 §4", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP | CapIssuerKey,
		Expect: "token signed by an attacker key named in jwk; with jku at a canary → 401; the canary sees no request",
		run: func(ctx context.Context, r *run) verdict {
			c := newCanary()
			defer c.srv.Close()
			v := r.steps(
				forgedStep("embedded jwk", func(r *run, j *jws) {
					j.key, j.signAlg = r.s.k2, jose.ES256
					j.header["alg"] = "ES256"
					j.header["jwk"] = json.RawMessage(r.s.k2.pubJSON)
				}, false, wantDPoPToken),
				forgedStep("jku canary", func(r *run, j *jws) {
					j.key, j.signAlg = r.s.k2, jose.ES256
					j.header["alg"] = "ES256"
					j.header["jku"] = c.srv.URL + "/jwks"
				}, false, wantDPoPToken),
			)
			if v.status == StatusPass && c.hits.Load() > 0 {
				return attackf("the server fetched the token's jku (%d requests)", c.hits.Load())
			}
			return v
		}},
	Case{ID: "ADV-103", Title: "aud listing the resource and an unknown audience", Section: "RFC 9068 §4", Level: LevelRecord, Role: RoleResource, Group: GroupADV, Needs: CapDPoP | CapIssuerKey,
		Expect: "aud [resource, unknown] → recorded",
		run: func(ctx context.Context, r *run) verdict {
			it, v := r.needDPoP()
			if v != nil {
				return *v
			}
			tok, err := r.s.forge(it, func(j *jws) {
				a := []any{}
				switch v := j.claims["aud"].(type) {
				case []any:
					a = append(a, v...)
				default:
					a = append(a, v)
				}
				j.claims["aud"] = append(a, "https://unknown.example.invalid")
			})
			if err != nil {
				return suitef("%s", sanitizeErr(err))
			}
			m := r.s.t.method()
			x, fv := r.rs(rsReq{method: m, scheme: "DPoP", token: tok, proof: r.s.proof(r.s.k1, m, r.s.t.Resource, tok, nil)})
			if fv != nil {
				return *fv
			}
			if x.err == nil && x.status >= 500 {
				return serverErrorf(x.status, "the target")
			}
			return passf("recorded: %s", x.describe())
		}},
	Case{ID: "ADV-104", Title: "100 KiB Authorization or DPoP headers are refused early", Section: "RFC 9449 §4.3", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "Authorization of 100 KiB; DPoP of 100 KiB → 431, 400 or 401, never 2xx or 5xx",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(hugeHeaderSteps()...)
		}},
	Case{ID: "ADV-107", Title: "the same proof sent concurrently succeeds once", Section: "RFC 9449 §11.1", Level: LevelPolicy, Role: RoleResource, Group: GroupADV, Needs: CapDPoP,
		Expect: "one valid proof sent 8 times at once → exactly one 2xx",
		run: func(ctx context.Context, r *run) verdict {
			it, v := r.needDPoP()
			if v != nil {
				return *v
			}
			m := r.s.t.method()
			p, err := r.s.proof(r.s.k1, m, r.s.t.Resource, it.access, nil)(r.s.nonces[origin(r.s.t.Resource)])
			if err != nil {
				return suitef("%v", err)
			}
			const n = 8
			xs := make([]*exchange, n)
			var wg sync.WaitGroup
			var mu sync.Mutex
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					req, err := http.NewRequestWithContext(ctx, m, r.s.t.Resource, nil)
					if err != nil {
						return
					}
					req.Header["Authorization"] = []string{"DPoP " + it.access}
					req.Header["DPoP"] = []string{p}
					x := doUnlogged(r.s.plain, req, []string{it.access, p})
					mu.Lock()
					xs[i] = x
					mu.Unlock()
				}(i)
			}
			wg.Wait()
			ok := 0
			for _, x := range xs {
				if x == nil {
					continue
				}
				r.s.log = append(r.s.log, x)
				r.note(x)
				if x.err == nil && x.status/100 == 2 {
					ok++
				}
				if x.err == nil && x.status >= 500 {
					r.fail = x
					return serverErrorf(x.status, "the target")
				}
			}
			if ok != 1 {
				return attackf("%d of %d concurrent replays succeeded, want exactly 1", ok, n)
			}
			return passf("exactly one of %d succeeded", n)
		}},
}

// casesThumbprints are the thumbprint cases (group H).
var casesThumbprints = []Case{
	Case{ID: "THUMB-01", Title: "thumbprint input, hash and encoding follow RFC 7638", Section: "RFC 7638 §3; RFC 9449 §6.1", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupH, Needs: CapDPoP,
		Expect: "proof by the RFC 7517 A.2 EC key → cnf.jkt cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s (43 characters, KAT-16)",
		run: func(ctx context.Context, r *run) verdict {
			return r.katBinding("cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s", nil)
		}},
	Case{ID: "THUMB-06", Title: "optional JWK members do not change the thumbprint", Section: "RFC 7638 §3.2.2", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupH, Needs: CapDPoP,
		Expect: "proof jwk plus kid and use sig → same cnf.jkt",
		run: func(ctx context.Context, r *run) verdict {
			return r.katBinding("cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s", func(j *jws) {
				m := jwkMembers(j.key, false)
				m["kid"], m["use"] = "1", "sig"
				j.header["jwk"] = m
			})
		}},
	Case{ID: "THUMB-07", Title: "member order of the received JWK is irrelevant", Section: "RFC 7638 §3.3", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupH, Needs: CapDPoP,
		Expect: "proof jwk serialized as kty, x, y, crv → cnf.jkt of the sorted input",
		run: func(ctx context.Context, r *run) verdict {
			return r.katBinding("cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s", func(j *jws) {
				j.header["jwk"] = json.RawMessage(`{"kty":"EC","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","crv":"P-256"}`)
			})
		}},
	Case{ID: "THUMB-09", Title: "JSON escapes in JWK members do not change the thumbprint", Section: "RFC 7638 §3.3", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupH, Needs: CapDPoP,
		Expect: "proof jwk with crv written \"P\\u002d256\" → cnf.jkt of the plain form, or refused; never a third value",
		run: func(ctx context.Context, r *run) verdict {
			key, err := rfc7517ECKey()
			if err != nil {
				return suitef("%v", err)
			}
			x, fv := r.tok(r.s.dpopTokenRequest(key, func(j *jws) {
				j.header["jwk"] = json.RawMessage(`{"crv":"P\u002d256","kty":"EC","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}`)
			}))
			if fv != nil {
				return *fv
			}
			if x.status >= 500 {
				return serverErrorf(x.status, "the target")
			}
			if x.status != http.StatusOK {
				return passf("refused: %s", x.describe())
			}
			it, err := parseIssued(x, key)
			if err != nil {
				return failf("%s", sanitizeErr(err))
			}
			got, ok := cnfMember(it.claims, "jkt")
			if !ok {
				return skipf("precondition: cnf.jkt not observable")
			}
			if got != key.jkt {
				return failf("cnf.jkt %q is neither the plain thumbprint nor a refusal", safeToken(got))
			}
			return passf("same thumbprint as the plain form")
		}},
	Case{ID: "THUMB-10", Title: "non-minimal key encodings are refused", Section: "RFC 7638 §6; RFC 7518 §2", Level: LevelShould, Role: RoleTokenEndpoint, Group: GroupH, Needs: CapDPoP,
		Expect: "RS256 proof whose jwk has e \"AAEAAQ\" → refused",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(step{name: "e with a leading zero", want: wantASProof, do: func(r *run) (*exchange, *verdict) {
				k, err := r.s.rsaKey()
				if err != nil {
					fv := suitef("%v", err)
					return nil, &fv
				}
				return r.tok(r.s.dpopTokenRequest(k, func(j *jws) {
					m := jwkMembers(k, false)
					m["e"] = "AAEAAQ"
					j.header["jwk"] = m
				}))
			}})
		}},
	Case{ID: "THUMB-11", Title: "jkt compares as an exact, case-sensitive string", Section: "RFC 9449 §6.1", Level: LevelMust, Role: RoleResource, Group: GroupH, Needs: CapDPoP | CapIssuerKey,
		Expect: "cnf.jkt of K1 with one letter's case flipped, K1 proof → 401 DPoP:invalid_token",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(forgedStep("case-flipped jkt", func(r *run, j *jws) { setCnf(j, map[string]any{"jkt": flipCase(r.s.k1.jkt)}) }, false, wantDPoPToken))
		}},
}

// standardAlphabetStep sends AT1 with a K1 proof whose signature segment
// is written in the standard base64 alphabet ('+' and '/' for '-' and
// '_'). Only the signature is rewritten, so the signing input is the one
// signed and a decoder that accepts both alphabets verifies it: the
// verdict then depends on the server's decoding alone, not on whether
// the random header and payload happened to contain those characters.
// Proofs are made until one's signature has a character to rewrite.
func standardAlphabetStep() step {
	return step{name: "standard alphabet", want: wantProof, do: func(r *run) (*exchange, *verdict) {
		it, v := r.needDPoP()
		if v != nil {
			return nil, v
		}
		q := r.dpopReq(it, r.s.k1, nil)
		good := q.proof
		q.proof = func(nonce string) (string, error) {
			for range 64 {
				p, err := good(nonce)
				if err != nil {
					return "", err
				}
				i := strings.LastIndexByte(p, '.') + 1
				if strings.ContainsAny(p[i:], "-_") {
					return p[:i] + strings.NewReplacer("-", "+", "_", "/").Replace(p[i:]), nil
				}
			}
			return "", errors.New("no proof signature with a '-' or '_' in 64 proofs")
		}
		return r.rs(q)
	}}
}

func b64s(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
