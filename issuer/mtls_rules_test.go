package issuer

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestCertificateBoundClientRefusesDPoP checks that a client registered for
// certificate-bound tokens gets only those: a DPoP proof, with or without a
// certificate, is refused rather than answered with a DPoP-bound token
// (MTLS-CB-05).
func TestCertificateBoundClientRefusesDPoP(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	k := h.prover(newES256(t))
	cc := url.Values{"grant_type": {"client_credentials"}}
	for _, tc := range []struct {
		name string
		cert bool
	}{
		{"proof without certificate", false},
		{"proof with certificate", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, target := h.client(nil), h.tokenURL()
			if tc.cert {
				c, target = h.client(h.c2), h.aliasTokenURL()
			}
			r := h.post(c, target, cc, map[string]string{"Authorization": formatBasic("cert-bound", boundSecret), "DPoP": h.proof(k, target, "")})
			h.checkTokenResponse(r)
			if r.status != http.StatusBadRequest || r.str("error") != "invalid_request" {
				t.Fatalf("status %d %s, want 400 invalid_request", r.status, r.raw)
			}
		})
	}
}

// TestMetadataWithoutMTLS checks that a server that cannot see client
// certificates does not claim certificate-bound tokens (RFC 8705 §3.3) nor
// advertise the certificate authentication methods by default, and that
// MTLS turns both on.
func TestMetadataWithoutMTLS(t *testing.T) {
	t.Parallel()
	is := newTestIssuer(t, SigningKey{Signer: newES256(t)}, nil)
	reg, err := NewMemoryRegistry()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		cfg      ServerConfig
		bound    bool
		tlsAuths bool
	}{
		{"plain", ServerConfig{ReplayStore: testReplay(t, is), Issuer: is, Clients: reg}, false, false},
		{"MTLS", ServerConfig{ReplayStore: testReplay(t, is), Issuer: is, Clients: reg, MTLS: true}, true, true},
		{"mTLS alias", ServerConfig{ReplayStore: testReplay(t, is), Issuer: is, Clients: reg, MTLSBaseURL: "https://mtls.as.example"}, true, true},
		{"explicit methods", ServerConfig{ReplayStore: testReplay(t, is), Issuer: is, Clients: reg, AuthMethods: []AuthMethod{AuthSecretBasic}}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, err := NewServer(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := json.Marshal(srv.Metadata())
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
			_, bound := m["tls_client_certificate_bound_access_tokens"]
			if bound != tc.bound {
				t.Errorf("tls_client_certificate_bound_access_tokens present = %v, want %v: %s", bound, tc.bound, raw)
			}
			methods, _ := json.Marshal(m["token_endpoint_auth_methods_supported"])
			if got := strings.Contains(string(methods), "tls_client_auth"); got != tc.tlsAuths {
				t.Errorf("certificate auth methods advertised = %v, want %v: %s", got, tc.tlsAuths, methods)
			}
		})
	}
}
