package conformance

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// kat12ClientCert is RFC 9440 Appendix A Figure 2 (KAT-12).
const kat12ClientCert = ":MIIBqDCCAU6gAwIBAgIBBzAKBggqhkjOPQQDAjA6MRswGQYDVQQKDBJMZXQncyBBdXRoZW50aWNhdGUxGzAZBgNVBAMMEkxBIEludGVybWVkaWF0ZSBDQTAeFw0yMDAxMTQyMjU1MzNaFw0yMTAxMjMyMjU1MzNaMA0xCzAJBgNVBAMMAkJDMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE8YnXXfaUgmnMtOXU/IncWalRhebrXmckC8vdgJ1p5Be5F/3YC8OthxM4+k1M6aEAEFcGzkJiNy6J84y7uzo9M6NyMHAwCQYDVR0TBAIwADAfBgNVHSMEGDAWgBRm3WjLa38lbEYCuiCPct0ZaSED2DAOBgNVHQ8BAf8EBAMCBsAwEwYDVR0lBAwwCgYIKwYBBQUHAwIwHQYDVR0RAQH/BBMwEYEPYmRjQGV4YW1wbGUuY29tMAoGCCqGSM49BAMCA0gAMEUCIBHda/r1vaL6G3VliL4/Di6YK0Q6bMjeSkC3dFCOOB8TAiEAx/kHSB4urmiZ0NX5r5XarmPk0wmuydBVoU4hBVZ1yhk=:"

const kat12X5t = "v68ffgcPn6jdYpBfFY2nP4ShE2Yk-6_Mk5PI9yh6aes"

// proxyStep sends ATC under Bearer to the trusted-proxy URL (no TLS client
// certificate) with the given headers.
func proxyStep(name string, headers func(r *run) []header, accept bool, ws []want) step {
	return step{name: name, accept: accept, want: ws, do: func(r *run) (*exchange, *verdict) {
		it, v := r.needMTLS()
		if v != nil {
			return nil, v
		}
		q := rsReq{url: r.s.t.TrustedProxyResource, scheme: "Bearer", token: it.access}
		if headers != nil {
			q.headers = headers(r)
		}
		return r.rs(q)
	}}
}

// caCertDER returns a CA certificate's DER (self-signed, IsCA).
func caCertDER() ([]byte, error) {
	c, err := selfSigned(nil, nil)
	if err != nil {
		return nil, err
	}
	tmpl := c.Leaf
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign
	key := c.PrivateKey.(*ecdsa.PrivateKey)
	return x509.CreateCertificate(nil, tmpl, tmpl, &key.PublicKey, key)
}

