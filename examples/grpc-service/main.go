// Command grpc-service is a gRPC service whose calls accept only
// sender-constrained access tokens, and a client that calls it with either
// binding: DPoP-bound tokens (RFC 9449), a fresh proof per call, or tokens
// bound to the client's TLS certificate (RFC 8705). The service is the
// standard gRPC health service (grpc.health.v1.Health), so no code
// generation is needed; its Check answers with the caller in the "caller"
// response header metadata.
//
// Serve, with keys discovered from the issuer's metadata (add -require-nonce
// to demand resource-server nonces):
//
//	go run ./examples/grpc-service serve -issuer https://as.example.com \
//		-audience https://api.example.com -public-url https://api.example.com:8443 \
//		-addr :8443 -tls-cert server.pem -tls-key server-key.pem
//
// Call with a DPoP-bound token (client_secret_basic; the secret comes from
// CLIENT_SECRET):
//
//	go run ./examples/grpc-service call -binding dpop -target api.example.com:8443 \
//		-token-endpoint https://as.example.com/token -client-id service-a
//
// Call with a certificate-bound token (tls_client_auth):
//
//	go run ./examples/grpc-service call -binding mtls -target api.example.com:8443 \
//		-token-endpoint https://mtls.as.example.com/token -client-id orders-app \
//		-cert cert.pem -key key.pem
//
// Add -watch to call the server-streaming Watch, which this service
// offers to DPoP-bound tokens only.
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
)

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: grpc-service serve|call [flags]")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	switch os.Args[1] {
	case "serve":
		err = serveMain(ctx, os.Args[2:])
	case "call":
		err = callMain(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q; want serve or call", os.Args[1])
	}
	if err != nil {
		log.Fatal(err)
	}
}

func serveMain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	var o serverOptions
	fs.StringVar(&o.Issuer, "issuer", "https://as.example.com", "trusted issuer identifier (exact)")
	fs.StringVar(&o.Audience, "audience", "https://api.example.com", "this API's identifier (token aud)")
	fs.StringVar(&o.PublicURL, "public-url", "https://api.example.com:8443", "public base URL; the DPoP htu is this URL followed by the full method name")
	fs.BoolVar(&o.RequireNonce, "require-nonce", false, "demand a resource-server nonce in every DPoP proof")
	addr := fs.String("addr", ":8443", "listen address")
	certFile := fs.String("tls-cert", "server.pem", "server certificate (PEM)")
	keyFile := fs.String("tls-key", "server-key.pem", "server key (PEM)")
	_ = fs.Parse(args)
	var err error
	if o.Cert, err = tls.LoadX509KeyPair(*certFile, *keyFile); err != nil {
		return err
	}
	if o.RequireNonce {
		o.NonceSecret = make([]byte, 32)
		if _, err := rand.Read(o.NonceSecret); err != nil {
			return err
		}
	}
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	log.Printf("serving grpc.health.v1.Health on %s", lis.Addr())
	return serve(ctx, lis, o)
}

func callMain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("call", flag.ExitOnError)
	var o clientOptions
	fs.StringVar(&o.Target, "target", "api.example.com:8443", "gRPC server host:port")
	fs.StringVar(&o.Binding, "binding", "dpop", "dpop or mtls")
	fs.StringVar(&o.TokenEndpoint, "token-endpoint", "https://as.example.com/token", "token endpoint (for mtls, the mTLS alias if any)")
	fs.StringVar(&o.ClientID, "client-id", "service-a", "client_id (for dpop the secret comes from CLIENT_SECRET)")
	scope := fs.String("scope", "orders:read", "space-separated scopes to request")
	certFile := fs.String("cert", "cert.pem", "mtls: client certificate (PEM)")
	keyFile := fs.String("key", "key.pem", "mtls: client private key (PEM)")
	caFile := fs.String("ca", "", "PEM file of CAs trusted for the servers; empty = system roots")
	fs.BoolVar(&o.Watch, "watch", false, "call Watch (server streaming) instead of Check")
	n := fs.Int("n", 2, "number of calls")
	_ = fs.Parse(args)
	o.Scopes = strings.Fields(*scope)
	o.ClientSecret = os.Getenv("CLIENT_SECRET")
	if o.Binding == "mtls" {
		var err error
		if o.Cert, err = tls.LoadX509KeyPair(*certFile, *keyFile); err != nil {
			return err
		}
	}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return err
		}
		if o.Roots = x509.NewCertPool(); !o.Roots.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s: no PEM certificates", *caFile)
		}
	}
	cc, err := dial(ctx, o)
	if err != nil {
		return err
	}
	defer cc.Close()
	for range *n {
		out, err := call(ctx, cc, o.Watch)
		if err != nil {
			return err
		}
		fmt.Println(out)
	}
	return nil
}
