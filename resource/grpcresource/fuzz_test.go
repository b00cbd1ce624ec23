package grpcresource_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/senderbound/senderbound/resource"
	"github.com/senderbound/senderbound/resource/grpcresource"
	"github.com/senderbound/senderbound/resource/internal/restest"
)

// FuzzUnary sends hostile authorization, dpop and :authority metadata and
// method names through the unary interceptor over TLS: no panic; either
// the handler runs with a principal or the call is refused with one of the
// four codes, a message that does not echo the input, and challenges that
// parse.
func FuzzUnary(f *testing.F) {
	e := restest.NewEnv(f, restest.Options{DPoP: true, Nonces: true, Mod: direct})
	in, err := grpcresource.New(grpcresource.Config{Verifier: e.Verifier, Default: resource.Policy{Accept: resource.AcceptAny}})
	if err != nil {
		f.Fatal(err)
	}
	good := e.Token(f, nil)
	f.Add("Bearer "+good, "", "rs.example.test", "/test.Routes/Any")
	f.Add("DPoP "+restest.K1Token(f, e), "eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.c2ln", "rs.example.test:443", "/test.Routes/Any")
	f.Add("Bearer a.b.c", "", "", "/")
	f.Add("DPoP "+good[:len(good)/2], "x\r\ny", "rs.example.test/evil?#", "/a/b/c")
	unary := in.Unary()
	f.Fuzz(func(t *testing.T, authz, proof, authority, method string) {
		md := metadata.MD{}
		for k, v := range map[string]string{"authorization": authz, "dpop": proof, ":authority": authority} {
			if v != "" {
				md[k] = []string{v}
			}
		}
		ctx := callContext(nil)
		ctx = metadata.NewIncomingContext(ctx, md)
		ran := false
		_, err := unary(ctx, nil, &grpc.UnaryServerInfo{FullMethod: method}, func(ctx context.Context, _ any) (any, error) {
			ran = true
			if resource.PrincipalFromContext(ctx) == nil {
				t.Fatal("handler without principal")
			}
			return nil, nil
		})
		if err == nil {
			if !ran {
				t.Fatal("no error and no handler")
			}
			return
		}
		if ran {
			t.Fatal("handler ran on a refused call")
		}
		st := status.Convert(err)
		switch st.Code() {
		case codes.InvalidArgument, codes.Unauthenticated, codes.PermissionDenied, codes.Unavailable:
		default:
			t.Fatalf("code %v", st.Code())
		}
		for _, in := range []string{authz, proof, authority, method} {
			if len(in) >= 8 && strings.Contains(st.Message(), in) {
				t.Fatalf("message %q echoes the input", st.Message())
			}
		}
	})
}
