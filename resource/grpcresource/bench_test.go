package grpcresource_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"net"
	"runtime"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/internal/benchratio"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/resource"
	"github.com/senderbound/senderbound/resource/grpcresource"
	"github.com/senderbound/senderbound/resource/internal/restest"
)

// p256 is one raw ECDSA P-256 verification, the floor the ratios are
// stated against.
type p256 struct {
	pub *ecdsa.PublicKey
	d   [32]byte
	sig []byte
}

func newP256() p256 {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	d := sha256.Sum256([]byte("benchmark"))
	sig, _ := ecdsa.SignASN1(rand.Reader, k, d[:])
	return p256{&k.PublicKey, d, sig}
}

func (p p256) verify() bool { return ecdsa.VerifyASN1(p.pub, p.d[:], p.sig) }

// rawNs is the wall-clock ns/op of the raw row of this run.
var rawNs float64

// reportRatio reports x-raw, the ns/op over the raw row's, and x-floor,
// that divided by the verifications the call cannot avoid.
func reportRatio(b *testing.B, verifies float64) {
	b.Helper()
	raw := rawNs
	if raw == 0 {
		p := newP256()
		raw = benchratio.BestNs(1, 20*time.Millisecond, func() { p.verify() })
	}
	per := benchratio.NsPerOp(b)
	b.ReportMetric(per/raw, "x-raw")
	if verifies != 1 {
		b.ReportMetric(per/(verifies*raw), "x-floor")
	}
}

// reportInterleaved reports x-floor-ilv (x-raw-ilv when verifies is 1):
// the median over 64 rounds of 16 calls of call, each round divided by the
// time of verifies·16 raw verifications timed just before, so that load
// from other processes affects both sides alike.
func reportInterleaved(b *testing.B, verifies float64, call func(i int)) {
	b.Helper()
	p := newP256()
	ratio := benchratio.Interleaved(64, 16, func() { p.verify() }, call) / verifies
	unit := "x-floor-ilv"
	if verifies == 1 {
		unit = "x-raw-ilv"
	}
	b.ReportMetric(ratio, unit)
}

func benchEnv(b *testing.B, cacheSize int) *restest.Env {
	b.Helper()
	return restest.NewEnv(b, restest.Options{DPoP: true, Mod: func(e *restest.Env, c *resource.Config) {
		direct(e, c)
		c.TokenCacheSize = cacheSize
		store, err := replaycache.NewLRU(replaycache.Config{Capacity: 1 << 22, Now: c.Now})
		if err != nil {
			b.Fatal(err)
		}
		c.DPoP.ReplayStore = store
	}})
}

const benchAuthority = "rs.example.test"

// callContext is the server context of a call over TLS from a peer
// presenting certs, carrying the metadata pairs kv.
func callContext(certs []*x509.Certificate, kv ...string) context.Context {
	md := metadata.Pairs(append([]string{":authority", benchAuthority}, kv...)...)
	ctx := metadata.NewIncomingContext(context.Background(), md)
	return peer.NewContext(ctx, &peer.Peer{
		Addr:     &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 50000},
		AuthInfo: credentials.TLSInfo{State: tls.ConnectionState{PeerCertificates: certs}},
	})
}

// dpopContexts returns n call contexts, each with the K1-bound token and a
// fresh proof for POST https://rs.example.test/test.Routes/Any, so proof
// signing stays out of the timed loop.
func dpopContexts(b *testing.B, e *restest.Env, n int) []context.Context {
	b.Helper()
	tok := restest.K1Token(b, e)
	htu := "https://" + benchAuthority + fullMethod("Any")
	ctxs := make([]context.Context, n)
	for i := range ctxs {
		proof, err := e.K1.Proof("POST", htu, dpop.ProofOptions{AccessToken: tok})
		if err != nil {
			b.Fatal(err)
		}
		ctxs[i] = callContext(nil, "authorization", "DPoP "+tok, "dpop", proof)
	}
	return ctxs
}

