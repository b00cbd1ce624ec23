package grpcresource_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/resource"
	"github.com/senderbound/senderbound/resource/grpcresource"
	"github.com/senderbound/senderbound/resource/internal/restest"
)

type ctxKey struct{}

// TestRequestShape: the request a call becomes carries exactly the call's
// method, target, credentials, transport and context, and nothing else.
func TestRequestShape(t *testing.T) {
	t.Parallel()
	state := tls.ConnectionState{Version: tls.VersionTLS13, HandshakeComplete: true}
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242}
	md := metadata.MD{
		":authority":    {"rs.example.test:8443"},
		"authorization": {"DPoP tok"},
		"dpop":          {"p1", "p2"},
		"forwarded":     {"for=10.0.0.1"},
		"client-cert":   {":AAAA:"},
	}
	tests := []struct {
		name   string
		peer   *peer.Peer
		scheme string
		tls    bool
		remote string
	}{
		{name: "TLS", peer: &peer.Peer{Addr: addr, AuthInfo: credentials.TLSInfo{State: state}}, scheme: "https", tls: true, remote: "127.0.0.1:4242"},
		{name: "plaintext", peer: &peer.Peer{Addr: addr}, scheme: "http", remote: "127.0.0.1:4242"},
		{name: "no peer", scheme: "http"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.WithValue(metadata.NewIncomingContext(context.Background(), md), ctxKey{}, "v")
			if tc.peer != nil {
				ctx = peer.NewContext(ctx, tc.peer)
			}
			r := grpcresource.Request(ctx, "/orders.v1.Orders/Get")
			switch {
			case r.Method != http.MethodPost || r.Proto != "HTTP/2.0" || r.ProtoMajor != 2 || r.ProtoMinor != 0:
				t.Fatalf("method %s proto %s %d.%d", r.Method, r.Proto, r.ProtoMajor, r.ProtoMinor)
			case r.URL.String() != tc.scheme+"://rs.example.test:8443/orders.v1.Orders/Get" || r.Host != "rs.example.test:8443" || r.RequestURI != "/orders.v1.Orders/Get":
				t.Fatalf("target %s host %s uri %s", r.URL, r.Host, r.RequestURI)
			case r.Body != http.NoBody || r.GetBody != nil || r.ContentLength != 0:
				t.Fatal("request has a body")
			case r.Context().Value(ctxKey{}) != "v":
				t.Fatal("context not the call's")
			case (r.TLS != nil) != tc.tls || tc.tls && (r.TLS.Version != tls.VersionTLS13 || !r.TLS.HandshakeComplete):
				t.Fatalf("TLS %+v", r.TLS)
			case r.RemoteAddr != tc.remote:
				t.Fatalf("remote %q", r.RemoteAddr)
			}
			if len(r.Header) != 2 || !slices.Equal(r.Header.Values("Authorization"), []string{"DPoP tok"}) || !slices.Equal(r.Header.Values("DPoP"), []string{"p1", "p2"}) {
				t.Fatalf("header %v", r.Header)
			}
		})
	}
}

// TestInterceptorConcurrentCalls: calls authenticated at once never see
// each other's credentials (the interceptor reuses request parts).
func TestInterceptorConcurrentCalls(t *testing.T) {
	t.Parallel()
	e := restest.NewEnv(t, restest.Options{DPoP: true, Mod: direct})
	in, err := grpcresource.New(grpcresource.Config{Verifier: e.Verifier, Default: resource.Policy{Accept: resource.AcceptAny}})
	if err != nil {
		t.Fatal(err)
	}
	unary := in.Unary()
	info := &grpc.UnaryServerInfo{FullMethod: fullMethod("Any")}
	tok := restest.K1Token(t, e)
	htu := "https://" + benchAuthority + fullMethod("Any")
	const workers, calls = 8, 16
	good := make([][]context.Context, workers)
	for w := range good {
		for range calls {
			proof, err := e.K1.Proof("POST", htu, dpop.ProofOptions{AccessToken: tok})
			if err != nil {
				t.Fatal(err)
			}
			good[w] = append(good[w], callContext(nil, "authorization", "DPoP "+tok, "dpop", proof))
		}
	}
	bad := callContext(nil, "authorization", "Bearer not-a-token")
	var wg sync.WaitGroup
	errs := make(chan error, workers*calls*2)
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				var got *resource.Principal
				_, err := unary(good[w][i], nil, info, func(ctx context.Context, _ any) (any, error) {
					got = resource.PrincipalFromContext(ctx)
					return nil, nil
				})
				if err != nil || got == nil || got.Binding != resource.BindingDPoP {
					errs <- fmt.Errorf("good call refused or unbound: %v", err)
				}
				if _, err := unary(bad, nil, info, func(context.Context, any) (any, error) { return nil, nil }); status.Code(err) != codes.Unauthenticated {
					errs <- fmt.Errorf("bad call: %v", err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
