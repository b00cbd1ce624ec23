package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/internal/keyfile"
	"github.com/senderbound/senderbound/issuer"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/mtlsbound/certs"
)

// cliSecret is the client secret of the test issuer's confidential clients.
const cliSecret = "cli-test-secret-0123456789abcdefghijklmnop"

// cliStartTLS serves the handler built by mk (which learns the server's
// base URL first) over TLS on 127.0.0.1 with leaf as the server
// certificate.
func cliStartTLS(t testing.TB, mk func(baseURL string) http.Handler, leaf *certs.Leaf, auth tls.ClientAuthType, clientCAs *x509.CertPool) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	ts.Config.Handler = mk("https://" + ts.Listener.Addr().String())
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{leaf.TLSCertificate()}, ClientAuth: auth, ClientCAs: clientCAs}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts
}

// cliIssuer is a real issuer served over loopback TLS, with the files a
// client needs to talk to it.
type cliIssuer struct {
	tokenURL string
	caFile   string // the CA that signed the server and client certificates
	mtlsDir  string // cert.pem/key.pem of "mtls-app" (tls_client_auth)
	selfDir  string // cert.pem/key.pem of "self-app" (self_signed_tls_client_auth)
	mtlsCert *x509.Certificate
	selfCert *x509.Certificate
}

