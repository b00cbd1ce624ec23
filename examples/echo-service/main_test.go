package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
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
	"github.com/senderbound/senderbound/internal/redistest"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/mtlsbound/certs"
)

// startAS serves RFC 8414 metadata and a JWKS, and returns a token minter.
func startAS(t *testing.T) (*httptest.Server, func(cnf map[string]string) string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var as *httptest.Server
	as = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/oauth-authorization-server":
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": as.URL, "jwks_uri": as.URL + "/jwks"})
		case "/jwks":
			_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256"}}})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(as.Close)
	mint := func(cnf map[string]string) string {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}},
			(&jose.SignerOptions{}).WithType("at+jwt"))
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		claims, _ := json.Marshal(map[string]any{
			"iss": as.URL, "aud": "https://api.example.com", "sub": "carol", "client_id": "mobile", "jti": now.String(),
			"scope": "read", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "cnf": cnf,
		})
		obj, _ := signer.Sign(claims)
		s, _ := obj.CompactSerialize()
		return s
	}
	return as, mint
}

func TestService(t *testing.T) {
	as, mint := startAS(t)
	rds := redistest.Start(t)
	ca, err := certs.NewCA(certs.Options{CommonName: "test CA"})
	if err != nil {
		t.Fatal(err)
	}
	serverLeaf, err := ca.Issue(certs.Options{IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	clientLeaf, err := ca.Issue(certs.Options{CommonName: "mobile", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(nil)
	base := "https://" + ts.Listener.Addr().String()
	if _, err := newServer(options{Issuer: as.URL, Audience: "x", PublicURL: base, Redis: rds.Client(), NonceSecret: []byte("short")}); err == nil {
		t.Fatal("short nonce secret accepted")
	}
	e, err := newServer(options{
		Issuer: as.URL, Audience: "https://api.example.com", PublicURL: base,
		Redis: rds.Client(), NonceSecret: []byte("0123456789abcdef0123456789abcdef"), HTTPClient: as.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = e
	ts.TLS = mtlsbound.ServerTLSConfig(serverLeaf.TLSCertificate())
	ts.StartTLS()
	defer ts.Close()

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	prover, _ := dpop.NewProver(key, nil)
	// dpop.Transport answers the use_dpop_nonce challenge by itself.
	dpopClient := &http.Client{Transport: &dpop.Transport{Base: mtlsbound.NewClient(nil, ca.Pool()).Transport, Prover: prover}}
	cc := clientLeaf.TLSCertificate()
	mtlsClient := mtlsbound.NewClient(&cc, ca.Pool())
	plain := mtlsbound.NewClient(nil, ca.Pool())
	dpopTok := mint(map[string]string{"jkt": prover.Thumbprint()})
	certTok := mint(map[string]string{"x5t#S256": mtlsbound.Thumbprint(clientLeaf.Cert)})

	tests := []struct {
		name, path, authz string
		client            *http.Client
		want              int
		body              string
	}{
		{"health skips the check", "/api/health", "", plain, 200, "ok"},
		{"metadata", "/.well-known/oauth-protected-resource", "", plain, 200, `"resource":"https://api.example.com"`},
		{"no token", "/api/me", "", plain, 401, ""},
		{"DPoP with nonce round trip", "/api/me", "DPoP " + dpopTok, dpopClient, 200, `"binding":"dpop"`},
		{"DPoP again, nonce remembered", "/api/me", "DPoP " + dpopTok, dpopClient, 200, `"sub":"carol"`},
		{"mTLS-bound token", "/api/me", "Bearer " + certTok, mtlsClient, 200, `"binding":"mtls"`},
		{"stolen DPoP token without proof", "/api/me", "DPoP " + dpopTok, plain, 401, "invalid_dpop_proof"},
		{"stolen certificate-bound token", "/api/me", "Bearer " + certTok, plain, 401, "invalid_token"},
	}
	for _, tc := range tests {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+tc.path, nil)
		if tc.authz != "" {
			req.Header.Set("Authorization", tc.authz)
		}
		resp, err := tc.client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || !strings.Contains(string(b), tc.body) {
			t.Fatalf("%s: %d %q, want %d containing %q", tc.name, resp.StatusCode, b, tc.want, tc.body)
		}
	}
}
