// Command introspection-service is a plain net/http API for an issuer that
// hands out opaque access tokens: it cannot verify them itself, so it asks
// the issuer's RFC 7662 introspection endpoint, authenticated as a
// confidential client with client_secret_basic (the secret comes from
// INTROSPECTION_SECRET). The answer's cnf binds the token exactly as a
// JWT's would: a cnf.jkt token needs a DPoP proof by that key (RFC 9449
// §6.2) and is refused under Bearer, a cnf.x5t#S256 token needs the TLS
// client certificate (RFC 8705 §3). Answers are cached for 30 seconds,
// at most 64 calls are under way at once, and an endpoint that fails
// makes the API answer 503, never 401. GET /orders needs scope "read"
// (DPoP or mTLS).
//
// Its defaults trust the senderbound CLI's serve-issuer on loopback,
// issuing opaque tokens, with this service registered as client
// "orders-api" that may introspect every token; it serves HTTPS with the
// files "senderbound cert issue" writes. From the repository root:
//
//	export SENDERBOUND_CLIENT_SECRET_APP=example-secret-0123456789
//	export SENDERBOUND_CLIENT_SECRET_ORDERS_API=example-secret-orders-api-0123
//	go run ./cmd/senderbound serve-issuer --addr 127.0.0.1:9000 --access-token-format opaque \
//		--client app --client orders-api --introspect-all orders-api &
//	go run ./cmd/senderbound ca create --out ca
//	go run ./cmd/senderbound cert issue --ca ca --cn localhost --ip 127.0.0.1 --server --out server
//	INTROSPECTION_SECRET=$SENDERBOUND_CLIENT_SECRET_ORDERS_API go run ./examples/introspection-service &
//	CLIENT_SECRET=$SENDERBOUND_CLIENT_SECRET_APP go run ./examples/oauth2-client -ca ca/ca.pem -url https://127.0.0.1:8445/orders
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
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/resource"
)

type options struct {
	Issuer, Audience, PublicURL string
	// Endpoint is the issuer's introspection endpoint; ClientID and
	// ClientSecret authenticate this service there.
	Endpoint, ClientID, ClientSecret string
	HTTPClient                       *http.Client // for introspection; nil = system roots
}

func main() {
	var o options
	flag.StringVar(&o.Issuer, "issuer", "http://127.0.0.1:9000", "trusted issuer identifier (exact)")
	flag.StringVar(&o.Endpoint, "introspection-endpoint", "http://127.0.0.1:9000/introspect", "the issuer's RFC 7662 introspection endpoint (https, or http on a loopback address)")
	flag.StringVar(&o.ClientID, "client-id", "orders-api", "this service's client_id at the introspection endpoint (the secret comes from INTROSPECTION_SECRET)")
	flag.StringVar(&o.Audience, "audience", "https://resource.senderbound.test", "this API's identifier (token aud)")
	flag.StringVar(&o.PublicURL, "public-url", "", "public base URL (DPoP htu); default https://ADDR")
	addr := flag.String("addr", "127.0.0.1:8445", "listen address")
	certFile := flag.String("tls-cert", "server/cert.pem", "server certificate (PEM), as cert issue --out server writes it")
	keyFile := flag.String("tls-key", "server/key.pem", "server key (PEM)")
	caFile := flag.String("ca", "", "PEM file of CAs trusted for the issuer's HTTPS; empty = system roots")
	flag.Parse()
	o.ClientSecret = os.Getenv("INTROSPECTION_SECRET")
	if o.ClientSecret == "" {
		log.Fatal("INTROSPECTION_SECRET is empty: set it to this service's client secret at the issuer")
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
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	if o.PublicURL == "" {
		o.PublicURL = "https://" + ln.Addr().String()
	}
	h, err := newHandler(o)
	if err != nil {
		log.Fatal(err)
	}
	// Request (not require) client certificates, so both bindings work.
	srv := &http.Server{Handler: h, TLSConfig: mtlsbound.ServerTLSConfig(cert), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Printf("listening on https://%s (issuer %s, introspection at %s)", ln.Addr(), o.Issuer, o.Endpoint)
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

func newHandler(o options) (http.Handler, error) {
	replay, err := replaycache.NewLRU(replaycache.Config{Capacity: 1 << 20}) // replaycache/redisstore for several instances
	if err != nil {
		return nil, err
	}
	v, err := resource.New(resource.Config{
		Algorithms: resource.DefaultAlgorithms(),
		Issuers: []resource.Issuer{{Identifier: o.Issuer, Introspection: &resource.Introspection{
			Endpoint:     o.Endpoint,
			ClientID:     o.ClientID,
			Auth:         resource.AuthClientSecretBasic,
			ClientSecret: o.ClientSecret,
			HTTPClient:   o.HTTPClient,
			// CacheTTL is how long a revoked token stays usable here.
			CacheTTL: 30 * time.Second,
			// A flood of made-up tokens reaches the issuer at most this
			// many calls at a time; beyond it requests get 503.
			MaxConcurrent: 64,
		}}},
		Audience:  o.Audience,
		PublicURL: o.PublicURL,
		DPoP:      &resource.DPoPConfig{Algorithms: []string{"ES256", "EdDSA", "PS256"}, ReplayStore: replay},
	})
	if err != nil {
		return nil, err
	}
	read := resource.Policy{Scopes: []string{"read"}} // DPoP or mTLS
	mux := http.NewServeMux()
	mux.Handle("GET "+resource.MetadataPath, v.MetadataHandler(read, []string{"read"}))
	mux.Handle("GET /orders", v.Middleware(read)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := resource.PrincipalFromContext(r.Context())
		fmt.Fprintf(w, "orders of %s (client %s, %s-bound)\n", p.Subject, p.ClientID, p.Binding)
	})))
	return mux, nil
}