// cliStartIssuer starts an issuer whose token endpoint requests (but does
// not require) client certificates and, when nonces, demands DPoP nonces.
// Its clients: dpop-app (secret, DPoP-bound tokens only), bearer-app
// (secret), mtls-app (tls_client_auth, CN=mtls-app, certificate-bound tokens
// only) and self-app (self_signed_tls_client_auth).
func cliStartIssuer(t testing.TB, nonces bool) *cliIssuer {
	t.Helper()
	dir := t.TempDir()
	ca, err := certs.NewCA(certs.Options{CommonName: "token test CA"})
	if err != nil {
		t.Fatal(err)
	}
	srvLeaf, err := ca.Issue(certs.Options{CommonName: "issuer", IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	mtlsLeaf, err := ca.Issue(certs.Options{CommonName: "mtls-app", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	selfLeaf, err := certs.SelfSigned(certs.Options{CommonName: "self-app", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	ci := &cliIssuer{
		caFile:   cliWriteFile(t, dir, "ca.pem", certs.EncodeCertificates(ca.Cert)),
		mtlsDir:  filepath.Join(dir, "mtls"),
		selfDir:  filepath.Join(dir, "self"),
		mtlsCert: mtlsLeaf.Cert,
		selfCert: selfLeaf.Cert,
	}
	if err := mtlsLeaf.WriteDir(ci.mtlsDir); err != nil {
		t.Fatal(err)
	}
	if err := selfLeaf.WriteDir(ci.selfDir); err != nil {
		t.Fatal(err)
	}
	mk := func(base string) http.Handler {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		ks, err := issuer.NewKeySet(issuer.SigningKey{Signer: key})
		if err != nil {
			t.Fatal(err)
		}
		is, err := issuer.New(issuer.Config{Issuer: base, Keys: ks, Audience: []string{"https://rs.example.test"}})
		if err != nil {
			t.Fatal(err)
		}
		reg, err := issuer.NewMemoryRegistry(
			issuer.Client{ID: "dpop-app", AuthMethod: issuer.AuthSecretBasic, SecretHash: issuer.HashSecret(cliSecret), Scopes: []string{"read"}, DPoPBoundAccessTokens: true},
			issuer.Client{ID: "bearer-app", AuthMethod: issuer.AuthSecretBasic, SecretHash: issuer.HashSecret(cliSecret), Scopes: []string{"read", "write"}},
			issuer.Client{ID: "mtls-app", AuthMethod: issuer.AuthTLSClient, Scopes: []string{"read"}, TLSClientCertificateBoundAccessTokens: true,
				Certificate: mtlsbound.PKIAuth{Roots: ca.Pool(), SubjectDN: "CN=mtls-app"}},
			issuer.Client{ID: "self-app", AuthMethod: issuer.AuthSelfSignedTLSClient, Scopes: []string{"read"},
				Certificate: issuer.SelfSigned(mtlsbound.SelfSignedAuth{Certificates: []*x509.Certificate{selfLeaf.Cert}}.Authenticate)},
		)
		if err != nil {
			t.Fatal(err)
		}
		asReplay, err := issuer.NewMemoryReplayStore(is, 0)
		if err != nil {
			t.Fatal(err)
		}
		cfg := issuer.ServerConfig{ReplayStore: asReplay, Issuer: is, Clients: reg, MTLS: true}
		if nonces {
			secret := make([]byte, 32)
			if _, err := rand.Read(secret); err != nil {
				t.Fatal(err)
			}
			n, err := dpop.NewNonces(dpop.NonceConfig{Secrets: [][]byte{secret}, Label: base})
			if err != nil {
				t.Fatal(err)
			}
			cfg.Nonces = n
		}
		srv, err := issuer.NewServer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ci.tokenURL = srv.TokenURL()
		return srv.Handler()
	}
	cliStartTLS(t, mk, srvLeaf, tls.RequestClientCert, nil)
	return ci
}

// cliJWTClaims decodes the (unverified) claims of a compact JWT.
func cliJWTClaims(t testing.TB, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("access token is not a compact JWT: %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]any{}
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

// cliKeyFile writes a fresh ES256 private JWK to dir and returns its path
// and thumbprint.
func cliKeyFile(t testing.TB, dir string) (path, jkt string) {
	t.Helper()
	k, err := keyfile.Generate("ES256", nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := keyfile.MarshalJWK(k, "ES256")
	if err != nil {
		t.Fatal(err)
	}
	jkt, err = dpop.Thumbprint(&jose.JSONWebKey{Key: k.Public()})
	if err != nil {
		t.Fatal(err)
	}
	return cliWriteFile(t, dir, "dpop-"+jkt[:8]+".jwk", data), jkt
}

func TestProof(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	jwkPath, jkt := cliKeyFile(t, dir)
	k, err := keyfile.Load(jwkPath)
	if err != nil {
		t.Fatal(err)
	}
	pemData, err := certs.EncodeKey(k.Signer)
	if err != nil {
		t.Fatal(err)
	}
	pemPath := cliWriteFile(t, dir, "key.pem", pemData)
	rsaPath := cliWriteFile(t, dir, "rsa.jwk", []byte(cliRFC7517RSAKey))
	nonces, err := dpop.NewNonces(dpop.NonceConfig{Secrets: [][]byte{[]byte("cli-proof-test-nonce-secret-0123456789")}, Label: "https://rs.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	nonce, err := nonces.NewNonce()
	if err != nil {
		t.Fatal(err)
	}
	const (
		target = "https://rs.example.test/orders/7"
		token  = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJjbGkifQ.c2ln"
	)
	tests := []struct {
		name    string
		args    []string
		stdin   string
		want    dpop.Expect
		nonces  dpop.NonceSource
		wantJKT string
		wantAlg string
	}{
		{"GET with a JWK", []string{"--key", jwkPath, "--method", "GET", "--url", target}, "", dpop.Expect{Method: "GET", URL: target}, nil, jkt, "ES256"},
		{"PKCS#8 PEM key", []string{"--key", pemPath, "--method", "DELETE", "--url", target}, "", dpop.Expect{Method: "DELETE", URL: target}, nil, jkt, "ES256"},
		{"query and fragment dropped", []string{"--key", jwkPath, "--method", "GET", "--url", target + "?page=2#top"}, "", dpop.Expect{Method: "GET", URL: target + "?page=3"}, nil, jkt, "ES256"},
		{"token adds ath", []string{"--key", jwkPath, "--method", "POST", "--url", target, "--token", token}, "", dpop.Expect{Method: "POST", URL: target, AccessToken: token, JKT: jkt}, nil, jkt, "ES256"},
		{"token from stdin", []string{"--key", jwkPath, "--method", "POST", "--url", target, "--token", "-"}, token + "\n", dpop.Expect{Method: "POST", URL: target, AccessToken: token}, nil, jkt, "ES256"},
		{"server nonce", []string{"--key", jwkPath, "--method", "GET", "--url", target, "--nonce", nonce}, "", dpop.Expect{Method: "GET", URL: target}, nonces, jkt, "ES256"},
		{"RFC 7517 RSA key keeps its alg", []string{"--key", rsaPath, "--method", "GET", "--url", target}, "", dpop.Expect{Method: "GET", URL: target, JKT: cliRFC7638Thumbprint}, nil, cliRFC7638Thumbprint, "RS256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, out, errs := cliRun(t, tt.stdin, append([]string{"proof"}, tt.args...)...)
			if code != 0 || errs != "" || !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
			}
			proof := strings.TrimSuffix(out, "\n")
			algs := []string{"ES256", "RS256"}
			p, err := cliVerifier(t, tt.nonces, algs...).Verify(context.Background(), proof, tt.want)
			if err != nil {
				t.Fatalf("proof does not verify: %v", err)
			}
			if p.JKT != tt.wantJKT || p.Algorithm != tt.wantAlg || p.Method != tt.want.Method {
				t.Errorf("proof jkt %q alg %q htm %q; want %q %q %q", p.JKT, p.Algorithm, p.Method, tt.wantJKT, tt.wantAlg, tt.want.Method)
			}
			if strings.Contains(p.URL, "?") || strings.Contains(p.URL, "#") {
				t.Errorf("htu %q keeps query or fragment", p.URL)
			}
			// The same proof must not pass for another request.
			other := tt.want
			other.AccessToken = "another-token"
			if _, err := cliVerifier(t, tt.nonces, algs...).Verify(context.Background(), proof, other); !errors.Is(err, dpop.ErrInvalidProof) {
				t.Errorf("proof accepted with another access token: %v", err)
			}
		})
	}
}

func TestProofFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyPath, _ := cliKeyFile(t, dir)
	pubPath := cliWriteFile(t, dir, "pub.jwk", []byte(cliRFC7638PublicKey))
	const target = "https://rs.example.test/x"
	tests := []struct {
		name     string
		args     []string
		stdin    string
		wantCode int
		wantErr  string
	}{
		{"help", []string{"-h"}, "", 0, "Usage: senderbound proof"},
		{"no flags", nil, "", 2, "proof needs --key, --method and --url"},
		{"without key", []string{"--method", "GET", "--url", target}, "", 2, "proof needs --key"},
		{"without method", []string{"--key", keyPath, "--url", target}, "", 2, "proof needs --key"},
		{"without url", []string{"--key", keyPath, "--method", "GET"}, "", 2, "proof needs --key"},
		{"empty token", []string{"--key", keyPath, "--method", "GET", "--url", target, "--token", ""}, "", 2, "--token needs a non-empty value"},
		{"stray argument", []string{"--key", keyPath, "--method", "GET", "--url", target, "now"}, "", 2, `unexpected argument "now"`},
		{"method not a token", []string{"--key", keyPath, "--method", "GE T", "--url", target}, "", 1, "senderbound proof: "},
		{"relative url", []string{"--key", keyPath, "--method", "GET", "--url", "/x"}, "", 1, "senderbound proof: "},
		{"missing key file", []string{"--key", filepath.Join(dir, "nope"), "--method", "GET", "--url", target}, "", 1, "no such file"},
		{"public key only", []string{"--key", pubPath, "--method", "GET", "--url", target}, "", 1, "no private key"},
		{"token from empty stdin", []string{"--key", keyPath, "--method", "GET", "--url", target, "--token", "-"}, "", 1, "standard input holds no access token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, out, errs := cliRun(t, tt.stdin, append([]string{"proof"}, tt.args...)...)
			if code != tt.wantCode || !strings.Contains(errs, tt.wantErr) || out != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, out, errs, tt.wantCode, tt.wantErr)
			}
		})
	}
}

func TestToken(t *testing.T) {
	t.Parallel()
	plain, withNonces := cliStartIssuer(t, false), cliStartIssuer(t, true)
	keyPath, jkt := cliKeyFile(t, t.TempDir())
	tests := []struct {
		name      string
		is        *cliIssuer
		args      func(is *cliIssuer) []string
		stdin     string
		wantType  string
		wantJKT   string
		wantX5T   func(is *cliIssuer) string
		wantScope string
	}{
		{
			name: "DPoP",
			is:   plain,
			args: func(*cliIssuer) []string {
				return []string{"--client-id", "dpop-app", "--client-secret", cliSecret, "--dpop-key", keyPath}
			},
			wantType: "DPoP", wantJKT: jkt, wantScope: "read",
		},
		{
			name: "DPoP with server nonces",
			is:   withNonces,
			args: func(*cliIssuer) []string {
				return []string{"--client-id", "dpop-app", "--client-secret", cliSecret, "--dpop-key", keyPath}
			},
			wantType: "DPoP", wantJKT: jkt, wantScope: "read",
		},
		{
			name: "mTLS tls_client_auth",
			is:   plain,
			args: func(is *cliIssuer) []string {
				return []string{"--client-id", "mtls-app", "--cert", filepath.Join(is.mtlsDir, certs.LeafCertFile), "--key", filepath.Join(is.mtlsDir, certs.LeafKeyFile)}
			},
			wantType: "Bearer", wantX5T: func(is *cliIssuer) string { return mtlsbound.Thumbprint(is.mtlsCert) }, wantScope: "read",
		},
		{
			name: "mTLS self_signed_tls_client_auth",
			is:   plain,
			args: func(is *cliIssuer) []string {
				return []string{"--client-id", "self-app", "--cert", filepath.Join(is.selfDir, certs.LeafCertFile), "--key", filepath.Join(is.selfDir, certs.LeafKeyFile)}
			},
			wantType: "Bearer", wantX5T: func(is *cliIssuer) string { return mtlsbound.Thumbprint(is.selfCert) }, wantScope: "read",
		},
		{
			// self-app is not registered for certificate-bound tokens, so a
			// proof makes its token DPoP-bound (mtls-app is, and would be refused).
			name: "DPoP over mTLS with nonces",
			is:   withNonces,
			args: func(is *cliIssuer) []string {
				return []string{"--client-id", "self-app", "--cert", filepath.Join(is.selfDir, certs.LeafCertFile), "--key", filepath.Join(is.selfDir, certs.LeafKeyFile), "--dpop-key", keyPath}
			},
			wantType: "DPoP", wantJKT: jkt, wantScope: "read",
		},
		{
			name: "secret only, Bearer",
			is:   plain,
			args: func(*cliIssuer) []string {
				return []string{"--client-id", "bearer-app", "--client-secret", cliSecret, "--scope", "write"}
			},
			wantType: "Bearer", wantScope: "write",
		},
		{
			name:     "secret from stdin",
			is:       withNonces,
			args:     func(*cliIssuer) []string { return []string{"--client-id", "bearer-app", "--client-secret", "-"} },
			stdin:    cliSecret + "\n",
			wantType: "Bearer", wantScope: "read write",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"token", "--token-endpoint", tt.is.tokenURL, "--ca-file", tt.is.caFile}, tt.args(tt.is)...)
			code, out, errs := cliRun(t, tt.stdin, args...)
			if code != 0 || errs != "" {
				t.Fatalf("exit %d, stderr %q", code, errs)
			}
			var resp struct {
				AccessToken string `json:"access_token"`
				TokenType   string `json:"token_type"`
				ExpiresIn   int    `json:"expires_in"`
			}
			if err := json.Unmarshal([]byte(out), &resp); err != nil {
				t.Fatalf("stdout is not the JSON response: %v\n%s", err, out)
			}
			if resp.TokenType != tt.wantType || resp.ExpiresIn <= 0 {
				t.Fatalf("token_type %q expires_in %d, want %q", resp.TokenType, resp.ExpiresIn, tt.wantType)
			}
			claims := cliJWTClaims(t, resp.AccessToken)
			cnf, _ := claims["cnf"].(map[string]any)
			var wantX5T string
			if tt.wantX5T != nil {
				wantX5T = tt.wantX5T(tt.is)
			}
			if got, _ := cnf["jkt"].(string); got != tt.wantJKT {
				t.Errorf("cnf.jkt %q, want %q", got, tt.wantJKT)
			}
			if got, _ := cnf["x5t#S256"].(string); got != wantX5T {
				t.Errorf("cnf.x5t#S256 %q, want %q", got, wantX5T)
			}
			if tt.wantJKT == "" && wantX5T == "" && cnf != nil {
				t.Errorf("unbound token has cnf %v", cnf)
			}
			if claims["scope"] != tt.wantScope {
				t.Errorf("scope %v, want %q", claims["scope"], tt.wantScope)
			}
		})
	}
}

// TestTokenAccessTokenOnly checks that --access-token prints the bare
// token, one line, usable as $(senderbound token ... --access-token).
func TestTokenAccessTokenOnly(t *testing.T) {
	t.Parallel()
	is := cliStartIssuer(t, true)
	keyPath, jkt := cliKeyFile(t, t.TempDir())
	code, out, errs := cliRun(t, "", "token", "--token-endpoint", is.tokenURL, "--ca-file", is.caFile,
		"--client-id", "dpop-app", "--client-secret", cliSecret, "--dpop-key", keyPath, "--access-token")
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	tok := strings.TrimSuffix(out, "\n")
	if strings.ContainsAny(tok, "\n {}") || strings.Count(tok, ".") != 2 {
		t.Fatalf("stdout is not a bare JWT: %q", out)
	}
	cnf, _ := cliJWTClaims(t, tok)["cnf"].(map[string]any)
	if cnf["jkt"] != jkt {
		t.Errorf("cnf.jkt %v, want %q", cnf["jkt"], jkt)
	}
}

func TestTokenErrorResponses(t *testing.T) {
	t.Parallel()
	is := cliStartIssuer(t, true)
	keyPath, _ := cliKeyFile(t, t.TempDir())
	strangerDir := filepath.Join(t.TempDir(), "stranger")
	stranger, err := certs.SelfSigned(certs.Options{CommonName: "mtls-app", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := stranger.WriteDir(strangerDir); err != nil {
		t.Fatal(err)
	}
	const wrongSecret = "wrong-secret-0123456789abcdefghijklmnop"
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"wrong secret", []string{"--client-id", "bearer-app", "--client-secret", wrongSecret}, "token endpoint answered 401: invalid_client"},
		{"wrong secret with DPoP", []string{"--client-id", "dpop-app", "--client-secret", wrongSecret, "--dpop-key", keyPath}, "invalid_client"},
		{"unknown client", []string{"--client-id", "nobody", "--client-secret", cliSecret}, "invalid_client"},
		{"DPoP-bound client without a proof", []string{"--client-id", "dpop-app", "--client-secret", cliSecret}, "invalid_dpop_proof"},
		{"scope not allowed", []string{"--client-id", "bearer-app", "--client-secret", cliSecret, "--scope", "admin"}, "invalid_scope"},
		{"mTLS client without a certificate", []string{"--client-id", "mtls-app"}, "invalid_client"},
		{"certificate-bound client with a DPoP proof", []string{"--client-id", "mtls-app", "--cert", filepath.Join(is.mtlsDir, certs.LeafCertFile), "--key", filepath.Join(is.mtlsDir, certs.LeafKeyFile), "--dpop-key", keyPath}, "invalid_request"},
		{"certificate from another CA", []string{"--client-id", "mtls-app", "--cert", filepath.Join(strangerDir, certs.LeafCertFile), "--key", filepath.Join(strangerDir, certs.LeafKeyFile)}, "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"token", "--token-endpoint", is.tokenURL, "--ca-file", is.caFile}, tt.args...)
			code, out, errs := cliRun(t, "", args...)
			if code != 1 || out != "" || !strings.Contains(errs, tt.wantErr) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 1 and %q", code, out, errs, tt.wantErr)
			}
			if strings.Count(errs, "\n") != 1 || !strings.HasPrefix(errs, "senderbound token: ") {
				t.Errorf("error is not one line: %q", errs)
			}
			if strings.Contains(errs, cliSecret) || strings.Contains(errs, wrongSecret) {
				t.Errorf("stderr shows the secret: %q", errs)
			}
		})
	}
	t.Run("untrusted server certificate", func(t *testing.T) {
		t.Parallel()
		code, _, errs := cliRun(t, "", "token", "--token-endpoint", is.tokenURL, "--client-id", "bearer-app", "--client-secret", cliSecret)
		if code != 1 || !strings.Contains(errs, "--ca-file") {
			t.Fatalf("exit %d, stderr %q", code, errs)
		}
	})
}

