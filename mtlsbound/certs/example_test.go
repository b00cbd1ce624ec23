package certs_test

import (
	"crypto/x509"
	"fmt"

	"github.com/senderbound/senderbound/mtlsbound/certs"
)

func Example() {
	ca, err := certs.NewCA(certs.Options{CommonName: "Example CA"})
	if err != nil {
		panic(err)
	}
	client, err := ca.Issue(certs.Options{CommonName: "client1", Client: true})
	if err != nil {
		panic(err)
	}
	_, err = client.Cert.Verify(x509.VerifyOptions{
		Roots:     ca.Pool(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	fmt.Println(client.Cert.Subject.CommonName, "issued by", client.Cert.Issuer.CommonName, "verifies:", err == nil)
	// Output: client1 issued by Example CA verifies: true
}
