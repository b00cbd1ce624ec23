// Command embedded-issuer shows the issuer package mounted inside an
// existing application's mux, next to the application's own routes. One
// confidential client, "app", authenticates with client_secret_basic and
// always gets DPoP-bound access tokens for the scopes "read" and "write".
//
// Its defaults stand in for the senderbound CLI's serve-issuer on
// loopback: the same address, client, scopes and audience, so the CLI's
// resource server and the oauth2-client example work with it unchanged.
// From the repository root:
//
//	export CLIENT_SECRET=example-secret-0123456789abcdefghij
//	go run ./examples/embedded-issuer &
//	go run ./cmd/senderbound serve-resource --addr 127.0.0.1:9001 --issuer http://127.0.0.1:9000 &
//	go run ./examples/oauth2-client
//
// It signs with a key made at start, so its tokens die with the process;
// use a KMS-backed crypto.Signer in production, and serve it behind TLS:
// the issuer identifier must be https (plain http is accepted only for a
// loopback address, for trying it out). Interrupt (SIGINT) or SIGTERM
// stops it gracefully.
package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/senderbound/senderbound/issuer"
)

// audience is the aud of every token: the identifier the senderbound CLI's
// serve-resource expects by default.
const audience = "https://resource.senderbound.test"

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	issuerURL := flag.String("issuer", "", "public issuer URL (default http://ADDR, for loopback only)")
	flag.Parse()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // use a KMS-backed crypto.Signer in production
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	if *issuerURL == "" {
		*issuerURL = "http://" + ln.Addr().String()
	}
	app, err := newApp(*issuerURL, key, os.Getenv("CLIENT_SECRET"))
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Printf("issuer %s listening on http://%s", *issuerURL, ln.Addr())
	if err := serve(ctx, &http.Server{Handler: app, ReadHeaderTimeout: 10 * time.Second}, ln); err != nil {
		log.Fatal(err)
	}
}

// serve serves srv on ln until ctx ends, then shuts it down gracefully:
// requests in flight get up to 5 s to finish.
func serve(ctx context.Context, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Print("shut down")
	return nil
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
		Audience:          []string{audience},
		InsecureAllowHTTP: u.Scheme == "http" && u.Hostname() == "127.0.0.1",
	})
	if err != nil {
		return nil, err
	}
	clients, err := issuer.NewMemoryRegistry(issuer.Client{
		ID: "app", AuthMethod: issuer.AuthSecretBasic, SecretHash: issuer.HashSecret(secret),
		Scopes: []string{"read", "write"}, DPoPBoundAccessTokens: true,
	})
	if err != nil {
		return nil, err
	}
	// One instance: an in-memory replay store (a shared redisstore.Store
	// when several instances serve this issuer).
	asReplay, err := issuer.NewMemoryReplayStore(is, 0)
	if err != nil {
		return nil, err
	}
	srv, err := issuer.NewServer(issuer.ServerConfig{ReplayStore: asReplay, Issuer: is, Clients: clients, ScopesSupported: []string{"read", "write"}})
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
