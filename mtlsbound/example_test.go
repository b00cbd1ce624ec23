package mtlsbound_test

import (
	"fmt"
	"net/http/httptest"

	"github.com/senderbound/senderbound/mtlsbound"
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
	src, err := mtlsbound.NewSource(mtlsbound.SourceConfig{
		TrustedProxies: []string{"10.0.0.0/8"}, // the TLS-terminating proxies
	})
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
