// Command echo-service is an Echo API whose routes accept only
// sender-constrained access tokens, DPoP-bound (RFC 9449) or bound to the
// TLS client certificate (RFC 8705). Several instances share one Redis so a
// DPoP proof accepted by one is refused by all; resource-server nonces
// (RFC 9449 §9) are on, with a secret every instance shares. GET /api/me
// needs scope "read".
//
// Its defaults trust the senderbound CLI's serve-issuer on loopback, use
// the Redis on 127.0.0.1:6379 (start one with redis-server) and serve HTTPS
// with the files "senderbound cert issue" writes. From the repository
// root, start an issuer, make a CA and a server certificate, start the
// service and call it with the oauth2-client example:
//
//	export SENDERBOUND_CLIENT_SECRET_APP=example-secret-0123456789
//	go run ./cmd/senderbound serve-issuer --addr 127.0.0.1:9000 --client app &
//	go run ./cmd/senderbound ca create --out ca
//	go run ./cmd/senderbound cert issue --ca ca --cn localhost --ip 127.0.0.1 --server --out server
//	NONCE_SECRET=$(openssl rand -hex 32) go run ./examples/echo-service &
//	CLIENT_SECRET=$SENDERBOUND_CLIENT_SECRET_APP go run ./examples/oauth2-client -ca ca/ca.pem -url https://127.0.0.1:8444/api/me
//
// For an issuer served over HTTPS by a private CA, add -ca with that CA.
// Interrupt (SIGINT) or SIGTERM stops it gracefully.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/replaycache/redisstore"
	"github.com/senderbound/senderbound/resource"
	"github.com/senderbound/senderbound/resource/echoresource"
)

type options struct {
	Issuer, Audience, PublicURL string
	Redis                       redis.UniversalClient
	NonceSecret                 []byte       // at least 32 bytes, the same on every instance
	HTTPClient                  *http.Client // discovery and JWKS; nil = 10 s timeout, system roots
}

func main() {
	var o options
	flag.StringVar(&o.Issuer, "issuer", "http://127.0.0.1:9000", "trusted issuer identifier (exact)")
	flag.StringVar(&o.Audience, "audience", "https://resource.senderbound.test", "this API's identifier (token aud)")
	flag.StringVar(&o.PublicURL, "public-url", "", "public base URL (DPoP htu); default https://ADDR")
	redisURL := flag.String("redis", "redis://127.0.0.1:6379/0", "Redis for the shared DPoP replay store")
	addr := flag.String("addr", "127.0.0.1:8444", "listen address")
	certFile := flag.String("tls-cert", "server/cert.pem", "server certificate (PEM), as cert issue --out server writes it")
	keyFile := flag.String("tls-key", "server/key.pem", "server key (PEM)")
	caFile := flag.String("ca", "", "PEM file of CAs trusted for the issuer's HTTPS; empty = system roots")
	flag.Parse()
	ropts, err := redis.ParseURL(*redisURL)
	if err != nil {
		log.Fatal("-redis: invalid URL") // the URL may hold a password
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		log.Fatalf("%v (make one with: senderbound cert issue --ca ca --cn localhost --ip 127.0.0.1 --server --out server)", err)
	}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			log.Fatal(err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			log.Fatalf("%s: no PEM certificates", *caFile)
		}
		o.HTTPClient = mtlsbound.NewClient(nil, roots)
	}
	rdb := redis.NewClient(ropts)
	defer rdb.Close()
	o.Redis, o.NonceSecret = rdb, []byte(os.Getenv("NONCE_SECRET"))
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	if o.PublicURL == "" {
		o.PublicURL = "https://" + ln.Addr().String()
	}
	e, err := newServer(o)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: e, TLSConfig: mtlsbound.ServerTLSConfig(cert), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Printf("listening on https://%s (issuer %s)", ln.Addr(), o.Issuer)
	if err := serveTLS(ctx, srv, ln); err != nil {
		log.Fatal(err)
	}
}

// serveTLS serves srv over TLS on ln until ctx ends, then shuts it down
// gracefully: requests in flight get up to 5 s to finish.
func serveTLS(ctx context.Context, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
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

func newServer(o options) (*echo.Echo, error) {
	keys, err := resource.NewRemoteKeySet(resource.RemoteKeySetConfig{Issuer: o.Issuer, HTTPClient: o.HTTPClient})
	if err != nil {
		return nil, err
	}
	replay, err := redisstore.New(o.Redis, redisstore.Config{})
	if err != nil {
		return nil, err
	}
	nonces, err := dpop.NewNonces(dpop.NonceConfig{Secrets: [][]byte{o.NonceSecret}, Label: o.PublicURL})
	if err != nil {
		return nil, err
	}
	v, err := resource.New(resource.Config{
		Algorithms: resource.DefaultAlgorithms(),
		Issuers:    []resource.Issuer{{Identifier: o.Issuer, Keys: keys}},
		Audience:   o.Audience,
		PublicURL:  o.PublicURL,
		DPoP:       &resource.DPoPConfig{Algorithms: []string{"ES256", "EdDSA", "PS256"}, ReplayStore: replay, Nonces: nonces},
	})
	if err != nil {
		return nil, err
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET(resource.MetadataPath, echo.WrapHandler(v.MetadataHandler(resource.Policy{}, []string{"read"})))
	api := e.Group("/api", echoresource.WithConfig(echoresource.Config{
		Verifier: v,
		Policy:   resource.Policy{Scopes: []string{"read"}}, // DPoP or mTLS
		Skipper:  func(c echo.Context) bool { return c.Path() == "/api/health" },
	}))
	api.GET("/health", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	api.GET("/me", func(c echo.Context) error {
		p := echoresource.Principal(c)
		return c.JSON(http.StatusOK, map[string]string{"sub": p.Subject, "client_id": p.ClientID, "binding": string(p.Binding)})
	})
	return e, nil
}
