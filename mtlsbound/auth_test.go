package mtlsbound

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/mtlsbound/certs"
)

// authenticator is what a token endpoint stores per registered client.
type authenticator func(ctx context.Context, cert *x509.Certificate, chain []*x509.Certificate) error

func pki(a PKIAuth) authenticator { return a.Authenticate }

func selfSigned(a SelfSignedAuth) authenticator {
	return func(ctx context.Context, cert *x509.Certificate, _ []*x509.Certificate) error {
		return a.Authenticate(ctx, cert)
	}
}

var errClasses = []struct {
	name string
	err  error
}{
	{"no_certificate", ErrNoCertificate},
	{"untrusted", ErrUntrustedCertificate},
	{"mismatch", ErrCertificateMismatch},
	{"revoked", ErrRevoked},
	{"revocation_unavailable", ErrRevocationUnavailable},
	{"config", ErrInvalidConfig},
}

func errClass(err error) string {
	if err == nil {
		return ""
	}
	for _, c := range errClasses {
		if errors.Is(err, c.err) {
			return c.name
		}
	}
	return "unclassified"
}

// tokenEndpoint mimics an authorization server's client authentication over
// real TLS: the client is looked up by client_id, never by certificate
// (MTLS-CA-02), and any failure is 401 invalid_client with the error class
// in X-Error-Class for the test to check.
func tokenEndpoint(t *testing.T, clients map[string]authenticator) *httptest.Server {
	t.Helper()
	f := fixtures(t)
	src := mustSource(t, SourceConfig{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("client_id")
		auth, ok := clients[id]
		if !ok {
			w.Header().Set("X-Error-Class", "unknown_client")
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		cert, err := src.ClientCertificate(r)
		if err == nil {
			var chain []*x509.Certificate
			if r.TLS != nil && len(r.TLS.PeerCertificates) > 1 {
				chain = r.TLS.PeerCertificates[1:]
			}
			err = auth(r.Context(), cert, chain)
		}
		if err != nil {
			w.Header().Set("X-Error-Class", errClass(err))
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		w.Write([]byte(Thumbprint(cert)))
	}))
	srv.TLS = ServerTLSConfig(f.server.TLSCertificate())
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func jwksFor(t testing.TB, leaves ...*certs.Leaf) []byte {
	t.Helper()
	var set jose.JSONWebKeySet
	for _, l := range leaves {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: l.Cert.PublicKey, Certificates: []*x509.Certificate{l.Cert}, Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestClientAuthenticationOverTLS(t *testing.T) {
	t.Parallel()
	f := fixtures(t)
	mustIssue := func(ca *certs.CA, o certs.Options) *certs.Leaf {
		l, err := ca.Issue(o)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	c1Subject := pkix.Name{CommonName: "client1", Organization: []string{"Example Corp"}}
	expired := mustIssue(f.ca1, certs.Options{Subject: c1Subject, Client: true, NotBefore: time.Now().Add(-48 * time.Hour), TTL: time.Hour})
	serverOnly := mustIssue(f.ca1, certs.Options{Subject: c1Subject, Server: true})
	selfC1, err := certs.SelfSigned(certs.Options{Subject: c1Subject, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	inter, err := f.ca1.NewIntermediate(certs.Options{CommonName: "CA1 issuing"})
	if err != nil {
		t.Fatal(err)
	}
	viaInter := mustIssue(inter, certs.Options{Subject: c1Subject, Client: true})
	dnsLeaf := mustIssue(f.ca1, certs.Options{CommonName: "d", DNSNames: []string{"Client.Example.TEST"}, Client: true})
	uriLikeDNS := mustIssue(f.ca1, certs.Options{CommonName: "d", URIs: []*url.URL{{Path: "client.example.test"}}, Client: true})
	spiffe, _ := url.Parse("spiffe://example.test/c1")
	uriLeaf := mustIssue(f.ca1, certs.Options{CommonName: "u", URIs: []*url.URL{spiffe}, DNSNames: []string{"spiffe.example.test"}, Client: true})
	ipLeaf := mustIssue(f.ca1, certs.Options{CommonName: "i", IPAddresses: []net.IP{net.ParseIP("2001:0db8:0:0:0:0:0:1")}, Client: true})
	emailLeaf := mustIssue(f.ca1, certs.Options{CommonName: "e", EmailAddresses: []string{"c1@EXAMPLE.test"}, Client: true})
	s1Rotated, err := certs.SelfSigned(certs.Options{CommonName: "s1", Client: true, Key: f.s1.Key})
	if err != nil {
		t.Fatal(err)
	}
	ss, err := SelfSignedFromJWKS(jwksFor(t, f.s1))
	if err != nil {
		t.Fatal(err)
	}
	roots := f.ca1.Pool()
	clients := map[string]authenticator{
		"c1":         pki(PKIAuth{Roots: roots, SubjectDN: "CN=client1,O=Example Corp"}),
		"c1-spacing": pki(PKIAuth{Roots: roots, SubjectDN: "cn = CLIENT1 ,  o=example   corp"}),
		"c1-corp2":   pki(PKIAuth{Roots: roots, SubjectDN: "CN=client1,O=Example Corp2"}),
		"c2":         pki(PKIAuth{Roots: roots, SubjectDN: "CN=client2,O=Example Corp"}),
		"dns":        pki(PKIAuth{Roots: roots, SANDNS: "client.example.test"}),
		"uri":        pki(PKIAuth{Roots: roots, SANURI: "spiffe://example.test/c1"}),
		"uri-scheme": pki(PKIAuth{Roots: roots, SANURI: "SPIFFE://example.test/c1"}),
		"uri-path":   pki(PKIAuth{Roots: roots, SANURI: "spiffe://example.test/C1"}),
		"cn-as-dns":  pki(PKIAuth{Roots: roots, SANDNS: "client1"}),
		"ip":         pki(PKIAuth{Roots: roots, SANIP: "2001:db8::1"}),
		"ip-other":   pki(PKIAuth{Roots: roots, SANIP: "2001:db8::2"}),
		"email":      pki(PKIAuth{Roots: roots, SANEmail: "c1@example.TEST"}),
		"email-case": pki(PKIAuth{Roots: roots, SANEmail: "C1@example.test"}),
		"s1":         selfSigned(ss),
		"misconfig":  pki(PKIAuth{Roots: roots, SubjectDN: "CN=client1", SANDNS: "x.example.test"}),
	}
	srv := tokenEndpoint(t, clients)
	tests := []struct {
		name      string
		clientID  string
		leaf      *certs.Leaf
		wantClass string // "" = success
	}{
		{"MTLS-CA-10/c1 with C1", "c1", f.c1, ""},
		{"MTLS-CA-01/ADV-95 no certificate", "c1", nil, "no_certificate"},
		{"MTLS-CA-03/C2 with client_id c1", "c1", f.c2, "mismatch"},
		{"ADV-94/C1 with client_id c2", "c2", f.c1, "mismatch"},
		{"MTLS-CA-04/self-signed with c1 DN", "c1", selfC1, "untrusted"},
		{"MTLS-CA-04/expired C1", "c1", expired, "untrusted"},
		{"serverAuth-only certificate", "c1", serverOnly, "untrusted"},
		{"MTLS-CA-17/ADV-91 c1 DN from CA2", "c1", f.c1FromCA2, "untrusted"},
		{"chain through intermediate sent by client", "c1", viaInter, ""},
		{"MTLS-CA-06/DN spacing and case", "c1-spacing", f.c1, ""},
		{"MTLS-CA-06/O=Example Corp2", "c1-corp2", f.c1, "mismatch"},
		{"san_dns match (case-insensitive)", "dns", dnsLeaf, ""},
		{"MTLS-CA-07/URI SAN equal to san_dns string", "dns", uriLikeDNS, "mismatch"},
		{"san_uri match", "uri", uriLeaf, ""},
		{"san_uri scheme case-insensitive", "uri-scheme", uriLeaf, ""},
		{"san_uri path case-sensitive", "uri-path", uriLeaf, "mismatch"},
		{"MTLS-CA-07/subject CN equal to san_dns string", "cn-as-dns", f.c1, "mismatch"},
		{"MTLS-CA-08/IP binary compare", "ip", ipLeaf, ""},
		{"MTLS-CA-08/other IP", "ip-other", ipLeaf, "mismatch"},
		{"san_email domain case-insensitive", "email", emailLeaf, ""},
		{"san_email local part exact", "email-case", emailLeaf, "mismatch"},
		{"MTLS-CA-10/S1 registered", "s1", f.s1, ""},
		{"MTLS-CA-10/S2 not registered", "s1", f.s2, "mismatch"},
		{"ADV-93/S1 key with other bytes", "s1", s1Rotated, "mismatch"},
		{"MTLS-CA-10/CA-issued cert for self-signed client", "s1", f.c1, "mismatch"},
		{"MTLS-CA-05/two selectors", "misconfig", f.c1, "config"},
		{"unknown client_id", "nobody", f.c1, "unknown_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var cert *tls.Certificate
			if tt.leaf != nil {
				c := tt.leaf.TLSCertificate()
				cert = &c
			}
			client := NewClient(cert, f.ca1.Pool())
			defer client.CloseIdleConnections()
			resp, err := client.Get(srv.URL + "/token?client_id=" + url.QueryEscape(tt.clientID))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := resp.Header.Get("X-Error-Class")
			if tt.wantClass == "" && resp.StatusCode != http.StatusOK || tt.wantClass != "" && (resp.StatusCode != http.StatusUnauthorized || got != tt.wantClass) {
				t.Fatalf("status %d class %q, want class %q", resp.StatusCode, got, tt.wantClass)
			}
		})
	}
}

func TestPKIAuthValidate(t *testing.T) {
	t.Parallel()
	roots := fixtures(t).ca1.Pool()
	tests := []struct {
		name string
		a    PKIAuth
		ok   bool
	}{
		{"dn", PKIAuth{Roots: roots, SubjectDN: "CN=a"}, true},
		{"dns", PKIAuth{Roots: roots, SANDNS: "a.example.test"}, true},
		{"uri", PKIAuth{Roots: roots, SANURI: "https://a.example.test/x"}, true},
		{"ip", PKIAuth{Roots: roots, SANIP: "192.0.2.1"}, true},
		{"email", PKIAuth{Roots: roots, SANEmail: "a@example.test"}, true},
		{"MTLS-CA-05/none", PKIAuth{Roots: roots}, false},
		{"MTLS-CA-05/two", PKIAuth{Roots: roots, SubjectDN: "CN=a", SANDNS: "a.example.test"}, false},
		{"no roots", PKIAuth{SubjectDN: "CN=a"}, false},
		{"bad dn", PKIAuth{Roots: roots, SubjectDN: "nonsense"}, false},
		{"bad dns", PKIAuth{Roots: roots, SANDNS: "a b"}, false},
		{"relative uri", PKIAuth{Roots: roots, SANURI: "a.example.test"}, false},
		{"bad ip", PKIAuth{Roots: roots, SANIP: "2001:db8::g"}, false},
		{"ip with zone", PKIAuth{Roots: roots, SANIP: "fe80::1%eth0"}, false},
		{"bad email", PKIAuth{Roots: roots, SANEmail: "nobody"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.a.Validate()
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvalidConfig)) {
				t.Fatalf("Validate = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestPKIAuthClock(t *testing.T) {
	t.Parallel()
	f := fixtures(t)
	a := PKIAuth{Roots: f.ca1.Pool(), SubjectDN: "CN=client1,O=Example Corp"}
	ctx := context.Background()
	if err := a.Authenticate(ctx, f.c1.Cert, nil); err != nil {
		t.Fatal(err)
	}
	a.Now = func() time.Time { return f.c1.Cert.NotAfter.Add(time.Second) }
	if err := a.Authenticate(ctx, f.c1.Cert, nil); !errors.Is(err, ErrUntrustedCertificate) {
		t.Fatalf("after NotAfter: %v", err)
	}
	a.Now = func() time.Time { return f.c1.Cert.NotBefore.Add(-time.Second) }
	if err := a.Authenticate(ctx, f.c1.Cert, nil); !errors.Is(err, ErrUntrustedCertificate) {
		t.Fatalf("before NotBefore: %v", err)
	}
	a.Now = nil
	if err := a.Authenticate(ctx, f.ca1.Cert, nil); !errors.Is(err, ErrUntrustedCertificate) {
		t.Fatalf("CA certificate as client: %v", err)
	}
	// A leaf without any extended key usage: crypto/x509 would accept it
	// for clientAuth; PKIAuth requires the explicit grant.
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(42),
		Subject:               f.c1.Cert.Subject,
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, f.ca1.Cert, f.c1.Cert.PublicKey, f.ca1.Key)
	if err != nil {
		t.Fatal(err)
	}
	noEKU, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := noEKU.Verify(x509.VerifyOptions{Roots: a.Roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("premise: crypto/x509 accepts a leaf without EKU: %v", err)
	}
	if err := a.Authenticate(ctx, noEKU, nil); !errors.Is(err, ErrUntrustedCertificate) {
		t.Fatalf("leaf without EKU: %v", err)
	}
}

func TestSelfSignedRegistration(t *testing.T) {
	t.Parallel()
	f := fixtures(t)
	good := jwksFor(t, f.s1, f.s2)
	a, err := SelfSignedFromJWKS(good)
	if err != nil || len(a.Certificates) != 2 {
		t.Fatalf("good JWKS: %v", err)
	}
	// MTLS-CA-12: x5c of S1 with the key members of S2.
	var set map[string][]map[string]any
	if err := json.Unmarshal(jwksFor(t, f.s2), &set); err != nil {
		t.Fatal(err)
	}
	var s1set map[string][]map[string]any
	if err := json.Unmarshal(jwksFor(t, f.s1), &s1set); err != nil {
		t.Fatal(err)
	}
	set["keys"][0]["x5c"] = s1set["keys"][0]["x5c"]
	mismatched, _ := json.Marshal(set)

	priv, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: f.s1.Key, Certificates: []*x509.Certificate{f.s1.Cert}}}})
	noX5c, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: f.s1.Cert.PublicKey}}})
	tests := []struct {
		name string
		in   []byte
	}{
		{"MTLS-CA-12/x5c and key members disagree", mismatched},
		{"private key", priv},
		{"no x5c", noX5c},
		{"not JSON", []byte("{")},
		{"empty set", []byte(`{"keys":[]}`)},
		{"too large", make([]byte, MaxJWKSBytes+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, err := SelfSignedFromJWKS(tt.in)
			if !errors.Is(err, ErrInvalidConfig) || len(a.Certificates) != 0 {
				t.Fatalf("accepted: %v", err)
			}
		})
	}

	pemData := certs.EncodeCertificates(f.s1.Cert)
	p, err := SelfSignedFromPEM(pemData)
	if err != nil || p.Authenticate(context.Background(), f.s1.Cert) != nil {
		t.Fatalf("PEM registration: %v", err)
	}
	if err := p.Authenticate(context.Background(), f.s2.Cert); !errors.Is(err, ErrCertificateMismatch) {
		t.Fatalf("S2 against PEM registration: %v", err)
	}
	if err := p.Authenticate(context.Background(), nil); !errors.Is(err, ErrNoCertificate) {
		t.Fatalf("nil: %v", err)
	}
	key, _ := certs.EncodeKey(f.s1.Key)
	for name, in := range map[string][]byte{"key block": key, "trailing": append(append([]byte{}, pemData...), 'x'), "empty": nil} {
		if _, err := SelfSignedFromPEM(in); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s accepted: %v", name, err)
		}
	}
	if err := (SelfSignedAuth{}).Authenticate(context.Background(), f.s1.Cert); !errors.Is(err, ErrCertificateMismatch) {
		t.Fatal("empty registration matched")
	}
}
