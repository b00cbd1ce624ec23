package issuer

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/replaycache"
)

func readTestdata(name string) ([]byte, error) { return os.ReadFile(filepath.Join("testdata", name)) }

// forgeProof signs an ES256 proof with arbitrary header and claims, for the
// malformed cases a well-behaved dpop.Prover cannot produce. hdr["omit_jwk"]
// leaves the jwk header out.
func forgeProof(t testing.TB, hdr, claims map[string]any) string {
	t.Helper()
	key := newES256(t)
	opts := &jose.SignerOptions{EmbedJWK: hdr["omit_jwk"] != true}
	for k, v := range hdr {
		if k != "omit_jwk" {
			opts.WithHeader(jose.HeaderKey(k), v)
		}
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTokenEndpointNonces(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{nonces: true})
	c := h.client(nil)
	cc := url.Values{"grant_type": {"client_credentials"}}
	p := h.prover(nil)
	post := func(nonce string) result {
		r := h.post(c, h.tokenURL(), cc, map[string]string{"Authorization": formatBasic("conf", confSecret), "DPoP": h.proof(p, h.tokenURL(), nonce)})
		h.checkTokenResponse(r)
		return r
	}

	r := post("")
	if r.status != 400 || r.str("error") != "use_dpop_nonce" || len(r.header.Values("DPoP-Nonce")) != 1 {
		t.Fatalf("DPOP-AS-14: %d %s %v", r.status, r.raw, r.header.Values("DPoP-Nonce"))
	}
	nonce := r.header.Get("DPoP-Nonce")
	if r := post("eyJ7S_zG.eyJH0-Z.HX4w-7v"); r.str("error") != "use_dpop_nonce" || r.header.Get("DPoP-Nonce") == "" {
		t.Fatalf("DPOP-AS-16 wrong nonce: %d %s", r.status, r.raw)
	}
	if r := post(""); r.str("error") != "use_dpop_nonce" {
		t.Fatalf("DPOP-AS-20 nonce omitted after one was issued: %d %s", r.status, r.raw)
	}
	other, err := dpop.NewNonces(dpop.NonceConfig{Secrets: [][]byte{[]byte(strings.Repeat("k", 32))}, Label: "https://rs.example.test", Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	rsNonce, err := other.NewNonce()
	if err != nil {
		t.Fatal(err)
	}
	if r := post(rsNonce); r.str("error") != "use_dpop_nonce" {
		t.Fatalf("DPOP-AS-21 resource server's nonce: %d %s", r.status, r.raw)
	}
	r = post(nonce)
	if r.status != 200 || r.str("token_type") != "DPoP" {
		t.Fatalf("with nonce: %d %s", r.status, r.raw)
	}
	if r.header.Get("DPoP-Nonce") != "" {
		t.Fatal("fresh nonce sent although the current one is far from expiry")
	}
	h.clock.Advance(4 * time.Minute) // past two thirds of the default 5 minute lifetime
	p2 := h.prover(nil)
	r = h.post(c, h.tokenURL(), cc, map[string]string{"Authorization": formatBasic("conf", confSecret), "DPoP": h.proof(p2, h.tokenURL(), nonce)})
	h.checkTokenResponse(r)
	if r.status != 200 || r.header.Get("DPoP-Nonce") == "" || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("DPOP-AS-19: nonce near expiry: %d %s %v", r.status, r.raw, r.header)
	}

	t.Run("DPOP-AS-15 nonces are distinct", func(t *testing.T) {
		seen := map[string]bool{}
		for range 200 {
			r := post("")
			n := r.header.Get("DPoP-Nonce")
			if seen[n] {
				t.Fatalf("repeated nonce %q", n)
			}
			seen[n] = true
		}
	})

	t.Run("dpop.Transport retries with the nonce", func(t *testing.T) {
		tc := &http.Client{Transport: &dpop.Transport{Base: c.Transport, Prover: h.prover(nil)}}
		req, _ := http.NewRequest(http.MethodPost, h.tokenURL(), strings.NewReader(cc.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", formatBasic("conf", confSecret))
		r := h.do(tc, req)
		h.checkTokenResponse(r)
		if r.status != 200 || r.str("token_type") != "DPoP" {
			t.Fatalf("%d %s", r.status, r.raw)
		}
	})
}

func TestClientAuthentication(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	cc := func(extra ...string) url.Values {
		v := url.Values{"grant_type": {"client_credentials"}}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return v
	}
	tests := []struct {
		name       string
		cert       func() *http.Client
		alias      bool
		form       url.Values
		hdr        map[string]string
		wantStatus int
		wantErr    string
		wantX5T    func() string
		basicChal  bool
	}{
		{name: "client_secret_basic", form: cc(), hdr: basic("conf", confSecret), wantStatus: 200},
		{name: "wrong secret", form: cc(), hdr: basic("conf", "nope"), wantStatus: 401, wantErr: "invalid_client", basicChal: true},
		{name: "unknown client", form: cc(), hdr: basic(attackMarker, "x"), wantStatus: 401, wantErr: "invalid_client", basicChal: true},
		{name: "malformed Basic", form: cc(), hdr: map[string]string{"Authorization": "Basic " + attackMarker}, wantStatus: 401, wantErr: "invalid_client", basicChal: true},
		{name: "Bearer scheme", form: cc(), hdr: map[string]string{"Authorization": "Bearer abc"}, wantStatus: 401, wantErr: "invalid_client", basicChal: true},
		{name: "client_secret_post", form: cc("client_id", "post", "client_secret", postSecret), wantStatus: 200},
		{name: "post client with Basic", form: cc(), hdr: basic("post", postSecret), wantStatus: 401, wantErr: "invalid_client", basicChal: true},
		{name: "basic client with post", form: cc("client_id", "conf", "client_secret", confSecret), wantStatus: 400, wantErr: "invalid_client"},
		{name: "two methods", form: cc("client_secret", confSecret), hdr: basic("conf", confSecret), wantStatus: 400, wantErr: "invalid_request"},
		{name: "Basic id differs from client_id", form: cc("client_id", "post"), hdr: basic("conf", confSecret), wantStatus: 400, wantErr: "invalid_request"},
		{name: "no credentials", form: cc(), wantStatus: 400, wantErr: "invalid_client"},
		{name: "client_assertion unsupported", form: cc("client_id", "conf", "client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "client_assertion", "x.y.z"), wantStatus: 400, wantErr: "invalid_client"},
		{name: "public client cannot use client_credentials", form: cc("client_id", "public"), wantStatus: 400, wantErr: "unauthorized_client"},
		{name: "public client sending a secret", form: cc("client_id", "public", "client_secret", "x"), wantStatus: 400, wantErr: "invalid_client"},
		{name: "MTLS-CA-01/pki client without certificate", form: cc("client_id", "pki"), alias: true, wantStatus: 400, wantErr: "invalid_client"},
		{name: "MTLS-CA-02/certificate without client_id", cert: func() *http.Client { return h.client(h.c1) }, form: cc(), alias: true, wantStatus: 400, wantErr: "invalid_client"},
		{name: "MTLS-CA-03/other client's certificate", cert: func() *http.Client { return h.client(h.c2) }, form: cc("client_id", "pki"), alias: true, wantStatus: 400, wantErr: "invalid_client"},
		{name: "MTLS-CA-04/self-signed certificate", cert: func() *http.Client { return h.client(h.s1) }, form: cc("client_id", "pki"), alias: true, wantStatus: 400, wantErr: "invalid_client"},
		{name: "MTLS-CA-17/same name from an untrusted CA", cert: func() *http.Client { return h.client(h.c1ca2) }, form: cc("client_id", "pki"), alias: true, wantStatus: 400, wantErr: "invalid_client"},
		{name: "MTLS-CA-16/pki client with client_secret_basic", cert: func() *http.Client { return h.client(h.c1) }, form: cc(), hdr: basic("pki", "whatever"), alias: true, wantStatus: 401, wantErr: "invalid_client", basicChal: true},
		{name: "MTLS-CB-01/tls_client_auth", cert: func() *http.Client { return h.client(h.c1) }, form: cc("client_id", "pki"), alias: true, wantStatus: 200, wantX5T: func() string { return mtlsbound.Thumbprint(h.c1.Cert) }},
		{name: "MTLS-CA-04/chain through an intermediate sent in the handshake", cert: func() *http.Client { return h.client(h.c1int) }, form: cc("client_id", "pki"), alias: true, wantStatus: 200, wantX5T: func() string { return mtlsbound.Thumbprint(h.c1int.Cert) }},
		{name: "MTLS-CA-10/self_signed_tls_client_auth", cert: func() *http.Client { return h.client(h.s1) }, form: cc("client_id", "selfsigned"), alias: true, wantStatus: 200, wantX5T: func() string { return mtlsbound.Thumbprint(h.s1.Cert) }},
		{name: "MTLS-CA-10/unregistered self-signed", cert: func() *http.Client { return h.client(h.s2) }, form: cc("client_id", "selfsigned"), alias: true, wantStatus: 400, wantErr: "invalid_client"},
		{name: "MTLS-CB-03/Client-Cert header from an untrusted peer", form: cc(), hdr: map[string]string{"Authorization": formatBasic("conf", confSecret), "Client-Cert": ":" + "AAAA" + ":"}, wantStatus: 200},
		{name: "MTLS-CB-05/certificate-bound client without certificate", form: cc(), hdr: basic("cert-bound", boundSecret), wantStatus: 400, wantErr: "invalid_request"},
		{name: "MTLS-CB-05/certificate-bound client with certificate", cert: func() *http.Client { return h.client(h.c2) }, form: cc(), hdr: basic("cert-bound", boundSecret), alias: true, wantStatus: 200, wantX5T: func() string { return mtlsbound.Thumbprint(h.c2.Cert) }},
		{name: "ATV-06/ATV-07 resource indicator", form: cc("resource", rs2Audience), hdr: basic("conf", confSecret), wantStatus: 200},
		{name: "ATV-06/resource not allowed", form: cc("resource", "https://evil.example/"+attackMarker), hdr: basic("conf", confSecret), wantStatus: 400, wantErr: "invalid_target"},
		{name: "ATV-05/scope not allowed", form: cc("scope", "read admin"), hdr: basic("conf", confSecret), wantStatus: 400, wantErr: "invalid_scope"},
		{name: "duplicate scope value", form: cc("scope", "read read"), hdr: basic("conf", confSecret), wantStatus: 400, wantErr: "invalid_scope"},
		{name: "unsupported grant type", form: url.Values{"grant_type": {"password"}}, hdr: basic("conf", confSecret), wantStatus: 400, wantErr: "unsupported_grant_type"},
		{name: "extension grant not allowed for client", form: url.Values{"grant_type": {testGrant}, "subject": {"x"}, "client_id": {"post"}, "client_secret": {postSecret}}, wantStatus: 400, wantErr: "unauthorized_client"},
		{name: "missing grant_type", form: url.Values{}, hdr: basic("conf", confSecret), wantStatus: 400, wantErr: "invalid_request"},
		{name: "refresh without refresh_token", form: url.Values{"grant_type": {"refresh_token"}}, hdr: basic("conf", confSecret), wantStatus: 400, wantErr: "invalid_request"},
		{name: "unknown refresh token", form: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {attackMarker}}, hdr: basic("conf", confSecret), wantStatus: 400, wantErr: "invalid_grant"},
		{name: "grant handler refusal", form: url.Values{"grant_type": {testGrant}}, hdr: basic("conf", confSecret), wantStatus: 400, wantErr: "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := h.client(nil)
			if tt.cert != nil {
				c = tt.cert()
			}
			target := h.tokenURL()
			if tt.alias {
				target = h.aliasTokenURL()
			}
			r := h.post(c, target, tt.form, tt.hdr)
			h.checkTokenResponse(r)
			if r.status != tt.wantStatus || r.str("error") != tt.wantErr {
				t.Fatalf("status %d body %s, want %d %q", r.status, r.raw, tt.wantStatus, tt.wantErr)
			}
			if chal := r.header.Get("WWW-Authenticate"); tt.basicChal != strings.HasPrefix(chal, "Basic realm=") {
				t.Fatalf("WWW-Authenticate = %q", chal)
			}
			if r.status != 200 {
				return
			}
			claims := h.verify(r.str("access_token"))
			cnf := cnfOf(claims)
			if tt.wantX5T != nil {
				x5t, _ := cnf["x5t#S256"].(string)
				if x5t != tt.wantX5T() || len(x5t) != 43 || r.str("token_type") != "Bearer" {
					t.Fatalf("MTLS-CB-02: cnf %v token_type %s", cnf, r.str("token_type"))
				}
			} else if cnf != nil {
				t.Fatalf("unexpected cnf %v", cnf)
			}
			if tt.form.Get("resource") != "" && claims["aud"] != tt.form.Get("resource") {
				t.Fatalf("aud = %v", claims["aud"])
			}
		})
	}
}

func TestTokenEndpointRequestShape(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c := h.client(nil)
	send := func(method, target, ct, body string, hdr map[string][]string) result {
		req, err := http.NewRequest(method, target, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		for k, vs := range hdr {
			for _, v := range vs {
				req.Header.Add(k, v)
			}
		}
		return h.do(c, req)
	}
	form := "application/x-www-form-urlencoded"
	auth := map[string][]string{"Authorization": {formatBasic("conf", confSecret)}}
	tests := []struct {
		name, method, target, ct, body string
		hdr                            map[string][]string
		status                         int
		code                           string
	}{
		{"GET", http.MethodGet, "", "", "", auth, 405, "invalid_request"},
		{"JSON body", http.MethodPost, "", "application/json", `{"grant_type":"client_credentials"}`, auth, 400, "invalid_request"},
		{"repeated parameter", http.MethodPost, "", form, "grant_type=client_credentials&scope=read&scope=write", auth, 400, "invalid_request"},
		{"secret in the query", http.MethodPost, "?client_secret=x", form, "grant_type=client_credentials", auth, 400, "invalid_request"},
		{"two Authorization headers", http.MethodPost, "", form, "grant_type=client_credentials", map[string][]string{"Authorization": {formatBasic("conf", confSecret), formatBasic("conf", confSecret)}}, 400, "invalid_request"},
		{"oversized body", http.MethodPost, "", form, "grant_type=client_credentials&x=" + strings.Repeat("a", maxFormBytes), auth, 400, "invalid_request"},
		{"ok", http.MethodPost, "", form, "grant_type=client_credentials", auth, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := send(tt.method, h.tokenURL()+tt.target, tt.ct, tt.body, tt.hdr)
			h.checkTokenResponse(r)
			if r.status != tt.status || r.str("error") != tt.code {
				t.Fatalf("status %d body %s", r.status, r.raw)
			}
		})
	}
}

func TestIntrospection(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c := h.client(nil)
	introURL := h.srv.URL + IntrospectionPath
	p := h.prover(nil)
	token := func(cl *http.Client, target string, form url.Values, hdr map[string]string) result {
		t.Helper()
		r := h.post(cl, target, form, hdr)
		if r.status != 200 {
			t.Fatalf("token: %d %s", r.status, r.raw)
		}
		return r
	}
	dpopTok := token(c, h.tokenURL(), url.Values{"grant_type": {"client_credentials"}}, map[string]string{"Authorization": formatBasic("conf", confSecret), "DPoP": h.proof(p, h.tokenURL(), "")})
	mtlsTok := token(h.client(h.c1), h.aliasTokenURL(), url.Values{"grant_type": {"client_credentials"}, "client_id": {"pki"}}, nil)
	bearerTok := token(c, h.tokenURL(), url.Values{"grant_type": {"client_credentials"}}, basic("conf", confSecret))
	rs2Tok := token(c, h.tokenURL(), url.Values{"grant_type": {"client_credentials"}, "resource": {rs2Audience}}, basic("conf", confSecret))
	refresh := token(c, h.tokenURL(), url.Values{"grant_type": {testGrant}, "subject": {"alice"}}, basic("conf", confSecret)).str("refresh_token")
	peerTok := token(c, h.tokenURL(), url.Values{"grant_type": {"client_credentials"}}, basic("peer", rsSecret))

	// A token with a published kid but signed by another key.
	forgedIs := newTestIssuer(t, SigningKey{Signer: newES256(t), KeyID: h.is.Keys().ActiveKeyID()}, h.clock.Now)
	forgedIs.cfg.Issuer = h.is.ID()
	forged, err := forgedIs.Mint(context.Background(), MintRequest{Subject: "s", ClientID: "conf"})
	if err != nil {
		t.Fatal(err)
	}

	intro := func(cl *http.Client, form url.Values, hdr map[string]string) result {
		t.Helper()
		r := h.post(cl, introURL, form, hdr)
		if r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("introspection Cache-Control = %q", r.header.Get("Cache-Control"))
		}
		return r
	}
	active := []struct {
		name      string
		caller    map[string]string
		client    *http.Client
		tok       string
		tokenType string
		cnf       map[string]any
	}{
		{"DPOP-AS-12/DPOP-AS-13 DPoP-bound, no proof needed", basic("rs", rsSecret), c, dpopTok.str("access_token"), "DPoP", map[string]any{"jkt": p.Thumbprint()}},
		{"MTLS-CB-13 certificate-bound", basic("rs", rsSecret), c, mtlsTok.str("access_token"), "Bearer", map[string]any{"x5t#S256": mtlsbound.Thumbprint(h.c1.Cert)}},
		{"bearer", basic("rs", rsSecret), c, bearerTok.str("access_token"), "Bearer", nil},
		{"audience-restricted caller sees its own tokens", basic("rs2", rsSecret), c, rs2Tok.str("access_token"), "Bearer", nil},
		{"refresh token by its client", map[string]string{"Authorization": formatBasic("conf", confSecret)}, c, refresh, "refresh_token", nil},
		{"ATV-30 a client without registered audiences sees its own tokens", basic("peer", rsSecret), c, peerTok.str("access_token"), "Bearer", nil},
		{"ATV-30 a client sees tokens for an audience it is registered for", basic("conf", confSecret), c, mtlsTok.str("access_token"), "Bearer", map[string]any{"x5t#S256": mtlsbound.Thumbprint(h.c1.Cert)}},
	}
	for _, tt := range active {
		t.Run(tt.name, func(t *testing.T) {
			r := intro(tt.client, url.Values{"token": {tt.tok}}, tt.caller)
			if r.status != 200 || r.body["active"] != true || r.str("token_type") != tt.tokenType {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			got, _ := r.body["cnf"].(map[string]any)
			if len(got) != len(tt.cnf) {
				t.Fatalf("cnf = %v, want %v", got, tt.cnf)
			}
			for k, v := range tt.cnf {
				if got[k] != v {
					t.Fatalf("cnf = %v, want %v", got, tt.cnf)
				}
			}
			if r.str("iss") != h.is.ID() || r.str("client_id") != "conf" && r.str("client_id") != "pki" && r.str("client_id") != "peer" {
				t.Fatalf("claims %s", r.raw)
			}
		})
	}
	t.Run("MTLS-CA-14 mTLS client authentication at the introspection alias", func(t *testing.T) {
		r := intro(h.client(h.c1), url.Values{"token": {mtlsTok.str("access_token")}, "client_id": {"pki"}}, nil)
		if r.status != 200 || r.body["active"] != true {
			t.Fatalf("%d %s", r.status, r.raw)
		}
		r = intro(h.client(h.c2), url.Values{"token": {mtlsTok.str("access_token")}, "client_id": {"pki"}}, nil)
		if r.status != 401 || r.str("error") != "invalid_client" {
			t.Fatalf("other certificate: %d %s", r.status, r.raw)
		}
	})

	inactive := []struct {
		name   string
		caller map[string]string
		tok    string
	}{
		{"unknown", basic("rs", rsSecret), "not-a-token"},
		{"garbage JWT", basic("rs", rsSecret), "a.b.c"},
		{"ATV-31 forged signature under a published kid", basic("rs", rsSecret), forged.Raw},
		{"ATV-31 other audience", basic("rs2", rsSecret), bearerTok.str("access_token")},
		{"refresh token of another client", basic("rs", rsSecret), refresh},
		{"another client's token, for an audience the caller is not registered for", basic("peer", rsSecret), bearerTok.str("access_token")},
		{"another client's DPoP-bound token", basic("peer", rsSecret), dpopTok.str("access_token")},
		{"another client's token, caller registered for other audiences", basic("rs2", rsSecret), mtlsTok.str("access_token")},
		{"long", basic("rs", rsSecret), strings.Repeat("a", maxParamBytes)},
	}
	for _, tt := range inactive {
		t.Run("ATV-30/"+tt.name, func(t *testing.T) {
			r := intro(c, url.Values{"token": {tt.tok}}, tt.caller)
			if r.status != 200 || string(r.raw) != `{"active":false}` {
				t.Fatalf("%d %s", r.status, r.raw)
			}
		})
	}

	t.Run("ATV-29 caller must authenticate", func(t *testing.T) {
		r := intro(c, url.Values{"token": {bearerTok.str("access_token")}}, nil)
		if r.status != 401 || r.str("error") != "invalid_client" || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic ") {
			t.Fatalf("%d %s %v", r.status, r.raw, r.header)
		}
		r = intro(c, url.Values{"token": {bearerTok.str("access_token")}}, basic("rs", "wrong"))
		if r.status != 401 {
			t.Fatalf("wrong secret: %d %s", r.status, r.raw)
		}
		r = intro(c, url.Values{"token": {bearerTok.str("access_token")}}, basic("post", postSecret))
		if r.status != 401 {
			t.Fatalf("client_secret_post client over Basic: %d %s", r.status, r.raw)
		}
		r = intro(c, url.Values{"token": {bearerTok.str("access_token")}, "client_id": {"post"}, "client_secret": {postSecret}}, nil)
		if r.status != 401 || r.str("error") != "invalid_client" {
			t.Fatalf("client without the introspect flag: %d %s", r.status, r.raw)
		}
	})
	t.Run("missing or oversized token", func(t *testing.T) {
		for _, f := range []url.Values{{}, {"token": {strings.Repeat("a", maxParamBytes+1)}}} {
			if r := intro(c, f, basic("rs", rsSecret)); r.status != 400 || r.str("error") != "invalid_request" {
				t.Fatalf("%d %s", r.status, r.raw)
			}
		}
	})
	t.Run("ATV-33 GET refused", func(t *testing.T) {
		req := mustGet(t, introURL+"?token=x")
		req.Header.Set("Authorization", formatBasic("rs", rsSecret))
		if r := h.do(c, req); r.status != 405 {
			t.Fatalf("%d %s", r.status, r.raw)
		}
	})

	t.Run("key rotation: old tokens stay active until they expire", func(t *testing.T) {
		ks := h.is.Keys()
		if err := ks.AddNext(SigningKey{Signer: newES256(t)}); err != nil {
			t.Fatal(err)
		}
		if err := ks.Rotate(); err != nil {
			t.Fatal(err)
		}
		fresh := token(c, h.tokenURL(), url.Values{"grant_type": {"client_credentials"}}, basic("conf", confSecret))
		for _, tok := range []string{bearerTok.str("access_token"), fresh.str("access_token")} {
			h.verify(tok) // through the JWKS endpoint
			if r := intro(c, url.Values{"token": {tok}}, basic("rs", rsSecret)); r.body["active"] != true {
				t.Fatalf("after rotation: %s", r.raw)
			}
		}
		h.clock.Advance(6 * time.Minute)
		if r := intro(c, url.Values{"token": {bearerTok.str("access_token")}}, basic("rs", rsSecret)); string(r.raw) != `{"active":false}` {
			t.Fatalf("ATV-30 expired: %s", r.raw)
		}
	})
}

func TestMetadata(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{algorithms: []string{"ES256", "PS256"}})
	c := h.client(nil)
	r := h.do(c, mustGet(t, h.srv.URL+MetadataPath))
	if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("ATV-34: %d %v", r.status, r.header)
	}
	if strings.Contains(string(r.raw), "[]") || strings.Contains(string(r.raw), "null") || strings.Contains(string(r.raw), `""`) {
		t.Fatalf("ATV-37: empty member in %s", r.raw)
	}
	var m struct {
		Issuer         string            `json:"issuer"`
		Token          string            `json:"token_endpoint"`
		JWKS           string            `json:"jwks_uri"`
		Introspection  string            `json:"introspection_endpoint"`
		Grants         []string          `json:"grant_types_supported"`
		AuthMethods    []string          `json:"token_endpoint_auth_methods_supported"`
		DPoPAlgs       []string          `json:"dpop_signing_alg_values_supported"`
		CertBound      *bool             `json:"tls_client_certificate_bound_access_tokens"`
		Aliases        map[string]string `json:"mtls_endpoint_aliases"`
		IntroAuthMeths []string          `json:"introspection_endpoint_auth_methods_supported"`
		AssertionAlgs  []string          `json:"token_endpoint_auth_signing_alg_values_supported"`
	}
	if err := json.Unmarshal(r.raw, &m); err != nil {
		t.Fatal(err)
	}
	aliasBase := "https://" + h.alias.Listener.Addr().String()
	checks := []struct {
		id string
		ok bool
	}{
		{"ATV-35 issuer identical", m.Issuer == h.is.ID() && strings.HasPrefix(m.Issuer, "https://")},
		{"ATV-09 jwks_uri", m.JWKS == h.srv.URL+JWKSPath},
		{"ATV-36 jwks_uri https", strings.HasPrefix(m.JWKS, "https://")},
		{"token_endpoint", m.Token == h.tokenURL()},
		{"introspection_endpoint", m.Introspection == h.srv.URL+IntrospectionPath},
		{"grant types", strings.Join(m.Grants, " ") == "client_credentials refresh_token "+testGrant},
		{"MTLS-CA-13 auth methods", strings.Join(m.AuthMethods, " ") == "client_secret_basic client_secret_post private_key_jwt tls_client_auth self_signed_tls_client_auth none"},
		{"ATV-37 signing algs with private_key_jwt", strings.Join(m.AssertionAlgs, " ") == strings.Join(DefaultDPoPAlgorithms, " ")},
		{"MTLS-CA-13 introspection auth methods", !strings.Contains(strings.Join(m.IntroAuthMeths, " "), "none")},
		{"DPOP-AS-10 algs", strings.Join(m.DPoPAlgs, " ") == "ES256 PS256"},
		{"MTLS-CB-04 boolean", m.CertBound != nil && *m.CertBound},
		{"MTLS-CA-15/KAT-11 aliases", m.Aliases["token_endpoint"] == aliasBase+TokenPath && m.Aliases["introspection_endpoint"] == aliasBase+IntrospectionPath && len(m.Aliases) == 2},
	}
	for _, ch := range checks {
		if !ch.ok {
			t.Errorf("%s: %s", ch.id, r.raw)
		}
	}

	t.Run("DPOP-AS-10 unlisted algorithm refused", func(t *testing.T) {
		k, err := dpop.NewProver(testSigner(t, "ES384"), &dpop.ProverOptions{Now: h.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		r := h.post(c, h.tokenURL(), url.Values{"grant_type": {"client_credentials"}}, map[string]string{"Authorization": formatBasic("conf", confSecret), "DPoP": h.proof(k, h.tokenURL(), "")})
		h.checkTokenResponse(r)
		if r.status != 400 || r.str("error") != "invalid_dpop_proof" {
			t.Fatalf("%d %s", r.status, r.raw)
		}
	})
	t.Run("JWKS and metadata methods", func(t *testing.T) {
		for _, u := range []string{h.srv.URL + MetadataPath, h.srv.URL + JWKSPath} {
			req, _ := http.NewRequest(http.MethodPost, u, nil)
			if r := h.do(c, req); r.status != 405 {
				t.Fatalf("%s: %d", u, r.status)
			}
		}
		if r := h.do(c, mustGet(t, h.srv.URL+"/nope")); r.status != 404 {
			t.Fatalf("unknown path: %d", r.status)
		}
	})
}

func TestServerConfig(t *testing.T) {
	t.Parallel()
	is := newTestIssuer(t, SigningKey{Signer: newES256(t)}, nil)
	reg, err := NewMemoryRegistry()
	if err != nil {
		t.Fatal(err)
	}
	h := GrantHandlerFunc(testGrantHandler)
	tests := []struct {
		name string
		cfg  ServerConfig
	}{
		{"no issuer", ServerConfig{ReplayStore: testReplay(t, nil), Clients: reg}},
		{"no clients", ServerConfig{ReplayStore: testReplay(t, is), Issuer: is}},
		{"HMAC proof algorithm", ServerConfig{ReplayStore: testReplay(t, is), Issuer: is, Clients: reg, DPoPAlgorithms: []string{"HS256"}}},
		{"none proof algorithm", ServerConfig{ReplayStore: testReplay(t, is), Issuer: is, Clients: reg, DPoPAlgorithms: []string{"none"}}},
		{"replace a built-in grant", ServerConfig{ReplayStore: testReplay(t, is), Issuer: is, Clients: reg, RefreshTokens: NewMemoryRefreshStore(nil), Grants: map[string]GrantHandler{GrantRefreshToken: h}}},
		{"nil grant handler", ServerConfig{ReplayStore: testReplay(t, is), Issuer: is, Clients: reg, RefreshTokens: NewMemoryRefreshStore(nil), Grants: map[string]GrantHandler{"x": nil}}},
		{"grants without a refresh store", ServerConfig{ReplayStore: testReplay(t, is), Issuer: is, Clients: reg, Grants: map[string]GrantHandler{testGrant: h}}},
		{"http alias", ServerConfig{ReplayStore: testReplay(t, is), Issuer: is, Clients: reg, MTLSBaseURL: "http://mtls.example.test"}},
		{"tiny refresh TTL", ServerConfig{ReplayStore: testReplay(t, is), Issuer: is, Clients: reg, RefreshTokenTTL: time.Millisecond}},
		{"nil-pointer replay store, metrics on", ServerConfig{ReplayStore: (*replaycache.LRU)(nil), Issuer: is, Clients: reg, Metrics: &metricsRecorder{}}},
		{"nil-pointer nonces", ServerConfig{ReplayStore: testReplay(t, is), Issuer: is, Clients: reg, Nonces: (*dpop.Nonces)(nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := NewServer(tt.cfg); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("NewServer = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestClientRegistryValidation(t *testing.T) {
	t.Parallel()
	t.Run("MTLS-CA-05/registrations are validated", testClientRegistryValidation)
}

func testClientRegistryValidation(t *testing.T) {
	bad := []Client{
		{AuthMethod: AuthNone},
		{ID: "x"},
		{ID: "x", AuthMethod: "client_secret_jwt"},
		{ID: "x", AuthMethod: AuthSecretBasic},
		{ID: "x", AuthMethod: AuthSecretPost, SecretHash: []byte("short")},
		{ID: "x", AuthMethod: AuthTLSClient},
		{ID: "x", AuthMethod: AuthTLSClient, Certificate: mtlsbound.PKIAuth{}},
		{ID: "x", AuthMethod: AuthTLSClient, Certificate: mtlsbound.PKIAuth{Roots: x509.NewCertPool(), SANDNS: "a", SANURI: "b"}},
		// A SAN selector that could match only through Unicode case
		// folding (the Kelvin sign folds to "k").
		{ID: "x", AuthMethod: AuthTLSClient, Certificate: mtlsbound.PKIAuth{Roots: x509.NewCertPool(), SANDNS: "\u212Aey.example.test"}},
		{ID: "x", AuthMethod: AuthTLSClient, Certificate: mtlsbound.PKIAuth{Roots: x509.NewCertPool(), SANURI: "spiffe://example.org/\u00e4"}},
		{ID: "x", AuthMethod: AuthSelfSignedTLSClient},
		{ID: "x", AuthMethod: AuthSecretBasic, SecretHash: HashSecret("s"), Certificate: SelfSigned(mtlsbound.SelfSignedAuth{}.Authenticate)},
		{ID: "x", AuthMethod: AuthNone, SecretHash: HashSecret("s")},
		{ID: "x", AuthMethod: AuthNone, Introspect: true},
		{ID: "x", AuthMethod: AuthNone, Introspect: true, IntrospectAll: true},
		{ID: "x", AuthMethod: AuthSecretBasic, SecretHash: HashSecret("s"), IntrospectAll: true},
		{ID: "x", AuthMethod: AuthNone, DPoPBoundAccessTokens: true, TLSClientCertificateBoundAccessTokens: true},
	}
	for i, c := range bad {
		if _, err := NewMemoryRegistry(c); err == nil {
			t.Errorf("case %d accepted: %+v", i, c)
		}
	}
	reg, err := NewMemoryRegistry(Client{ID: "a", AuthMethod: AuthNone, Scopes: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Client(context.Background(), "b"); err != ErrUnknownClient {
		t.Fatalf("unknown client: %v", err)
	}
	got, err := reg.Client(context.Background(), "a")
	if err != nil || got.Scopes[0] != "x" {
		t.Fatalf("%v %v", got, err)
	}
}

// TestAliasHTU checks which token endpoint URL a proof must name: the mTLS
// alias on its own host (fixture host mtls.as.example.test, also spelled
// with the default port), or on a path of the conventional host.
func TestAliasHTU(t *testing.T) {
	t.Parallel()
	clock := &fixedClock{t: time.Unix(1700000000, 0)}
	reg, err := NewMemoryRegistry(Client{ID: "conf", AuthMethod: AuthSecretBasic, SecretHash: HashSecret(confSecret)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, alias, reqURL, htu string
		ok                       bool
	}{
		{"alias host", "https://mtls.as.example.test", "https://mtls.as.example.test/token", "https://mtls.as.example.test/token", true},
		{"alias host with default port", "https://mtls.as.example.test", "https://MTLS.as.example.test:443/token", "https://mtls.as.example.test/token", true},
		{"conventional htu on the alias host", "https://mtls.as.example.test", "https://mtls.as.example.test/token", "https://as.example.test/token", false},
		{"alias htu on the conventional host", "https://mtls.as.example.test", "https://as.example.test/token", "https://mtls.as.example.test/token", false},
		{"alias path", "https://as.example.test/mtls", "https://as.example.test/mtls/token", "https://as.example.test/mtls/token", true},
		{"conventional htu on the alias path", "https://as.example.test/mtls", "https://as.example.test/mtls/token", "https://as.example.test/token", false},
		{"conventional path", "https://as.example.test/mtls", "https://as.example.test/token", "https://as.example.test/token", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			is := newTestIssuer(t, SigningKey{Signer: newES256(t)}, clock.Now)
			s, err := NewServer(ServerConfig{ReplayStore: testReplay(t, is), Issuer: is, Clients: reg, MTLSBaseURL: tt.alias})
			if err != nil {
				t.Fatal(err)
			}
			p, err := dpop.NewProver(newES256(t), &dpop.ProverOptions{Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			proof, err := p.Proof(http.MethodPost, tt.htu, dpop.ProofOptions{})
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodPost, tt.reqURL, strings.NewReader("grant_type=client_credentials"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Authorization", formatBasic("conf", confSecret))
			req.Header.Set("DPoP", proof)
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, req)
			if ok := rec.Code == http.StatusOK; ok != tt.ok {
				t.Fatalf("status %d body %s", rec.Code, rec.Body)
			}
			if !tt.ok && !strings.Contains(rec.Body.String(), "invalid_dpop_proof") {
				t.Fatalf("body %s", rec.Body)
			}
		})
	}
}

// TestIssuerWithPath mounts an issuer whose identifier has a path: the
// metadata lives at the well-known path followed by the issuer's path
// (RFC 8414 §3.1) and the endpoints under the issuer's path.
func TestIssuerWithPath(t *testing.T) {
	t.Parallel()
	ks, err := NewKeySet(SigningKey{Signer: newES256(t)})
	if err != nil {
		t.Fatal(err)
	}
	is, err := New(Config{Issuer: "https://as.example.test/tenant1", Keys: ks, Audience: []string{rsAudience}})
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := NewMemoryRegistry(Client{ID: "conf", AuthMethod: AuthSecretBasic, SecretHash: HashSecret(confSecret)})
	s, err := NewServer(ServerConfig{ReplayStore: testReplay(t, is), Issuer: is, Clients: reg, AuthorizationEndpoint: "https://as.example.test/tenant1/authorize", ResponseTypesSupported: []string{"code"}})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	serve := func(method, target, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, target, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", formatBasic("conf", confSecret))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	rec := serve(http.MethodGet, "https://as.example.test/.well-known/oauth-authorization-server/tenant1", "")
	var m Metadata
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || rec.Code != 200 || m.Issuer != "https://as.example.test/tenant1" || m.TokenEndpoint != "https://as.example.test/tenant1/token" ||
		m.AuthorizationEndpoint != "https://as.example.test/tenant1/authorize" || strings.Join(m.ResponseTypesSupported, ",") != "code" {
		t.Fatalf("metadata: %d %s", rec.Code, rec.Body)
	}
	if rec := serve(http.MethodGet, "https://as.example.test/.well-known/oauth-authorization-server", ""); rec.Code != 404 {
		t.Fatalf("metadata without the issuer path: %d", rec.Code)
	}
	if rec := serve(http.MethodPost, "https://as.example.test/tenant1/token", "grant_type=client_credentials"); rec.Code != 200 {
		t.Fatalf("token: %d %s", rec.Code, rec.Body)
	}
	if rec := serve(http.MethodGet, "https://as.example.test/tenant1/jwks", ""); rec.Code != 200 {
		t.Fatalf("jwks: %d", rec.Code)
	}
}
