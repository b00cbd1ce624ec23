package conformance_test

import (
	"fmt"
	"net"
	"net/url"

	"github.com/senderbound/senderbound/conformance"
	"github.com/senderbound/senderbound/mtlsbound/certs"
)

// The suite serves the key set of a self-signed client registered with a
// jwks_uri, so that MTLS-CA-11 can rotate the client's certificate.
func ExampleNewClientKeyHost() {
	ca, _ := certs.NewCA(certs.Options{CommonName: "test CA"}) // the target must trust it
	cert, _ := ca.Issue(certs.Options{IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	host, err := conformance.NewClientKeyHost(conformance.ClientKeyHostConfig{Certificate: cert.TLSCertificate()})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer host.Close()
	// Register this URL as the jwks_uri of "rotating-app" at the target
	// (allowing it to fetch from loopback), then run the suite with
	// Target.ClientKeys = host and Target.JWKSURIClientID = "rotating-app".
	u, _ := url.Parse(host.URL("rotating-app"))
	fmt.Println(u.Scheme, u.Hostname(), u.Path)
	// Output: https 127.0.0.1 /clients/rotating-app/jwks.json
}
