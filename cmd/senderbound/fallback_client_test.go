package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/fallback"
	"github.com/senderbound/senderbound/issuer"
	"github.com/senderbound/senderbound/mtlsbound/certs"
)

// TestFallbackTransportServeIssuerRestart runs a fallback.Transport
// client against serve-issuer and serve-resource: calls carry DPoP-bound
// tokens; the serve-issuer command is stopped and the circuit opens, with
// calls going on with the certificate (its scope only); the
// command is started again on the same port with the same state
// directory, and a probe closes the circuit.
func TestFallbackTransportServeIssuerRestart(t *testing.T) {
	t.Parallel()
	dir := cliCreateCA(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	asEnv := serveTestEnv(t, nil)
	asArgs := []string{"serve-issuer", "--addr", addr, "--client", "app:" + serveTestSecret, "--token-ttl", "1s",
		"--scope", "read", "--scope", "write", "--fallback-ca", dir}
	as := serveStartEnv(t, asEnv, asArgs...)
	rs := serveStart(t, "serve-resource", "--addr", "127.0.0.1:0", "--issuer", as.URL, "--scope", "read",
		"--fallback-ca", filepath.Join(dir, certs.CACertFile), "--fallback-crl", as.URL+issuer.CRLPath, "--crl-refresh", "50ms")

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	src, err := fallback.NewCertificateSource(fallback.CertificateSourceConfig{
		Endpoint: as.URL + issuer.CertificatePath, Key: key, ClientID: "app", ClientSecret: serveTestSecret,
		Scopes: []string{"read"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Renew(t.Context()); err != nil {
		t.Fatal(err)
	}
	prover, err := dpop.NewProver(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	signer := &dpop.Transport{Prover: prover}
	cc := clientcredentials.Config{ClientID: "app", ClientSecret: serveTestSecret, TokenURL: as.URL + issuer.TokenPath, AuthStyle: oauth2.AuthStyleInHeader}
	tokenCtx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: signer, Timeout: 2 * time.Second})
	tr, err := fallback.NewTransport(fallback.TransportConfig{
		Tokens:           &oauth2.Transport{Source: cc.TokenSource(tokenCtx), Base: signer},
		Fallback:         src.SignedTransport(nil, nil),
		Probe:            fallback.ProbeURL(&http.Client{Timeout: time.Second}, as.URL+issuer.MetadataPath),
		FailureThreshold: 2,
		OpenTimeout:      50 * time.Millisecond,
		Logger:           slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	call := func() (int, serveResourceResponse) {
		t.Helper()
		resp, err := client.Get(rs.URL + "/resource")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var rr serveResourceResponse
		if resp.StatusCode == http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(&rr); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode, rr
	}
	if status, rr := call(); status != http.StatusOK || rr.Binding != "dpop" {
		t.Fatalf("issuer up: %d %+v", status, rr)
	}
	// The resource's first CRL fetch may still be under way: fallback
	// requests are 503 until it lands.
	signed := &http.Client{Transport: src.SignedTransport(nil, nil), Timeout: 10 * time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := signed.Get(rs.URL + "/resource")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the resource has no CRL")
		}
		time.Sleep(20 * time.Millisecond)
	}

	if code := as.stop(t); code != 0 {
		t.Fatalf("serve-issuer exited with %d", code)
	}
	for i := range 3 {
		if status, rr := call(); status != http.StatusOK || rr.Binding != "fallback_certificate" || rr.Scope != "read" {
			t.Fatalf("issuer down, call %d: %d %+v", i, status, rr)
		}
	}
	if st := tr.State(); st == gobreaker.StateClosed {
		t.Fatal("circuit closed with serve-issuer stopped")
	}

	serveStartEnv(t, asEnv, asArgs...)
	deadline = time.Now().Add(10 * time.Second)
	for tr.State() != gobreaker.StateClosed {
		if time.Now().After(deadline) {
			t.Fatal("the circuit did not close after serve-issuer came back")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if status, rr := call(); status != http.StatusOK || rr.Binding != "dpop" || rr.Scope != "read write" {
		t.Fatalf("issuer back: %d %+v", status, rr)
	}
}
