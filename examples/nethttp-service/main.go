// Command nethttp-service is a plain net/http API whose routes accept only
// sender-constrained access tokens: DPoP-bound (RFC 9449) or bound to the
// TLS client certificate (RFC 8705). Keys are discovered from the issuer's
// metadata.
//
//	go run ./examples/nethttp-service -issuer https://as.example.com \
//		-audience https://api.example.com -public-url https://api.example.com \
//		-tls-cert server.pem -tls-key server-key.pem
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net/http"

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
	flag.StringVar(&o.Issuer, "issuer", "https://as.example.com", "trusted issuer identifier (exact)")
	flag.StringVar(&o.Audience, "audience", "https://api.example.com", "this API's identifier (token aud)")
	flag.StringVar(&o.PublicURL, "public-url", "https://api.example.com", "public base URL (DPoP htu)")
	addr := flag.String("addr", ":8443", "listen address")
	certFile := flag.String("tls-cert", "server.pem", "server certificate (PEM)")
	keyFile := flag.String("tls-key", "server-key.pem", "server key (PEM)")
	flag.Parse()
	h, err := newHandler(o)
	if err != nil {
		log.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		log.Fatal(err)
	}
	// Request (not require) client certificates, so both bindings work.
	srv := &http.Server{Addr: *addr, Handler: h, TLSConfig: mtlsbound.ServerTLSConfig(cert)}
	log.Fatal(srv.ListenAndServeTLS("", ""))
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
	read := resource.Policy{Scopes: []string{"orders:read"}}                                // DPoP or mTLS
	write := resource.Policy{Accept: resource.AcceptDPoP, Scopes: []string{"orders:write"}} // DPoP only
	mux := http.NewServeMux()
	mux.Handle("GET "+resource.MetadataPath, v.MetadataHandler(read, []string{"orders:read", "orders:write"}))
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
