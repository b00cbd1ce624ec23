package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/senderbound/senderbound/issuer"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/mtlsbound/certs"
)

const secret = "service-a-secret-0123456789abcdefghij"

// env is the module's real issuer on loopback TLS and the example's gRPC
// service, which requires DPoP nonces.
type env struct {
	tokenURL, target string
	ca               *certs.CA
	self             *certs.Leaf // registered self-signed client certificate

	mu      sync.Mutex
	rejects []string // the service's reasons for refusing calls, in order
}

func (e *env) rejections() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.rejects...)
}

func start(t *testing.T) *env {
	t.Helper()
	ca, err := certs.NewCA(certs.Options{CommonName: "example CA"})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(certs.Options{IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	self, err := certs.SelfSigned(certs.Options{CommonName: "edge-app", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{ca: ca, self: self}

	// The authorization server: service-a (client secret) gets DPoP-bound
	// tokens; orders-app (CA certificate) and edge-app (self-signed
	// certificate) get certificate-bound tokens.
	as := httptest.NewUnstartedServer(nil)
	as.TLS = mtlsbound.ServerTLSConfig(leaf.TLSCertificate())
	as.Config.ErrorLog = log.New(io.Discard, "", 0)
	t.Cleanup(as.Close)
	asURL := "https://" + as.Listener.Addr().String()
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
	reg, err := issuer.NewMemoryRegistry(
		issuer.Client{ID: "service-a", AuthMethod: issuer.AuthSecretBasic, SecretHash: issuer.HashSecret(secret), Scopes: []string{"read"}, DPoPBoundAccessTokens: true},
		issuer.Client{ID: "orders-app", AuthMethod: issuer.AuthTLSClient, Scopes: []string{"read"},
			Certificate: mtlsbound.PKIAuth{Roots: ca.Pool(), SubjectDN: "CN=orders-app"}, TLSClientCertificateBoundAccessTokens: true},
		issuer.Client{ID: "edge-app", AuthMethod: issuer.AuthSelfSignedTLSClient, Scopes: []string{"read"},
			Certificate: issuer.SelfSigned(mtlsbound.SelfSignedAuth{Certificates: []*x509.Certificate{self.Cert}}.Authenticate), TLSClientCertificateBoundAccessTokens: true},
	)
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
	e.tokenURL = asURL + issuer.TokenPath

	// The gRPC service, through the example's own serve.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.target = lis.Addr().String()
	nonceKey := make([]byte, 32)
	if _, err := rand.Read(nonceKey); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, lis, serverOptions{
			Issuer: asURL, Audience: "https://api.example.com", PublicURL: "https://" + e.target,
			Cert: leaf.TLSCertificate(), RequireNonce: true, NonceSecret: nonceKey,
			HTTPClient: mtlsbound.NewClient(nil, ca.Pool()),
			OnReject: func(reason string) {
				e.mu.Lock()
				defer e.mu.Unlock()
				e.rejects = append(e.rejects, reason)
			},
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return e
}

func (e *env) clientCert(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	leaf, err := e.ca.Issue(certs.Options{CommonName: cn, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	return leaf.TLSCertificate()
}

// TestDPoP: the DPoP client's first call is refused with use_dpop_nonce
// and retried once by the interceptor; the following calls, unary and
// streaming, carry the learned nonce and a fresh proof each.
func TestDPoP(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	cc, err := dial(ctx, clientOptions{Target: e.target, Binding: "dpop", TokenEndpoint: e.tokenURL, ClientID: "service-a", ClientSecret: secret, Scopes: []string{"read"}, Roots: e.ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	for i, watch := range []bool{false, false, true, true} {
		out, err := call(ctx, cc, watch)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if want := "SERVING, caller service-a (dpop-bound)"; out != want {
			t.Fatalf("call %d: %q, want %q", i, out, want)
		}
	}
	if r := e.rejections(); len(r) != 1 || r[0] != "nonce_required" {
		t.Fatalf("rejections %v, want one nonce_required", r)
	}
}

// TestMTLS: certificate-bound tokens with a CA-issued and a self-signed
// client certificate; Watch is for DPoP-bound tokens only.
func TestMTLS(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	tests := []struct {
		name, client string
		cert         tls.Certificate
	}{
		{"CA-issued certificate", "orders-app", e.clientCert(t, "orders-app")},
		{"self-signed certificate", "edge-app", e.self.TLSCertificate()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cc, err := dial(ctx, clientOptions{Target: e.target, Binding: "mtls", TokenEndpoint: e.tokenURL, ClientID: tc.client, Scopes: []string{"read"}, Cert: tc.cert, Roots: e.ca.Pool()})
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			for i := range 2 {
				out, err := call(ctx, cc, false)
				if err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
				if want := "SERVING, caller " + tc.client + " (mtls-bound)"; out != want {
					t.Fatalf("call %d: %q, want %q", i, out, want)
				}
			}
			if _, err := call(ctx, cc, true); status.Code(err) != codes.Unauthenticated {
				t.Fatalf("Watch with a certificate-bound token: %v, want Unauthenticated", err)
			}
		})
	}
}

// TestClientErrors: failures reach the caller as errors.
func TestClientErrors(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	good := clientOptions{Target: e.target, Binding: "dpop", TokenEndpoint: e.tokenURL, ClientID: "service-a", ClientSecret: secret, Scopes: []string{"read"}, Roots: e.ca.Pool()}
	tests := []struct {
		name   string
		change func(*clientOptions)
		want   codes.Code
	}{
		{"wrong client secret", func(o *clientOptions) { o.ClientSecret = "wrong" }, codes.Unauthenticated},
		{"mtls with another subject's certificate", func(o *clientOptions) {
			o.Binding, o.ClientID, o.Cert = "mtls", "orders-app", e.clientCert(t, "someone-else")
		}, codes.Unauthenticated},
		{"server CA not trusted", func(o *clientOptions) { o.Roots = nil }, codes.Unavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			tc.change(&o)
			cc, err := dial(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			if _, err := call(ctx, cc, false); status.Code(err) != tc.want {
				t.Fatalf("error %v, want code %v", err, tc.want)
			}
		})
	}
	if _, err := dial(ctx, clientOptions{Binding: "bearer"}); err == nil {
		t.Fatal("dial accepted an unknown binding")
	}
}
