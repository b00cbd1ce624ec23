package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/senderbound/senderbound/issuer"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/mtlsbound/certs"
)

// TestServeJWKSURIClients registers a private_key_jwt and a
// self_signed_tls_client_auth client with --client-jwks-uri, their keys
// published on a TLS host on loopback, and shows both authenticating end
// to end; without --insecure-client-jwks-private-addresses the loopback
// host is refused and so are the clients.
func TestServeJWKSURIClients(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, err := certs.NewCA(certs.Options{CommonName: "jwks_uri test CA"})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Issue(certs.Options{IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := srv.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	caFile, certFile, keyFile := filepath.Join(dir, certs.CACertFile), filepath.Join(dir, certs.LeafCertFile), filepath.Join(dir, certs.LeafKeyFile)

	jwtKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	self, err := certs.SelfSigned(certs.Options{CommonName: "self-app", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]jose.JSONWebKeySet{
		"/jwt-app.json":  {Keys: []jose.JSONWebKey{{Key: jwtKey.Public(), KeyID: "k1", Use: "sig"}}},
		"/self-app.json": {Keys: []jose.JSONWebKey{{Key: self.Cert.PublicKey, KeyID: "s1", Certificates: []*x509.Certificate{self.Cert}}}},
	}
	host := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		set, ok := docs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_ = json.NewEncoder(w).Encode(set)
	}))
	host.TLS = &tls.Config{Certificates: []tls.Certificate{srv.TLSCertificate()}}
	host.StartTLS()
	t.Cleanup(host.Close)

	args := func(optIn bool) []string {
		a := []string{"serve-issuer", "--addr", "127.0.0.1:0", "--ephemeral-key", "--tls-cert", certFile, "--tls-key", keyFile,
			"--client-jwks-uri", "jwt-app:private_key_jwt=" + host.URL + "/jwt-app.json",
			"--client-jwks-uri", "self-app:self_signed_tls_client_auth=" + host.URL + "/self-app.json",
			"--client-jwks-ca", caFile}
		if optIn {
			a = append(a, "--insecure-client-jwks-private-addresses")
		}
		return a
	}
	for _, optIn := range []bool{true, false} {
		as := serveStart(t, args(optIn)...)
		tokenURL := as.URL + issuer.TokenPath
		want, wantErr := http.StatusOK, ""
		if !optIn {
			want, wantErr = http.StatusBadRequest, "invalid_client"
		}

		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jwtKey}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		assertion, err := jwt.Signed(sig).Claims(jwt.Claims{Issuer: "jwt-app", Subject: "jwt-app", Audience: jwt.Audience{tokenURL},
			ID: "cli-" + as.URL, IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		form := url.Values{"client_assertion_type": {issuer.ClientAssertionType}, "client_assertion": {assertion}}
		status, _, tr := serveRequestToken(t, mtlsbound.NewClient(nil, ca.Pool()), tokenURL, form, false)
		if status != want || tr.Error != wantErr || (want == http.StatusOK && tr.AccessToken == "") {
			t.Errorf("opt-in %v: private_key_jwt through jwks_uri = %d %+v, want %d %q", optIn, status, tr, want, wantErr)
		}

		tc := self.TLSCertificate()
		status, _, tr = serveRequestToken(t, mtlsbound.NewClient(&tc, ca.Pool()), tokenURL, url.Values{"client_id": {"self-app"}}, false)
		if status != want || tr.Error != wantErr || (want == http.StatusOK && tr.TokenType != "Bearer") {
			t.Errorf("opt-in %v: self-signed client through jwks_uri = %d %+v, want %d %q", optIn, status, tr, want, wantErr)
		}
		if optIn {
			continue
		}
		if as.stop(t); !strings.Contains(as.stderr.String(), "reason=client_keys_unavailable") {
			t.Errorf("the refusal's reason is not logged: %s", as.stderr)
		}
	}
}

// TestServeJWKSURIClientFlagErrors: malformed --client-jwks-uri values and
// missing prerequisites are usage errors.
func TestServeJWKSURIClientFlagErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no method", []string{"--client-jwks-uri", "app=https://keys.example.com/jwks.json"}, "--client-jwks-uri needs ID:METHOD=URL"},
		{"unknown method", []string{"--client-jwks-uri", "app:client_secret_basic=https://keys.example.com/jwks.json"}, "private_key_jwt or self_signed_tls_client_auth"},
		{"http URL", []string{"--client-jwks-uri", "app:private_key_jwt=http://keys.example.com/jwks.json"}, "https URL"},
		{"registered twice", []string{"--client-jwks-uri", "app:private_key_jwt=https://keys.example.com/a.json", "--client-jwks-uri", "app:private_key_jwt=https://keys.example.com/b.json"}, "registered twice"},
		{"self-signed without TLS", []string{"--client-jwks-uri", "app:self_signed_tls_client_auth=https://keys.example.com/jwks.json"}, "requires --tls-cert"},
		{"CA without clients", []string{"--client-jwks-ca", "ca.pem"}, "need a --client-jwks-uri client"},
		{"opt-in without clients", []string{"--insecure-client-jwks-private-addresses"}, "need a --client-jwks-uri client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"serve-issuer", "--addr", "127.0.0.1:0", "--ephemeral-key"}, tt.args...)
			code, stderr := serveRunFails(t, serveTestEnv(t, nil), args...)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, stderr, tt.want)
			}
		})
	}
}
