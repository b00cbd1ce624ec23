package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/mtlsbound/certs"
)

// testAS is a stand-in authorization server: RFC 8414 metadata, a JWKS,
// and a key to mint access tokens with.
type testAS struct {
	*httptest.Server
	key *ecdsa.PrivateKey
}

func startAS(t *testing.T) *testAS {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	as := &testAS{key: key}
	as.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/oauth-authorization-server":
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": as.URL, "jwks_uri": as.URL + "/jwks"})
		case "/jwks":
			_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(as.Close)
	return as
}

func (as *testAS) token(t *testing.T, aud, scope string, cnf map[string]string) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: as.key, KeyID: "k1"}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims, _ := json.Marshal(map[string]any{
		"iss": as.URL, "aud": aud, "sub": "alice", "client_id": "shop-app", "jti": now.String(),
		"scope": scope, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "cnf": cnf,
	})
	obj, err := signer.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := obj.CompactSerialize()
	return s
}

func TestService(t *testing.T) {
	as := startAS(t)
	ca, err := certs.NewCA(certs.Options{CommonName: "test CA"})
	if err != nil {
		t.Fatal(err)
	}
	serverLeaf, err := ca.Issue(certs.Options{IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	clientLeaf, err := ca.Issue(certs.Options{CommonName: "shop-app", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(nil)
	base := "https://" + ts.Listener.Addr().String()
	h, err := newHandler(options{Issuer: as.URL, Audience: "https://api.example.com", PublicURL: base, HTTPClient: as.Client()})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = h
	ts.TLS = mtlsbound.ServerTLSConfig(serverLeaf.TLSCertificate())
	ts.StartTLS()
	defer ts.Close()

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	prover, err := dpop.NewProver(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	dpopClient := &http.Client{Transport: &dpop.Transport{Base: mtlsbound.NewClient(nil, ca.Pool()).Transport, Prover: prover}}
	cc := clientLeaf.TLSCertificate()
	mtlsClient := mtlsbound.NewClient(&cc, ca.Pool())
	plainClient := mtlsbound.NewClient((*tls.Certificate)(nil), ca.Pool())

	dpopTok := as.token(t, "https://api.example.com", "read write", map[string]string{"jkt": prover.Thumbprint()})
	certTok := as.token(t, "https://api.example.com", "read write", map[string]string{"x5t#S256": mtlsbound.Thumbprint(clientLeaf.Cert)})
	tests := []struct {
		name, method, path, authz string
		client                    *http.Client
		want                      int
		body                      string
	}{
		{"metadata", "GET", "/.well-known/oauth-protected-resource", "", plainClient, 200, `"dpop_signing_alg_values_supported":["ES256","EdDSA","PS256"]`},
		{"no token", "GET", "/orders", "", plainClient, 401, ""},
		{"DPoP read", "GET", "/orders", "DPoP " + dpopTok, dpopClient, 200, "orders of alice (client shop-app, dpop-bound)"},
		{"DPoP write", "POST", "/orders", "DPoP " + dpopTok, dpopClient, 201, "order created by alice"},
		{"mTLS read", "GET", "/orders", "Bearer " + certTok, mtlsClient, 200, "mtls-bound"},
		{"mTLS write refused: route is DPoP only", "POST", "/orders", "Bearer " + certTok, mtlsClient, 401, ""},
		{"DPoP token without proof (stolen token)", "GET", "/orders", "DPoP " + dpopTok, plainClient, 401, "invalid_dpop_proof"},
		{"certificate-bound token without the certificate", "GET", "/orders", "Bearer " + certTok, plainClient, 401, "invalid_token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, ts.URL+tc.path, nil)
			if tc.authz != "" {
				req.Header.Set("Authorization", tc.authz)
			}
			resp, err := tc.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.want || !strings.Contains(string(b), tc.body) {
				t.Fatalf("%d %q, want %d containing %q", resp.StatusCode, b, tc.want, tc.body)
			}
		})
	}
}
