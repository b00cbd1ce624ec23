package grpcresource

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/url"
	"testing"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// TestScratchRelease: the parts the interceptor reuses are empty once
// released: no token, proof or certificate stays in the pool, and the
// next call starts from nothing.
func TestScratchRelease(t *testing.T) {
	t.Parallel()
	md := metadata.Pairs(":authority", "rs.example.test", "authorization", "DPoP tok", "dpop", "proof")
	ctx := peer.NewContext(metadata.NewIncomingContext(context.Background(), md), &peer.Peer{
		Addr:     &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1},
		AuthInfo: credentials.TLSInfo{State: tls.ConnectionState{HandshakeComplete: true, PeerCertificates: []*x509.Certificate{{}}}},
	})
	sc := &scratch{header: make(map[string][]string, 2)}
	r := request(ctx, "/s.S/M", sc)
	if r.Header.Get("Authorization") != "DPoP tok" || r.URL.Host != "rs.example.test" || r.TLS != &sc.tls || len(r.TLS.PeerCertificates) != 1 {
		t.Fatalf("request %+v", r)
	}
	sc.release()
	if len(sc.header) != 0 || sc.url != (url.URL{}) || sc.tls.HandshakeComplete || sc.tls.PeerCertificates != nil {
		t.Fatalf("released scratch not empty: %+v", sc)
	}
}
