package conformance

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"regexp"
	"time"
)

// selfSigned makes a self-signed client certificate for subject with key
// (a fresh P-256 key when nil).
func selfSigned(tmplFrom *x509.Certificate, key crypto.Signer) (*tls.Certificate, error) {
	if key == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		key = k
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if tmplFrom != nil {
		tmpl.Subject = tmplFrom.Subject
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

func (s *session) leaf1() (*x509.Certificate, error) {
	c := s.t.ClientCert
	if c == nil || len(c.Certificate) == 0 {
		return nil, errors.New("no client certificate")
	}
	if c.Leaf != nil {
		return c.Leaf, nil
	}
	return x509.ParseCertificate(c.Certificate[0])
}

// mtlsStep sends ATC (or a token from tokFn) under Bearer with client.
func mtlsStep(name string, client func(r *run) (*http.Client, error), headers func(r *run) []header, accept bool, ws []want) step {
	return step{name: name, accept: accept, want: ws, do: func(r *run) (*exchange, *verdict) {
		it, v := r.needMTLS()
		if v != nil {
			return nil, v
		}
		var c *http.Client
		if client != nil {
			var err error
			if c, err = client(r); err != nil {
				fv := suitef("%s", sanitizeErr(err))
				return nil, &fv
			}
		}
		q := rsReq{scheme: "Bearer", token: it.access, client: c}
		if headers != nil {
			q.headers = headers(r)
		}
		return r.rs(q)
	}}
}

func withCert1(r *run) (*http.Client, error) { return r.s.cert1, nil }

// withOtherCert presents a fresh self-signed certificate with C1's subject
// and another key.
func withOtherCert(r *run) (*http.Client, error) {
	l, err := r.s.leaf1()
	if err != nil {
		return nil, err
	}
	c, err := selfSigned(l, nil)
	if err != nil {
		return nil, err
	}
	return r.s.clientWith(c), nil
}

func clientCertOf1(r *run) []header {
	return []header{{"Client-Cert", clientCertHeader(r.s.t.ClientCert.Certificate[0])}}
}

var x5tPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// forgedBearerStep sends a token forged from ATC under Bearer over client.
func forgedBearerStep(name string, mutate func(r *run, j *jws), client func(r *run) (*http.Client, error), accept bool, ws []want) step {
	return step{name: name, accept: accept, want: ws, do: func(r *run) (*exchange, *verdict) {
		it, v := r.needMTLS()
		if v != nil {
			return nil, v
		}
		tok, err := r.s.forge(it, func(j *jws) { mutate(r, j) })
		if err != nil {
			fv := suitef("%s", sanitizeErr(err))
			return nil, &fv
		}
		c, err := client(r)
		if err != nil {
			fv := suitef("%s", sanitizeErr(err))
			return nil, &fv
		}
		return r.rs(rsReq{scheme: "Bearer", token: tok, client: c})
	}}
}

func setCnf(j *jws, cnf map[string]any) { j.claims["cnf"] = cnf }

// x5tNegatives are KAT-12-style wrong encodings of C1's binding.
func x5tNegatives(r *run) map[string]string {
	return x5tNegativesOf(r.s.t.ClientCert.Certificate[0])
}

// x5tNegativesOf returns the SHA-1, SPKI-hash and PEM-text-hash variants of
// a certificate's binding, none of which may match x5t#S256.
func x5tNegativesOf(der []byte) map[string]string {
	s1 := sha1.Sum(der)
	out := map[string]string{"SHA-1 x5t": base64.RawURLEncoding.EncodeToString(s1[:])}
	if l, err := x509.ParseCertificate(der); err == nil {
		h := sha256.Sum256(l.RawSubjectPublicKeyInfo)
		out["SPKI hash"] = base64.RawURLEncoding.EncodeToString(h[:])
	}
	p := sha256.Sum256(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	out["PEM-text hash"] = base64.RawURLEncoding.EncodeToString(p[:])
	return out
}

// wantInvalidClient is the token endpoint's refusal of a client
// authentication: 400 or 401 invalid_client.
var wantInvalidClient = []want{{400, "json", []string{"invalid_client"}}, {401, "json", []string{"invalid_client"}}}

// casesMTLS are the mTLS client authentication and certificate-bound
// token cases (groups D and E, with their thumbprint and adversarial
// cases).
var casesMTLS = []Case{
	// D. mTLS client authentication.
	Case{ID: "MTLS-CA-01", Title: "mTLS client authentication needs a client certificate", Section: "RFC 8705 §2", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupD, Needs: CapMTLS,
		Expect: "mTLS client id without a certificate → 400/401 invalid_client",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(step{name: "no certificate", want: wantInvalidClient, do: func(r *run) (*exchange, *verdict) {
				return r.tok(tokReq{clientID: r.s.t.mtlsClientID()})
			}})
		}},
	Case{ID: "MTLS-CA-02", Title: "mTLS-authenticated requests carry client_id", Section: "RFC 8705 §2", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupD, Needs: CapMTLS,
		Expect: "C1 without client_id → 400/401 [open: invalid_request|invalid_client]",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(step{name: "no client_id", want: []want{{400, "json", []string{"invalid_request", "invalid_client"}}, {401, "json", []string{"invalid_request", "invalid_client"}}}, do: func(r *run) (*exchange, *verdict) {
				return r.tok(tokReq{clientID: "-", client: r.s.cert1})
			}})
		}},
	Case{ID: "MTLS-CA-03", Title: "the certificate must match the one registered for client_id", Section: "RFC 8705 §2; RFC 6749 §5.2", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupD, Needs: CapMTLS | CapSecondCert,
		Expect: "C2 (trusted, not registered) with the mTLS client id → 400/401 invalid_client",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(step{name: "C2 for the client", want: wantInvalidClient, do: func(r *run) (*exchange, *verdict) {
				return r.tok(tokReq{clientID: r.s.t.mtlsClientID(), client: r.s.cert2})
			}})
		}},
	Case{ID: "MTLS-CA-13", Title: "metadata lists the mTLS client authentication methods", Section: "RFC 8705 §2.1.1, §2.2.1", Level: LevelMust, Role: RoleMetadata, Group: GroupD, Needs: CapMTLS | CapMetadata,
		Expect: "token_endpoint_auth_methods_supported includes tls_client_auth or self_signed_tls_client_auth",
		run: func(ctx context.Context, r *run) verdict {
			m, _, v := r.metadata()
			if v != nil {
				return *v
			}
			list, _ := m["token_endpoint_auth_methods_supported"].([]any)
			for _, a := range list {
				if a == "tls_client_auth" || a == "self_signed_tls_client_auth" {
					return passf("lists %v", a)
				}
			}
			return failf("no mTLS method in token_endpoint_auth_methods_supported")
		}},
	Case{ID: "ADV-94", Title: "a certificate presented with another client's id is refused", Section: "RFC 8705 §2", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupADV, Needs: CapMTLS,
		Expect: "C1 with the other (secret) client's id and no secret → 400/401 invalid_client",
		run: func(ctx context.Context, r *run) verdict {
			if r.s.t.ClientID == r.s.t.mtlsClientID() {
				return skipf("precondition: needs a client id other than the mTLS client's")
			}
			return r.steps(step{name: "C1 as another client", want: wantInvalidClient, do: func(r *run) (*exchange, *verdict) {
				return r.tok(tokReq{clientID: r.s.t.ClientID, client: r.s.cert1})
			}})
		}},

	// E. Certificate-bound access tokens.
	Case{ID: "MTLS-CB-01", Title: "an mTLS token request yields cnf.x5t#S256 of the certificate", Section: "RFC 8705 §3, §3.1", Level: LevelShould, Role: RoleTokenEndpoint, Group: GroupE, Needs: CapMTLS,
		Expect: "decode ATC: cnf.x5t#S256 = thumbprint(C1)",
		run: func(ctx context.Context, r *run) verdict {
			it, err := r.s.newMTLSToken(ctx, r.s.cert1)
			if err != nil {
				return failf("%s", sanitizeErr(err))
			}
			r.note(it.x)
			if v := needJWT(it); v != nil {
				return *v
			}
			got, _ := cnfMember(it.claims, "x5t#S256")
			if got != certificateThumbprint(r.s.t.ClientCert.Certificate[0]) {
				return failf("cnf.x5t#S256 %q does not match C1", safeToken(got))
			}
			return passf("bound to C1")
		}},
	Case{ID: "MTLS-CB-02", Title: "x5t#S256 is base64url(SHA-256(DER)), unpadded", Section: "RFC 8705 §3.1", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupE, Needs: CapMTLS,
		Expect: "value matches ^[A-Za-z0-9_-]{43}$ and equals an independent computation",
		run: func(ctx context.Context, r *run) verdict {
			it, v := r.needMTLS()
			if v != nil {
				return *v
			}
			if v := needJWT(it); v != nil {
				return *v
			}
			got, _ := cnfMember(it.claims, "x5t#S256")
			if !x5tPattern.MatchString(got) {
				return failf("x5t#S256 is not 43 base64url characters")
			}
			if got != certificateThumbprint(r.s.t.ClientCert.Certificate[0]) {
				return failf("x5t#S256 differs from SHA-256 of the DER certificate")
			}
			return passf("canonical x5t#S256")
		}},
	Case{ID: "MTLS-CB-03", Title: "the AS binds only a certificate proven in the handshake", Section: "RFC 8705 §6.1", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupE, Needs: CapMTLS,
		Expect: "token request without TLS certificate but with Client-Cert: C1 → never a token bound to C1",
		run: func(ctx context.Context, r *run) verdict {
			q := tokReq{clientID: r.s.t.mtlsClientID(), headers: clientCertOf1(r)}
			if r.s.t.ClientSecret != "" {
				// A client that can authenticate without a certificate
				// shows whether the header alone creates a binding.
				q = tokReq{secret: true, headers: clientCertOf1(r)}
			}
			x, v := r.tok(q)
			if v != nil {
				return *v
			}
			if x.status >= 500 {
				r.fail = x
				return serverErrorf(x.status, "the target")
			}
			if x.status == http.StatusOK {
				it, err := parseIssued(x, nil)
				if err == nil {
					if got, ok := cnfMember(it.claims, "x5t#S256"); ok && got == certificateThumbprint(r.s.t.ClientCert.Certificate[0]) {
						r.fail = x
						return attackf("token bound to a certificate that was only named in a header")
					}
				}
			}
			return passf("no binding from the header (%s)", x.describe())
		}},
	Case{ID: "MTLS-CB-04", Title: "tls_client_certificate_bound_access_tokens is a boolean", Section: "RFC 8705 §3.3", Level: LevelMust, Role: RoleMetadata, Group: GroupE, Needs: CapMetadata,
		Expect: "metadata member absent or boolean; if true, a bound token is obtainable",
		run: func(ctx context.Context, r *run) verdict {
			m, _, v := r.metadata()
			if v != nil {
				return *v
			}
			raw, ok := m["tls_client_certificate_bound_access_tokens"]
			if !ok {
				return passf("absent (false)")
			}
			b, isBool := raw.(bool)
			if !isBool {
				return failf("not a boolean")
			}
			if b && r.s.cert1 != nil {
				if _, err := r.s.mtlsToken(ctx); err != nil {
					return failf("advertised but no bound token: %s", sanitizeErr(err))
				}
			}
			return passf("boolean %v", b)
		}},
	Case{ID: "MTLS-CB-05", Title: "an mTLS client calling without a certificate gets an error or an unbound token", Section: "RFC 8705 §3.4", Level: LevelRecord, Role: RoleTokenEndpoint, Group: GroupE, Needs: CapMTLS,
		Expect: "token request without certificate → recorded; never a cnf.x5t#S256",
		run: func(ctx context.Context, r *run) verdict {
			x, v := r.tok(tokReq{clientID: r.s.t.mtlsClientID()})
			if v != nil {
				return *v
			}
			if x.status >= 500 {
				return serverErrorf(x.status, "the target")
			}
			if it, err := parseIssued(x, nil); err == nil {
				if _, ok := cnfMember(it.claims, "x5t#S256"); ok {
					r.fail = x
					return failf("token carries cnf.x5t#S256 without a certificate")
				}
			}
			return passf("recorded: %s", x.describe())
		}},
	Case{ID: "MTLS-CB-06", Title: "a public client over mTLS gets a certificate-bound token", Section: "RFC 8705 §4", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupE, Needs: CapMTLS | CapRefreshGrant,
		Expect: "refresh grant by the public client (no client authentication) over mTLS with C1, no DPoP → 200 with cnf.x5t#S256 = thumbprint(C1); a refusal skips (the feature is optional)",
		run: func(ctx context.Context, r *run) verdict {
			x, fv := r.tok(r.s.refreshGrantRequest(nil, r.s.cert1, false))
			if fv != nil {
				return *fv
			}
			it, err := parseIssued(x, nil)
			if err != nil {
				return skipf("precondition: the refresh grant over mTLS: %s", sanitizeErr(err))
			}
			why, observed := r.boundTo(it, "x5t#S256", certificateThumbprint(r.s.t.ClientCert.Certificate[0]))
			if why != "" {
				r.fail = x
				return failf("cnf.x5t#S256 %s (thumbprint of C1)", why)
			}
			if !observed {
				return skipf("precondition: the binding is not observable (opaque token, no introspection)")
			}
			return passf("bound to C1 without client authentication")
		}},
	Case{ID: "MTLS-CB-07", Title: "a public client's refresh token is bound to its certificate", Section: "RFC 8705 §4", Level: LevelShould, Role: RoleTokenEndpoint, Group: GroupE, Needs: CapMTLS | CapSecondCert | CapRefreshGrant,
		Expect: "three refresh tokens of the public client from the refresh grant over mTLS with C1: refresh one over C2 → 400 invalid_grant; one without a certificate → 400 [open: invalid_grant|invalid_request]; one over C1 → 200 with the new access token bound to C1",
		run: func(ctx context.Context, r *run) verdict {
			c1 := certificateThumbprint(r.s.t.ClientCert.Certificate[0])
			var rts [3]string
			for i := range rts {
				it, v := r.refreshable(r.s.refreshGrantRequest(nil, r.s.cert1, false))
				if v != nil {
					return *v
				}
				if got, observed := r.bindingOf(it, "x5t#S256"); observed && got != c1 {
					return skipf("precondition: the refresh grant over mTLS issued no token bound to C1 (see MTLS-CB-06)")
				}
				rts[i] = it.refresh
			}
			var refreshed *exchange
			if v := r.steps(
				step{name: "refresh over C2", want: []want{{400, "json", []string{"invalid_grant"}}}, do: func(r *run) (*exchange, *verdict) {
					return r.tok(r.s.refreshRequest(rts[0], nil, r.s.cert2))
				}},
				step{name: "refresh without a certificate", want: []want{{400, "json", []string{"invalid_grant", "invalid_request"}}}, do: func(r *run) (*exchange, *verdict) {
					return r.tok(r.s.refreshRequest(rts[1], nil, nil))
				}},
				step{name: "refresh over C1", accept: true, do: func(r *run) (*exchange, *verdict) {
					x, v := r.tok(r.s.refreshRequest(rts[2], nil, r.s.cert1))
					refreshed = x
					return x, v
				}},
			); v.status != StatusPass {
				return v
			}
			it, err := parseIssued(refreshed, nil)
			if err != nil {
				r.fail = refreshed
				return failf("refresh over C1: %s", sanitizeErr(err))
			}
			if why, _ := r.boundTo(it, "x5t#S256", c1); why != "" {
				r.fail = refreshed
				return failf("refresh over C1: the new access token's cnf.x5t#S256 %s", why)
			}
			return passf("C2 and no certificate refused; C1 accepted")
		}},
	Case{ID: "MTLS-CB-09", Title: "the RS compares the TLS client certificate with the binding", Section: "RFC 8705 §3", Level: LevelMust, Role: RoleResource, Group: GroupE, Needs: CapMTLS,
		Expect: "ATC over mTLS with C1 → 2xx; with another certificate → 401 Bearer:invalid_token",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(
				mtlsStep("C1", withCert1, nil, true, nil),
				mtlsStep("another certificate", withOtherCert, nil, false, wantBearerTok),
			)
		}},
	Case{ID: "MTLS-CB-10", Title: "a certificate-bound token without a client certificate is refused", Section: "RFC 8705 §3", Level: LevelMust, Role: RoleResource, Group: GroupE, Needs: CapMTLS,
		Expect: "ATC, no client certificate → 401 Bearer:invalid_token",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(mtlsStep("no certificate", nil, nil, false, wantBearerTok))
		}},
	Case{ID: "MTLS-CB-12", Title: "certificate-bound tokens use the Bearer scheme", Section: "RFC 8705 §3", Level: LevelMust, Role: RoleResource, Group: GroupE, Needs: CapMTLS,
		Expect: "Authorization: Bearer ATC over mTLS with C1 → 2xx",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(mtlsStep("Bearer ATC with C1", withCert1, nil, true, nil))
		}},
	Case{ID: "MTLS-CB-14", Title: "a new certificate for the same key does not match", Section: "RFC 8705 §6.3", Level: LevelMust, Role: RoleResource, Group: GroupE, Needs: CapMTLS,
		Expect: "new self-signed certificate with C1's key + ATC → 401 Bearer:invalid_token",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(mtlsStep("same key, new certificate", func(r *run) (*http.Client, error) {
				key, ok := r.s.t.ClientCert.PrivateKey.(crypto.Signer)
				if !ok {
					return nil, errors.New("client key is not a crypto.Signer")
				}
				l, err := r.s.leaf1()
				if err != nil {
					return nil, err
				}
				c, err := selfSigned(l, key)
				if err != nil {
					return nil, err
				}
				return r.s.clientWith(c), nil
			}, nil, false, wantBearerTok))
		}},
	Case{ID: "MTLS-CB-16", Title: "a token bound to a key and a certificate needs both proofs", Section: "RFC 7800 §3.1", Level: LevelPolicy, Role: RoleResource, Group: GroupE, Needs: CapMTLS | CapDPoP | CapIssuerKey,
		Expect: "cnf with jkt(K1) and x5t#S256(C1): DPoP proof without certificate; certificate under Bearer → 401 invalid_token",
		run: func(ctx context.Context, r *run) verdict {
			both := func(r *run, j *jws) {
				setCnf(j, map[string]any{"jkt": r.s.k1.jkt, "x5t#S256": certificateThumbprint(r.s.t.ClientCert.Certificate[0])})
			}
			return r.steps(
				forgedStep("DPoP proof only", both, false, wantDPoPToken),
				forgedBearerStep("certificate only", both, withCert1, false, or(wantBearerTok, wantDPoPToken)),
			)
		}},
	Case{ID: "ADV-73", Title: "a doubly-bound token satisfied only by the certificate is refused", Section: "RFC 7800 §3.1", Level: LevelPolicy, Role: RoleResource, Group: GroupADV, Needs: CapMTLS | CapDPoP | CapIssuerKey,
		Expect: "cnf jkt(K2) + x5t#S256(C1), DPoP proof by K1 over mTLS with C1 → 401 invalid_token",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(step{name: "certificate matches, key does not", want: wantDPoPToken, do: func(r *run) (*exchange, *verdict) {
				it, v := r.needDPoP()
				if v != nil {
					return nil, v
				}
				tok, err := r.s.forge(it, func(j *jws) {
					setCnf(j, map[string]any{"jkt": r.s.k2.jkt, "x5t#S256": certificateThumbprint(r.s.t.ClientCert.Certificate[0])})
				})
				if err != nil {
					fv := suitef("%s", sanitizeErr(err))
					return nil, &fv
				}
				m := r.s.t.method()
				return r.rs(rsReq{method: m, scheme: "DPoP", token: tok, client: r.s.cert1, proof: r.s.proof(r.s.k1, m, r.s.t.Resource, tok, nil)})
			}})
		}},
	Case{ID: "ADV-83", Title: "a different certificate with the same subject is refused", Section: "RFC 8705 §3", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapMTLS,
		Expect: "ATC over TLS with a certificate bearing C1's DN and another key → 401 Bearer:invalid_token",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(mtlsStep("same DN, other key", withOtherCert, nil, false, wantBearerTok))
		}},
	Case{ID: "ADV-84", Title: "a certificate-bound token with no certificate is refused", Section: "RFC 8705 §3", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapMTLS,
		Expect: "ATC without client certificate → 401 Bearer:invalid_token",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(mtlsStep("no certificate", nil, nil, false, wantBearerTok))
		}},
	Case{ID: "THUMB-12", Title: "x5t#S256 hashes the DER certificate only", Section: "RFC 8705 §3.1", Level: LevelMust, Role: RoleResource, Group: GroupH, Needs: CapMTLS | CapIssuerKey,
		Expect: "token whose x5t#S256 is the SHA-1, SPKI or PEM-text hash of C1, presented with C1 → 401 invalid_token",
		run:    func(ctx context.Context, r *run) verdict { return r.x5tNegatives() }},
	Case{ID: "ADV-90", Title: "x5t#S256 over PEM text, SPKI or SHA-1 does not match", Section: "RFC 8705 §3.1", Level: LevelMust, Role: RoleResource, Group: GroupADV, Needs: CapMTLS | CapIssuerKey,
		Expect: "KAT-12-style negatives of C1's binding, presented with C1 → 401",
		run:    func(ctx context.Context, r *run) verdict { return r.x5tNegatives() }},
	Case{ID: "THUMB-13", Title: "x5t#S256 is unpadded and whitespace-free", Section: "RFC 8705 §3.1", Level: LevelMust, Role: RoleResource, Group: GroupH, Needs: CapMTLS | CapIssuerKey,
		Expect: "cnf.x5t#S256 of C1 with '=' appended, presented with C1 → 401 invalid_token",
		run: func(ctx context.Context, r *run) verdict {
			return r.steps(forgedBearerStep("padded x5t#S256", func(r *run, j *jws) {
				setCnf(j, map[string]any{"x5t#S256": certificateThumbprint(r.s.t.ClientCert.Certificate[0]) + "="})
			}, withCert1, false, wantBearerTok))
		}},
}