// casesClientCert are the RFC 9440 Client-Cert forwarding cases (group F
// and its adversarial cases).
var casesClientCert = []Case{
	// F. RFC 9440 Client-Cert.
	Case{ID: "CCERT-01", Title: "Client-Cert is not believed by default", Section: "RFC 9440 §4", Level: LevelShould, Role: RoleResource, Group: GroupF, Needs: CapMTLS,
		Expect: "Client-Cert: C1 with ATC to the resource, no TLS client certificate → 401 Bearer:invalid_token",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(mtlsStep("forged Client-Cert", nil, clientCertOf1, false, wantBearerTok))
		}},
	Case{ID: "ADV-85", Title: "a client-sent Client-Cert holding the victim's certificate is ignored", Section: "RFC 9440 §4", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapMTLS,
		Expect: "Client-Cert: C1 (public) with ATC straight to the resource → 401 Bearer:invalid_token",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(mtlsStep("victim's certificate in Client-Cert", nil, clientCertOf1, false, wantBearerTok))
		}},
	Case{ID: "CCERT-02", Title: "Client-Cert is accepted only from the trusted proxy", Section: "RFC 9440 §4", Level: LevelMust, Role: RoleResource, Group: GroupF, Needs: CapMTLS | CapTrustedProxy,
		Expect: "Client-Cert: C1 with ATC from an untrusted peer → 401; through the trusted-proxy path → 2xx",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(
				mtlsStep("untrusted peer", nil, clientCertOf1, false, wantBearerTok),
				proxyStep("trusted proxy", clientCertOf1, true, nil),
			)
		}},
	Case{ID: "CCERT-03", Title: "x5t#S256 is computed over the Client-Cert DER (KAT-12)", Section: "RFC 9440 §2.1, §2.2", Level: LevelMust, Role: RoleResource, Group: GroupF, Needs: CapMTLS | CapTrustedProxy | CapIssuerKey,
		Expect: "RFC 9440 Figure 2 value via the trusted proxy with a token bound to v68ffgcPn6jdYpBfFY2nP4ShE2Yk-6_Mk5PI9yh6aes → 2xx",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(step{name: "KAT-12 certificate", accept: true, do: func(r *run) (*exchange, *verdict) {
				it, v := r.needMTLS()
				if v != nil {
					return nil, v
				}
				tok, err := r.s.forge(it, func(j *jws) { setCnf(j, map[string]any{"x5t#S256": kat12X5t}) })
				if err != nil {
					fv := suitef("%s", sanitizeErr(err))
					return nil, &fv
				}
				return r.rs(rsReq{url: r.s.t.TrustedProxyResource, scheme: "Bearer", token: tok, headers: []header{{"Client-Cert", kat12ClientCert}}})
			}})
		}},
	Case{ID: "CCERT-05", Title: "Client-Cert is a singleton", Section: "RFC 9440 §2.2", Level: LevelMust, Role: RoleResource, Group: GroupF, Needs: CapMTLS | CapTrustedProxy,
		Expect: "two Client-Cert fields, or a list value, via the trusted proxy → refused (400)",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(
				proxyStep("two fields", func(r *run) []header {
					h := clientCertOf1(r)
					return append(h, h[0])
				}, false, wantAny4xx),
				proxyStep("list value", func(r *run) []header {
					v := clientCertHeader(r.s.t.ClientCert.Certificate[0])
					return []header{{"Client-Cert", v + ", " + v}}
				}, false, wantAny4xx),
			)
		}},
	Case{ID: "CCERT-06", Title: "Client-Cert-Chain is never used as the client certificate", Section: "RFC 9440 §2.3", Level: LevelMust, Role: RoleResource, Group: GroupF, Needs: CapMTLS | CapTrustedProxy,
		Expect: "Client-Cert-Chain: C1 without Client-Cert via the trusted proxy → 401 (or 400)",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(proxyStep("chain only", func(r *run) []header {
				return []header{{"Client-Cert-Chain", clientCertHeader(r.s.t.ClientCert.Certificate[0])}}
			}, false, or(wantBearerTok, []want{{400, "", nil}})))
		}},
	Case{ID: "ADV-89", Title: "Client-Cert-Chain alone, non-certificate or CA Client-Cert is refused", Section: "RFC 9440 §2.3", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapMTLS | CapTrustedProxy,
		Expect: "via the trusted proxy: chain only; Client-Cert holding non-certificate bytes; a CA certificate → not 2xx",
		run: func(ctx context.Context, r *run) verdict {
			ca, err := caCertDER()
			if err != nil {
				return suitef("%v", err)
			}
			return r.steps(
				proxyStep("chain only", func(r *run) []header {
					return []header{{"Client-Cert-Chain", clientCertHeader(r.s.t.ClientCert.Certificate[0])}}
				}, false, wantAny4xx),
				proxyStep("not a certificate", func(r *run) []header {
					return []header{{"Client-Cert", clientCertHeader([]byte("definitely not a DER certificate"))}}
				}, false, wantAny4xx),
				proxyStep("CA certificate", func(r *run) []header {
					return []header{{"Client-Cert", clientCertHeader(ca)}}
				}, false, wantAny4xx),
			)
		}},
	Case{ID: "CCERT-07", Title: "Client-Cert headers never appear in responses", Section: "RFC 9440 §2.2, §2.3", Level: LevelMust, Role: RoleResource, Group: GroupF,
		Expect: "scan every response of the run",
		run: func(ctx context.Context, r *run) verdict {
			r.warmUp()
			for _, x := range r.s.log {
				if x.header.Get("Client-Cert") != "" || x.header.Get("Client-Cert-Chain") != "" {
					r.fail = x
					return attackf("a response carries Client-Cert")
				}
			}
			return passf("%d responses scanned", len(r.s.log))
		}},
	Case{ID: "CCERT-10", Title: "a response authorised by a forwarded certificate is not shared-cacheable", Section: "RFC 9440 §2.4", Level: LevelMust, Role: RoleResource, Group: GroupF, Needs: CapMTLS | CapTrustedProxy,
		Expect: "2xx via the trusted proxy has Cache-Control: no-store (or private) or Vary: Client-Cert",
		run: func(ctx context.Context, r *run) verdict {
			v := r.steps(proxyStep("trusted proxy", clientCertOf1, true, nil))
			if v.status != StatusPass {
				return v
			}
			x := r.decisive()
			cc := strings.ToLower(x.header.Get("Cache-Control"))
			vary := strings.ToLower(strings.Join(x.header.Values("Vary"), ","))
			if strings.Contains(cc, "no-store") || strings.Contains(cc, "private") || strings.Contains(vary, "client-cert") || strings.Contains(vary, "*") {
				return passf("not shared-cacheable")
			}
			r.fail = x
			return failf("2xx without no-store or Vary: Client-Cert")
		}},
	Case{ID: "CCERT-13", Title: "an oversized Client-Cert is refused without a 5xx", Section: "RFC 9440 §3.2", Level: LevelMust, Role: RoleResource, Group: GroupF, Needs: CapMTLS | CapTrustedProxy,
		Expect: "128 KiB Client-Cert via the trusted proxy → 431 or 400, no 5xx",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(proxyStep("128 KiB Client-Cert", func(r *run) []header {
				return []header{{"Client-Cert", clientCertHeader(make([]byte, 96<<10))}}
			}, false, wantAny4xx))
		}},
	Case{ID: "CCERT-16", Title: "when the RS terminates TLS, the TLS certificate is authoritative", Section: "RFC 8705 §3; RFC 9440 §4", Level: LevelPolicy, Role: RoleResource, Group: GroupF, Needs: CapMTLS,
		Expect: "mTLS with another certificate plus Client-Cert: C1 → 401 for ATC",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(mtlsStep("TLS cert C2, header C1", withOtherCert, clientCertOf1, false, wantBearerTok))
		}},
	Case{ID: "ADV-87", Title: "a header certificate does not override the TLS certificate", Section: "RFC 9440 §4", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapMTLS,
		Expect: "mTLS with another certificate plus Client-Cert: C1 → 401 Bearer:invalid_token",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(mtlsStep("TLS cert C2, header C1", withOtherCert, clientCertOf1, false, wantBearerTok))
		}},
}

