package grpcdpop_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"log"

	"golang.org/x/oauth2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/dpop/grpcdpop"
)

// A gRPC connection whose calls carry a DPoP-bound token and a fresh proof,
// answering nonce challenges. In a real client the token source is an
// oauth2.ReuseTokenSource over a client-credentials config whose HTTP
// client uses dpop.Transport with the same Prover.
func Example() {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	prover, err := dpop.NewProver(key, nil)
	if err != nil {
		log.Fatal(err)
	}
	c := &grpcdpop.Credentials{
		Prover: prover,
		Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "eyJ...", TokenType: "DPoP"}),
	}
	cc, err := grpc.NewClient("orders.example.test:443",
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})),
		grpc.WithPerRPCCredentials(c),
		grpc.WithUnaryInterceptor(c.UnaryClientInterceptor()),
		grpc.WithStreamInterceptor(c.StreamClientInterceptor()))
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	// Use cc with a generated client, e.g. orderspb.NewOrdersClient(cc).
}
