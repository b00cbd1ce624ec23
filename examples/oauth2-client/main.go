// Command oauth2-client calls a DPoP-protected API (RFC 9449) as a
// confidential client, using golang.org/x/oauth2/clientcredentials with
// dpop.Transport underneath. Token requests and API requests both go
// through the transport, so every one of them carries a fresh DPoP proof:
// the token endpoint binds the access token to the client's key
// (token_type DPoP), and each API call sends "Authorization: DPoP <token>"
// with a proof that includes ath. Server nonces (use_dpop_nonce) are
// picked up and retried transparently.
//
// Its defaults call the servers of the senderbound CLI on loopback: start
// an issuer that knows client "app" and a resource server, then run it
// from the repository root:
//
//	export SENDERBOUND_CLIENT_SECRET_APP=example-secret-0123456789
//	go run ./cmd/senderbound serve-issuer --addr 127.0.0.1:9000 --client app &
//	go run ./cmd/senderbound serve-resource --addr 127.0.0.1:9001 --issuer http://127.0.0.1:9000 &
//	CLIENT_SECRET=$SENDERBOUND_CLIENT_SECRET_APP go run ./examples/oauth2-client
//
// It prints the resource's answer three times, each call with a new proof.
// Against an HTTPS API, pass -url and, for a private CA, -ca (as in the
// nethttp-service example); plain http is for loopback only.
package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
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

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/mtlsbound/certs"
)

type options struct {
	TokenEndpoint, ClientID, ClientSecret string
	Scopes                                []string
	Key                                   crypto.Signer  // the DPoP key the tokens are bound to
	Roots                                 *x509.CertPool // trusted server CAs; nil = system roots
}

func main() {
	var o options
	flag.StringVar(&o.TokenEndpoint, "token-endpoint", "http://127.0.0.1:9000/token", "authorization server token endpoint")
	flag.StringVar(&o.ClientID, "client-id", "app", "client_id (the secret comes from CLIENT_SECRET)")
	scope := flag.String("scope", "read", "space-separated scopes to request")
	apiURL := flag.String("url", "http://127.0.0.1:9001/resource", "API URL to GET")
	calls := flag.Int("n", 3, "number of API calls")
	keyFile := flag.String("key", "", "DPoP private key (PKCS#8 PEM); empty = a fresh P-256 key for this run")
	caFile := flag.String("ca", "", "PEM file of CAs trusted for the servers; empty = system roots")
	flag.Parse()
	o.ClientSecret, o.Scopes = os.Getenv("CLIENT_SECRET"), strings.Fields(*scope)
	if o.ClientSecret == "" {
		log.Fatal("set CLIENT_SECRET to the secret of -client-id")
	}

	var err error
	if o.Key, err = loadOrGenerateKey(*keyFile); err != nil {
		log.Fatal(err)
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
	client, err := newClient(ctx, o)
	if err != nil {
		log.Fatal(err)
	}
	for range *calls {
		body, err := get(ctx, client, *apiURL)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s", body)
	}
}

// newClient returns an HTTP client that fetches DPoP-bound access tokens with
// the client credentials grant and sends each request with
// "Authorization: DPoP <token>" and a fresh proof. Tokens are cached and
// renewed shortly before they expire; ctx is used for those token requests.
func newClient(ctx context.Context, o options) (*http.Client, error) {
	prover, err := dpop.NewProver(o.Key, nil) // ES256 for a P-256 key
	if err != nil {
		return nil, err
	}
	// One dpop.Transport serves both the token endpoint and the API: it
	// signs a proof for every request, adds ath when it sees a DPoP
	// Authorization header, and remembers each server's DPoP-Nonce.
	dpopClient := mtlsbound.NewClient(nil, o.Roots) // no client certificate; TLS 1.2+, 30 s timeout
	dpopClient.Transport = &dpop.Transport{Base: dpopClient.Transport, Prover: prover}
	// x/oauth2 sends token requests with the client in the context...
	ctx = context.WithValue(ctx, oauth2.HTTPClient, dpopClient)
	cc := clientcredentials.Config{
		ClientID:     o.ClientID,
		ClientSecret: o.ClientSecret,
		TokenURL:     o.TokenEndpoint,
		Scopes:       o.Scopes,
		AuthStyle:    oauth2.AuthStyleInHeader, // client_secret_basic; no probing of both styles
	}
	// ...and wraps that client's transport for API requests, setting the
	// Authorization scheme from token_type: "DPoP <token>".
	return oauth2.NewClient(ctx, requireDPoP{cc.TokenSource(ctx)}), nil
}

// requireDPoP refuses tokens whose token_type is not DPoP. An authorization
// server that ignored the proof answers token_type Bearer (RFC 9449 §5);
// x/oauth2 would then send the token as a bearer token, unbound.
type requireDPoP struct{ src oauth2.TokenSource }

func (r requireDPoP) Token() (*oauth2.Token, error) {
	tok, err := r.src.Token()
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(tok.Type(), "DPoP") {
		return nil, fmt.Errorf("token endpoint answered token_type %q, want DPoP: the token is not bound to our key", tok.Type())
	}
	return tok, nil
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

// loadOrGenerateKey reads a PKCS#8 PEM key from file, or makes a fresh P-256
// key when file is empty. A per-run key is fine for client credentials: the
// client simply gets a new token bound to the new key.
func loadOrGenerateKey(file string) (crypto.Signer, error) {
	if file == "" {
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	key, err := certs.ParseKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return key, nil
}
