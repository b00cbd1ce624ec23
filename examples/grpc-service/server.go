package main

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/resource"
	"github.com/senderbound/senderbound/resource/grpcresource"
)

type serverOptions struct {
	Issuer, Audience, PublicURL string
	Cert                        tls.Certificate // the server certificate
	RequireNonce                bool
	NonceSecret                 []byte       // with RequireNonce: the nonce key, 32 random bytes
	HTTPClient                  *http.Client // for discovery and JWKS; nil = 10 s timeout, system roots
	OnReject                    func(reason string)
}

// newServer returns a gRPC server for the health service whose calls are
// checked by the interceptors: Check takes DPoP- or certificate-bound
// tokens with scope read, Watch DPoP-bound ones only.
func newServer(o serverOptions) (*grpc.Server, error) {
	keys, err := resource.NewRemoteKeySet(resource.RemoteKeySetConfig{Issuer: o.Issuer, HTTPClient: o.HTTPClient})
	if err != nil {
		return nil, err
	}
	replay, err := replaycache.NewLRU(replaycache.Config{Capacity: 1 << 20}) // replaycache/redisstore for several instances
	if err != nil {
		return nil, err
	}
	dc := &resource.DPoPConfig{Algorithms: []string{"ES256", "EdDSA", "PS256"}, ReplayStore: replay}
	if o.RequireNonce {
		if dc.Nonces, err = dpop.NewNonces(dpop.NonceConfig{Secrets: [][]byte{o.NonceSecret}, Label: o.Audience}); err != nil {
			return nil, err
		}
	}
	v, err := resource.New(resource.Config{
		Algorithms: resource.DefaultAlgorithms(),
		Issuers:    []resource.Issuer{{Identifier: o.Issuer, Keys: keys}},
		Audience:   o.Audience,
		PublicURL:  o.PublicURL, // htu = PublicURL + "/grpc.health.v1.Health/Check"
		DPoP:       dc,
		OnReject:   o.OnReject,
	})
	if err != nil {
		return nil, err
	}
	read := []string{"read"}
	in, err := grpcresource.New(grpcresource.Config{
		Verifier: v,
		Default:  resource.Policy{Scopes: read}, // DPoP or mTLS
		Methods: map[string]resource.Policy{
			grpc_health_v1.Health_Watch_FullMethodName: {Accept: resource.AcceptDPoP, Scopes: read},
		},
	})
	if err != nil {
		return nil, err
	}
	s := grpc.NewServer(
		// Request (not require) client certificates, so both bindings work.
		grpc.Creds(credentials.NewTLS(mtlsbound.ServerTLSConfig(o.Cert))),
		grpc.UnaryInterceptor(in.Unary()),
		grpc.StreamInterceptor(in.Stream()))
	grpc_health_v1.RegisterHealthServer(s, health{})
	return s, nil
}

// serve runs the server on lis until ctx ends.
func serve(ctx context.Context, lis net.Listener, o serverOptions) error {
	s, err := newServer(o)
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		s.GracefulStop()
	}()
	return s.Serve(lis)
}

// health answers SERVING and names the caller, which the interceptors put
// in the context.
type health struct {
	grpc_health_v1.UnimplementedHealthServer
}

func caller(ctx context.Context) metadata.MD {
	p := resource.PrincipalFromContext(ctx)
	return metadata.Pairs("caller", p.ClientID+" ("+string(p.Binding)+"-bound)")
}

func (health) Check(ctx context.Context, _ *grpc_health_v1.HealthCheckRequest) (*grpc_health_v1.HealthCheckResponse, error) {
	if err := grpc.SetHeader(ctx, caller(ctx)); err != nil {
		return nil, err
	}
	return &grpc_health_v1.HealthCheckResponse{Status: grpc_health_v1.HealthCheckResponse_SERVING}, nil
}

// Watch sends the current status once and ends (a real service would keep
// the stream open and send changes).
func (health) Watch(_ *grpc_health_v1.HealthCheckRequest, stream grpc_health_v1.Health_WatchServer) error {
	if err := stream.SetHeader(caller(stream.Context())); err != nil {
		return err
	}
	return stream.Send(&grpc_health_v1.HealthCheckResponse{Status: grpc_health_v1.HealthCheckResponse_SERVING})
}
