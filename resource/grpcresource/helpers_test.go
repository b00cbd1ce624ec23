package grpcresource_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/mtlsbound/certs"
	"github.com/senderbound/senderbound/resource"
	"github.com/senderbound/senderbound/resource/grpcresource"
	"github.com/senderbound/senderbound/resource/internal/restest"
)

// The test service: one unary method per restest route and one
// server-streaming method, registered by hand with a codec that passes
// bytes through, so no generated code is needed.
const service = "test.Routes"

// routeMethods maps the unary method names to the restest route paths.
var routeMethods = map[string]string{
	"Any": "/any", "Bound": "/bound", "DPoP": "/dpop", "MTLS": "/mtls", "Write": "/write", "Admin": "/admin",
}

// fullMethod returns the full method name of name.
func fullMethod(name string) string { return "/" + service + "/" + name }

// rawCodec marshals *[]byte as is.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, errors.New("rawCodec: not *[]byte")
	}
	return *b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return errors.New("rawCodec: not *[]byte")
	}
	*b = append((*b)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "raw" }

// reply is what the handlers answer: restest.OKBody of the principal. A
// handler that runs without a principal fails the call.
func reply(ctx context.Context) (*[]byte, error) {
	p := resource.PrincipalFromContext(ctx)
	if p == nil {
		return nil, status.Error(codes.Internal, "handler ran without a principal")
	}
	b := []byte(restest.OKBody(p))
	return &b, nil
}

func serviceDesc() *grpc.ServiceDesc {
	sd := &grpc.ServiceDesc{ServiceName: service, HandlerType: (*any)(nil)}
	for name := range routeMethods {
		sd.Methods = append(sd.Methods, grpc.MethodDesc{
			MethodName: name,
			Handler: func(_ any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
				var in []byte
				if err := dec(&in); err != nil {
					return nil, err
				}
				h := func(ctx context.Context, _ any) (any, error) { return reply(ctx) }
				if ic == nil {
					return h(ctx, &in)
				}
				return ic(ctx, &in, &grpc.UnaryServerInfo{FullMethod: fullMethod(name)}, h)
			},
		})
	}
	sd.Streams = []grpc.StreamDesc{{
		StreamName:    "Stream",
		ServerStreams: true,
		Handler: func(_ any, ss grpc.ServerStream) error {
			var in []byte
			if err := ss.RecvMsg(&in); err != nil {
				return err
			}
			for range 2 {
				out, err := reply(ss.Context())
				if err != nil {
					return err
				}
				if err := ss.SendMsg(out); err != nil {
					return err
				}
			}
			return nil
		},
	}}
	return sd
}

// policies maps the test methods to the restest route policies; Stream
// gets the default, AcceptAny.
func policies() map[string]resource.Policy {
	m := map[string]resource.Policy{}
	for _, rt := range restest.Routes() {
		for name, path := range routeMethods {
			if path == rt.Path {
				m[fullMethod(name)] = rt.Policy
			}
		}
	}
	return m
}

// targets are the running test servers.
type targets struct {
	TLS   string // TLS, client certificate requested
	Plain string // no TLS
}

// startServers serves the test service through the interceptors of v on
// two loopback listeners, TLS (with e.Server's certificate, requesting a
// client certificate) and plain.
func startServers(t testing.TB, e *restest.Env, v *resource.Verifier) targets {
	t.Helper()
	methods := policies()
	if v.ValidatePolicy(resource.Policy{Accept: resource.AcceptDPoP}) != nil {
		delete(methods, fullMethod("DPoP"))
	}
	in, err := grpcresource.New(grpcresource.Config{Verifier: v, Default: resource.Policy{Accept: resource.AcceptAny}, Methods: methods})
	if err != nil {
		t.Fatal(err)
	}
	serve := func(creds credentials.TransportCredentials) string {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := grpc.NewServer(grpc.Creds(creds), grpc.ForceServerCodec(rawCodec{}),
			grpc.UnaryInterceptor(in.Unary()), grpc.StreamInterceptor(in.Stream()))
		s.RegisterService(serviceDesc(), nil)
		go func() { _ = s.Serve(lis) }()
		t.Cleanup(s.Stop)
		return lis.Addr().String()
	}
	return targets{
		TLS:   serve(credentials.NewTLS(mtlsbound.ServerTLSConfig(e.Server.TLSCertificate()))),
		Plain: serve(insecure.NewCredentials()),
	}
}

// dial connects to addr, over TLS trusting e's CA and presenting leaf
// (nil presents none), or in plain text when plain is set.
func dial(t testing.TB, e *restest.Env, addr string, leaf *certs.Leaf, plain bool, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	creds := insecure.NewCredentials()
	if !plain {
		tc := &tls.Config{RootCAs: e.CA.Pool(), MinVersion: tls.VersionTLS12}
		if leaf != nil {
			tc.Certificates = []tls.Certificate{leaf.TLSCertificate()}
		}
		creds = credentials.NewTLS(tc)
	}
	cc, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(creds), grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{}))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// answer is the outcome of one call.
type answer struct {
	body    string // the reply (unary) or the replies joined by "|" (stream)
	err     error
	header  metadata.MD
	trailer metadata.MD
}

// invoke calls method (a unary method name, or "Stream") on cc with
// the outgoing metadata pairs kv.
func invoke(ctx context.Context, cc *grpc.ClientConn, method string, kv ...string) answer {
	ctx = metadata.AppendToOutgoingContext(ctx, kv...)
	var a answer
	in := []byte("hello")
	if method != "Stream" {
		var out []byte
		a.err = cc.Invoke(ctx, fullMethod(method), &in, &out, grpc.Header(&a.header), grpc.Trailer(&a.trailer))
		a.body = string(out)
		return a
	}
	cs, err := cc.NewStream(ctx, &grpc.StreamDesc{StreamName: "Stream", ServerStreams: true}, fullMethod(method))
	if err != nil {
		a.err = err
		return a
	}
	if err := cs.SendMsg(&in); err != nil {
		a.err = err
		return a
	}
	_ = cs.CloseSend()
	var parts []string
	for {
		var out []byte
		if err := cs.RecvMsg(&out); err != nil {
			if err != io.EOF {
				a.err = err
			}
			break
		}
		parts = append(parts, string(out))
	}
	a.header, _ = cs.Header()
	a.trailer = cs.Trailer()
	a.body = strings.Join(parts, "|")
	return a
}
