// Command echo-service is an Echo API whose routes accept only
// sender-constrained access tokens, DPoP-bound (RFC 9449) or bound to the
// TLS client certificate (RFC 8705). Several instances share one Redis so a
// DPoP proof accepted by one is refused by all; resource-server nonces
// (RFC 9449 §9) are on.
//
//	NONCE_SECRET=$(openssl rand -hex 32) go run ./examples/echo-service \
//		-issuer https://as.example.com -audience https://api.example.com \
//		-public-url https://api.example.com -redis redis://127.0.0.1:6379/0
package main

import (
	"crypto/tls"
	"flag"
	"log"
	"net/http"
	"os"

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
	flag.StringVar(&o.Issuer, "issuer", "https://as.example.com", "trusted issuer identifier (exact)")
	flag.StringVar(&o.Audience, "audience", "https://api.example.com", "this API's identifier (token aud)")
	flag.StringVar(&o.PublicURL, "public-url", "https://api.example.com", "public base URL (DPoP htu)")
	redisURL := flag.String("redis", "redis://127.0.0.1:6379/0", "Redis for the shared DPoP replay store")
	addr := flag.String("addr", ":8443", "listen address")
	certFile := flag.String("tls-cert", "server.pem", "server certificate (PEM)")
	keyFile := flag.String("tls-key", "server-key.pem", "server key (PEM)")
	flag.Parse()
	ropts, err := redis.ParseURL(*redisURL)
	if err != nil {
		log.Fatal(err)
	}
	o.Redis, o.NonceSecret = redis.NewClient(ropts), []byte(os.Getenv("NONCE_SECRET"))
	e, err := newServer(o)
	if err != nil {
		log.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Addr: *addr, Handler: e, TLSConfig: mtlsbound.ServerTLSConfig(cert)}
	log.Fatal(srv.ListenAndServeTLS("", ""))
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
	e.GET(resource.MetadataPath, echo.WrapHandler(v.MetadataHandler(resource.Policy{}, []string{"profile"})))
	api := e.Group("/api", echoresource.WithConfig(echoresource.Config{
		Verifier: v,
		Policy:   resource.Policy{Scopes: []string{"profile"}}, // DPoP or mTLS
		Skipper:  func(c echo.Context) bool { return c.Path() == "/api/health" },
	}))
	api.GET("/health", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	api.GET("/me", func(c echo.Context) error {
		p := echoresource.Principal(c)
		return c.JSON(http.StatusOK, map[string]string{"sub": p.Subject, "client_id": p.ClientID, "binding": string(p.Binding)})
	})
	return e, nil
}
