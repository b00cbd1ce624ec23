package mtlsbound

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/senderbound/senderbound/internal/benchratio"
)

var (
	rawVerifyOnce sync.Once
	rawVerifyNs   float64
)

// rawVerify measures one ECDSA P-256 signature verification (the floor of
// any proof-of-possession check) once per run.
func rawVerify(b *testing.B) float64 {
	b.Helper()
	rawVerifyOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		digest := sha256.Sum256([]byte("senderbound"))
		sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
		if err != nil {
			b.Fatal(err)
		}
		// Timed by hand: testing.Benchmark cannot run inside a benchmark.
		rawVerifyNs = benchratio.BestNs(3, 100*time.Millisecond, func() {
			if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig) {
				b.Fatal("verify failed")
			}
		})
	})
	return rawVerifyNs
}

func reportRatio(b *testing.B) {
	b.Helper()
	if raw, per := rawVerify(b), benchratio.NsPerOp(b); raw > 0 && per > 0 {
		b.ReportMetric(per/raw, "x-raw")
	}
}

func BenchmarkRawECDSAP256Verify(b *testing.B) {
	b.ReportAllocs()
	raw := rawVerify(b)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	digest := sha256.Sum256([]byte("senderbound"))
	sig, _ := ecdsa.SignASN1(rand.Reader, key, digest[:])
	b.ResetTimer()
	for b.Loop() {
		ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig)
	}
	b.StopTimer()
	if raw > 0 {
		b.ReportMetric(benchratio.NsPerOp(b)/raw, "x-raw")
	}
}

func BenchmarkThumbprint(b *testing.B) {
	c := fixtures(b).c1.Cert
	rawVerify(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if Thumbprint(c) == "" {
			b.Fatal("empty")
		}
	}
	b.StopTimer()
	reportRatio(b)
}

// BenchmarkBindingTLSPath is the resource-server path when the RS terminates
// TLS: take the peer certificate, thumbprint it and compare with cnf.
func BenchmarkBindingTLSPath(b *testing.B) {
	f := fixtures(b)
	src, err := NewSource(SourceConfig{TrustedProxies: proxies(b, "10.0.0.0/8")})
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "https://rs.example.test/resource", nil)
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{f.c1.Cert}}
	want := Thumbprint(f.c1.Cert)
	rawVerify(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		c, err := src.ClientCertificate(r)
		if err != nil || CheckBinding(c, want) != nil {
			b.Fatal("binding failed")
		}
	}
	b.StopTimer()
	reportRatio(b)
}

// BenchmarkBindingHeaderPath is the same behind a trusted proxy: parse the
// RFC 9440 header (base64 + DER parse), thumbprint and compare.
func BenchmarkBindingHeaderPath(b *testing.B) {
	f := fixtures(b)
	src, err := NewSource(SourceConfig{TrustedProxies: proxies(b, "10.0.0.0/8")})
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "https://rs.example.test/resource", nil)
	r.RemoteAddr = "10.0.0.7:40000"
	r.Header.Set("Client-Cert", FormatClientCertHeader(f.c1.Cert))
	want := Thumbprint(f.c1.Cert)
	rawVerify(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		c, err := src.ClientCertificate(r)
		if err != nil || CheckBinding(c, want) != nil {
			b.Fatal("binding failed")
		}
	}
	b.StopTimer()
	reportRatio(b)
}

// BenchmarkPKIAuthenticate is tls_client_auth at the token endpoint: chain
// verification to the root plus the DN selector.
func BenchmarkPKIAuthenticate(b *testing.B) {
	f := fixtures(b)
	a := PKIAuth{Roots: f.ca1.Pool(), SubjectDN: "CN=client1,O=Example Corp"}
	ctx := context.Background()
	rawVerify(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := a.Authenticate(ctx, f.c1.Cert, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportRatio(b)
}

func BenchmarkDistinguishedNameMatch(b *testing.B) {
	f := fixtures(b)
	dn, err := ParseDistinguishedName("CN=client1,O=Example Corp")
	if err != nil {
		b.Fatal(err)
	}
	rawVerify(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if !dn.Match(f.c1.Cert) {
			b.Fatal("no match")
		}
	}
	b.StopTimer()
	reportRatio(b)
}
