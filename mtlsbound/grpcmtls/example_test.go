package grpcmtls_test

import (
	"log"

	"golang.org/x/oauth2"
	"google.golang.org/grpc"

	"github.com/senderbound/senderbound/mtlsbound/certs"
	"github.com/senderbound/senderbound/mtlsbound/grpcmtls"
)

// A gRPC connection that presents a self-signed client certificate
// (RFC 8705 §2.2) and sends the token bound to it. In a real client the
// token source is an oauth2.ReuseTokenSource over a client-credentials
// config whose HTTP client presents the same certificate
// (mtlsbound.NewClient).
func Example() {
	leaf, err := certs.SelfSigned(certs.Options{CommonName: "orders-client", Client: true})
	if err != nil {
		log.Fatal(err)
	}
	cc, err := grpc.NewClient("orders.example.test:443",
		grpc.WithTransportCredentials(grpcmtls.TransportCredentials(leaf.TLSCertificate(), nil)),
		grpc.WithPerRPCCredentials(grpcmtls.Credentials{
			Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "eyJ...", TokenType: "Bearer"}),
		}))
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	// Use cc with a generated client, e.g. orderspb.NewOrdersClient(cc).
}
