package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/fallback"
	"github.com/senderbound/senderbound/internal/keyfile"
	"github.com/senderbound/senderbound/issuer"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/mtlsbound/certs"
	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/resource"
)

// fallbackRevocationsFile is the revocation list that "ca revoke" writes
// and "serve-issuer --fallback-ca" publishes, beside the CA's files.
const fallbackRevocationsFile = "revoked.json"

// fallbackRevocations returns the revocation store of the CA in dir.
func fallbackRevocations(dir string) *fallback.FileRevocations {
	return &fallback.FileRevocations{Path: filepath.Join(dir, fallbackRevocationsFile)}
}

// loadFallbackCA builds the fallback CA role from a directory written by
// "ca create", with its shared revocation list.
func loadFallbackCA(dir string, lifetime time.Duration) (*fallback.CA, error) {
	ca, err := certs.LoadCA(dir)
	if err != nil {
		return nil, fmt.Errorf("--fallback-ca: %w", err)
	}
	return fallback.NewCA(fallback.CAConfig{
		Certificate: ca.Cert,
		Signer:      ca.Key,
		Lifetime:    lifetime,
		Revocations: fallbackRevocations(dir),
	})
}

// runCARevoke implements "ca revoke": the serial number of --cert (which
// the CA must have issued) or --serial is added to DIR/revoked.json; a
// running "serve-issuer --fallback-ca DIR" lists it in its next CRL.
func runCARevoke(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "ca revoke", "ca revoke --ca DIR (--cert FILE | --serial HEX)\n\nRevokes a certificate of a CA made by 'ca create' (used as --fallback-ca). Removing a scope from a client = revoke its certificate and issue a new one.")
	caDir := fs.String("ca", "", "directory holding "+certs.CACertFile+" (required)")
	certFile := fs.String("cert", "", "PEM file whose first certificate is revoked")
	serialHex := fs.String("serial", "", "serial number to revoke, hexadecimal")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if err := requireValues(fs, "ca", "cert", "serial"); err != nil {
		return err
	}
	if *caDir == "" {
		return usageError(fs, "ca revoke needs --ca")
	}
	if (*certFile == "") == (*serialHex == "") {
		return usageError(fs, "ca revoke needs exactly one of --cert and --serial")
	}
	data, err := os.ReadFile(filepath.Join(*caDir, certs.CACertFile))
	if err != nil {
		return err
	}
	caCerts, err := certs.ParseCertificates(data)
	if err != nil {
		return fmt.Errorf("%s: %w", certs.CACertFile, err)
	}
	var serial *big.Int
	if *certFile != "" {
		data, err := os.ReadFile(*certFile)
		if err != nil {
			return err
		}
		cs, err := certs.ParseCertificates(data)
		if err != nil {
			return fmt.Errorf("--cert: %w", err)
		}
		if cs[0].CheckSignatureFrom(caCerts[0]) != nil {
			return errors.New("--cert was not issued by this CA")
		}
		serial = cs[0].SerialNumber
	} else {
		s := strings.ReplaceAll(strings.TrimPrefix(strings.ToLower(*serialHex), "0x"), ":", "")
		n, ok := new(big.Int).SetString(s, 16)
		if !ok || n.Sign() <= 0 {
			return usageError(fs, "--serial must be a positive hexadecimal number")
		}
		serial = n
	}
	if err := fallbackRevocations(*caDir).Revoke(ctx, serial, time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "revoked serial %s (listed in %s)\n", serial.Text(16), filepath.Join(*caDir, fallbackRevocationsFile))
	return nil
}

// serveFallbackParams is what serveFallbackVerifier needs from the
// serve-resource flags.
type serveFallbackParams struct {
	caFile, crlURL string
	refresh, grace time.Duration
	client         *http.Client         // for the CRL; nil means defaults
	dpop           *resource.DPoPConfig // the DPoP settings, or nil
	ops            *serveOps            // gets the CRL readiness check, or nil
}

