// Command mtls-client calls an API that accepts certificate-bound access
// tokens (RFC 8705). The client presents its X.509 certificate on every TLS
// connection: the token endpoint authenticates it with tls_client_auth (no
// client secret) and binds the access token to that certificate
// (cnf.x5t#S256), and the API accepts "Authorization: Bearer <token>" only
// on a connection made with the same certificate. A copied token is useless
// without the certificate's private key.
//
// Its defaults call the servers of the senderbound CLI on loopback HTTPS,
// with the files "senderbound cert issue" writes. From the repository root,
// make a CA, a server and a client certificate, start an issuer that knows
// client "orders-app" by its certificate's subject and a resource server
// that accepts certificate-bound tokens, then run it:
//
//	go run ./cmd/senderbound ca create --out ca
//	go run ./cmd/senderbound cert issue --ca ca --cn localhost --ip 127.0.0.1 --server --out server
//	go run ./cmd/senderbound cert issue --ca ca --cn orders-app --client --out client
//	go run ./cmd/senderbound serve-issuer --addr 127.0.0.1:9443 --tls-cert server/cert.pem --tls-key server/key.pem \
//		--client-ca ca/ca.pem --mtls-client orders-app:CN=orders-app &
//	go run ./cmd/senderbound serve-resource --addr 127.0.0.1:9444 --issuer https://127.0.0.1:9443 --ca-file ca/ca.pem \
//		--tls-cert server/cert.pem --tls-key server/key.pem --require mtls &
//	go run ./examples/mtls-client -ca ca/ca.pem
//
// Against another issuer, use the token endpoint its metadata lists under
// mtls_endpoint_aliases when it has one: that host requests client
// certificates (RFC 8705 §5).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/senderbound/senderbound/mtlsbound"
)

type options struct {
	TokenEndpoint, ClientID string
	Scopes                  []string
	Cert                    tls.Certificate // the client certificate and its private key
	Roots                   *x509.CertPool  // trusted server CAs; nil = system roots
}

func main() {
	var o options
	flag.StringVar(&o.TokenEndpoint, "token-endpoint", "https://127.0.0.1:9443/token", "token endpoint (the mTLS alias, if any)")
	flag.StringVar(&o.ClientID, "client-id", "orders-app", "client_id registered for tls_client_auth")
	scope := flag.String("scope", "read", "space-separated scopes to request")
	apiURL := flag.String("url", "https://127.0.0.1:9444/resource", "API URL to GET")
	certFile := flag.String("cert", "client/cert.pem", "client certificate, optionally followed by its chain (PEM), as cert issue --out client writes it")
	keyFile := flag.String("key", "client/key.pem", "client private key (PEM)")
	caFile := flag.String("ca", "", "PEM file of CAs trusted for the servers; empty = system roots")
	flag.Parse()
	o.Scopes = strings.Fields(*scope)

	var err error
	if o.Cert, err = tls.LoadX509KeyPair(*certFile, *keyFile); err != nil {
		log.Fatalf("%v (make one with: senderbound cert issue --ca ca --cn %s --client --out client)", err, o.ClientID)
	}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			log.Fatal(err)
		}
		if o.Roots = x509.NewCertPool(); !o.Roots.AppendCertsFromPEM(pem) {
			log.Fatalf("%s: no PEM certificates", *caFile)
		}
	}
	// Interrupt (SIGINT) or SIGTERM cancels the requests in flight.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	body, err := get(ctx, newClient(ctx, o), *apiURL)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s", body)
}

// newClient returns an HTTP client that presents o.Cert on every connection
// and sends each request with "Authorization: Bearer <token>", a token it
// obtains with the client credentials grant and tls_client_auth. Tokens are
// cached and renewed shortly before they expire; ctx is used for those token
// requests.
func newClient(ctx context.Context, o options) *http.Client {
	// The same certificate authenticates the client at the token endpoint
	// and proves possession at the API; the token is bound to it.
	hc := mtlsbound.NewClient(&o.Cert, o.Roots) // TLS 1.2+, 30 s timeout, never a Client-Cert header
	ctx = context.WithValue(ctx, oauth2.HTTPClient, hc)
	cc := clientcredentials.Config{
		ClientID: o.ClientID,
		TokenURL: o.TokenEndpoint,
		Scopes:   o.Scopes,
		// tls_client_auth sends client_id in the form and no secret. With
		// AuthStyleInHeader x/oauth2 would send "Basic client_id:" instead,
		// which the issuer refuses as a failed client_secret_basic; the
		// default, AuthStyleAutoDetect, would waste a refused request first.
		AuthStyle: oauth2.AuthStyleInParams,
	}
	// API requests go through hc too, so they present the certificate.
	return oauth2.NewClient(ctx, cc.TokenSource(ctx))
}

// get fetches url and returns the body of a 2xx response. Any other status is
// an error that names the server's WWW-Authenticate challenge, if any.
func get(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("GET %s: %s (WWW-Authenticate: %q)", url, resp.Status, resp.Header.Get("WWW-Authenticate"))
	}
	return body, nil
}