func (r *run) x5tNegatives() verdict {
	var ss []step
	for name, v := range x5tNegatives(r) {
		v := v
		ss = append(ss, forgedBearerStep(name, func(r *run, j *jws) { setCnf(j, map[string]any{"x5t#S256": v}) }, withCert1, false, wantBearerTok))
	}
	ss = append(ss, forgedBearerStep("correct x5t#S256", func(r *run, j *jws) {
		setCnf(j, map[string]any{"x5t#S256": certificateThumbprint(r.s.t.ClientCert.Certificate[0])})
	}, withCert1, true, nil))
	return r.steps(ss...)
}

// foreignCert issues a client certificate with C1's subject from a fresh
// CA that the target does not trust.
func foreignCert(r *run) (*tls.Certificate, error) {
	l, err := r.s.leaf1()
	if err != nil {
		return nil, err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: l.Issuer, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: l.Subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key}, nil
}

// untrustedCertStep requests a token for the mTLS client with a
// certificate the target must not accept. A refused TLS handshake counts
// as a refusal.
func untrustedCertStep(name string, mk func(r *run) (*tls.Certificate, error)) func(r *run) verdict {
	return func(r *run) verdict {
		c, err := mk(r)
		if err != nil {
			return suitef("%s", sanitizeErr(err))
		}
		x, v := r.tok(tokReq{clientID: r.s.t.mtlsClientID(), client: r.s.clientWith(c)})
		if v != nil {
			return *v
		}
		if x.err != nil {
			return passf("%s: refused in the TLS handshake", name)
		}
		if g := gradeRefusal(x, []want{{400, "json", []string{"invalid_client"}}, {401, "json", []string{"invalid_client"}}}); g.tier != TierPass {
			r.fail = x
			return g.wrap("%s: %s", name, g.reason)
		}
		return passf("%s: invalid_client", name)
	}
}

