package main

import (
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/senderbound/senderbound/issuer"
	"github.com/senderbound/senderbound/mtlsbound/certs"
)

// TestConformClientKeyHost runs MTLS-CA-11 from the command line against
// a serve-issuer started first with the client's jwks_uri on the suite's
// key host (--client-jwks-uri, --client-jwks-ca with the CA of the host's
// certificate, --insecure-client-jwks-private-addresses): with the key
// host flags the case passes; without them it is skipped with its reason.
func TestConformClientKeyHost(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for two key-set refreshes of the issuer (-short)")
	}
	t.Parallel()
	dir := t.TempDir()
	ca, err := certs.NewCA(certs.Options{CommonName: "key host test CA"})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Issue(certs.Options{IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := srv.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	caFile, certFile, keyFile := filepath.Join(dir, certs.CACertFile), filepath.Join(dir, certs.LeafCertFile), filepath.Join(dir, certs.LeafKeyFile)
	client, err := ca.Issue(certs.Options{CommonName: "orders-app", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	clientDir := filepath.Join(dir, "client")
	if err := client.WriteDir(clientDir); err != nil {
		t.Fatal(err)
	}
	// A fixed port for the key host, known before the issuer starts.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hostAddr := ln.Addr().String()
	ln.Close()
	const secret = "key-host-secret-0123456789"
	jwksURI := "https://" + hostAddr + "/clients/rotating-app/jwks.json"
	as := serveStart(t, "serve-issuer", "--addr", "127.0.0.1:0", "--ephemeral-key", "--tls-cert", certFile, "--tls-key", keyFile,
		"--client", "app:"+secret, "--client-ca", caFile, "--mtls-client", "orders-app:CN=orders-app",
		"--client-jwks-uri", "rotating-app:self_signed_tls_client_auth="+jwksURI,
		"--client-jwks-ca", caFile, "--insecure-client-jwks-private-addresses")
	rs := serveStart(t, "serve-resource", "--addr", "127.0.0.1:0", "--issuer", as.URL, "--ca-file", caFile,
		"--tls-cert", certFile, "--tls-key", keyFile, "--require", "any")
	base := []string{"--token-endpoint", as.URL + issuer.TokenPath, "--client-id", "app", "--client-secret", secret,
		"--resource", rs.URL + "/resource", "--ca-file", caFile, "--profile", "both", "--cases", "MTLS-CA-11",
		"--cert", filepath.Join(clientDir, certs.LeafCertFile), "--key", filepath.Join(clientDir, certs.LeafKeyFile), "--mtls-client-id", "orders-app"}
	keyHost := []string{"--client-key-host", hostAddr, "--client-key-host-cert", certFile, "--client-key-host-key", keyFile,
		"--jwks-uri-client", "rotating-app", "--key-refresh-wait", "25s"}

	code, out, errOut := conformRunCLI(t, base...)
	if code != 0 || !strings.Contains(out, "SKIP  MTLS-CA-11") || !strings.Contains(out, "needs a self_signed_tls_client_auth client registered with a jwks_uri") {
		t.Fatalf("without a key host: exit %d, want 0 with MTLS-CA-11 skipped as not applicable; stderr: %s\n%s", code, errOut, out)
	}
	code, out, errOut = conformRunCLI(t, append(base, keyHost...)...)
	if code != 0 || !strings.Contains(out, "PASS  MTLS-CA-11") {
		t.Fatalf("with the key host: exit %d, want 0 with MTLS-CA-11 passed; stderr: %s\n%s", code, errOut, out)
	}
	if !strings.Contains(errOut, jwksURI) {
		t.Errorf("stderr = %q, want the note naming the jwks_uri served", errOut)
	}
}
