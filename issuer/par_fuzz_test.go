package issuer

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzAuthorizationRequest drives the authorization request parser
// (dpop_jkt, request_uri, repeated and hostile parameters) with raw
// queries and checks its invariants: no panic, nil result with an
// *Error of code invalid_request that never echoes the input, and on
// success a client_id, no empty parameter and a dpop_jkt that is "" or
// 43 base64url characters.
func FuzzAuthorizationRequest(f *testing.F) {
	ks, err := NewKeySet(SigningKey{Signer: newES256(f)})
	if err != nil {
		f.Fatal(err)
	}
	is, err := New(Config{Issuer: "https://as.example.test", Keys: ks, Audience: []string{"https://rs.example.test"}})
	if err != nil {
		f.Fatal(err)
	}
	reg, err := NewMemoryRegistry(Client{ID: "pub", AuthMethod: AuthNone})
	if err != nil {
		f.Fatal(err)
	}
	s, err := NewServer(ServerConfig{ReplayStore: testReplay(f, is), Issuer: is, Clients: reg, PAR: &PARConfig{}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("client_id=pub&dpop_jkt=0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I&state=s")
	f.Add("client_id=pub&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3AATTACKER")
	f.Add("client_id=pub&dpop_jkt=ATTACKER&dpop_jkt=x")
	f.Fuzz(func(t *testing.T, query string) {
		if len(query) > 2048 {
			return
		}
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		ar, err := s.AuthorizationRequest(context.Background(), q)
		if err != nil {
			var e *Error
			if ar != nil || !errors.As(err, &e) || (e.Code != "invalid_request" && e.Code != "temporarily_unavailable") {
				t.Fatalf("got %+v, %v", ar, err)
			}
			if strings.Contains(e.Description, "ATTACKER") {
				t.Fatalf("input echoed: %v", e)
			}
			return
		}
		if ar.ClientID == "" || (ar.DPoPJKT != "" && !isSHA256Thumbprint(ar.DPoPJKT)) || ar.Params[ParamDPoPJKT] != ar.DPoPJKT {
			t.Fatalf("accepted %+v", ar)
		}
		for k, v := range ar.Params {
			if v == "" || !validText(k) || !validText(v) {
				t.Fatalf("invalid parameter accepted: %q=%q", k, v)
			}
		}
	})
}

// FuzzPAREndpoint drives the whole PAR endpoint (form, client
// authentication, request_uri, dpop_jkt, DPoP header) with hostile input
// and checks the response invariants: no panic, no 5xx, JSON with
// no-store, 201 only with a request_uri of ours, never an echo of the
// input.
func FuzzPAREndpoint(f *testing.F) {
	h := fuzzServer(f, func(c *ServerConfig) { c.PAR = &PARConfig{} }).PARHandler()
	f.Add("client_id=pub&response_type=code&dpop_jkt=0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I", "", "")
	f.Add("response_type=code&request_uri=ATTACKER", formatBasic("conf", "conf-secret-ATTACKER-0123456789"), "")
	f.Add("client_id=pub&dpop_jkt=ATTACKER", "", "eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.ATTACKER")
	f.Fuzz(func(t *testing.T, body, authz, proof string) {
		if len(body) > 2048 || len(authz) > 512 || len(proof) > 1024 {
			return
		}
		req := httptest.NewRequest(http.MethodPost, "https://as.example.test/par", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if authz != "" {
			req.Header["Authorization"] = []string{authz}
		}
		if proof != "" {
			req.Header["Dpop"] = []string{proof}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for hostile input: %s", rec.Code, rec.Body)
		}
		if rec.Header().Get("Cache-Control") != "no-store" {
			t.Fatal("response without no-store")
		}
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("not JSON: %q", rec.Body)
		}
		if strings.Contains(rec.Body.String(), "ATTACKER") {
			t.Fatalf("input echoed: %s", rec.Body)
		}
		if ru, _ := out["request_uri"].(string); (rec.Code == http.StatusCreated) != strings.HasPrefix(ru, RequestURIPrefix) {
			t.Fatalf("status %d with request_uri %q", rec.Code, ru)
		}
	})
}
