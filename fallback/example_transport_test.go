package fallback_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"log"
	"log/slog"
	"net/http"
	"time"

	"github.com/sony/gobreaker/v2"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/fallback"
)

// ExampleTransport wires a client that calls a resource server with
// DPoP-bound tokens from golang.org/x/oauth2 and, while the issuer is
// down, with its fallback certificate in signed requests. The certificate
// (obtained earlier with "senderbound cert request", for the same key) is
// renewed in the background a month before it expires.
func ExampleTransport() {
	const issuerURL = "https://as.example.test"
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // the client's key, loaded from a file in practice
	var chain []*x509.Certificate                             // its fallback certificate and CA, from a file in practice

	// The certificate: renewed with the client's own authentication.
	certs, err := fallback.NewCertificateSource(fallback.CertificateSourceConfig{
		Endpoint:     issuerURL + "/certificate",
		Key:          key,
		Chain:        chain,
		ClientID:     "billing",
		ClientSecret: "from a secret store",
		RenewBefore:  30 * 24 * time.Hour,
	})
	if err != nil {
		log.Fatal(err)
	}
	certs.Start(ctx)
	defer certs.Close()

	// The token path: client credentials, every request with a DPoP proof.
	prover, _ := dpop.NewProver(key, nil)
	signer := &dpop.Transport{Prover: prover}
	tokenClient := &http.Client{Transport: signer, Timeout: 10 * time.Second}
	cc := clientcredentials.Config{
		ClientID: "billing", ClientSecret: "from a secret store",
		TokenURL: issuerURL + "/token", AuthStyle: oauth2.AuthStyleInHeader,
	}
	tokens := &oauth2.Transport{
		Source: cc.TokenSource(context.WithValue(ctx, oauth2.HTTPClient, tokenClient)),
		Base:   signer,
	}

	// The switch: three token-endpoint failures in a row open the circuit;
	// the issuer's metadata is probed every 30 s until it answers.
	t, err := fallback.NewTransport(fallback.TransportConfig{
		Tokens:   tokens,
		Fallback: certs.SignedTransport(nil, nil),
		Probe:    fallback.ProbeURL(&http.Client{Timeout: 5 * time.Second}, issuerURL+"/.well-known/oauth-authorization-server"),
		OnStateChange: func(from, to gobreaker.State) {
			// Count the outage in metrics; it must not block.
		},
		Logger: slog.Default(),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	client := &http.Client{Transport: t, Timeout: 30 * time.Second}
	_ = client // client.Get("https://api.example.test/invoices"), as usual
}