// TestTokenOddResponses drives the command against a loopback HTTP server
// that answers what a real issuer would not.
func TestTokenOddResponses(t *testing.T) {
	t.Parallel()
	keyPath, _ := cliKeyFile(t, t.TempDir())
	var nonceRequests atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		t.Error("redirect followed with client credentials")
	})
	mux.HandleFunc("/html", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "<h1>oops</h1>", http.StatusBadGateway)
	})
	mux.HandleFunc("/not-json", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("access_token=abc"))
	})
	mux.HandleFunc("/bearer", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"abc","token_type":"Bearer","expires_in":60}`))
	})
	mux.HandleFunc("/always-nonce", func(w http.ResponseWriter, r *http.Request) {
		nonceRequests.Add(1)
		w.Header().Set("DPoP-Nonce", "n-"+strings.Repeat("x", 22))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"use_dpop_nonce","error_description":"Authorization server requires nonce in DPoP proof\u0007\n"}`))
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)

	tests := []struct {
		name     string
		path     string
		dpop     bool
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"redirect is not followed", "/redirect", false, 1, "", "answered 307 Temporary Redirect, a redirect (not followed)"},
		{"error without OAuth body", "/html", false, 1, "", "answered 502 Bad Gateway without an OAuth error"},
		{"200 without JSON", "/not-json", false, 1, "", "without a JSON access_token"},
		{"Bearer answer to a DPoP request warns", "/bearer", true, 0, `"token_type":"Bearer"`, `warning: a DPoP proof was sent but token_type is "Bearer"`},
		{"nonce challenge retried once", "/always-nonce", true, 1, "", "answered 400: use_dpop_nonce: Authorization server requires nonce in DPoP proof\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"token", "--token-endpoint", ts.URL + tt.path, "--client-id", "app", "--client-secret", cliSecret}
			if tt.dpop {
				args = append(args, "--dpop-key", keyPath)
			}
			code, out, errs := cliRun(t, "", args...)
			if code != tt.wantCode || !strings.Contains(out, tt.wantOut) || !strings.Contains(errs, tt.wantErr) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d, %q and %q", code, out, errs, tt.wantCode, tt.wantOut, tt.wantErr)
			}
		})
	}
	if n := nonceRequests.Load(); n != 2 {
		t.Errorf("use_dpop_nonce endpoint saw %d requests, want 2 (one retry)", n)
	}
}

func TestTokenFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyPath, _ := cliKeyFile(t, dir)
	leaf, err := certs.SelfSigned(certs.Options{CommonName: "c", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	certPath := cliWriteFile(t, dir, "c.pem", certs.EncodeCertificates(leaf.Cert))
	notPEM := cliWriteFile(t, dir, "not.pem", []byte("no certificates here"))
	// Nothing listens here; every case must fail before connecting.
	const ep = "https://127.0.0.1:1/token"
	tests := []struct {
		name     string
		args     []string
		stdin    string
		wantCode int
		wantErr  string
	}{
		{"help", []string{"-h"}, "", 0, "Usage: senderbound token"},
		{"no flags", nil, "", 2, "token needs --token-endpoint and --client-id"},
		{"without client id", []string{"--token-endpoint", ep}, "", 2, "token needs --token-endpoint and --client-id"},
		{"without endpoint", []string{"--client-id", "a"}, "", 2, "token needs --token-endpoint and --client-id"},
		{"cert without key", []string{"--token-endpoint", ep, "--client-id", "a", "--cert", certPath}, "", 2, "--cert and --key go together"},
		{"key without cert", []string{"--token-endpoint", ep, "--client-id", "a", "--key", keyPath}, "", 2, "--cert and --key go together"},
		{"empty dpop key", []string{"--token-endpoint", ep, "--client-id", "a", "--dpop-key", ""}, "", 2, "--dpop-key needs a non-empty value"},
		{"dpop key without value", []string{"--token-endpoint", ep, "--client-id", "a", "--dpop-key"}, "", 2, "flag needs an argument"},
		{"empty secret", []string{"--token-endpoint", ep, "--client-id", "a", "--client-secret", ""}, "", 2, "--client-secret needs a non-empty value"},
		{"plain http to a remote host", []string{"--token-endpoint", "http://as.example.test/token", "--client-id", "a"}, "", 2, "must be https"},
		{"unsupported scheme", []string{"--token-endpoint", "ftp://as.example.test/token", "--client-id", "a"}, "", 2, `scheme "ftp" is not https`},
		{"relative endpoint", []string{"--token-endpoint", "/token", "--client-id", "a"}, "", 2, "is not an absolute URL"},
		{"userinfo in endpoint", []string{"--token-endpoint", "https://u:p@as.example.test/token", "--client-id", "a"}, "", 2, "must not carry userinfo"},
		{"stray argument", []string{"--token-endpoint", ep, "--client-id", "a", "extra"}, "", 2, `unexpected argument "extra"`},
		{"missing dpop key file", []string{"--token-endpoint", ep, "--client-id", "a", "--dpop-key", filepath.Join(dir, "nope")}, "", 1, "no such file"},
		{"ca file without certificates", []string{"--token-endpoint", ep, "--client-id", "a", "--ca-file", notPEM}, "", 1, "holds no PEM certificate"},
		{"key does not match cert", []string{"--token-endpoint", ep, "--client-id", "a", "--cert", certPath, "--key", keyPath}, "", 1, "does not match the certificate"},
		{"cert file without certificates", []string{"--token-endpoint", ep, "--client-id", "a", "--cert", notPEM, "--key", keyPath}, "", 1, "no certificate in PEM data"},
		{"secret from empty stdin", []string{"--token-endpoint", ep, "--client-id", "a", "--client-secret", "-"}, "", 1, "standard input holds no client secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, out, errs := cliRun(t, tt.stdin, append([]string{"token"}, tt.args...)...)
			if code != tt.wantCode || !strings.Contains(errs, tt.wantErr) || out != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, out, errs, tt.wantCode, tt.wantErr)
			}
		})
	}
}