// casesTokenValidation are the access-token validation, introspection
// and metadata cases (group G and its adversarial cases).
var casesTokenValidation = []Case{
	Case{ID: "ATV-01", Title: "access tokens are signed, never alg none", Section: "RFC 9068 §2.1", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupG, Needs: CapDPoP,
		Expect: "AT1 header alg ≠ none; with metadata, the signature verifies with a key from jwks_uri",
		run: func(ctx context.Context, r *run) verdict {
			it, v := r.needDPoP()
			if v != nil {
				return *v
			}
			if v := needJWT(it); v != nil {
				return *v
			}
			alg, _ := it.header["alg"].(string)
			if alg == "" || strings.EqualFold(alg, "none") || strings.HasPrefix(strings.ToUpper(alg), "HS") {
				return failf("alg %q", safeToken(alg))
			}
			if r.s.t.MetadataURL == "" {
				return passf("alg %s (no metadata: signature not checked against jwks_uri)", alg)
			}
			m, _, mv := r.metadata()
			if mv != nil {
				return *mv
			}
			ju, _ := m["jwks_uri"].(string)
			if ju == "" {
				return failf("metadata has no jwks_uri")
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, ju, nil)
			if err != nil {
				return failf("jwks_uri does not parse")
			}
			x := r.note(r.s.do(r.s.plain, req, nil))
			var set jose.JSONWebKeySet
			if x.err != nil || x.status != 200 || json.Unmarshal(x.body, &set) != nil {
				r.fail = x
				return failf("jwks_uri: %s", x.describe())
			}
			obj, err := jose.ParseSignedCompact(it.access, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
			if err != nil {
				return failf("token does not parse as a JWS")
			}
			for _, k := range set.Keys {
				if _, err := obj.Verify(k.Public()); err == nil {
					return passf("alg %s, verified with a key from jwks_uri", alg)
				}
			}
			return failf("no key from jwks_uri verifies the token")
		}},
	Case{ID: "ATV-03", Title: "the token header has typ at+jwt", Section: "RFC 9068 §2.1", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupG, Needs: CapDPoP,
		Expect: "AT1 typ is at+jwt or application/at+jwt (case-insensitive)",
		run: func(ctx context.Context, r *run) verdict {
			it, v := r.needDPoP()
			if v != nil {
				return *v
			}
			if v := needJWT(it); v != nil {
				return *v
			}
			typ, _ := it.header["typ"].(string)
			if !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt") {
				return failf("typ %q", safeToken(typ))
			}
			return passf("typ %s", typ)
		}},
	Case{ID: "ATV-04", Title: "iss, exp, aud, sub, client_id, iat and jti are present", Section: "RFC 9068 §2.2", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupG, Needs: CapDPoP,
		Expect: "decode AT1 claims",
		run: func(ctx context.Context, r *run) verdict {
			it, v := r.needDPoP()
			if v != nil {
				return *v
			}
			if v := needJWT(it); v != nil {
				return *v
			}
			for _, c := range []string{"iss", "exp", "aud", "sub", "client_id", "iat", "jti"} {
				if _, ok := it.claims[c]; !ok {
					return failf("claim %s missing", c)
				}
			}
			if r.s.t.Issuer != "" && it.claims["iss"] != r.s.t.Issuer {
				return failf("iss differs from the configured issuer")
			}
			if r.s.t.Audience != "" && !audContains(it.claims["aud"], r.s.t.Audience) {
				return failf("aud does not contain the configured audience")
			}
			return passf("all present")
		}},
	Case{ID: "ATV-05", Title: "a requested scope shows up as the scope claim", Section: "RFC 9068 §2.2.3", Level: LevelShould, Role: RoleTokenEndpoint, Group: GroupG, Needs: CapDPoP,
		Expect: "scope requested → claim scope contains it",
		run: func(ctx context.Context, r *run) verdict {
			if r.s.t.Scope == "" {
				return skipf("precondition: no scope configured")
			}
			it, v := r.needDPoP()
			if v != nil {
				return *v
			}
			if v := needJWT(it); v != nil {
				return *v
			}
			sc, _ := it.claims["scope"].(string)
			for _, want := range strings.Fields(r.s.t.Scope) {
				if !strings.Contains(" "+sc+" ", " "+want+" ") {
					return failf("scope claim lacks %s", safeToken(want))
				}
			}
			return passf("scope %q", safeToken(sc))
		}},
	Case{ID: "ATV-08", Title: "cnf is an object naming a proof-of-possession key", Section: "RFC 7800 §3, §3.1", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupG, Needs: CapDPoP,
		Expect: "AT1 cnf is a JSON object with jkt; the JWT has iss or sub",
		run: func(ctx context.Context, r *run) verdict {
			it, v := r.needDPoP()
			if v != nil {
				return *v
			}
			if v := needJWT(it); v != nil {
				return *v
			}
			if _, ok := it.claims["cnf"].(map[string]any); !ok {
				return failf("cnf is not an object")
			}
			if _, ok := cnfMember(it.claims, "jkt"); !ok {
				return failf("cnf has no jkt")
			}
			if it.claims["iss"] == nil && it.claims["sub"] == nil {
				return failf("neither iss nor sub")
			}
			return passf("cnf object with jkt")
		}},
	Case{ID: "ATV-09", Title: "metadata advertises issuer and jwks_uri", Section: "RFC 9068 §4; RFC 8414 §2", Level: LevelShould, Role: RoleMetadata, Group: GroupG, Needs: CapMetadata,
		Expect: "metadata has issuer and jwks_uri",
		run: func(ctx context.Context, r *run) verdict {
			m, _, v := r.metadata()
			if v != nil {
				return *v
			}
			if _, ok := m["issuer"].(string); !ok {
				return failf("no issuer")
			}
			if _, ok := m["jwks_uri"].(string); !ok {
				return failf("no jwks_uri")
			}
			return passf("issuer and jwks_uri present")
		}},
	Case{ID: "ATV-10", Title: "the RS accepts only typ at+jwt", Section: "RFC 9068 §4; RFC 7515 §4.1.9", Level: LevelMust, Role: RoleResource, Group: GroupG, Needs: CapDPoP | CapIssuerKey,
		Expect: "typ absent, JWT, dpop+jwt → 401 invalid_token; at+JWT and application/at+jwt → 2xx",
		run: func(ctx context.Context, r *run) verdict {
			typ := func(v any) func(*run, *jws) { return func(_ *run, j *jws) { j.header["typ"] = v } }
			return r.steps(
				forgedStep("typ absent", typ(nil), false, wantDPoPToken),
				forgedStep("typ JWT", typ("JWT"), false, wantDPoPToken),
				forgedStep("typ dpop+jwt", typ("dpop+jwt"), false, wantDPoPToken),
				forgedStep("typ at+JWT", typ("at+JWT"), true, nil),
				forgedStep("typ application/at+jwt", typ("application/at+jwt"), true, nil),
			)
		}},
	Case{ID: "ATV-11", Title: "iss equals the configured issuer exactly", Section: "RFC 9068 §4", Level: LevelMust, Role: RoleResource, Group: GroupG, Needs: CapDPoP | CapIssuerKey,
		Expect: "iss with a trailing / added → 401 invalid_token",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(forgedStep("iss + /", func(_ *run, j *jws) { j.claims["iss"] = toString(j.claims["iss"]) + "/" }, false, wantDPoPToken))
		}},
	Case{ID: "ATV-12", Title: "aud contains the resource", Section: "RFC 9068 §4; RFC 8725 §3.9", Level: LevelMust, Role: RoleResource, Group: GroupG, Needs: CapDPoP | CapIssuerKey,
		Expect: "aud without the resource; no aud → 401 invalid_token; the issued aud → 2xx",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(
				forgedStep("other aud", func(_ *run, j *jws) { j.claims["aud"] = "https://other.example.invalid" }, false, wantDPoPToken),
				forgedStep("no aud", func(_ *run, j *jws) { delete(j.claims, "aud") }, false, wantDPoPToken),
				forgedStep("issued aud", func(*run, *jws) {}, true, nil),
			)
		}},
	Case{ID: "ATV-13", Title: "the token signature is checked with the AS keys", Section: "RFC 9068 §4", Level: LevelMust, Role: RoleResource, Group: GroupG, Needs: CapDPoP | CapIssuerKey,
		Expect: "token signed by an unknown key (same kid); alg none → 401 invalid_token",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(
				forgedStep("unknown key", func(r *run, j *jws) { j.key = r.s.k2; j.signAlg = jose.ES256; j.header["alg"] = "ES256" }, false, wantDPoPToken),
				forgedStep("alg none", func(_ *run, j *jws) { j.header["alg"] = "none"; j.unsigned = true }, false, wantDPoPToken),
			)
		}},
	Case{ID: "ATV-14", Title: "the caller fixes the token algorithms (no HS256 with the public key)", Section: "RFC 8725 §3.1", Level: LevelMust, Role: RoleResource, Group: GroupG, Needs: CapDPoP | CapIssuerKey,
		Expect: "HS256 keyed with the issuer's public key (JWK JSON, PEM, DER) → 401 invalid_token",
		run:    func(ctx context.Context, r *run) verdict { return r.hsWithPublicKey() }},
	Case{ID: "ADV-04", Title: "token re-signed with HS256 using the AS public key", Section: "RFC 8725 §3.1", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapDPoP | CapIssuerKey,
		Expect: "HS256 keyed with the public key as JWK JSON, PEM text and DER SPKI → 401 invalid_token",
		run:    func(ctx context.Context, r *run) verdict { return r.hsWithPublicKey() }},
	Case{ID: "ATV-15", Title: "the token is refused at or after exp", Section: "RFC 9068 §4; RFC 7519 §4.1.4", Level: LevelMust, Role: RoleResource, Group: GroupG, Needs: CapDPoP | CapIssuerKey,
		Expect: "exp now−5 min → 401 invalid_token; exp now+5 min → 2xx",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(
				forgedStep("expired", func(r *run, j *jws) { j.claims["exp"] = r.s.now().Add(-5 * time.Minute).Unix() }, false, wantDPoPToken),
				forgedStep("valid exp", func(r *run, j *jws) { j.claims["exp"] = r.s.now().Add(5 * time.Minute).Unix() }, true, nil),
			)
		}},
	Case{ID: "ATV-16", Title: "the token is refused before nbf", Section: "RFC 7519 §4.1.5", Level: LevelMust, Role: RoleResource, Group: GroupG, Needs: CapDPoP | CapIssuerKey,
		Expect: "nbf now+10 min → 401 invalid_token",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(forgedStep("future nbf", func(r *run, j *jws) { j.claims["nbf"] = r.s.now().Add(10 * time.Minute).Unix() }, false, wantDPoPToken))
		}},
	Case{ID: "ATV-17", Title: "tokens missing profile claims are refused", Section: "RFC 9068 §2.2", Level: LevelPolicy, Role: RoleResource, Group: GroupG, Needs: CapDPoP | CapIssuerKey,
		Expect: "each of sub, client_id, iat, jti omitted → 401 invalid_token",
		run: func(ctx context.Context, r *run) verdict {
			var ss []step
			for _, c := range []string{"sub", "client_id", "iat", "jti"} {
				c := c
				ss = append(ss, forgedStep("no "+c, func(_ *run, j *jws) { delete(j.claims, c) }, false, wantDPoPToken))
			}
			return r.steps(ss...)
		}},
	Case{ID: "ATV-18", Title: "every token validation failure is invalid_token", Section: "RFC 9068 §4", Level: LevelMust, Role: RoleResource, Group: GroupG, Needs: CapDPoP | CapIssuerKey,
		Expect: "expired, wrong issuer, wrong audience, bad signature → 401 with error=invalid_token exactly",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(
				forgedStep("expired", func(r *run, j *jws) { j.claims["exp"] = r.s.now().Add(-time.Hour).Unix() }, false, wantDPoPToken),
				forgedStep("wrong issuer", func(_ *run, j *jws) { j.claims["iss"] = "https://issuer.example.invalid" }, false, wantDPoPToken),
				forgedStep("wrong audience", func(_ *run, j *jws) { j.claims["aud"] = []string{"https://other.example.invalid"} }, false, wantDPoPToken),
				forgedStep("bad signature", func(_ *run, j *jws) { j.flipSig = true }, false, wantDPoPToken),
			)
		}},
	Case{ID: "ATV-24", Title: "unknown cnf members are ignored", Section: "RFC 7800 §3.1", Level: LevelMust, Role: RoleResource, Group: GroupG, Needs: CapDPoP | CapIssuerKey,
		Expect: "cnf {jkt, x-ext:1} → 2xx",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(forgedStep("extra cnf member", func(r *run, j *jws) { setCnf(j, map[string]any{"jkt": r.s.k1.jkt, "x-ext": 1}) }, true, nil))
		}},
	Case{ID: "ATV-27", Title: "duplicate claim names", Section: "RFC 7519 §4", Level: LevelRecord, Role: RoleResource, Group: GroupG, Needs: CapDPoP | CapIssuerKey,
		Expect: "token with aud twice → recorded (ADV-38 requires refusal)",
		run: func(ctx context.Context, r *run) verdict {
			x, v := r.rs(forgedRaw(r, func(r *run, j *jws, claims []byte) []byte {
				return append(claims[:len(claims)-1], []byte(`,"aud":"https://other.example.invalid"}`)...)
			}))
			if v != nil {
				return *v
			}
			if x.err == nil && x.status >= 500 {
				return serverErrorf(x.status, "the target")
			}
			return passf("recorded: %s", x.describe())
		}},
	Case{ID: "ATV-28", Title: "crit naming an unknown extension invalidates the token", Section: "RFC 7515 §4.1.11", Level: LevelMust, Role: RoleResource, Group: GroupG, Needs: CapDPoP | CapIssuerKey,
		Expect: "token header crit [\"x-unknown\"] → 401 invalid_token",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(forgedStep("crit", func(_ *run, j *jws) { j.header["crit"] = []string{"x-unknown"}; j.header["x-unknown"] = true }, false, wantDPoPToken))
		}},
	Case{ID: "ATV-29", Title: "introspection requires client authentication", Section: "RFC 7662 §2.1", Level: LevelMust, Role: RoleIntrospection, Group: GroupG, Needs: CapIntrospection,
		Expect: "introspection without credentials → 401 (or 400)",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(step{name: "no credentials", want: []want{{401, "", nil}, {400, "", nil}, {403, "", nil}}, do: func(r *run) (*exchange, *verdict) {
				return r.introspect("conformance-"+randomID(), false, http.MethodPost)
			}})
		}},
	Case{ID: "ATV-30", Title: "an unknown token introspects as {\"active\":false} only", Section: "RFC 7662 §2.2", Level: LevelMust, Role: RoleIntrospection, Group: GroupG, Needs: CapIntrospection,
		Expect: "random token → 200 {\"active\":false} and no other member",
		run: func(ctx context.Context, r *run) verdict {
			x, v := r.introspect("conformance-unknown-"+randomID(), true, http.MethodPost)
			if v != nil {
				return *v
			}
			r.fail = x
			if x.status != 200 || x.json == nil {
				return failf("%s", x.describe())
			}
			if x.json["active"] != false {
				return failf("active is not false")
			}
			if len(x.json) != 1 {
				return failf("inactive response carries %d members", len(x.json))
			}
			r.fail = nil
			return passf("{\"active\":false}")
		}},
	Case{ID: "ATV-31", Title: "an expired token is not active", Section: "RFC 7662 §4", Level: LevelMust, Role: RoleIntrospection, Group: GroupG, Needs: CapIntrospection | CapIssuerKey | CapDPoP,
		Expect: "introspect a validly signed expired token → active false",
		run: func(ctx context.Context, r *run) verdict {
			it, v := r.needDPoP()
			if v != nil {
				return *v
			}
			t, err := r.s.forge(it, func(j *jws) { j.claims["exp"] = r.s.now().Add(-time.Hour).Unix() })
			if err != nil {
				return suitef("%s", sanitizeErr(err))
			}
			x, fv := r.introspect(t, true, http.MethodPost)
			if fv != nil {
				return *fv
			}
			if x.status == 200 && x.json["active"] == true {
				r.fail = x
				return attackf("expired token: active")
			}
			if x.status != 200 || x.json["active"] != false {
				r.fail = x
				return failf("expired token: %s, active=%v", x.describe(), x.json["active"])
			}
			return passf("inactive")
		}},
	Case{ID: "ATV-33", Title: "introspection by GET", Section: "RFC 7662 §4", Level: LevelRecord, Role: RoleIntrospection, Group: GroupG, Needs: CapIntrospection,
		Expect: "GET with token in the query → recorded",
		run: func(ctx context.Context, r *run) verdict {
			x, v := r.introspect("conformance-"+randomID(), true, http.MethodGet)
			if v != nil {
				return *v
			}
			if x.status >= 500 {
				return serverErrorf(x.status, "the target")
			}
			return passf("recorded: %s", x.describe())
		}},
	Case{ID: "ATV-34", Title: "metadata is served as JSON at the well-known path", Section: "RFC 8414 §3", Level: LevelMust, Role: RoleMetadata, Group: GroupG, Needs: CapMetadata,
		Expect: "GET metadata → 200, application/json; the server serves it at the well-known URL derived from its issuer (/.well-known/oauth-authorization-server, or the registered OpenID suffix openid-configuration)",
		run: func(ctx context.Context, r *run) verdict {
			m, x, v := r.metadata()
			if v != nil {
				return *v
			}
			if !strings.HasPrefix(strings.ToLower(x.header.Get("Content-Type")), "application/json") {
				return failf("Content-Type %q", safeToken(x.header.Get("Content-Type")))
			}
			iss := r.s.t.Issuer
			if iss == "" {
				iss, _ = m["issuer"].(string)
			}
			urls := wellKnownURLs(iss)
			if len(urls) == 0 {
				return failf("no issuer to derive the well-known URL from")
			}
			if slices.Contains(urls, r.s.t.MetadataURL) {
				return passf("JSON at the well-known URL")
			}
			// The operator passed another URL: judge the server by
			// what it serves at the RFC 8414 URL.
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, urls[0], nil)
			if err != nil {
				return suitef("%s", sanitizeErr(err))
			}
			y := r.note(r.s.do(r.s.plain, req, nil))
			if y.err == nil && y.status == http.StatusOK && y.json != nil {
				return passf("JSON at /.well-known/oauth-authorization-server")
			}
			r.fail = y
			return failf("no metadata at the well-known URL derived from the issuer (%s)", y.describe())
		}},
	Case{ID: "ATV-35", Title: "metadata issuer is https, clean, and the one asked for", Section: "RFC 8414 §2, §3.3", Level: LevelMust, Role: RoleMetadata, Group: GroupG, Needs: CapMetadata,
		Expect: "issuer: https, no query or fragment, equals the configured issuer; the metadata URL is one derived from it (RFC 8414 §3 with the oauth-authorization-server or openid-configuration suffix, or OpenID Connect Discovery §4)",
		run: func(ctx context.Context, r *run) verdict {
			m, _, v := r.metadata()
			if v != nil {
				return *v
			}
			iss, _ := m["issuer"].(string)
			u, err := url.Parse(iss)
			local := r.s.t.localHTTP(iss)
			if err != nil || (u.Scheme != "https" && !local) || u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(iss, "?#") {
				return failf("issuer is not an https URL without query and fragment")
			}
			if !slices.Contains(wellKnownURLs(iss), r.s.t.MetadataURL) {
				return failf("metadata URL is not one derived from issuer")
			}
			if r.s.t.Issuer != "" && iss != r.s.t.Issuer {
				return failf("issuer differs from the configured issuer")
			}
			if local {
				return localSetting("issuer consistent, on plain HTTP on loopback")
			}
			return passf("issuer consistent")
		}},
	Case{ID: "ATV-36", Title: "jwks_uri uses https", Section: "RFC 8414 §2", Level: LevelMust, Role: RoleMetadata, Group: GroupG, Needs: CapMetadata,
		Expect: "jwks_uri starts with https://",
		run: func(ctx context.Context, r *run) verdict {
			m, _, v := r.metadata()
			if v != nil {
				return *v
			}
			j, _ := m["jwks_uri"].(string)
			if r.s.t.localHTTP(j) {
				return localSetting("jwks_uri on plain HTTP on loopback")
			}
			if !strings.HasPrefix(j, "https://") {
				return failf("jwks_uri is not https")
			}
			return passf("https")
		}},
	Case{ID: "ATV-37", Title: "metadata omits empty arrays and never lists none for auth signing", Section: "RFC 8414 §2", Level: LevelMust, Role: RoleMetadata, Group: GroupG, Needs: CapMetadata,
		Expect: "no empty arrays; no none in *_auth_signing_alg_values_supported; signing algs present with private_key_jwt/client_secret_jwt",
		run: func(ctx context.Context, r *run) verdict {
			m, _, v := r.metadata()
			if v != nil {
				return *v
			}
			for k, val := range m {
				arr, ok := val.([]any)
				if !ok {
					continue
				}
				if len(arr) == 0 {
					return failf("%s is an empty array", safeToken(k))
				}
				if strings.HasSuffix(k, "_auth_signing_alg_values_supported") {
					for _, a := range arr {
						if s, _ := a.(string); strings.EqualFold(s, "none") {
							return failf("%s lists none", safeToken(k))
						}
					}
				}
			}
			methods, _ := m["token_endpoint_auth_methods_supported"].([]any)
			for _, a := range methods {
				if a == "private_key_jwt" || a == "client_secret_jwt" {
					if _, ok := m["token_endpoint_auth_signing_alg_values_supported"]; !ok {
						return failf("%v listed without token_endpoint_auth_signing_alg_values_supported", a)
					}
				}
			}
			return passf("clean")
		}},
}

