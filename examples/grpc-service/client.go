package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/dpop/grpcdpop"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/mtlsbound/grpcmtls"
)

type clientOptions struct {
	Target                                string // host:port of the gRPC server
	Binding                               string // "dpop" or "mtls"
	TokenEndpoint, ClientID, ClientSecret string
	Scopes                                []string
	Key                                   crypto.Signer   // dpop: the proof key; nil = a fresh P-256 key
	Cert                                  tls.Certificate // mtls: the client certificate and its key
	Roots                                 *x509.CertPool  // trusted server CAs; nil = system roots
	Watch                                 bool
}

// dial returns a connection to o.Target whose calls carry a token obtained
// with the client credentials grant, bound to a DPoP key or to the client
// certificate. Tokens are cached and renewed shortly before they expire;
// ctx is used for those token requests.
func dial(ctx context.Context, o clientOptions) (*grpc.ClientConn, error) {
	switch o.Binding {
	case "dpop":
		key := o.Key
		if key == nil {
			k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				return nil, err
			}
			key = k
		}
		prover, err := dpop.NewProver(key, nil)
		if err != nil {
			return nil, err
		}
		// Token requests carry a proof of the same key (dpop.Transport),
		// so the issuer binds the token to it.
		hc := mtlsbound.NewClient(nil, o.Roots)
		hc.Transport = &dpop.Transport{Base: hc.Transport, Prover: prover}
		cc := clientcredentials.Config{ClientID: o.ClientID, ClientSecret: o.ClientSecret, TokenURL: o.TokenEndpoint, Scopes: o.Scopes, AuthStyle: oauth2.AuthStyleInHeader}
		c := &grpcdpop.Credentials{Prover: prover, Source: cc.TokenSource(context.WithValue(ctx, oauth2.HTTPClient, hc))}
		return grpc.NewClient(o.Target,
			grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: o.Roots, MinVersion: tls.VersionTLS12})),
			// A fresh proof per call; refuses tokens that are not DPoP-bound.
			grpc.WithPerRPCCredentials(c),
			// Keep the server's nonce; retry a unary call once on use_dpop_nonce.
			grpc.WithUnaryInterceptor(c.UnaryClientInterceptor()),
			grpc.WithStreamInterceptor(c.StreamClientInterceptor()))
	case "mtls":
		// The same certificate authenticates the client at the token
		// endpoint (tls_client_auth) and on the gRPC connection.
		hc := mtlsbound.NewClient(&o.Cert, o.Roots)
		cc := clientcredentials.Config{ClientID: o.ClientID, TokenURL: o.TokenEndpoint, Scopes: o.Scopes, AuthStyle: oauth2.AuthStyleInParams}
		return grpc.NewClient(o.Target,
			grpc.WithTransportCredentials(grpcmtls.TransportCredentials(o.Cert, o.Roots)),
			grpc.WithPerRPCCredentials(grpcmtls.Credentials{Source: cc.TokenSource(context.WithValue(ctx, oauth2.HTTPClient, hc))}))
	default:
		return nil, fmt.Errorf("unknown binding %q; want dpop or mtls", o.Binding)
	}
}

// call calls Check (or Watch) and describes the answer, for example
// "SERVING, caller service-a (dpop-bound)".
func call(ctx context.Context, cc *grpc.ClientConn, watch bool) (string, error) {
	h := grpc_health_v1.NewHealthClient(cc)
	if !watch {
		var md metadata.MD
		resp, err := h.Check(ctx, &grpc_health_v1.HealthCheckRequest{}, grpc.Header(&md))
		if err != nil {
			return "", err
		}
		return describe(resp, md), nil
	}
	stream, err := h.Watch(ctx, &grpc_health_v1.HealthCheckRequest{})
	if err != nil {
		return "", err
	}
	var out []string
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return strings.Join(out, "; "), nil
		}
		if err != nil {
			return "", err
		}
		md, _ := stream.Header()
		out = append(out, describe(resp, md))
	}
}

func describe(resp *grpc_health_v1.HealthCheckResponse, md metadata.MD) string {
	return resp.GetStatus().String() + ", caller " + strings.Join(md.Get("caller"), ",")
}
