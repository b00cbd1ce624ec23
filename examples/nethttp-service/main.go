// Command nethttp-service is a plain net/http API whose routes accept only
// sender-constrained access tokens: DPoP-bound (RFC 9449) or bound to the
// TLS client certificate (RFC 8705). Keys are discovered from the issuer's
// metadata. GET /orders needs scope "read" (DPoP or mTLS), POST /orders
// scope "write" (DPoP only).
//
// Its defaults trust the senderbound CLI's serve-issuer on loopback and
// serve HTTPS with the files "senderbound cert issue" writes. From the
// repository root, start an issuer, make a CA and a server certificate,
// start the service and call it with the oauth2-client example:
//
//	export SENDERBOUND_CLIENT_SECRET_APP=example-secret-0123456789
//	go run ./cmd/senderbound serve-issuer --addr 127.0.0.1:9000 --client app &
//	go run ./cmd/senderbound ca create --out ca
//	go run ./cmd/senderbound cert issue --ca ca --cn localhost --ip 127.0.0.1 --server --out server
//	go run ./examples/nethttp-service &
//	CLIENT_SECRET=$SENDERBOUND_CLIENT_SECRET_APP go run ./examples/oauth2-client -ca ca/ca.pem -url https://127.0.0.1:8443/orders
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
	"github.com/senderbound/senderbound/trustedproxy"
)

type options struct {
	Issuer, Audience, PublicURL string
	TrustedProxies              *trustedproxy.Set // nil: no proxy in front; see package trustedproxy
	HTTPClient                  *http.Client      // for discovery and JWKS; nil = 10 s timeout, system roots
}

func main() {
	var o options
	flag.StringVar(&o.Issuer, "issuer", "http://127.0.0.1:9000", "trusted issuer identifier (exact)")
	flag.StringVar(&o.Audience, "audience", "https://resource.senderbound.test", "this API's identifier (token aud)")
	flag.StringVar(&o.PublicURL, "public-url", "", "public base URL (DPoP htu); default https://ADDR")
	addr := flag.String("addr", "127.0.0.1:8443", "listen address")
	certFile := flag.String("tls-cert", "server/cert.pem", "server certificate (PEM), as cert issue --out server writes it")
	keyFile := flag.String("tls-key", "server/key.pem", "server key (PEM)")
	caFile := flag.String("ca", "", "PEM file of CAs trusted for the issuer's HTTPS; empty = system roots")
	flag.Parse()
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

func newHandler(o options) (http.Handler, error) {
	keys, err := resource.NewRemoteKeySet(resource.RemoteKeySetConfig{Issuer: o.Issuer, HTTPClient: o.HTTPClient})
	if err != nil {
		return nil, err
	}
	replay, err := replaycache.NewLRU(replaycache.Config{Capacity: 1 << 20}) // replaycache/redisstore for several instances
	if err != nil {
		return nil, err
	}
	v, err := resource.New(resource.Config{
		Algorithms:     resource.DefaultAlgorithms(),
		Issuers:        []resource.Issuer{{Identifier: o.Issuer, Keys: keys}},
		Audience:       o.Audience,
		PublicURL:      o.PublicURL,
		TrustedProxies: o.TrustedProxies,
		DPoP:           &resource.DPoPConfig{Algorithms: []string{"ES256", "EdDSA", "PS256"}, ReplayStore: replay},
	})
	if err != nil {
		return nil, err
	}
	read := resource.Policy{Scopes: []string{"read"}}                                // DPoP or mTLS
	write := resource.Policy{Accept: resource.AcceptDPoP, Scopes: []string{"write"}} // DPoP only
	mux := http.NewServeMux()
	mux.Handle("GET "+resource.MetadataPath, v.MetadataHandler(read, []string{"read", "write"}))
	mux.Handle("GET /orders", v.Middleware(read)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := resource.PrincipalFromContext(r.Context())
		fmt.Fprintf(w, "orders of %s (client %s, %s-bound)\n", p.Subject, p.ClientID, p.Binding)
	})))
	mux.Handle("POST /orders", v.Middleware(write)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "order created by %s\n", resource.PrincipalFromContext(r.Context()).Subject)
	})))
	return mux, nil
}