// selfSignedDN returns a self-signed certificate bearing C1's subject.
func selfSignedDN(r *run) (*tls.Certificate, error) {
	l, err := r.s.leaf1()
	if err != nil {
		return nil, err
	}
	return selfSigned(l, nil)
}

// casesMTLSTrust are the cases of the trust anchors of PKI client
// authentication (group D and its adversarial case).
var casesMTLSTrust = []Case{
	Case{ID: "MTLS-CA-04", Title: "PKI client authentication validates the chain", Section: "RFC 8705 §2.1", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupD, Needs: CapMTLS,
		Expect: "self-signed certificate bearing C1's subject → invalid_client (or a refused handshake)",
		run: func(ctx context.Context, r *run) verdict {
			return untrustedCertStep("self-signed with C1's DN", selfSignedDN)(r)
		}},
	Case{ID: "MTLS-CA-17", Title: "only the configured trust anchors issue client certificates", Section: "RFC 8705 §7.4", Level: LevelShould, Role: RoleTokenEndpoint, Group: GroupD, Needs: CapMTLS,
		Expect: "certificate with C1's subject from another CA → invalid_client (or a refused handshake)",
		run: func(ctx context.Context, r *run) verdict {
			return untrustedCertStep("C1's DN from another CA", foreignCert)(r)
		}},
	Case{ID: "ADV-91", Title: "a certificate from another CA with the registered DN is refused", Section: "RFC 8705 §2.1, §7.4", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupADV, Needs: CapMTLS,
		Expect: "PKI client authentication with C1's DN issued by an untrusted CA → invalid_client",
		run: func(ctx context.Context, r *run) verdict {
			return untrustedCertStep("C1's DN from another CA", foreignCert)(r)
		}},
}
