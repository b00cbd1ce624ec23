package grpcresource_test

import (
	"crypto/tls"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/oauth2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/senderbound/senderbound/dpop/grpcdpop"
	"github.com/senderbound/senderbound/mtlsbound/certs"
	"github.com/senderbound/senderbound/mtlsbound/grpcmtls"
	"github.com/senderbound/senderbound/resource"
	"github.com/senderbound/senderbound/resource/internal/restest"
)

// rejections counts the server's rejections by reason.
type rejections struct {
	mu sync.Mutex
	m  map[string]int
}

func (r *rejections) add(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]int{}
	}
	r.m[reason]++
}

func (r *rejections) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.m {
		n += c
	}
	return n
}

func (r *rejections) get(reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[reason]
}

// countingEnv builds a direct Env whose verifier counts its rejections.
func countingEnv(t testing.TB, o restest.Options) (*restest.Env, *rejections) {
	rej := &rejections{}
	o.Mod = func(e *restest.Env, c *resource.Config) {
		direct(e, c)
		c.OnReject = rej.add
	}
	return restest.NewEnv(t, o), rej
}

// countingSource is a static token source that counts its calls.
type countingSource struct {
	tok *oauth2.Token
	n   atomic.Int64
}

func (s *countingSource) Token() (*oauth2.Token, error) {
	s.n.Add(1)
	return s.tok, nil
}

func dpopSource(t testing.TB, e *restest.Env) *countingSource {
	return &countingSource{tok: &oauth2.Token{AccessToken: restest.K1Token(t, e), TokenType: "DPoP"}}
}

// dialDPoP connects over TLS with c as per-RPC credentials, with its
// interceptors when interceptors is set.
func dialDPoP(t testing.TB, e *restest.Env, addr string, c *grpcdpop.Credentials, interceptors bool) *grpc.ClientConn {
	opts := []grpc.DialOption{grpc.WithPerRPCCredentials(c)}
	if interceptors {
		opts = append(opts, grpc.WithUnaryInterceptor(c.UnaryClientInterceptor()), grpc.WithStreamInterceptor(c.StreamClientInterceptor()))
	}
	return dial(t, e, addr, nil, false, opts...)
}

func wantOK(t testing.TB, a answer, b resource.Binding) {
	t.Helper()
	if a.err != nil {
		t.Fatalf("call failed: %v", a.err)
	}
	for _, part := range strings.Split(a.body, "|") {
		if !strings.HasSuffix(part, "binding="+string(b)) {
			t.Fatalf("reply %q, want binding %s", a.body, b)
		}
	}
}

// TestDPoPCredentials calls through grpcdpop.Credentials: a fresh proof per
// call (the replay store refuses any reuse), unary and streaming, each
// method its own htu.
func TestDPoPCredentials(t *testing.T) {
	t.Parallel()
	e, rej := countingEnv(t, restest.Options{DPoP: true})
	tg := startServers(t, e, e.Verifier)
	c := &grpcdpop.Credentials{Prover: e.K1, Source: dpopSource(t, e)}
	cc := dialDPoP(t, e, tg.TLS, c, true)
	for range 3 {
		for _, m := range []string{"Any", "DPoP", "Stream"} {
			wantOK(t, invoke(t.Context(), cc, m), resource.BindingDPoP)
		}
	}
	if n := rej.total(); n != 0 {
		t.Fatalf("%d rejections (%v)", n, rej.m)
	}
}

// TestDPoPNonceRetry: against a server that requires nonces, the unary
// interceptor answers the first use_dpop_nonce challenge by retrying once
// with the new nonce and later calls carry the learned nonce; without the
// interceptor the challenge reaches the caller; a stream is not retried
// but its refusal teaches the nonce to the next call.
func TestDPoPNonceRetry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		interceptors bool
		calls        []string
		wantCodes    []codes.Code
		wantNonceReq int // use_dpop_nonce refusals in all
	}{
		{"unary retried once, then the learned nonce", true, []string{"Any", "Any", "Stream"}, []codes.Code{codes.OK, codes.OK, codes.OK}, 1},
		{"stream refused, the next stream uses the nonce", true, []string{"Stream", "Stream", "Any"}, []codes.Code{codes.Unauthenticated, codes.OK, codes.OK}, 1},
		{"without the interceptors the challenge reaches the caller", false, []string{"Any", "Any"}, []codes.Code{codes.Unauthenticated, codes.Unauthenticated}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, rej := countingEnv(t, restest.Options{DPoP: true, Nonces: true})
			tg := startServers(t, e, e.Verifier)
			c := &grpcdpop.Credentials{Prover: e.K1, Source: dpopSource(t, e)}
			cc := dialDPoP(t, e, tg.TLS, c, tc.interceptors)
			for i, m := range tc.calls {
				a := invoke(t.Context(), cc, m)
				if got := status.Code(a.err); got != tc.wantCodes[i] {
					t.Fatalf("call %d (%s): %v, want %v", i, m, a.err, tc.wantCodes[i])
				}
				if a.err == nil {
					wantOK(t, a, resource.BindingDPoP)
				}
			}
			if got := rej.get("nonce_required"); got != tc.wantNonceReq || rej.total() != got {
				t.Fatalf("rejections %v, want %d nonce_required only", rej.m, tc.wantNonceReq)
			}
		})
	}
}

