// Command embedded-issuer shows the issuer package mounted inside an
// existing application's mux, next to the application's own routes. One
// confidential client, "service-a", authenticates with client_secret_basic
// and always gets DPoP-bound access tokens.
//
//	CLIENT_SECRET=$(openssl rand -base64 32) go run ./examples/embedded-issuer -issuer https://as.example.com
//
// Serve it behind TLS in production: the issuer identifier must be https
// (plain http is accepted only for a loopback address, for trying it out).
package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"

	"github.com/senderbound/senderbound/issuer"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	issuerURL := flag.String("issuer", "http://127.0.0.1:8080", "public issuer URL")
	flag.Parse()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // use a KMS-backed crypto.Signer in production
	if err != nil {
		log.Fatal(err)
	}
	app, err := newApp(*issuerURL, key, os.Getenv("CLIENT_SECRET"))
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("issuer %s listening on %s", *issuerURL, *addr)
	log.Fatal(http.ListenAndServe(*addr, app))
}

// newApp returns the application's mux with the issuer endpoints mounted.
func newApp(issuerURL string, key crypto.Signer, secret string) (http.Handler, error) {
	if len(secret) < 32 {
		return nil, errors.New("set CLIENT_SECRET to a random secret of at least 32 characters")
	}
	u, err := url.Parse(issuerURL)
	if err != nil {
		return nil, err
	}
	ks, err := issuer.NewKeySet(issuer.SigningKey{Signer: key})
	if err != nil {
		return nil, err
	}
	is, err := issuer.New(issuer.Config{
		Issuer:            issuerURL,
		Keys:              ks,
		Audience:          []string{"https://api.example.com"},
		InsecureAllowHTTP: u.Scheme == "http" && (u.Hostname() == "127.0.0.1" || u.Hostname() == "localhost"),
	})
	if err != nil {
		return nil, err
	}
	clients, err := issuer.NewMemoryRegistry(issuer.Client{
		ID: "service-a", AuthMethod: issuer.AuthSecretBasic, SecretHash: issuer.HashSecret(secret),
		Scopes: []string{"orders:read"}, DPoPBoundAccessTokens: true,
	})
	if err != nil {
		return nil, err
	}
	asReplay, err := issuer.NewMemoryReplayStore(is, 0)
	if err != nil {
		return nil, err
	}
	srv, err := issuer.NewServer(issuer.ServerConfig{ReplayStore: asReplay, Issuer: is, Clients: clients})
	if err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	// The application's own routes.
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "orders service") })
	// The issuer, each endpoint mounted where the metadata says it is.
	mux.Handle("POST "+issuer.TokenPath, srv.TokenHandler())
	mux.Handle("POST "+issuer.IntrospectionPath, srv.IntrospectionHandler())
	mux.Handle("GET "+issuer.JWKSPath, srv.JWKSHandler())
	mux.Handle("GET "+issuer.MetadataPath, srv.MetadataHandler())
	return mux, nil
}
