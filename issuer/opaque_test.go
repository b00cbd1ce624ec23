package issuer

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/oautherr"
)

// TestOpaqueConfig: FormatOpaque needs a store, FormatJWT refuses one.
func TestOpaqueConfig(t *testing.T) {
	t.Parallel()
	ks, err := NewKeySet(SigningKey{Signer: newES256(t)})
	if err != nil {
		t.Fatal(err)
	}
	store := NewMemoryRefreshStore(nil)
	tests := []struct {
		name    string
		format  TokenFormat
		store   RefreshStore
		wantErr bool
	}{
		{"jwt", FormatJWT, nil, false},
		{"jwt with a store", FormatJWT, store, true},
		{"opaque", FormatOpaque, store, false},
		{"opaque without a store", FormatOpaque, nil, true},
		{"unknown format", TokenFormat(9), store, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(Config{Issuer: "https://as.example.test", Keys: ks, Audience: []string{rsAudience}, AccessTokenFormat: tc.format, AccessTokens: tc.store})
			if (err != nil) != tc.wantErr || err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New: %v, want error %v", err, tc.wantErr)
			}
		})
	}
	for _, s := range []string{"jwt", "opaque"} {
		f, err := ParseTokenFormat(s)
		if err != nil || f.String() != s {
			t.Fatalf("ParseTokenFormat(%q) = %v, %v", s, f, err)
		}
	}
	if _, err := ParseTokenFormat("JWT"); err == nil {
		t.Fatal("ParseTokenFormat accepted JWT")
	}
}

