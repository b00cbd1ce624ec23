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
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/issuer"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/mtlsbound/certs"
	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/resource"
)

// servers are the module's real issuer and resource server on loopback TLS;
// both request (not require) client certificates, as RFC 8705 deployments do.
type servers struct {
	tokenURL, apiURL string
	ca               *certs.CA

	mu    sync.Mutex
	authz []string // Authorization header of each resource request
}

func (s *servers) lastAuthorization() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.authz) == 0 {
		return ""
	}
	return s.authz[len(s.authz)-1]
}

func startServers(t *testing.T) *servers {
	t.Helper()
	ca, err := certs.NewCA(certs.Options{CommonName: "example CA"})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(certs.Options{IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	s := &servers{ca: ca}
	newTLS := func() (*httptest.Server, string) {
		ts := httptest.NewUnstartedServer(nil)
		ts.TLS = mtlsbound.ServerTLSConfig(leaf.TLSCertificate())
		ts.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are part of the test
		t.Cleanup(ts.Close)
		return ts, "https://" + ts.Listener.Addr().String()
	}

	// The authorization server: "orders-app" authenticates with a
	// certificate from the CA whose subject is CN=orders-app, and always
	// gets certificate-bound tokens.
	as, asURL := newTLS()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := issuer.NewKeySet(issuer.SigningKey{Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	is, err := issuer.New(issuer.Config{Issuer: asURL, Keys: ks, Audience: []string{"https://api.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := issuer.NewMemoryRegistry(issuer.Client{
		ID: "orders-app", AuthMethod: issuer.AuthTLSClient, Scopes: []string{"orders:read"},
		Certificate:                           mtlsbound.PKIAuth{Roots: ca.Pool(), SubjectDN: "CN=orders-app"},
		TLSClientCertificateBoundAccessTokens: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	asReplay, err := issuer.NewMemoryReplayStore(is, 0)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := issuer.NewServer(issuer.ServerConfig{ReplayStore: asReplay, Issuer: is, Clients: reg, MTLS: true})
	if err != nil {
		t.Fatal(err)
	}
	as.Config.Handler = srv.Handler()
	as.StartTLS()
	s.tokenURL = asURL + issuer.TokenPath

	// The resource server: certificate-bound tokens only.
	rs, _ := newTLS()
	keys, err := resource.NewStaticKeySet(ks.JWKS(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	replay, err := replaycache.NewLRU(replaycache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := resource.New(resource.Config{
		Algorithms: resource.DefaultAlgorithms(),
		Issuers:    []resource.Issuer{{Identifier: asURL, Keys: keys}},
		Audience:   "https://api.example.com",
		DPoP:       &resource.DPoPConfig{Algorithms: []string{"ES256"}, ReplayStore: replay},
		// A test server on one loopback address.
		InsecureHostHeader: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	orders := v.Middleware(resource.Policy{Accept: resource.AcceptMTLS, Scopes: []string{"orders:read"}})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p := resource.PrincipalFromContext(r.Context())
			fmt.Fprintf(w, "orders of %s (%s-bound)\n", p.ClientID, p.Binding)
		}))
	rs.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.authz = append(s.authz, r.Header.Get("Authorization"))
		s.mu.Unlock()
		orders.ServeHTTP(w, r)
	})
	rs.StartTLS()
	s.apiURL = rs.URL + "/orders"
	return s
}

func (s *servers) clientCert(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	leaf, err := s.ca.Issue(certs.Options{CommonName: cn, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	return leaf.TLSCertificate()
}

func claims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWT: %d segments", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestClient(t *testing.T) {
	s := startServers(t)
	cert := s.clientCert(t, "orders-app")
	ctx := context.Background()
	client := newClient(ctx, options{TokenEndpoint: s.tokenURL, ClientID: "orders-app", Scopes: []string{"orders:read"}, Cert: cert, Roots: s.ca.Pool()})
	for i := range 2 {
		body, err := get(ctx, client, s.apiURL)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if string(body) != "orders of orders-app (mtls-bound)\n" {
			t.Fatalf("call %d: body %q", i, body)
		}
	}
	authz := s.lastAuthorization()
	token, ok := strings.CutPrefix(authz, "Bearer ")
	if !ok {
		t.Fatalf("Authorization scheme: %.10q…, want Bearer", authz)
	}
	x509Cert, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if cnf, _ := claims(t, token)["cnf"].(map[string]any); cnf["x5t#S256"] != mtlsbound.Thumbprint(x509Cert) {
		t.Fatalf("token cnf %v, want x5t#S256 of the client certificate", cnf)
	}

	// The same token, taken from a log or a proxy, on other connections.
	self, err := certs.SelfSigned(certs.Options{CommonName: "orders-app", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	other, none, selfSigned := s.clientCert(t, "orders-app"), (*tls.Certificate)(nil), self.TLSCertificate()
	tests := []struct {
		name string
		cert *tls.Certificate
		want int
	}{
		{"a new connection with the bound certificate", &cert, http.StatusOK},
		{"another certificate from the same CA and subject", &other, http.StatusUnauthorized},
		{"a self-signed certificate", &selfSigned, http.StatusUnauthorized},
		{"no certificate", none, http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, s.apiURL, nil)
			req.Header.Set("Authorization", authz)
			resp, err := mtlsbound.NewClient(tc.cert, s.ca.Pool()).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == http.StatusOK {
				return
			}
			ch := resp.Header.Get("WWW-Authenticate")
			chs, err := dpop.ParseChallenges(ch)
			if err != nil || len(chs) != 1 || chs[0].Scheme != "Bearer" || chs[0].Error != "invalid_token" {
				t.Fatalf("WWW-Authenticate %q, want one Bearer challenge with error=invalid_token", ch)
			}
		})
	}
}

func TestClientErrors(t *testing.T) {
	s := startServers(t)
	good := options{TokenEndpoint: s.tokenURL, ClientID: "orders-app", Scopes: []string{"orders:read"}, Cert: s.clientCert(t, "orders-app"), Roots: s.ca.Pool()}
	self, err := certs.SelfSigned(certs.Options{CommonName: "orders-app", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(*options)
		want   string
	}{
		{"certificate of another subject", func(o *options) { o.Cert = s.clientCert(t, "someone-else") }, "invalid_client"},
		{"self-signed certificate", func(o *options) { o.Cert = self.TLSCertificate() }, "invalid_client"},
		{"no certificate", func(o *options) { o.Cert = tls.Certificate{} }, "invalid_client"},
		{"unknown client", func(o *options) { o.ClientID = "billing-app" }, "invalid_client"},
		{"unregistered scope", func(o *options) { o.Scopes = []string{"orders:write"} }, "invalid_scope"},
		{"server CA not trusted", func(o *options) { o.Roots = x509.NewCertPool() }, "certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			tc.change(&o)
			if _, err := get(context.Background(), newClient(context.Background(), o), s.apiURL); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}