func audContains(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		for _, v := range a {
			if v == want {
				return true
			}
		}
	}
	return false
}

func toString(v any) string {
	s, _ := v.(string)
	return s
}

// hsWithPublicKey re-signs AT1 with HS256 keyed with the issuer's public
// key in three encodings.
func (r *run) hsWithPublicKey() verdict {
	ik, err := r.s.issuerKey()
	if err != nil {
		return suitef("%s", sanitizeErr(err))
	}
	der, err := x509.MarshalPKIXPublicKey(ik.signer.Public())
	if err != nil {
		return suitef("%s", sanitizeErr(err))
	}
	keys := map[string][]byte{
		"JWK JSON": ik.pubJSON,
		"PEM text": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		"DER SPKI": der,
	}
	var ss []step
	for _, name := range []string{"JWK JSON", "PEM text", "DER SPKI"} {
		k := keys[name]
		ss = append(ss, forgedStep("HS256 with "+name, func(_ *run, j *jws) { j.hmacKey = k; j.header["alg"] = "HS256" }, false, wantDPoPToken))
	}
	return r.steps(ss...)
}

// forgedRaw builds a DPoP request whose token payload is rewritten by edit
// (for duplicate members) and re-signed with the issuer key.
func forgedRaw(r *run, edit func(r *run, j *jws, claims []byte) []byte) rsReq {
	it, err := r.s.dpopToken(r.ctx)
	if err != nil {
		return rsReq{}
	}
	tok, err := r.s.forge(it, func(j *jws) {
		b, _ := json.Marshal(j.claims)
		j.rawPayload = edit(r, j, b)
	})
	if err != nil {
		return rsReq{}
	}
	m := r.s.t.method()
	return rsReq{method: m, scheme: "DPoP", token: tok, proof: r.s.proof(r.s.k1, m, r.s.t.Resource, tok, nil)}
}

// canary is a loopback server counting requests (ADV-14, ADV-100).
type canary struct {
	srv  *httptest.Server
	hits atomic.Int64
}

func newCanary() *canary {
	c := &canary{}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		c.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"keys":[]}`))
	}))
	return c
}

// wellKnownURLs are the metadata URLs derived from an issuer: RFC 8414 §3
// (the suffix inserted between host and path) with the
// oauth-authorization-server suffix first, then with the registered
// openid-configuration suffix, then OpenID Connect Discovery §4 (the
// suffix appended to the issuer). Nil for an unparsable issuer.
func wellKnownURLs(iss string) []string {
	u, err := url.Parse(iss)
	if err != nil || u.Host == "" {
		return nil
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	base := u.Scheme + "://" + u.Host
	return []string{
		base + "/.well-known/oauth-authorization-server" + path,
		base + "/.well-known/openid-configuration" + path,
		strings.TrimSuffix(iss, "/") + "/.well-known/openid-configuration",
	}
}