// TestClientRefusesToSend: the client credentials never send a token on a
// connection without transport security, nor a token of the wrong type;
// the server sees nothing.
func TestClientRefusesToSend(t *testing.T) {
	t.Parallel()
	e, rej := countingEnv(t, restest.Options{DPoP: true})
	tg := startServers(t, e, e.Verifier)
	bearer := &countingSource{tok: &oauth2.Token{AccessToken: e.Token(t, nil), TokenType: "Bearer"}}
	dp := dpopSource(t, e)
	tests := []struct {
		name   string
		creds  credentials.PerRPCCredentials
		plain  bool
		source *countingSource
		// asDial installs the credentials on the connection instead of
		// the call.
		asDial bool
	}{
		{"grpcdpop on a plain connection (dial option)", &grpcdpop.Credentials{Prover: e.K1, Source: dp}, true, dp, true},
		{"grpcdpop on a plain connection (call option)", &grpcdpop.Credentials{Prover: e.K1, Source: dp}, true, dp, false},
		{"grpcmtls on a plain connection (dial option)", grpcmtls.Credentials{Source: bearer}, true, bearer, true},
		{"grpcmtls on a plain connection (call option)", grpcmtls.Credentials{Source: bearer}, true, bearer, false},
		{"grpcdpop with a Bearer token", &grpcdpop.Credentials{Prover: e.K1, Source: bearer}, false, nil, true},
		{"grpcmtls with a DPoP token", grpcmtls.Credentials{Source: dp}, false, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Not parallel: the source and rejection counts are shared.
			before := int64(0)
			if tc.source != nil {
				before = tc.source.n.Load()
			}
			addr := tg.TLS
			if tc.plain {
				addr = tg.Plain
			}
			tc2 := &tls.Config{RootCAs: e.CA.Pool(), MinVersion: tls.VersionTLS12}
			tcreds := credentials.NewTLS(tc2)
			if tc.plain {
				tcreds = insecure.NewCredentials()
			}
			opts := []grpc.DialOption{grpc.WithTransportCredentials(tcreds), grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{}))}
			var callOpts []grpc.CallOption
			if tc.asDial {
				opts = append(opts, grpc.WithPerRPCCredentials(tc.creds))
			} else {
				callOpts = append(callOpts, grpc.PerRPCCredentials(tc.creds))
			}
			cc, err := grpc.NewClient(addr, opts...)
			if err != nil {
				if !tc.plain {
					t.Fatal(err)
				}
				return // refused at dial: nothing can be sent
			}
			t.Cleanup(func() { _ = cc.Close() })
			in, out := []byte("x"), []byte(nil)
			err = cc.Invoke(t.Context(), fullMethod("Any"), &in, &out, callOpts...)
			if err == nil {
				t.Fatal("call succeeded")
			}
			if status.Code(err) != codes.Unauthenticated {
				t.Fatalf("code %v, want Unauthenticated (%v)", status.Code(err), err)
			}
			if tc.source != nil && tc.source.n.Load() != before {
				t.Fatal("the token source was asked for a token to send in the clear")
			}
			if n := rej.total(); n != 0 {
				t.Fatalf("the server saw the call: rejections %v", rej.m)
			}
		})
	}
}

// TestMTLSCredentials calls with grpcmtls: TLS credentials presenting the
// client certificate (CA-issued or self-signed) and the certificate-bound
// token under Bearer.
func TestMTLSCredentials(t *testing.T) {
	t.Parallel()
	e, _ := countingEnv(t, restest.Options{DPoP: true})
	tg := startServers(t, e, e.Verifier)
	tests := []struct {
		name    string
		present func(*restest.Env) *certs.Leaf
		boundTo func(*restest.Env) *certs.Leaf
		want    codes.Code
	}{
		{"MTLS-CB-09/CA-issued certificate", c1, c1, codes.OK},
		{"self-signed certificate", s1, s1, codes.OK},
		{"ADV-83/another certificate", c2, c1, codes.Unauthenticated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := &countingSource{tok: &oauth2.Token{AccessToken: certBound(tc.boundTo)(t, e), TokenType: "bearer"}}
			cc, err := grpc.NewClient(tg.TLS,
				grpc.WithTransportCredentials(grpcmtls.TransportCredentials(tc.present(e).TLSCertificate(), e.CA.Pool())),
				grpc.WithPerRPCCredentials(grpcmtls.Credentials{Source: src}),
				grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cc.Close() })
			for _, m := range []string{"Any", "MTLS", "Stream"} {
				a := invoke(t.Context(), cc, m)
				if got := status.Code(a.err); got != tc.want {
					t.Fatalf("%s: %v, want %v", m, a.err, tc.want)
				}
				if tc.want == codes.OK {
					wantOK(t, a, resource.BindingMTLS)
				}
			}
		})
	}
}