// TestMintOpaque: an opaque token is a 256-bit random handle whose record,
// the claims a JWT would carry, is stored under its SHA-256 until exp.
func TestMintOpaque(t *testing.T) {
	t.Parallel()
	clock := &fixedClock{t: time.Unix(1_800_000_000, 0)}
	ks, err := NewKeySet(SigningKey{Signer: newES256(t)})
	if err != nil {
		t.Fatal(err)
	}
	store := NewMemoryRefreshStore(clock.Now)
	is, err := New(Config{Issuer: "https://as.example.test", Keys: ks, Audience: []string{rsAudience}, Now: clock.Now, AccessTokenFormat: FormatOpaque, AccessTokens: store})
	if err != nil {
		t.Fatal(err)
	}
	jkt := "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	tok, err := is.Mint(context.Background(), MintRequest{Subject: "alice", ClientID: "app", Scope: "read", TTL: time.Minute,
		Binding: Binding{JKT: jkt}, Claims: map[string]any{"tenant": "t1"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(tok.Raw) != 43 || strings.ContainsAny(tok.Raw, ".=+/") || tok.Type != "DPoP" || tok.KeyID != "" || tok.ID == "" {
		t.Fatalf("token %+v", tok)
	}
	rec, err := store.Get(context.Background(), sha256.Sum256([]byte(tok.Raw)))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Subject != "alice" || rec.ClientID != "app" || rec.Scope != "read" || rec.Binding.JKT != jkt || rec.ID != tok.ID ||
		!rec.IssuedAt.Equal(clock.Now()) || !rec.ExpiresAt.Equal(clock.Now().Add(time.Minute)) || rec.Claims["tenant"] != "t1" ||
		len(rec.Audience) != 1 || rec.Audience[0] != rsAudience {
		t.Fatalf("record %+v", rec)
	}
	other, err := is.Mint(context.Background(), MintRequest{Subject: "alice", ClientID: "app"})
	if err != nil {
		t.Fatal(err)
	}
	if other.Raw == tok.Raw {
		t.Fatal("two mints gave one handle")
	}
	clock.Advance(time.Minute)
	if _, err := store.Get(context.Background(), sha256.Sum256([]byte(tok.Raw))); !errors.Is(err, ErrTokenNotFound) {
		t.Fatalf("record after exp: %v", err)
	}

	broken, err := New(Config{Issuer: "https://as.example.test", Keys: ks, Audience: []string{rsAudience}, AccessTokenFormat: FormatOpaque, AccessTokens: brokenRefreshStore{}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = broken.Mint(context.Background(), MintRequest{Subject: "alice", ClientID: "app"})
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrUnavailable) || e.Reason != oautherr.ReasonAccessTokenStoreUnavailable {
		t.Fatalf("store failure: %v", err)
	}
}

// TestOpaqueIntrospection: opaque access tokens are answered exactly as
// JWTs are (claims, cnf, token_type, visibility), never confused with
// refresh tokens or JWTs, and a store failure is 503.
func TestOpaqueIntrospection(t *testing.T) {
	t.Parallel()
	store := NewMemoryRefreshStore(nil)
	h := newHarness(t, harnessOpts{accessTokens: store})
	c := h.client(nil)
	introURL := h.srv.URL + IntrospectionPath
	p := h.prover(nil)
	token := func(cl *http.Client, target string, form url.Values, hdr map[string]string) result {
		t.Helper()
		r := h.post(cl, target, form, hdr)
		if r.status != 200 {
			t.Fatalf("token: %d %s", r.status, r.raw)
		}
		if at := r.str("access_token"); len(at) != 43 || strings.Contains(at, ".") {
			t.Fatalf("access token %q is not an opaque handle", at)
		}
		return r
	}
	dpopTok := token(c, h.tokenURL(), url.Values{"grant_type": {"client_credentials"}}, map[string]string{"Authorization": formatBasic("conf", confSecret), "DPoP": h.proof(p, h.tokenURL(), "")})
	mtlsTok := token(h.client(h.c1), h.aliasTokenURL(), url.Values{"grant_type": {"client_credentials"}, "client_id": {"pki"}}, nil)
	bearerTok := token(c, h.tokenURL(), url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}, basic("conf", confSecret))
	refreshResp := token(c, h.tokenURL(), url.Values{"grant_type": {testGrant}, "subject": {"alice"}}, basic("conf", confSecret))
	if dpopTok.str("token_type") != "DPoP" || mtlsTok.str("token_type") != "Bearer" {
		t.Fatalf("token types %q %q", dpopTok.str("token_type"), mtlsTok.str("token_type"))
	}

	intro := func(caller map[string]string, tok string, extra url.Values) result {
		t.Helper()
		form := url.Values{"token": {tok}}
		for k, v := range extra {
			form[k] = v
		}
		return h.post(c, introURL, form, caller)
	}
	active := []struct {
		name      string
		caller    map[string]string
		tok       string
		tokenType string
		cnf       map[string]any
		clientID  string
	}{
		{"DPOP-AS-12 DPoP-bound opaque token", basic("rs", rsSecret), dpopTok.str("access_token"), "DPoP", map[string]any{"jkt": p.Thumbprint()}, "conf"},
		{"MTLS-CB-13 certificate-bound opaque token", basic("rs", rsSecret), mtlsTok.str("access_token"), "Bearer", map[string]any{"x5t#S256": mtlsbound.Thumbprint(h.c1.Cert)}, "pki"},
		{"bearer opaque token", basic("rs", rsSecret), bearerTok.str("access_token"), "Bearer", nil, "conf"},
		{"ATV-30 the client it was issued to", basic("conf", confSecret), bearerTok.str("access_token"), "Bearer", nil, "conf"},
	}
	for _, tt := range active {
		t.Run(tt.name, func(t *testing.T) {
			r := intro(tt.caller, tt.tok, nil)
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
			if r.str("iss") != h.is.ID() || r.str("client_id") != tt.clientID || r.str("aud") != rsAudience || r.str("jti") == "" {
				t.Fatalf("claims %s", r.raw)
			}
			exp, _ := r.body["exp"].(float64)
			iat, _ := r.body["iat"].(float64)
			if int64(iat) != h.clock.Now().Unix() || exp <= iat {
				t.Fatalf("iat %v exp %v", iat, exp)
			}
		})
	}
	if r := intro(basic("rs", rsSecret), bearerTok.str("access_token"), nil); r.str("scope") != "read" {
		t.Fatalf("scope: %s", r.raw)
	}
	if r := intro(basic("conf", confSecret), refreshResp.str("refresh_token"), nil); r.str("token_type") != "refresh_token" {
		t.Fatalf("refresh token beside opaque access tokens: %s", r.raw)
	}
	inactive := []struct {
		name   string
		caller map[string]string
		tok    string
		extra  url.Values
	}{
		{"ATV-30 audience the caller is not registered for", basic("rs2", rsSecret), bearerTok.str("access_token"), nil},
		{"ATV-30 another client's DPoP-bound token", basic("peer", rsSecret), dpopTok.str("access_token"), nil},
		{"unknown handle", basic("rs", rsSecret), strings.Repeat("A", 43), nil},
		{"handle with a character changed", basic("rs", rsSecret), "B" + bearerTok.str("access_token")[1:], nil},
		{"handle with a dot appended", basic("rs", rsSecret), bearerTok.str("access_token") + ".", nil},
		{"an opaque token under the refresh_token hint", basic("rs", rsSecret), "x" + bearerTok.str("access_token")[1:], url.Values{"token_type_hint": {"refresh_token"}}},
		{"a refresh token is never an access token", basic("rs", rsSecret), refreshResp.str("refresh_token"), url.Values{"token_type_hint": {"access_token"}}},
	}
	for _, tt := range inactive {
		t.Run(tt.name, func(t *testing.T) {
			r := intro(tt.caller, tt.tok, tt.extra)
			if r.status != 200 || string(r.raw) != `{"active":false}` {
				t.Fatalf("%d %s", r.status, r.raw)
			}
		})
	}
	t.Run("an opaque token is refused as a refresh token", func(t *testing.T) {
		r := h.post(c, h.tokenURL(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {bearerTok.str("access_token")}}, basic("conf", confSecret))
		if r.status != 400 || r.str("error") != "invalid_grant" {
			t.Fatalf("%d %s", r.status, r.raw)
		}
	})
	t.Run("expired", func(t *testing.T) {
		tok := bearerTok.str("access_token")
		rec, err := store.Get(context.Background(), opaqueID(tok))
		if err != nil {
			t.Fatal(err)
		}
		// The store keeps the record on the real clock; the issuer's clock
		// decides: past exp the token is inactive.
		h2 := newHarness(t, harnessOpts{accessTokens: store})
		h2.clock.Advance(rec.ExpiresAt.Sub(h2.clock.Now()) - time.Second)
		if r := h2.post(h2.client(nil), h2.srv.URL+IntrospectionPath, url.Values{"token": {tok}}, basic("rs", rsSecret)); r.body["active"] != true {
			t.Fatalf("a second before exp: %d %s", r.status, r.raw)
		}
		h2.clock.Advance(time.Second)
		r := h2.post(h2.client(nil), h2.srv.URL+IntrospectionPath, url.Values{"token": {tok}}, basic("rs", rsSecret))
		if r.status != 200 || string(r.raw) != `{"active":false}` {
			t.Fatalf("%d %s", r.status, r.raw)
		}
	})
}

// TestOpaqueStoreFailure: a failing store refuses the token request and
// the introspection of an opaque token with 503, never {"active":false}.
func TestOpaqueStoreFailure(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{accessTokens: brokenRefreshStore{}})
	c := h.client(nil)
	r := h.post(c, h.tokenURL(), url.Values{"grant_type": {"client_credentials"}}, basic("conf", confSecret))
	if r.status != 503 {
		t.Fatalf("token request with a failing store: %d %s", r.status, r.raw)
	}
	r = h.post(c, h.srv.URL+IntrospectionPath, url.Values{"token": {strings.Repeat("A", 43)}}, basic("rs", rsSecret))
	if r.status != 503 || r.body["active"] != nil {
		t.Fatalf("introspection with a failing store: %d %s", r.status, r.raw)
	}
}
