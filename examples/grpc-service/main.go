// Command grpc-service is a gRPC service whose calls accept only
// sender-constrained access tokens, and a client that calls it with either
// binding: DPoP-bound tokens (RFC 9449), a fresh proof per call, or tokens
// bound to the client's TLS certificate (RFC 8705). The service is the
// standard gRPC health service (grpc.health.v1.Health), so no code
// generation is needed; its Check answers with the caller in the "caller"
// response header metadata. Check needs scope "read".
//
// Its defaults work with the servers of the senderbound CLI on loopback
// and the files "senderbound cert issue" writes. From the repository root,
// make a CA, a server and a client certificate, and start an issuer over
// HTTPS that knows client "app" by its secret and client "orders-app" by
// its certificate:
//
//	export SENDERBOUND_CLIENT_SECRET_APP=example-secret-0123456789
//	go run ./cmd/senderbound ca create --out ca
//	go run ./cmd/senderbound cert issue --ca ca --cn localhost --ip 127.0.0.1 --server --out server
//	go run ./cmd/senderbound cert issue --ca ca --cn orders-app --client --out client
//	go run ./cmd/senderbound serve-issuer --addr 127.0.0.1:9443 --tls-cert server/cert.pem --tls-key server/key.pem \
//		--client-ca ca/ca.pem --client app --mtls-client orders-app:CN=orders-app &
//
// Serve on 127.0.0.1:8445, with keys discovered from the issuer's metadata
// (add -require-nonce to demand resource-server nonces):
//
//	go run ./examples/grpc-service serve -issuer https://127.0.0.1:9443 -ca ca/ca.pem &
//
// Call with a DPoP-bound token (client_secret_basic; the secret comes from
// CLIENT_SECRET), then with a certificate-bound token (tls_client_auth):
//
//	CLIENT_SECRET=$SENDERBOUND_CLIENT_SECRET_APP go run ./examples/grpc-service call -binding dpop \
//		-token-endpoint https://127.0.0.1:9443/token -ca ca/ca.pem
//	go run ./examples/grpc-service call -binding mtls -token-endpoint https://127.0.0.1:9443/token \
//		-client-id orders-app -ca ca/ca.pem
//
// Add -watch to call the server-streaming Watch, which this service
// offers to DPoP-bound tokens only. Interrupt (SIGINT) or SIGTERM stops
// the server gracefully.
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
	"syscall"

	"github.com/senderbound/senderbound/mtlsbound"
)

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: grpc-service serve|call [flags]")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
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
	fs.StringVar(&o.Issuer, "issuer", "http://127.0.0.1:9000", "trusted issuer identifier (exact)")
	fs.StringVar(&o.Audience, "audience", "https://resource.senderbound.test", "this API's identifier (token aud)")
	fs.StringVar(&o.PublicURL, "public-url", "", "public base URL; the DPoP htu is this URL followed by the full method name (default https://ADDR)")
	fs.BoolVar(&o.RequireNonce, "require-nonce", false, "demand a resource-server nonce in every DPoP proof")
	addr := fs.String("addr", "127.0.0.1:8445", "listen address")
	certFile := fs.String("tls-cert", "server/cert.pem", "server certificate (PEM), as cert issue --out server writes it")
	keyFile := fs.String("tls-key", "server/key.pem", "server key (PEM)")
	caFile := fs.String("ca", "", "PEM file of CAs trusted for the issuer's HTTPS; empty = system roots")
	_ = fs.Parse(args)
	var err error
	if o.Cert, err = tls.LoadX509KeyPair(*certFile, *keyFile); err != nil {
		return fmt.Errorf("%w (make one with: senderbound cert issue --ca ca --cn localhost --ip 127.0.0.1 --server --out server)", err)
	}
	if *caFile != "" {
		roots, err := loadRoots(*caFile)
		if err != nil {
			return err
		}
		o.HTTPClient = mtlsbound.NewClient(nil, roots)
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
	if o.PublicURL == "" {
		o.PublicURL = "https://" + lis.Addr().String()
	}
	log.Printf("serving grpc.health.v1.Health, listening on %s (issuer %s)", lis.Addr(), o.Issuer)
	if err := serve(ctx, lis, o); err != nil {
		return err
	}
	log.Print("shut down")
	return nil
}

func callMain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("call", flag.ExitOnError)
	var o clientOptions
	fs.StringVar(&o.Target, "target", "127.0.0.1:8445", "gRPC server host:port")
	fs.StringVar(&o.Binding, "binding", "dpop", "dpop or mtls")
	fs.StringVar(&o.TokenEndpoint, "token-endpoint", "http://127.0.0.1:9000/token", "token endpoint (for mtls, the mTLS alias if any)")
	fs.StringVar(&o.ClientID, "client-id", "app", "client_id (for dpop the secret comes from CLIENT_SECRET)")
	scope := fs.String("scope", "read", "space-separated scopes to request")
	certFile := fs.String("cert", "client/cert.pem", "mtls: client certificate (PEM), as cert issue --out client writes it")
	keyFile := fs.String("key", "client/key.pem", "mtls: client private key (PEM)")
	caFile := fs.String("ca", "", "PEM file of CAs trusted for the servers; empty = system roots")
	fs.BoolVar(&o.Watch, "watch", false, "call Watch (server streaming) instead of Check")
	n := fs.Int("n", 2, "number of calls")
	_ = fs.Parse(args)
	o.Scopes = strings.Fields(*scope)
	o.ClientSecret = os.Getenv("CLIENT_SECRET")
	if o.Binding == "mtls" {
		var err error
		if o.Cert, err = tls.LoadX509KeyPair(*certFile, *keyFile); err != nil {
			return fmt.Errorf("%w (make one with: senderbound cert issue --ca ca --cn %s --client --out client)", err, o.ClientID)
		}
	}
	if *caFile != "" {
		var err error
		if o.Roots, err = loadRoots(*caFile); err != nil {
			return err
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

// loadRoots reads the PEM certificates of file into a new pool.
func loadRoots(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificates", file)
	}
	return roots, nil
}