// BenchmarkInterceptor measures the unary interceptor on one call (the
// handler does nothing), beside a raw P-256 verification in the same run:
// x-raw is the cost in raw verifications, x-floor divides by those the call
// cannot avoid (two for DPoP without the token cache: token and proof; one
// with it), and the -ilv metrics state the same ratio measured interleaved
// with raw verifications, which holds steady on a loaded machine. Run with
// a bounded -benchtime (e.g. 1s).
func BenchmarkInterceptor(b *testing.B) {
	b.Run("raw-ecdsa-p256-verify", func(b *testing.B) {
		p := newP256()
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			p.verify()
		}
		b.StopTimer()
		rawNs = benchratio.NsPerOp(b)
		b.ReportMetric(1, "x-raw")
	})
	info := &grpc.UnaryServerInfo{FullMethod: fullMethod("Any")}
	handler := func(ctx context.Context, _ any) (any, error) { return nil, nil }
	interceptor := func(b *testing.B, e *restest.Env) grpc.UnaryServerInterceptor {
		in, err := grpcresource.New(grpcresource.Config{Verifier: e.Verifier, Default: resource.Policy{Accept: resource.AcceptAny}})
		if err != nil {
			b.Fatal(err)
		}
		return in.Unary()
	}
	for _, bc := range []struct {
		name      string
		cacheSize int
		verifies  float64
	}{
		{"dpop-no-token-cache", -1, 2},
		{"dpop-token-cache", 0, 1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := benchEnv(b, bc.cacheSize)
			unary := interceptor(b, e)
			ctxs := dpopContexts(b, e, b.N)
			runtime.GC()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := unary(ctxs[i], nil, info, handler); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			reportRatio(b, bc.verifies)
			ctxs = dpopContexts(b, e, 64*16)
			runtime.GC()
			reportInterleaved(b, bc.verifies, func(i int) {
				if _, err := unary(ctxs[i], nil, info, handler); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
	for _, bc := range []struct {
		name      string
		cacheSize int
	}{{"mtls-no-token-cache", -1}, {"mtls-token-cache", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			e := benchEnv(b, bc.cacheSize)
			unary := interceptor(b, e)
			tok := e.Token(b, func(c map[string]any) { c["cnf"] = map[string]any{"x5t#S256": mtlsbound.Thumbprint(e.C1.Cert)} })
			ctx := callContext([]*x509.Certificate{e.C1.Cert}, "authorization", "Bearer "+tok)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := unary(ctx, nil, info, handler); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			reportRatio(b, 1)
			reportInterleaved(b, 1, func(int) {
				if _, err := unary(ctx, nil, info, handler); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// BenchmarkEndToEnd sends sequential unary calls over a real loopback TLS
// connection, unprotected and through the interceptors, and reports calls
// per second. DPoP calls carry pre-signed proofs so client-side signing
// stays out of the timing; the token cache is on. Run with a bounded
// -benchtime (e.g. 1s or 2000x).
func BenchmarkEndToEnd(b *testing.B) {
	e := benchEnv(b, 0)
	tg := startServers(b, e, e.Verifier)
	// An unprotected server with the same service.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	open := grpc.NewServer(grpc.Creds(credentials.NewTLS(mtlsbound.ServerTLSConfig(e.Server.TLSCertificate()))), grpc.ForceServerCodec(rawCodec{}),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			return h(resource.NewContext(ctx, &resource.Principal{}), req)
		}))
	open.RegisterService(serviceDesc(), nil)
	go func() { _ = open.Serve(lis) }()
	b.Cleanup(open.Stop)

	run := func(b *testing.B, addr string, leaf bool, md func(i int) []string) {
		var cc *grpc.ClientConn
		if leaf {
			cc = dial(b, e, addr, e.C1, false)
		} else {
			cc = dial(b, e, addr, nil, false)
		}
		if a := invoke(context.Background(), cc, "Any", md(-1)...); a.err != nil {
			b.Fatal(a.err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			if a := invoke(context.Background(), cc, "Any", md(i)...); a.err != nil {
				b.Fatal(a.err)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
	}
	b.Run("unprotected", func(b *testing.B) {
		run(b, lis.Addr().String(), false, func(int) []string { return nil })
	})
	b.Run("mtls", func(b *testing.B) {
		tok := e.Token(b, func(c map[string]any) { c["cnf"] = map[string]any{"x5t#S256": mtlsbound.Thumbprint(e.C1.Cert)} })
		run(b, tg.TLS, true, func(int) []string { return []string{"authorization", "Bearer " + tok} })
	})
	b.Run("dpop", func(b *testing.B) {
		tok := restest.K1Token(b, e)
		htu := "https://" + tg.TLS + fullMethod("Any")
		proofs := make([]string, b.N+1)
		for i := range proofs {
			if proofs[i], err = e.K1.Proof("POST", htu, dpop.ProofOptions{AccessToken: tok}); err != nil {
				b.Fatal(err)
			}
		}
		run(b, tg.TLS, false, func(i int) []string { return []string{"authorization", "DPoP " + tok, "dpop", proofs[i+1]} })
	})
}