// serveFallbackVerifier loads the fallback CA, starts the background CRL
// fetcher (its failures are logged) and builds the verifier of fallback
// certificates and signed requests; signed requests share the DPoP replay
// store and nonces. The returned function stops the fetcher.
func serveFallbackVerifier(ctx context.Context, e *env, p serveFallbackParams) (*fallback.Verifier, func(), error) {
	data, err := os.ReadFile(p.caFile)
	if err != nil {
		return nil, nil, fmt.Errorf("--fallback-ca: %w", err)
	}
	cas, err := certs.ParseCertificates(data)
	if err != nil {
		return nil, nil, fmt.Errorf("--fallback-ca: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, nil))
	fetcher, err := fallback.NewCRLFetcher(fallback.CRLFetcherConfig{
		URL: p.crlURL, CA: cas[0], HTTPClient: p.client, Refresh: p.refresh,
		OnFetch: func(err error) {
			if err != nil {
				logger.Warn("fallback CRL fetch failed; the last good CRL stays in use", slog.String("reason", fallback.ReasonOf(err).String()))
			}
		},
	})
	if err != nil {
		return nil, nil, err
	}
	dc := dpop.Config{Algorithms: slices.Clone(serveAlgorithms), MaxProofBytes: 16 << 10}
	if p.dpop != nil {
		dc.ReplayStore, dc.Nonces = p.dpop.ReplayStore, p.dpop.Nonces
	} else {
		lru, err := replaycache.NewLRU(replaycache.Config{})
		if err != nil {
			return nil, nil, err
		}
		dc.ReplayStore = lru
	}
	proofs, err := dpop.NewVerifier(dc)
	if err != nil {
		return nil, nil, err
	}
	v, err := fallback.NewVerifier(fallback.Config{CAs: cas, CRL: fetcher, CRLGrace: p.grace, Proofs: proofs})
	if err != nil {
		return nil, nil, err
	}
	if p.ops != nil {
		p.ops.addCheck("crl", opsCRLCheck(fetcher, p.grace))
	}
	fetcher.Start(ctx)
	return v, func() { fetcher.Close() }, nil
}

// maxChainResponseBytes caps the certificate endpoint's answer.
const maxChainResponseBytes = 64 << 10

// runCertRequest implements "cert request": a fallback client certificate
// for --key from the issuer's certificate endpoint, written with the key
// to DIR/cert.pem (leaf, then CA) and DIR/key.pem (mode 0600).
func runCertRequest(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "cert request", "cert request --issuer URL --client-id ID (--client-secret S|- | --cert FILE) --key FILE --out DIR [--scope S] [--ca-file FILE] [--force]\n\n"+
		"Obtains a fallback client certificate for the private key --key from the issuer's certificate\n"+
		"endpoint (ISSUER/certificate, served by 'serve-issuer --fallback-ca'), authenticating as at the\n"+
		"token endpoint: with client_secret_basic, or with the client certificate --cert for the same\n"+
		"key (tls_client_auth, self_signed_tls_client_auth). The certificate carries the client's\n"+
		"registered scopes, or the --scope subset.")
	issuerURL := fs.String("issuer", "", "issuer identifier: https, or http on a loopback address (required)")
	clientID := fs.String("client-id", "", "client_id (required)")
	secret := fs.String("client-secret", "", "client secret for client_secret_basic; - reads it from standard input")
	certPath := fs.String("cert", "", "client certificate PEM for mTLS client authentication, for the key --key")
	keyPath := fs.String("key", "", "private key to certify: a JWK or PKCS#8 / SEC 1 / PKCS#1 PEM (required)")
	out := fs.String("out", "", "directory to write "+certs.LeafCertFile+" and "+certs.LeafKeyFile+" to (created if needed; required)")
	scope := fs.String("scope", "", "space-separated subset of the registered scopes")
	caFile := fs.String("ca-file", "", "PEM bundle of CA certificates to trust for HTTPS instead of the system roots")
	force := fs.Bool("force", false, "replace an existing certificate and key in --out")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if err := requireValues(fs, "issuer", "client-id", "client-secret", "cert", "key", "out", "scope", "ca-file"); err != nil {
		return err
	}
	if *issuerURL == "" || *clientID == "" || *keyPath == "" || *out == "" {
		return usageError(fs, "cert request needs --issuer, --client-id, --key and --out")
	}
	if (*secret == "") == (*certPath == "") {
		return usageError(fs, "cert request needs exactly one of --client-secret and --cert")
	}
	if err := checkTokenEndpoint(*issuerURL); err != nil {
		return usageError(fs, strings.Replace(err.Error(), "token endpoint", "issuer", 1))
	}
	if err := refuseExisting(*force, filepath.Join(*out, certs.LeafCertFile), filepath.Join(*out, certs.LeafKeyFile)); err != nil {
		return err
	}
	sec := *secret
	if sec == "-" {
		var err error
		if sec, err = readLine(e.stdin, "the client secret"); err != nil {
			return err
		}
	}
	key, err := keyfile.Load(*keyPath)
	if err != nil {
		return err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key.Signer)
	if err != nil {
		return fmt.Errorf("CSR: %w", err)
	}
	var roots *x509.CertPool
	if *caFile != "" {
		if roots, err = serveLoadPool("--ca-file", *caFile); err != nil {
			return err
		}
	}
	var clientCert *tls.Certificate
	if *certPath != "" {
		if clientCert, err = loadClientCertificate(*certPath, *keyPath); err != nil {
			return err
		}
	}
	hc := mtlsbound.NewClient(clientCert, roots)
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	form := url.Values{"csr": {base64.RawURLEncoding.EncodeToString(csr)}}
	if *scope != "" {
		form.Set("scope", *scope)
	}
	if sec == "" {
		form.Set("client_id", *clientID)
	}
	endpoint := strings.TrimSuffix(*issuerURL, "/") + issuer.CertificatePath
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if sec != "" {
		req.SetBasicAuth(url.QueryEscape(*clientID), url.QueryEscape(sec))
	}
	resp, err := hc.Do(req)
	if err != nil {
		return withTransportHint(err, "certificate endpoint "+printable(endpoint, 200))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxChainResponseBytes+1))
	if err != nil {
		return fmt.Errorf("reading the certificate response: %w", err)
	}
	if len(body) > maxChainResponseBytes {
		return fmt.Errorf("certificate response larger than %d bytes", maxChainResponseBytes)
	}
	if resp.StatusCode != http.StatusOK {
		return errors.New(strings.Replace(tokenErrorResponse(resp, body).Error(), "token endpoint", "certificate endpoint", 1))
	}
	chain, err := certs.ParseCertificates(body)
	if err != nil {
		return fmt.Errorf("certificate endpoint answered without a PEM chain: %w", err)
	}
	if pub, ok := chain[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(key.Signer.Public()) {
		return errors.New("the certificate endpoint answered a certificate for another key")
	}
	leaf := &certs.Leaf{Cert: chain[0], Key: key.Signer, Chain: chain[1:]}
	if err := leaf.WriteDir(*out); err != nil {
		return err
	}
	printCertReport(e.stdout, [][2]string{
		{"certificate", filepath.Join(*out, certs.LeafCertFile)},
		{"private key", filepath.Join(*out, certs.LeafKeyFile) + " (mode 0600)"},
	}, chain[0])
	return nil
}
