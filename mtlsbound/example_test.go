package mtlsbound_test

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"

	"github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/mtlsbound/certs"
	"github.com/senderbound/senderbound/trustedproxy"
)

// The RFC 9440 Appendix A Client-Cert value, as a trusted proxy sends it.
const rfc9440ClientCert = ":MIIBqDCCAU6gAwIBAgIBBzAKBggqhkjOPQQDAjA6MRswGQYDVQQKDBJMZXQncyBBdXRoZW50aWNhdGUxGzAZBgNVBAMMEkxBIEludGVybWVkaWF0ZSBDQTAeFw0yMDAxMTQyMjU1MzNaFw0yMTAxMjMyMjU1MzNaMA0xCzAJBgNVBAMMAkJDMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE8YnXXfaUgmnMtOXU/IncWalRhebrXmckC8vdgJ1p5Be5F/3YC8OthxM4+k1M6aEAEFcGzkJiNy6J84y7uzo9M6NyMHAwCQYDVR0TBAIwADAfBgNVHSMEGDAWgBRm3WjLa38lbEYCuiCPct0ZaSED2DAOBgNVHQ8BAf8EBAMCBsAwEwYDVR0lBAwwCgYIKwYBBQUHAwIwHQYDVR0RAQH/BBMwEYEPYmRjQGV4YW1wbGUuY29tMAoGCCqGSM49BAMCA0gAMEUCIBHda/r1vaL6G3VliL4/Di6YK0Q6bMjeSkC3dFCOOB8TAiEAx/kHSB4urmiZ0NX5r5XarmPk0wmuydBVoU4hBVZ1yhk=:"

func ExampleThumbprint() {
	cert, err := mtlsbound.ParseClientCertHeader(rfc9440ClientCert)
	if err != nil {
		panic(err)
	}
	fmt.Println(mtlsbound.Thumbprint(cert))
	// Output: v68ffgcPn6jdYpBfFY2nP4ShE2Yk-6_Mk5PI9yh6aes
}

func ExampleSource() {
	proxies, err := trustedproxy.New(trustedproxy.Config{
		Peers: []string{"10.0.0.0/8"}, // the TLS-terminating proxies
	})
	if err != nil {
		panic(err)
	}
	src, err := mtlsbound.NewSource(mtlsbound.SourceConfig{TrustedProxies: proxies})
	if err != nil {
		panic(err)
	}

	// A request from the proxy, which forwarded the client's certificate.
	r := httptest.NewRequest("GET", "https://rs.example.test/resource", nil)
	r.RemoteAddr = "10.1.2.3:40000"
	r.Header.Set("Client-Cert", rfc9440ClientCert)
	cert, _ := src.ClientCertificate(r)
	fmt.Println("from proxy:", mtlsbound.CheckBinding(cert, "v68ffgcPn6jdYpBfFY2nP4ShE2Yk-6_Mk5PI9yh6aes") == nil, src.Forwarded(r))

	// The same header sent straight by an untrusted client is ignored.
	r.RemoteAddr = "198.51.100.7:40000"
	cert, _ = src.ClientCertificate(r)
	fmt.Println("from client:", cert == nil)
	// Output:
	// from proxy: true true
	// from client: true
}

func ExamplePKIAuth() {
	ca, _ := certs.NewCA(certs.Options{CommonName: "Example CA"})
	client, _ := ca.Issue(certs.Options{
		Subject: pkix.Name{CommonName: "client1", Organization: []string{"Example Corp"}},
		Client:  true,
	})

	// The registration of client c1 (tls_client_auth, tls_client_auth_subject_dn).
	reg := mtlsbound.PKIAuth{Roots: ca.Pool(), SubjectDN: "CN=client1, O=example corp"}
	if err := reg.Validate(); err != nil {
		panic(err)
	}
	fmt.Println("C1:", reg.Authenticate(context.Background(), client.Cert, nil))

	other, _ := ca.Issue(certs.Options{CommonName: "client2", Client: true})
	err := reg.Authenticate(context.Background(), other.Cert, nil)
	fmt.Println("C2 mismatch:", errors.Is(err, mtlsbound.ErrCertificateMismatch))
	// Output:
	// C1: <nil>
	// C2 mismatch: true
}

func ExampleSelfSignedAuth() {
	s1, _ := certs.SelfSigned(certs.Options{CommonName: "s1", Client: true})
	s2, _ := certs.SelfSigned(certs.Options{CommonName: "s2", Client: true})

	// The client registered a JWKS whose key carries its certificate in x5c.
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: s1.Cert.PublicKey, Certificates: []*x509.Certificate{s1.Cert}},
	}})
	reg, err := mtlsbound.SelfSignedFromJWKS(jwks)
	if err != nil {
		panic(err)
	}
	fmt.Println("S1:", reg.Authenticate(context.Background(), s1.Cert))
	fmt.Println("S2 refused:", errors.Is(reg.Authenticate(context.Background(), s2.Cert), mtlsbound.ErrCertificateMismatch))
	// Output:
	// S1: <nil>
	// S2 refused: true
}

func ExampleServerTLSConfig() {
	ca, _ := certs.NewCA(certs.Options{})
	serverCert, _ := ca.Issue(certs.Options{IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	clientCert, _ := certs.SelfSigned(certs.Options{CommonName: "s1", Client: true})

	src, _ := mtlsbound.NewSource(mtlsbound.SourceConfig{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cert, _ := src.ClientCertificate(r)
		fmt.Fprint(w, mtlsbound.Thumbprint(cert) == mtlsbound.Thumbprint(clientCert.Cert))
	}))
	srv.TLS = mtlsbound.ServerTLSConfig(serverCert.TLSCertificate())
	srv.StartTLS()
	defer srv.Close()

	tc := clientCert.TLSCertificate()
	client := mtlsbound.NewClient(&tc, ca.Pool())
	resp, err := client.Get(srv.URL)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println("server saw the self-signed client certificate:", string(body))
	// Output: server saw the self-signed client certificate: true
}
